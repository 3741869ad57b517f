"""From sounds to images with trained networks: the one encode and the one generate path.

Every part of the workbook that runs a trained translator goes through here: evaluation,
`s2i imagine`, the galleries, the probes and the supervised ceiling. Sounds are uint8
spectrograms (N, 128, 100), scaled to [-1, 1] batch by batch; images come out in [-1, 1]
(float batches) or as uint8 (N, K, S, S, 3).

Draw d of a generator (dropout kept on at test time, the paper's source of variety) draws
its dropout masks from torch's generator seeded with seed * 1000 + d, batch after batch of
`batch_size` sounds, so a given set of sounds gives the same images every time.
"""

from __future__ import annotations

import numpy as np
import torch

from s2ilib.datasets.torch_data import from_unit_range, to_unit_range
from s2ilib.models import enable_test_time_dropout

BATCH_SIZE = 256  # sounds per forward pass when encoding or generating


def spectrogram_batches(spectrograms, batch_size: int = BATCH_SIZE):
    """Float batches (B, 1, 128, 100) in [-1, 1] of an array of uint8 spectrograms."""
    for start in range(0, len(spectrograms), batch_size):
        chunk = torch.from_numpy(np.ascontiguousarray(spectrograms[start : start + batch_size]))
        yield to_unit_range(chunk).unsqueeze(1)


@torch.no_grad()
def encode(network, spectrograms, device, batch_size: int = BATCH_SIZE) -> torch.Tensor:
    """uint8 spectrograms (N, 128, 100) -> the network's float32 outputs on the CPU, in eval
    mode (an encoder: (N, D) embeddings; a classifier: its logits)."""
    network.eval()
    outputs = [
        network(batch.to(device)).float().cpu()
        for batch in spectrogram_batches(spectrograms, batch_size)
    ]
    return torch.cat(outputs) if outputs else torch.zeros(0, 0)


def sampling_mode(module, test_time_dropout: bool = True):
    """Eval mode, with dropout left on when `test_time_dropout` (the paper's practice)."""
    return enable_test_time_dropout(module) if test_time_dropout else module.eval()


@torch.no_grad()
def draw_batches(
    generator,
    embeddings: torch.Tensor,
    device,
    draw: int = 0,
    seed: int | None = 0,
    test_time_dropout: bool = True,
    batch_size: int = BATCH_SIZE,
):
    """Images (B, 3, S, S) in [-1, 1] on `device` of draw `draw` for every embedding, in
    batches; `seed` None leaves torch's generator as it is (draws then differ each call)."""
    sampling_mode(generator, test_time_dropout)
    if seed is not None:
        torch.manual_seed(seed * 1000 + draw)  # dropout masks: reproducible, new per draw
    for start in range(0, len(embeddings), batch_size):
        yield generator(embeddings[start : start + batch_size].to(device))


def generate(
    generator,
    embeddings: torch.Tensor,
    device,
    samples: int = 1,
    seed: int | None = 0,
    test_time_dropout: bool = True,
    batch_size: int = BATCH_SIZE,
) -> np.ndarray:
    """(N, D) embeddings -> uint8 (N, samples, S, S, 3): `samples` draws of each.

    Without test_time_dropout the draws are identical (the generator has no other noise).
    """
    draws = []
    for draw in range(samples):
        batches = draw_batches(
            generator, embeddings, device, draw, seed, test_time_dropout, batch_size
        )
        images = [from_unit_range(fake.float()).permute(0, 2, 3, 1).cpu() for fake in batches]
        draws.append(torch.cat(images).numpy())
    generator.eval()
    return np.stack(draws, axis=1)


def translate(run, spectrograms, device, samples: int = 1, seed: int | None = 0, **options):
    """uint8 spectrograms -> uint8 images (N, samples, S, S, 3) with a GAN run's encoder and
    generator (`options`: test_time_dropout, batch_size)."""
    embeddings = encode(run.encoder, spectrograms, device)
    return generate(run.generator, embeddings, device, samples, seed, **options)


def set_dropout_scale(module: torch.nn.Module, scale: float) -> torch.nn.Module:
    """Multiply every dropout rate of `module` by `scale` (clipped to 0.95) from its trained value.

    The trained rates are remembered on first use, so scales do not compound; 1.0 restores
    them, 0.0 turns test-time variety off.
    """
    for layer in module.modules():
        if isinstance(layer, torch.nn.modules.dropout._DropoutNd):
            if not hasattr(layer, "trained_p"):
                layer.trained_p = layer.p
            layer.p = min(0.95, layer.trained_p * scale)
    return module


@torch.no_grad()
def reconstruct(autoencoder, spectrograms, device, test_time_dropout: bool = True) -> np.ndarray:
    """uint8 spectrograms (N, 128, 100) through the autoencoder and back, as uint8, in one
    batch (dropout on at test time, as the paper evaluates its autoencoder)."""
    sampling_mode(autoencoder, test_time_dropout)
    batch = to_unit_range(torch.as_tensor(np.asarray(spectrograms)).to(device)).unsqueeze(1)
    reconstruction, _ = autoencoder(batch)
    autoencoder.eval()
    return from_unit_range(reconstruction[:, 0].cpu()).numpy()
