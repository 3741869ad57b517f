"""Evaluation: the small informativity classifier (binary per class, or K-way)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from s2ilib.models.config import ClassifierConfig


class InformativityClassifier(nn.Module):
    """Image (B, C, S, S) in [-1, 1] -> log-probabilities (B, n_classes).

    Conv (stride 2) -> BatchNorm -> ReLU -> Dropout2d five times, then
    FC -> BatchNorm1d -> ReLU -> Dropout -> FC -> log-softmax. In the binary case used for
    informativity, class 1 means "an interpretable picture of this classifier's class".
    """

    def __init__(self, config: ClassifierConfig | None = None):
        super().__init__()
        self.config = config = config or ClassifierConfig()
        widths = (config.image_channels, *config.channels)
        self.features = nn.Sequential(
            *(
                nn.Sequential(
                    nn.Conv2d(widths[i], widths[i + 1], kernel, stride=config.stride),
                    nn.BatchNorm2d(widths[i + 1]),
                    nn.ReLU(inplace=True),
                    nn.Dropout2d(dropout),
                )
                for i, (kernel, dropout) in enumerate(
                    zip(config.kernels, config.conv_dropouts, strict=True)
                )
            )
        )
        if config.unused_fc:
            # Defined but never called in the authors' file (its `fc1_pass = False`); kept
            # only so that the parameter count matches theirs (34,730).
            self.unused_fc = nn.Sequential(
                nn.Linear(config.fc_dim, config.fc_dim), nn.BatchNorm1d(config.fc_dim)
            )
        self.hidden = nn.Sequential(
            nn.Linear(config.flat_dim, config.fc_dim),
            nn.BatchNorm1d(config.fc_dim),
            nn.ReLU(inplace=True),
            nn.Dropout(config.fc_dropout),
        )
        self.logits = nn.Linear(config.fc_dim, config.n_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        hidden = self.hidden(self.features(images).flatten(1))
        return F.log_softmax(self.logits(hidden), dim=1)
