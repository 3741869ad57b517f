"""Spectrogram augmentation for the alignment stage, on whole device batches.

AV-Digits tests on voices never heard in training; the alignment objective sees only 2,040
training sounds, so it is easy to memorise voices instead of words. Warping the mel axis
(a longer or shorter vocal tract) and the time axis (a faster or slower speaker), shifting
each sound in time and changing its level keep what a word sounds like and vary what a
voice or a recording adds; masking a band of mel bins and a span of frames (SpecAugment,
Park et al. 2019) is available too. Spectrograms are in [-1, 1] with -1 the -50 dB floor
(s2ilib.audio): shifted-in frames and masks are set to that floor, and a gain moves only
pixels above it. Randomness comes from torch's global generator, which checkpoints save.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch

FLOOR = -1.0  # the spectrogram value of silence (-50 dB and below)
DB_PER_UNIT = 45.0 / 2.0  # 45 dB of range map onto the 2 units of [-1, 1]


@dataclass(frozen=True)
class AugmentSettings:
    """How much each augmentation may change a sound (0 turns that one off)."""

    max_shift_frames: int = 10  # shift each sound by up to this many 10-ms frames either way
    max_gain_db: float = 6.0  # raise or lower its level by up to this many dB
    max_masked_bands: int = 0  # mask a random band of up to this many mel bins (SpecAugment: 16)
    max_masked_frames: int = 0  # mask a random span of up to this many frames (SpecAugment: 10)
    # Stretch or squeeze the mel axis (anchored at the lowest band) by a factor of up to
    # 1 + max_frequency_warp either way: a longer or shorter vocal tract moves every formant
    # together (vocal tract length perturbation, Jaitly & Hinton 2013), so a new voice
    # looks like a warped known one.
    max_frequency_warp: float = 0.15
    max_time_warp: float = 0.15  # speak faster or slower by a factor of up to 1 + this

    @classmethod
    def from_config(cls, config) -> AugmentSettings:
        """The settings of an AlignTrainConfig (its fields of the same names)."""
        return cls(**{item.name: getattr(config, item.name) for item in fields(cls)})


def _uniform_ints(low, high, count: int, device) -> torch.Tensor:
    """`count` integers uniform in [low, high] (per-row bounds allowed)."""
    span = torch.as_tensor(high - low + 1, device=device, dtype=torch.float32)
    return (torch.rand(count, device=device) * span).long() + low


def shift_in_time(batch: torch.Tensor, max_shift: int) -> torch.Tensor:
    """Each sound (B, 1, bands, frames) moved by its own random whole number of frames."""
    count, frames = len(batch), batch.shape[-1]
    shifts = _uniform_ints(-max_shift, max_shift, count, batch.device)
    source = torch.arange(frames, device=batch.device)[None, :] - shifts[:, None]
    inside = (source >= 0) & (source < frames)
    index = source.clamp(0, frames - 1)[:, None, None, :].expand_as(batch)
    return torch.where(inside[:, None, None, :], batch.gather(-1, index), FLOOR)


def change_gain(batch: torch.Tensor, max_gain_db: float) -> torch.Tensor:
    """Each sound louder or quieter by its own random gain; silence stays silent."""
    gain = (torch.rand(len(batch), device=batch.device) * 2 - 1) * max_gain_db / DB_PER_UNIT
    moved = (batch + gain[:, None, None, None]).clamp(FLOOR, 1.0)
    return torch.where(batch > FLOOR, moved, FLOOR)


def mask_span(batch: torch.Tensor, max_width: int, axis: int) -> torch.Tensor:
    """A random span of up to `max_width` rows (axis -2) or columns (axis -1) set to silence."""
    count, length = len(batch), batch.shape[axis]
    width = _uniform_ints(0, max_width, count, batch.device)
    start = _uniform_ints(torch.zeros_like(width), length - width, count, batch.device)
    positions = torch.arange(length, device=batch.device)[None, :]
    masked = (positions >= start[:, None]) & (positions < (start + width)[:, None])
    shape = (count, 1, length, 1) if axis == -2 else (count, 1, 1, length)
    return batch.masked_fill(masked.reshape(shape), FLOOR)


def _random_scales(count: int, max_warp: float, device) -> torch.Tensor:
    """Factors log-uniform in [1 / (1 + max_warp), 1 + max_warp]."""
    bound = torch.log1p(torch.tensor(max_warp, device=device))
    return torch.exp((torch.rand(count, device=device) * 2 - 1) * bound)


def warp(batch: torch.Tensor, max_frequency_warp: float, max_time_warp: float) -> torch.Tensor:
    """Each sound's mel axis scaled about its lowest band (the bottom row) and its time axis
    about its centre, by its own random factors (bilinear; edges repeat outwards)."""
    count = len(batch)
    frequency = _random_scales(count, max_frequency_warp, batch.device)
    time = _random_scales(count, max_time_warp, batch.device)
    theta = torch.zeros(count, 2, 3, device=batch.device)
    theta[:, 0, 0] = time  # x_in = time * x_out: the centre stays put
    theta[:, 1, 1] = frequency  # y_in = frequency * y_out + (1 - frequency): y = 1 stays put
    theta[:, 1, 2] = 1 - frequency
    grid = torch.nn.functional.affine_grid(theta, list(batch.shape), align_corners=False)
    return torch.nn.functional.grid_sample(
        batch, grid, mode="bilinear", padding_mode="border", align_corners=False
    )


def augment_spectrograms(batch: torch.Tensor, settings: AugmentSettings) -> torch.Tensor:
    """Every augmentation of `settings` applied to a batch (B, 1, bands, frames)."""
    if settings.max_frequency_warp or settings.max_time_warp:
        batch = warp(batch, settings.max_frequency_warp, settings.max_time_warp)
    if settings.max_shift_frames:
        batch = shift_in_time(batch, settings.max_shift_frames)
    if settings.max_gain_db:
        batch = change_gain(batch, settings.max_gain_db)
    if settings.max_masked_bands:
        batch = mask_span(batch, settings.max_masked_bands, axis=-2)
    if settings.max_masked_frames:
        batch = mask_span(batch, settings.max_masked_frames, axis=-1)
    return batch
