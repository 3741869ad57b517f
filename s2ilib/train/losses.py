"""Reconstruction, pixel and adversarial losses; the adversarial ones in a small registry.

The discriminator's score is a tanh output in [-1, 1] (models.discriminator). The paper's
convention, kept by every loss here: +1 means "real pair" (a real image with its sound's
embedding), -1 means "fake pair" (a generated image with the embedding it came from).

An adversarial loss is an object with
  discriminator_loss(real_scores, fake_scores) -> scalar   (what D minimises)
  generator_loss(fake_scores) -> scalar                     (G's adversarial term)
  update(real_scores, fake_scores)                          (after each D step; state, if any)
  state_dict() / load_state_dict(state)                     (saved in checkpoints)
and `make_gan_loss(name, config)` builds one from a GANTrainConfig. Every loss works on
device tensors and never syncs with the host.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from s2ilib import distributed
from s2ilib.train.config import GAN_LOSS_NAMES

REAL_TARGET = 1.0  # score the discriminator should give a real pair (tanh's maximum)
FAKE_TARGET = -1.0  # score it should give a generated pair (tanh's minimum)


def reconstruction_loss(reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The autoencoder's loss: mean squared error."""
    return F.mse_loss(reconstruction, target)


def pixel_loss(generated: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The generator's pixel loss against the paired image: mean absolute error (L1)."""
    return F.l1_loss(generated, target)


def contrastive_loss(
    audio: torch.Tensor,
    images: torch.Tensor,
    logit_scale: torch.Tensor,
    positives: torch.Tensor | None = None,
) -> torch.Tensor:
    """Symmetric InfoNCE (CLIP): row i of `audio` should match row i of `images` best.

    Both are L2-normalised; logits = logit_scale * cosine similarity; the loss is the mean
    of the audio->image and image->audio cross-entropies over the batch.

    positives: None (only row i's own image is a positive), or a bool (N, N) mask of
    every image each sound may pair with (diagonal included); each row then averages the
    log-probabilities of its positives (the multi-positive loss of SupCon, Khosla et al.
    2020), so that two valid pairs are never pushed apart as a negative. Its floor is then
    the mean log of the positives per row, not 0 (the logged loss reads accordingly).
    """
    audio, images = F.normalize(audio.float(), dim=1), F.normalize(images.float(), dim=1)
    logits = logit_scale * audio @ images.T
    if positives is None:
        targets = torch.arange(len(audio), device=audio.device)
        return 0.5 * (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets))
    weights = positives.float()
    audio_to_image = -(logits.log_softmax(1) * weights).sum(1) / weights.sum(1)
    image_to_audio = -(logits.T.log_softmax(1) * weights.T).sum(1) / weights.T.sum(1)
    return 0.5 * (audio_to_image.mean() + image_to_audio.mean())


def pairing_positives(labels: torch.Tensor) -> torch.Tensor:
    """The (N, N) positives of a class-paired batch: every image of the sound's class."""
    return labels[:, None] == labels[None, :]


class StatelessLoss:
    """Base of the losses without state."""

    def update(self, real_scores: torch.Tensor, fake_scores: torch.Tensor) -> None:
        """Nothing to track."""

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Nothing to restore."""


class PaperLoss(StatelessLoss):
    """The authors' scheme: L1 regression of the score to fixed targets.

    D: 0.5 * (mean|s_real - 1| + mean|s_fake + 1|), the mean over the real and fake pairs.
    G: mean|s_fake - 1|, the fake score pulled to the real target.
    """

    def discriminator_loss(self, real_scores, fake_scores):
        real_term = (real_scores - REAL_TARGET).abs().mean()
        fake_term = (fake_scores - FAKE_TARGET).abs().mean()
        return 0.5 * (real_term + fake_term)

    def generator_loss(self, fake_scores):
        return (fake_scores - REAL_TARGET).abs().mean()


class MovingAverageLoss:
    """The "moving-average adversarial loss" (arXiv 2106.01266 v1 abstract): our definition.

    The authors never published its formula; this is the workbook's definition. Two
    exponential moving averages follow the discriminator's mean scores, updated after every
    discriminator step from that step's (detached) scores:
        m_real <- decay * m_real + (1 - decay) * mean(s_real)
        m_fake <- decay * m_fake + (1 - decay) * mean(s_fake)
    (the first update sets them to the batch means; `updates` counts the updates).
    G: mean|s_fake - m_real|. The generator moves its fake scores to where the discriminator
       has lately been putting real pairs, a target that follows the discriminator instead
       of the fixed +1. While D saturates (m_real = 1) this is the paper's loss; while D is
       unsure (m_real near 0) G is not driven to overshoot towards +1, which damps the
       oscillations a fixed, saturated target causes.
    D: the paper's L1 loss to +1 / -1 when `discriminator_margin` is 0. When it is > 0 the
       targets are smoothed too: min(1, m_real + margin) for real pairs and
       max(-1, m_fake - margin) for fake ones, so D is asked to beat its own recent average
       by a margin each step rather than to jump to the extremes at once.
    """

    def __init__(self, decay: float = 0.99, discriminator_margin: float = 0.0):
        self.decay = decay
        self.discriminator_margin = discriminator_margin
        self.real_average = torch.tensor(REAL_TARGET)
        self.fake_average = torch.tensor(FAKE_TARGET)
        self.updates = 0  # host-side count: no sync needed to tell the first update apart

    def discriminator_loss(self, real_scores, fake_scores):
        real_target, fake_target = self.discriminator_targets(real_scores.device)
        real_term = (real_scores - real_target).abs().mean()
        fake_term = (fake_scores - fake_target).abs().mean()
        return 0.5 * (real_term + fake_term)

    def discriminator_targets(self, device) -> tuple[torch.Tensor, torch.Tensor]:
        """(real target, fake target) of the discriminator under the current averages."""
        if self.discriminator_margin <= 0 or self.updates == 0:
            return torch.tensor(REAL_TARGET, device=device), torch.tensor(
                FAKE_TARGET, device=device
            )
        margin = self.discriminator_margin
        real = (self.real_average.to(device) + margin).clamp(max=REAL_TARGET)
        fake = (self.fake_average.to(device) - margin).clamp(min=FAKE_TARGET)
        return real, fake

    def generator_loss(self, fake_scores):
        target = self.real_average.to(fake_scores.device)
        return (fake_scores - target).abs().mean()

    def update(self, real_scores, fake_scores) -> None:
        """Fold this discriminator step's mean scores into the moving averages."""
        real_mean, fake_mean = real_scores.detach().mean(), fake_scores.detach().mean()
        if self.updates == 0:
            self.real_average, self.fake_average = real_mean, fake_mean
        else:
            self.real_average = torch.lerp(real_mean, self.real_average.to(real_mean), self.decay)
            self.fake_average = torch.lerp(fake_mean, self.fake_average.to(fake_mean), self.decay)
        self.updates += 1

    def state_dict(self) -> dict:
        return {
            "real_average": self.real_average.detach().cpu(),
            "fake_average": self.fake_average.detach().cpu(),
            "updates": self.updates,
        }

    def load_state_dict(self, state: dict) -> None:
        self.real_average = state["real_average"].clone()
        self.fake_average = state["fake_average"].clone()
        self.updates = int(state["updates"])


class HingeLoss(StatelessLoss):
    """Hinge loss on the tanh score with margin m (m < 1).

    D: mean(relu(m - s_real)) + mean(relu(m + s_fake)); G: -mean(s_fake).
    The usual margin 1 on an unbounded logit would, on a score bounded by tanh to [-1, 1],
    never be reached and reduce to the paper's L1 loss; with m < 1 the discriminator stops
    pushing a pair once it is scored beyond the margin, which is the hinge's point.
    """

    def __init__(self, margin: float = 0.5):
        self.margin = margin

    def discriminator_loss(self, real_scores, fake_scores):
        return F.relu(self.margin - real_scores).mean() + F.relu(self.margin + fake_scores).mean()

    def generator_loss(self, fake_scores):
        return -fake_scores.mean()


# log(1 + s) is clamped here: tanh rounds to -1 in float32 for logits below about -9.
_LOG_FLOOR = math.log(1e-6)


def _log_probability_real(scores: torch.Tensor) -> torch.Tensor:
    """log p(real) with p = (1 + s) / 2 (= sigmoid(2 * logit) for s = tanh(logit))."""
    return (torch.log1p(scores) - math.log(2.0)).clamp(min=_LOG_FLOOR)


class NonSaturatingLoss(StatelessLoss):
    """The standard GAN loss (Goodfellow et al.), non-saturating generator form.

    The tanh score maps to a probability of "real" p = (1 + s) / 2, which equals
    sigmoid(2 * pre-tanh logit), so this is binary cross-entropy on that logit:
    D: -mean(log p_real) - mean(log(1 - p_fake)); G: -mean(log p_fake).
    """

    def discriminator_loss(self, real_scores, fake_scores):
        return (
            -_log_probability_real(real_scores).mean() - _log_probability_real(-fake_scores).mean()
        )

    def generator_loss(self, fake_scores):
        return -_log_probability_real(fake_scores).mean()


def _paper(config) -> PaperLoss:
    return PaperLoss()


def _moving_average(config) -> MovingAverageLoss:
    return MovingAverageLoss(config.ma_decay, config.ma_discriminator_margin)


def _hinge(config) -> HingeLoss:
    return HingeLoss(config.hinge_margin)


def _non_saturating(config) -> NonSaturatingLoss:
    return NonSaturatingLoss()


# name -> builder(GANTrainConfig); names must match config.GAN_LOSS_NAMES.
GAN_LOSSES = {
    "paper": _paper,
    "moving_average": _moving_average,
    "hinge": _hinge,
    "non_saturating": _non_saturating,
}
assert tuple(GAN_LOSSES) == GAN_LOSS_NAMES


def make_gan_loss(name: str, config):
    """The adversarial loss `name`, with its settings taken from a GANTrainConfig; under
    torchrun a loss with state follows the scores of the whole global batch."""
    loss = GAN_LOSSES[name](config)
    if not distributed.is_distributed() or isinstance(loss, StatelessLoss):
        return loss
    return GlobalScoreLoss(loss)


class GlobalScoreLoss:
    """An adversarial loss with state (the moving averages) fed the mean scores over all
    ranks, so every rank holds the state one process would on the whole global batch."""

    def __init__(self, loss):
        self.loss = loss

    def update(self, real_scores: torch.Tensor, fake_scores: torch.Tensor) -> None:
        means = torch.stack([real_scores.detach().mean(), fake_scores.detach().mean()])
        means = distributed.all_reduce_mean(means)
        self.loss.update(means[0], means[1])

    def __getattr__(self, name):
        return getattr(self.loss, name)
