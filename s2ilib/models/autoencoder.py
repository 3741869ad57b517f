"""Stage 1: the audio autoencoder (spectrogram -> D-dim embedding in [-1, 1] -> spectrogram)."""

from __future__ import annotations

import torch
from torch import nn

from s2ilib.models.config import AutoencoderConfig


def _encoder_layer(
    in_channels: int, out_channels: int, kernel, stride: int, last: bool
) -> nn.Sequential:
    """Conv (no padding) -> BatchNorm -> ReLU, or tanh for the embedding layer."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=tuple(kernel), stride=stride),
        nn.BatchNorm2d(out_channels),
        nn.Tanh() if last else nn.ReLU(inplace=True),
    )


def _decoder_layer(
    in_channels: int, out_channels: int, kernel, stride: int, dropout: float | None
) -> nn.Sequential:
    """ConvTranspose -> BatchNorm -> ReLU -> Dropout2d, or -> tanh for the output layer."""
    layers = [
        nn.ConvTranspose2d(in_channels, out_channels, kernel_size=tuple(kernel), stride=stride),
        nn.BatchNorm2d(out_channels),
    ]
    if dropout is None:
        layers.append(nn.Tanh())
    else:
        layers += [nn.ReLU(inplace=True), nn.Dropout2d(dropout)]
    return nn.Sequential(*layers)


class AudioEncoder(nn.Module):
    """Spectrogram (B, 1, mel bands, frames) in [-1, 1] -> embedding (B, D) in [-1, 1]."""

    def __init__(self, config: AutoencoderConfig):
        super().__init__()
        widths = (1, *config.encoder_channels, config.embedding_dim)
        count = len(config.encoder_kernels)
        self.layers = nn.Sequential(
            *(
                _encoder_layer(widths[i], widths[i + 1], kernel, stride, last=i == count - 1)
                for i, (kernel, stride) in enumerate(
                    zip(config.encoder_kernels, config.encoder_strides, strict=True)
                )
            )
        )

    def forward(self, spectrograms: torch.Tensor) -> torch.Tensor:
        return self.layers(spectrograms).flatten(1)


class AudioDecoder(nn.Module):
    """Embedding (B, D) -> spectrogram (B, 1, mel bands, frames) in [-1, 1]."""

    def __init__(self, config: AutoencoderConfig):
        super().__init__()
        widths = (config.embedding_dim, *config.decoder_channels)
        dropouts = (*config.decoder_dropouts, None)
        self.layers = nn.Sequential(
            *(
                _decoder_layer(widths[i], widths[i + 1], kernel, stride, dropout)
                for i, (kernel, stride, dropout) in enumerate(
                    zip(config.decoder_kernels, config.decoder_strides, dropouts, strict=True)
                )
            )
        )
        nn.init.constant_(self.layers[-1][1].bias, config.output_bias)  # output BatchNorm

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        return self.layers(embeddings[:, :, None, None])


class AudioAutoencoder(nn.Module):
    """Encoder + mirrored decoder, trained with MSE on spectrograms alone."""

    def __init__(self, config: AutoencoderConfig | None = None):
        super().__init__()
        self.config = config or AutoencoderConfig()
        self.encoder = AudioEncoder(self.config)
        self.decoder = AudioDecoder(self.config)

    def forward(self, spectrograms: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (reconstruction, embedding)."""
        embeddings = self.encoder(spectrograms)
        return self.decoder(embeddings), embeddings
