"""The optimisation steps: one autoencoder step, one alignment step, one GAN step (a
discriminator update, then a generator update).

Each step takes one *stage* object bundling what it trains (the networks as the step calls
them: compiled or DDP-wrapped on the fast path / under torchrun), its optimisers, its loss
and settings, and returns a dict of detached 0-d device tensors (losses, gradient norms,
mean scores); nothing here syncs with the host, so the engine gathers them and looks only
every log interval. `autocast` is a factory of the forwards' context (fastpath); every loss
is computed in fp32.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass

import torch
from torch import nn

from s2ilib import distributed
from s2ilib.train.augment import AugmentSettings, augment_spectrograms
from s2ilib.train.config import GANTrainConfig
from s2ilib.train.losses import contrastive_loss, pixel_loss, reconstruction_loss


def gradient_norm(module: nn.Module, max_norm: float | None = None) -> torch.Tensor:
    """Total L2 norm of the module's gradients, after clipping them to `max_norm` if given."""
    parameters = [p for p in module.parameters() if p.grad is not None]
    if max_norm is None:
        return torch.nn.utils.get_total_norm([p.grad for p in parameters])
    return torch.nn.utils.clip_grad_norm_(parameters, max_norm)


def apply_gradients(loss, optimizer, network: nn.Module, grad_clip=None) -> torch.Tensor:
    """Backward `loss`, clip the network's gradients (if asked), step; returns their norm."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    norm = gradient_norm(network, grad_clip)
    optimizer.step()
    return norm


# --------------------------------------------------------------------------------------
# Stage 1: the autoencoder
# --------------------------------------------------------------------------------------


@dataclass
class AEStage:
    """What one autoencoder step trains."""

    autoencoder: nn.Module
    optimizer: torch.optim.Optimizer
    grad_clip: float | None = None
    autocast: Callable = nullcontext


def ae_step(stage: AEStage, spectrograms: torch.Tensor, inputs=None) -> dict:
    """One SGD/Adam step of the autoencoder: MSE between the spectrograms and their
    reconstruction from `inputs` (the frozen speech front's features of them; None: themselves)."""
    with stage.autocast():
        reconstruction, _ = stage.autoencoder(spectrograms if inputs is None else inputs)
    loss = reconstruction_loss(reconstruction.float(), spectrograms)
    norm = apply_gradients(loss, stage.optimizer, stage.autoencoder, stage.grad_clip)
    return {"loss": loss.detach(), "grad_norm": norm.detach()}


# --------------------------------------------------------------------------------------
# Beyond the paper: audio-visual alignment
# --------------------------------------------------------------------------------------


@dataclass
class AlignStage:
    """What one alignment step trains: `pair` (train.align.ContrastivePair) maps
    (spectrograms, images) to (audio embeddings, image embeddings, logit scale); `model` is
    the same network as the step calls it (compiled, DDP-wrapped)."""

    model: nn.Module
    pair: nn.Module
    optimizer: torch.optim.Optimizer
    augment: AugmentSettings
    positives: Callable = lambda labels: None  # (N,) labels -> (N, N) mask or None
    gather: Callable = lambda embeddings: embeddings  # the whole global batch (torchrun)
    grad_clip: float | None = None
    autocast: Callable = nullcontext


def align_step(stage: AlignStage, spectrograms, images, labels) -> dict:
    """One contrastive step on augmented sounds and their paired images."""
    spectrograms = augment_spectrograms(spectrograms, stage.augment)
    with stage.autocast():
        audio, image, scale = stage.model(spectrograms, images)
    audio, image = stage.gather(audio.float()), stage.gather(image.float())
    loss = contrastive_loss(audio, image, scale.float(), stage.positives(stage.gather(labels)))
    stage.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    norm = gradient_norm(stage.pair.audio_encoder, stage.grad_clip)
    if stage.grad_clip is not None:  # the image tower's norm is not logged
        gradient_norm(stage.pair.image_encoder, stage.grad_clip)
    stage.optimizer.step()
    temperature = 1.0 / stage.pair.logit_scale().detach()  # after the step, as learnt
    return {"loss": loss.detach(), "grad_norm": norm.detach(), "temperature": temperature}


# --------------------------------------------------------------------------------------
# Stage 2: the conditional GAN
# --------------------------------------------------------------------------------------


@dataclass
class GANStage:
    """What one GAN step trains: the frozen encoder, generator, discriminator, their
    optimisers, the adversarial loss (train.losses) and the loss weights."""

    encoder: nn.Module
    generator: nn.Module
    discriminator: nn.Module
    generator_optimizer: torch.optim.Optimizer
    discriminator_optimizer: torch.optim.Optimizer
    loss: object
    # The loss weights' defaults are GANTrainConfig's (their one home).
    adversarial_weight: float = GANTrainConfig.adversarial_weight
    pixel_weight: float = GANTrainConfig.pixel_weight
    grad_clip: float | None = None
    autocast: Callable = nullcontext
    # The conditional VAE-GAN (GANTrainConfig.code_encoder): paired image -> (mean,
    # log-variance) of the generator's code; the generator's optimiser trains it too.
    code_encoder: nn.Module | None = None
    kl_weight: float = 0.0
    # BicycleGAN's cLR-GAN branch (GANTrainConfig.latent_weight): half of each batch draws
    # its code from N(0, I) and the code encoder reads it back (read_back_loss).
    latent_weight: float = 0.0

    def __post_init__(self):
        # What the generator's optimiser trains (whose gradient norm is logged), made once
        # here rather than at every step.
        self.generator_side = (
            self.generator
            if self.code_encoder is None
            else nn.ModuleList([self.generator, self.code_encoder])
        )


def score_pairs(stage: GANStage, real_images, fake_images, embeddings):
    """Scores of (real image, embedding) and (fake image, embedding) pairs, in ONE forward.

    The discriminator ends in BatchNorm on its score: in training mode, a batch of real
    pairs alone and a batch of fake pairs alone would each be normalised to the same mean,
    leaving nothing to tell them apart. Scoring both halves together avoids that.
    """
    with stage.autocast():
        both = torch.cat([real_images, fake_images])
        scores = stage.discriminator(both, embeddings.repeat(2, 1))
    return scores.float().reshape(2, len(real_images))


def update_discriminator(stage: GANStage, real_images, fake_images, embeddings) -> dict:
    """One discriminator step on real pairs vs the generator's (detached) fake pairs."""
    real_scores, fake_scores = score_pairs(stage, real_images, fake_images.detach(), embeddings)
    loss = stage.loss.discriminator_loss(real_scores, fake_scores)
    norm = apply_gradients(
        loss, stage.discriminator_optimizer, stage.discriminator, stage.grad_clip
    )
    stage.loss.update(real_scores, fake_scores)
    return {
        "d_loss": loss.detach(),
        "d_grad_norm": norm.detach(),
        "real_score": real_scores.detach().mean(),
        "fake_score": fake_scores.detach().mean(),
    }


def update_generator(stage: GANStage, real_images, fake_images, embeddings, codes) -> dict:
    """One generator step: weighted adversarial loss + L1 pixel loss to the paired images
    (+ for the conditional VAE-GAN the weighted KL of the encoded codes and, for the rows
    whose codes were drawn, the weighted L1 of reading those codes back; `codes` is what
    `batch_codes` gave).

    `fake_images` (and the codes' KL) must still carry the graph of this step.
    """
    stage.discriminator.requires_grad_(False)  # its gradients would be thrown away
    try:
        _, fake_scores = score_pairs(stage, real_images, fake_images, embeddings)
    finally:
        stage.discriminator.requires_grad_(True)
    adversarial = stage.loss.generator_loss(fake_scores)
    paired = len(real_images) - codes.drawn  # rows drawn from a code have no image to copy
    pixel = pixel_loss(fake_images[:paired].float(), real_images[:paired])
    loss = stage.adversarial_weight * adversarial + stage.pixel_weight * pixel
    extra = {}
    if codes.kl is not None:
        loss = loss + stage.kl_weight * codes.kl
        extra["g_kl"] = codes.kl.detach()
    if codes.drawn:
        latent = read_back_loss(stage, fake_images[paired:], codes.values[paired:])
        loss = loss + stage.latent_weight * latent
        extra["g_latent"] = latent.detach()
    norm = apply_gradients(loss, stage.generator_optimizer, stage.generator_side, stage.grad_clip)
    return extra | {
        "g_loss": loss.detach(),
        "g_adversarial": adversarial.detach(),
        "g_pixel": pixel.detach(),
        "g_grad_norm": norm.detach(),
    }


def read_back_loss(stage: GANStage, fake_images, drawn_codes):
    """L1 between drawn codes and the code encoder's mean code of their images; the
    gradient reaches the generator only (BicycleGAN: training the encoder on it too would
    let the two agree on codes that need not show in the image). The encoder's second
    forward of the step goes around its DDP wrapper (distributed.bare)."""
    reader = distributed.bare(stage.code_encoder)
    reader.requires_grad_(False)
    try:
        with stage.autocast():
            mean, _ = reader(fake_images).float().chunk(2, dim=1)
    finally:
        reader.requires_grad_(True)
    return (mean - drawn_codes).abs().mean()


@dataclass
class BatchCodes:
    """The generator's codes for one batch: `values` (None: the generator draws its own
    noise, if it takes any), the KL of the encoded ones, and how many rows at the end were
    drawn from N(0, I) instead of encoded (BicycleGAN's cLR-GAN half)."""

    values: torch.Tensor | None = None
    kl: torch.Tensor | None = None
    drawn: int = 0


def batch_codes(stage: GANStage, real_images) -> BatchCodes:
    """The conditional VAE-GAN's codes: reparameterised draws from the code encoder's reading
    of the paired images, and with `latent_weight` the second half (when the batch has at
    least 4 rows: BatchNorm needs 2 on each side) drawn from N(0, I)."""
    if stage.code_encoder is None:
        return BatchCodes()
    drawn = len(real_images) // 2 if stage.latent_weight and len(real_images) >= 4 else 0
    encoded = len(real_images) - drawn
    with stage.autocast():
        mean, log_variance = stage.code_encoder(real_images[:encoded]).float().chunk(2, dim=1)
    codes = mean + torch.randn_like(mean) * (0.5 * log_variance).exp()
    kl = 0.5 * (mean.pow(2) + log_variance.exp() - 1 - log_variance).sum(1).mean()
    if drawn:
        codes = torch.cat([codes, torch.randn(drawn, codes.shape[1], device=codes.device)])
    return BatchCodes(codes, kl, drawn)


def generate_halves(generator, embeddings, codes: BatchCodes):
    """The generator's images for the batch; the encoded and the drawn rows in separate
    forwards, as BicycleGAN's two branches are separate batches: in one forward, BatchNorm
    would normalise the two kinds of code together (codes read from images drift far from
    N(0, I)) and learn running statistics of neither (measured: RESULTS.md, "Imagination").
    The second forward bypasses a DDP wrapper (distributed.bare)."""
    if not codes.drawn:
        return generator(embeddings, codes.values)
    paired = len(embeddings) - codes.drawn
    encoded = generator(embeddings[:paired], codes.values[:paired])
    drawn = distributed.bare(generator)(embeddings[paired:], codes.values[paired:])
    return torch.cat([encoded, drawn])


@torch.no_grad()
def embed_sounds(stage: GANStage, spectrograms) -> torch.Tensor:
    """The frozen encoder's (float32) embeddings of a batch of sounds."""
    with stage.autocast():
        return stage.encoder(spectrograms).float()


def gan_step(stage: GANStage, embeddings, real_images) -> dict:
    """One GAN step on the sounds' embeddings (`embed_sounds`): generate, update D, then G."""
    codes = batch_codes(stage, real_images)
    with stage.autocast():
        fake_images = generate_halves(stage.generator, embeddings, codes)
    stats = update_discriminator(stage, real_images, fake_images, embeddings)
    return stats | update_generator(stage, real_images, fake_images, embeddings, codes)
