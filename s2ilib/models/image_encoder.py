"""The image tower of the audio-visual alignment stage (s2ilib.train.align)."""

from __future__ import annotations

import torch
from torch import nn

from s2ilib.models.config import ImageEncoderConfig


def _down_layer(in_channels: int, out_channels: int) -> nn.Sequential:
    """3x3 stride-2 conv (no bias: BatchNorm follows) -> BatchNorm -> ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class ImageEncoder(nn.Module):
    """Image (B, C, S, S) in [-1, 1] -> embedding (B, D) (unnormalised)."""

    def __init__(self, config: ImageEncoderConfig | None = None):
        super().__init__()
        self.config = config = config or ImageEncoderConfig()
        widths = (config.image_channels, *config.channels)
        self.features = nn.Sequential(
            *(_down_layer(widths[i], widths[i + 1]) for i in range(len(config.channels)))
        )
        self.project = nn.Linear(widths[-1], config.embedding_dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.project(self.features(images).mean((2, 3)))
