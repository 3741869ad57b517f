"""The optimisation steps: one autoencoder step, one discriminator and one generator update.

Each returns a dict of detached 0-d device tensors (losses, gradient norms, mean scores);
nothing here syncs with the host, so the loop can gather them and look only every log
interval.
"""

from __future__ import annotations

import math
from contextlib import nullcontext

import torch
from torch import nn

from s2ilib.train.losses import pixel_loss, reconstruction_loss


def gradient_norm(module: nn.Module, max_norm: float | None = None) -> torch.Tensor:
    """Total L2 norm of the module's gradients, after clipping them to `max_norm` if given."""
    parameters = [p for p in module.parameters() if p.grad is not None]
    if max_norm is None:
        return torch.nn.utils.get_total_norm([p.grad for p in parameters])
    return torch.nn.utils.clip_grad_norm_(parameters, max_norm)


def ae_step(
    autoencoder, optimizer, spectrograms, grad_clip: float | None = None, autocast=nullcontext
) -> dict:
    """One SGD/Adam step of the autoencoder on a batch: MSE between input and reconstruction.

    autocast: factory of the forward's context (train.fastpath.autocast_context); every
    loss is computed in fp32, here and in the GAN steps below.
    """
    with autocast():
        reconstruction, _ = autoencoder(spectrograms)
    loss = reconstruction_loss(reconstruction.float(), spectrograms)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    grad_norm = gradient_norm(autoencoder, grad_clip)
    optimizer.step()
    return {"loss": loss.detach(), "grad_norm": grad_norm.detach()}


def score_pairs(discriminator, real_images, fake_images, embeddings, autocast=nullcontext):
    """Scores of (real image, embedding) and (fake image, embedding) pairs, in ONE forward.

    The discriminator ends in BatchNorm on its score: in training mode, a batch of real
    pairs alone and a batch of fake pairs alone would each be normalised to the same mean,
    leaving nothing to tell them apart. Scoring both halves together avoids that.
    """
    with autocast():
        scores = discriminator(torch.cat([real_images, fake_images]), embeddings.repeat(2, 1))
    return scores.float().reshape(2, len(real_images))


def update_discriminator(
    discriminator,
    optimizer,
    gan_loss,
    real_images,
    fake_images,
    embeddings,
    grad_clip=None,
    autocast=nullcontext,
) -> dict:
    """One discriminator step on real pairs vs the generator's (detached) fake pairs."""
    real_scores, fake_scores = score_pairs(
        discriminator, real_images, fake_images.detach(), embeddings, autocast
    )
    loss = gan_loss.discriminator_loss(real_scores, fake_scores)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    grad_norm = gradient_norm(discriminator, grad_clip)
    optimizer.step()
    gan_loss.update(real_scores, fake_scores)
    return {
        "d_loss": loss.detach(),
        "d_grad_norm": grad_norm.detach(),
        "real_score": real_scores.detach().mean(),
        "fake_score": fake_scores.detach().mean(),
    }


def update_generator(
    generator,
    discriminator,
    optimizer,
    gan_loss,
    real_images,
    fake_images,
    embeddings,
    adversarial_weight: float = 1.0,
    pixel_weight: float = 10.0,
    grad_clip=None,
    autocast=nullcontext,
) -> dict:
    """One generator step: weighted adversarial loss + L1 pixel loss to the paired images.

    `fake_images` must still carry the generator's graph (generated in this step).
    """
    discriminator.requires_grad_(False)  # its gradients would be thrown away
    try:
        _, fake_scores = score_pairs(discriminator, real_images, fake_images, embeddings, autocast)
    finally:
        discriminator.requires_grad_(True)
    adversarial = gan_loss.generator_loss(fake_scores)
    pixel = pixel_loss(fake_images.float(), real_images)
    loss = adversarial_weight * adversarial + pixel_weight * pixel
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    grad_norm = gradient_norm(generator, grad_clip)
    optimizer.step()
    return {
        "g_loss": loss.detach(),
        "g_adversarial": adversarial.detach(),
        "g_pixel": pixel.detach(),
        "g_grad_norm": grad_norm.detach(),
    }


def train_step(
    networks: dict,
    optimizers: dict,
    gan_loss,
    spectrograms,
    real_images,
    config,
    autocast=nullcontext,
):
    """One GAN step: embed with the frozen encoder, generate, update D, then G.

    networks: "encoder" (frozen), "generator", "discriminator"; optimizers: "generator",
    "discriminator"; config: a GANTrainConfig (loss weights, gradient clipping); autocast:
    factory of the forwards' context (train.fastpath.autocast_context).
    """
    with torch.no_grad(), autocast():
        embeddings = networks["encoder"](spectrograms).float()
    with autocast():
        fake_images = networks["generator"](embeddings)
    stats = update_discriminator(
        networks["discriminator"],
        optimizers["discriminator"],
        gan_loss,
        real_images,
        fake_images,
        embeddings,
        config.grad_clip,
        autocast,
    )
    stats |= update_generator(
        networks["generator"],
        networks["discriminator"],
        optimizers["generator"],
        gan_loss,
        real_images,
        fake_images,
        embeddings,
        config.adversarial_weight,
        config.pixel_weight,
        config.grad_clip,
        autocast,
    )
    return stats


def lr_factor(schedule: str, step: int, total_steps: int, warmup_steps: int = 0) -> float:
    """Multiplier of the base learning rate at `step` (0-based) of `total_steps`."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    if schedule == "linear":
        return 1.0 - progress
    return 1.0
