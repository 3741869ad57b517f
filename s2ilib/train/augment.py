"""Spectrogram augmentation for the alignment stage, on whole device batches.

AV-Digits tests on voices never heard in training; the alignment objective sees only 2,930
training sounds, so it is easy to memorise voices instead of words. Warping the mel axis
(a longer or shorter vocal tract) and the time axis (a faster or slower speaker), shifting
each sound in time and changing its level keep what a word sounds like and vary what a
voice or a recording adds; masking a band of mel bins and a span of frames (SpecAugment,
Park et al. 2019) is available too. Spectrograms are in [-1, 1] with -1 the -50 dB floor
(s2ilib.audio): shifted-in frames and masks are set to that floor, and a gain moves only
pixels above it. Randomness comes from torch's global generator, which checkpoints save.

A simulated recording chain varies what a microphone, a room and a line add (the sounds
are stored as log-mel spectrograms, so it works on mel power, batched on the device;
each part reaches a random share of the batch):
- reverberation: Polack's statistical model, an exponential energy decay per band (RT60
  uniform in REVERB_RT60_S) after the direct sound, the reverberant energy set by a direct-
  to-reverberant ratio (uniform in REVERB_DRR_DB), by FFT convolution along time;
- background noise: power spectrum ~ f^-alpha (alpha uniform 0..2: white to brown), a
  frame-to-frame level fluctuation, at an SNR uniform in NOISE_SNR_DB below the mean power
  of the clip's sounding (above-floor) pixels;
- saturation (clipping): levels above (clip peak - CLIP_HEADROOM_DB uniform) compressed
  4:1, the log-mel trace of a clipping preamp's flattened peaks;
- band limits: a low-pass at a cutoff log-uniform in LOWPASS_HZ (3.4 kHz: the telephone
  band and 8-kHz recordings; 7.6 kHz: a small laptop microphone) and a high-pass at one in
  HIGHPASS_HZ, each 24 dB per octave.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch

from s2ilib.train.config import AugmentedStageConfig as _DEFAULTS

FLOOR = -1.0  # the spectrogram value of silence (-50 dB and below)
DB_PER_UNIT = 45.0 / 2.0  # 45 dB of range map onto the 2 units of [-1, 1]
FLOOR_DB = -50.0  # the dB of FLOOR (FrontEndConfig: db_ceiling - top_db)
FRAME_S = 0.01  # seconds per spectrogram column (10-ms hop)
REVERB_RT60_S = (0.15, 0.8)  # living rooms and offices to a large hall
REVERB_DRR_DB = (-3.0, 12.0)  # far from the microphone .. close to it
NOISE_SNR_DB = (0.0, 30.0)  # a loud cafe .. a quiet room
CLIP_HEADROOM_DB = (3.0, 15.0)  # how far below the clip's peak saturation starts
LOWPASS_HZ = (3400.0, 7600.0)
HIGHPASS_HZ = (50.0, 300.0)
ROLL_OFF_DB_PER_OCTAVE = 24.0


@dataclass(frozen=True)
class AugmentSettings:
    """How much each augmentation may change a sound (0 turns that one off)."""

    # The defaults are AugmentedStageConfig's (s2ilib.train.config), their one home.
    max_shift_frames: int = _DEFAULTS.max_shift_frames  # shift by up to this many 10-ms frames
    max_gain_db: float = _DEFAULTS.max_gain_db  # raise or lower the level by up to this many dB
    max_masked_bands: int = _DEFAULTS.max_masked_bands  # mask a band of up to this many mel bins
    max_masked_frames: int = _DEFAULTS.max_masked_frames  # mask a span of up to this many frames
    # Stretch or squeeze the mel axis (anchored at the lowest band) by a factor of up to
    # 1 + max_frequency_warp either way: a longer or shorter vocal tract moves every formant
    # together (vocal tract length perturbation, Jaitly & Hinton 2013), so a new voice
    # looks like a warped known one.
    max_frequency_warp: float = _DEFAULTS.max_frequency_warp
    max_time_warp: float = _DEFAULTS.max_time_warp  # speak faster or slower by up to 1 + this
    # The recording chain (module docstring): the share of sounds each part reaches.
    reverb_probability: float = _DEFAULTS.reverb_probability  # a room's reverberation
    noise_probability: float = _DEFAULTS.noise_probability  # background noise
    clip_probability: float = _DEFAULTS.clip_probability  # a saturating (clipping) input stage
    band_limit_probability: float = _DEFAULTS.band_limit_probability  # telephone/laptop band

    @classmethod
    def from_config(cls, config) -> AugmentSettings:
        """The settings of an AlignTrainConfig (its fields of the same names)."""
        return cls(**{item.name: getattr(config, item.name) for item in fields(cls)})


def augmentation_of_run(run_dir) -> dict:
    """The augmentation settings (AugmentSettings' fields) the run `run_dir` trained with,
    e.g. an alignment run's, to give a supervised ceiling on its encoder the same sounds;
    {} for a run without them (an autoencoder run)."""
    from s2ilib.runs.rundir import read_config

    train = read_config(run_dir).get("train", {})
    return {item.name: train[item.name] for item in fields(AugmentSettings) if item.name in train}


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


def _uniform(count: int, low: float, high: float, device) -> torch.Tensor:
    return low + (high - low) * torch.rand(count, device=device)


def _chosen(batch: torch.Tensor, probability: float) -> torch.Tensor:
    """(B, 1, 1, 1) bool: which sounds a part of the chain reaches."""
    return (torch.rand(len(batch), device=batch.device) < probability).view(-1, 1, 1, 1)


def to_db(batch: torch.Tensor) -> torch.Tensor:
    """[-1, 1] spectrograms -> dB (FLOOR_DB .. FLOOR_DB + 45)."""
    return FLOOR_DB + (batch + 1.0) * DB_PER_UNIT


def from_db(db: torch.Tensor) -> torch.Tensor:
    """dB -> [-1, 1] spectrograms, clipped to the front end's range."""
    return ((db - FLOOR_DB) / DB_PER_UNIT - 1.0).clamp(FLOOR, 1.0)


def to_power(db: torch.Tensor) -> torch.Tensor:
    """Mel power of dB values; the floor (at or below FLOOR_DB: unknown, quieter) counts as
    silence, so that a room or a noise does not make the stored floor itself louder."""
    return torch.where(db > FLOOR_DB + 1e-3, 10.0 ** (db / 10.0), 0.0)


def to_db_of_power(power: torch.Tensor) -> torch.Tensor:
    """dB of mel power (silence back at the floor)."""
    return 10.0 * torch.log10(power.clamp_min(10.0 ** (FLOOR_DB / 10.0)))


def band_frequencies(bands: int, device) -> torch.Tensor:
    """(1, 1, bands, 1): the centre frequency in Hz of each image row (row 0 = highest)."""
    from s2ilib.audio import FrontEndConfig, mel_band_centres

    centres = mel_band_centres(FrontEndConfig(n_mels=bands))[::-1].copy()
    return torch.as_tensor(centres, dtype=torch.float32, device=device).view(1, 1, -1, 1)


def reverberate(db: torch.Tensor, chosen: torch.Tensor) -> torch.Tensor:
    """Polack's exponential energy decay after the direct sound, per band (see above)."""
    count, frames, device = len(db), db.shape[-1], db.device
    rt60 = _uniform(count, *REVERB_RT60_S, device)
    drr = _uniform(count, *REVERB_DRR_DB, device)
    lags = torch.arange(1, frames, device=device, dtype=torch.float32)
    decay = 10.0 ** (-6.0 * lags[None] * FRAME_S / rt60[:, None])  # -60 dB at RT60
    tail = decay * (10.0 ** (-drr / 10.0) / decay.sum(1))[:, None]
    kernel = torch.cat([torch.ones(count, 1, device=device), tail], 1)  # (B, T)
    size = 2 * frames
    spectrum = torch.fft.rfft(to_power(db), size) * torch.fft.rfft(kernel, size)[:, None, None, :]
    reverberant = torch.fft.irfft(spectrum, size)[..., :frames]
    return torch.where(chosen, to_db_of_power(reverberant), db)


def add_noise(db: torch.Tensor, chosen: torch.Tensor) -> torch.Tensor:
    """Coloured background noise at a random SNR over the clip's mean power."""
    count, device = len(db), db.device
    power = to_power(db)
    alpha = _uniform(count, 0.0, 2.0, device).view(-1, 1, 1, 1)
    colour = band_frequencies(db.shape[-2], device) ** -alpha
    colour = colour / colour.mean(dim=-2, keepdim=True)
    fluctuation = torch.exp(0.3 * torch.randn(count, 1, 1, db.shape[-1], device=device))
    snr = _uniform(count, *NOISE_SNR_DB, device).view(-1, 1, 1, 1)
    active = (power > 0).sum(dim=(-2, -1), keepdim=True).clamp_min(1)
    level = power.sum(dim=(-2, -1), keepdim=True) / active / 10.0 ** (snr / 10.0)
    noisy = power + level * colour * fluctuation
    return torch.where(chosen, to_db_of_power(noisy), db)


def saturate(db: torch.Tensor, chosen: torch.Tensor) -> torch.Tensor:
    """Levels above (the clip's peak - a random headroom) compressed 4:1."""
    peak = db.amax(dim=(-2, -1), keepdim=True)
    knee = peak - _uniform(len(db), *CLIP_HEADROOM_DB, db.device).view(-1, 1, 1, 1)
    squashed = torch.where(db > knee, knee + (db - knee) / 4.0, db)
    return torch.where(chosen, squashed, db)


def limit_band(db: torch.Tensor, chosen: torch.Tensor) -> torch.Tensor:
    """A low-pass and a high-pass at random cutoffs, 24 dB per octave beyond them."""
    count, device = len(db), db.device
    frequency = band_frequencies(db.shape[-2], device)
    low, high = torch.log(torch.tensor(LOWPASS_HZ)), torch.log(torch.tensor(HIGHPASS_HZ))
    lowpass = torch.exp(_uniform(count, *low.tolist(), device)).view(-1, 1, 1, 1)
    highpass = torch.exp(_uniform(count, *high.tolist(), device)).view(-1, 1, 1, 1)
    octaves = torch.relu(torch.log2(frequency / lowpass)) + torch.relu(
        torch.log2(highpass / frequency)
    )
    return torch.where(chosen, db - ROLL_OFF_DB_PER_OCTAVE * octaves, db)


RECORDING_CHAIN = (  # in the order a sound meets them: room, noise, input stage, line
    ("reverb_probability", reverberate),
    ("noise_probability", add_noise),
    ("clip_probability", saturate),
    ("band_limit_probability", limit_band),
)


def record(batch: torch.Tensor, settings: AugmentSettings) -> torch.Tensor:
    """The simulated recording chain (module docstring) on [-1, 1] spectrograms."""
    parts = [(name, apply) for name, apply in RECORDING_CHAIN if getattr(settings, name) > 0]
    if not parts:
        return batch
    db = to_db(batch.float())
    touched = torch.zeros(len(batch), 1, 1, 1, dtype=torch.bool, device=batch.device)
    for name, apply in parts:
        chosen = _chosen(batch, getattr(settings, name))
        db, touched = apply(db, chosen), touched | chosen
    return torch.where(touched, from_db(db).to(batch.dtype), batch)  # others: bit for bit


def augment_spectrograms(batch: torch.Tensor, settings: AugmentSettings) -> torch.Tensor:
    """Every augmentation of `settings` applied to a batch (B, 1, bands, frames): the
    speaker (warps, shift), the recording chain, the level, then the masks."""
    if settings.max_frequency_warp or settings.max_time_warp:
        batch = warp(batch, settings.max_frequency_warp, settings.max_time_warp)
    if settings.max_shift_frames:
        batch = shift_in_time(batch, settings.max_shift_frames)
    batch = record(batch, settings)
    if settings.max_gain_db:
        batch = change_gain(batch, settings.max_gain_db)
    if settings.max_masked_bands:
        batch = mask_span(batch, settings.max_masked_bands, axis=-2)
    if settings.max_masked_frames:
        batch = mask_span(batch, settings.max_masked_frames, axis=-1)
    return batch
