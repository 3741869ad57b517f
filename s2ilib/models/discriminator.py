"""Stage 2: the discriminator, conditioned on the audio embedding (or not)."""

from __future__ import annotations

import torch
from torch import nn

from s2ilib.models.config import DiscriminatorConfig


def _down_layer(in_channels: int, out_channels: int, kernel: int, stride: int, dropout: float):
    """Conv (no bias: BatchNorm follows) -> BatchNorm -> ReLU -> Dropout2d."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel, stride=stride, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.Dropout2d(dropout),
    )


def apply_spectral_norm(module: nn.Module) -> nn.Module:
    """Spectral normalisation of every conv weight of `module` (in place); returns it."""
    for layer in list(module.modules()):
        if isinstance(layer, nn.Conv2d):
            nn.utils.parametrizations.spectral_norm(layer)
    return module


class Discriminator(nn.Module):
    """Image (B, C, S, S) [+ embedding (B, D)] -> score (B,) in [-1, 1].

    When conditioned, the embedding is reshaped to (D / s^2) maps of the last feature map's
    size s x s (2x2 in the paper) and concatenated to it; a final s x s conv (no bias) ->
    BatchNorm -> tanh gives one score per image.
    """

    def __init__(self, config: DiscriminatorConfig | None = None):
        super().__init__()
        self.config = config = config or DiscriminatorConfig()
        widths = (config.image_channels, *config.channels)
        self.features = nn.Sequential(
            *(
                _down_layer(widths[i], widths[i + 1], kernel, stride, config.dropout)
                for i, (kernel, stride) in enumerate(
                    zip(config.kernels, config.strides, strict=True)
                )
            )
        )
        self.side = config.feature_sizes()[-1]
        self.score = nn.Sequential(
            nn.Conv2d(widths[-1] + config.condition_channels, 1, self.side, bias=False),
            nn.BatchNorm2d(1),
            nn.Tanh(),
        )
        if config.spectral_norm:
            apply_spectral_norm(self)

    def forward(self, images: torch.Tensor, embeddings: torch.Tensor | None = None):
        features = self.features(images)
        if self.config.conditioned:
            if embeddings is None:
                raise ValueError("a conditioned discriminator needs the audio embeddings")
            condition = embeddings.reshape(len(embeddings), -1, self.side, self.side)
            features = torch.cat([features, condition.to(features.dtype)], 1)
        elif embeddings is not None:
            raise ValueError("an unconditioned discriminator takes no embeddings")
        return self.score(features).flatten()
