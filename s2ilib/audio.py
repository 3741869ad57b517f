"""The audio front end: sound files -> 1-s waves -> log-mel spectrograms (float dB and 8-bit).

One front end shared by data building, ingest, `imagine` and evaluation, so that every
spectrogram in the workbook is made the same way. Spectrograms are in *image orientation*
(see s2ilib.formats): (128, 100), row 0 = highest mel band, bottom row = lowest, one column
per 10-ms frame, loud is bright. The choices and the measurements behind the defaults are
in docs/audio_frontend.md.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import soundfile
import torch
import torchaudio.functional as AF

from s2ilib.errors import AudioError

SAMPLE_RATE = 16000  # Hz; the workbook's one sample rate
SILENT_PEAK = 1e-4  # a clip whose peak amplitude is below this (-80 dBFS) is silent
TRIM_DB = 35.0  # word trimming: a 10-ms frame this far below the loudest frame is silence
# "word" fitting sets a word's peak here: the middle of AV-Digits' clip levels (-12..-1 dBFS,
# s2ilib.datasets.avdigits_build.PEAK_DBFS_RANGE), as its front end saw them in training.
WORD_PEAK_DBFS = -6.5
CLIP_MODES = ("centre", "loudest", "word")  # how fit_one_second makes one second of a recording
MIN_CLIP_SECONDS = 0.25  # shorter clips are translated with a note (too short for a word)


class AudioWarning(UserWarning):
    """Input that the front end repaired (e.g. NaN samples set to 0); the message says where."""


@dataclass(frozen=True)
class FrontEndConfig:
    """Every setting of the log-mel front end; the defaults are justified in docs/audio_frontend.md."""

    sample_rate: int = SAMPLE_RATE  # Hz; inputs at other rates are resampled to it
    win_length: int = 400  # samples in the Hann window: 25 ms
    hop_length: int = 160  # samples between frames: 10 ms -> 100 frames per second
    n_fft: int = 512  # FFT size (window zero-padded to it): 257 bins of 31.25 Hz
    n_mels: int = 128  # mel bands = image rows
    f_min: float = 0.0  # Hz, lower edge of the lowest band (the published files keep <60 Hz)
    f_max: float | None = None  # Hz, upper edge of the highest band; None = sample_rate / 2
    mel_scale: str = "slaney"  # "slaney" (linear < 1 kHz, log above) or "htk"
    mel_norm: str | None = (
        "slaney"  # "slaney": each band is a mean power density; None: peak-1 triangles
    )
    top_db: float = 45.0  # dB range mapped onto 0..255 (fitted to the VEGAS JPEGs, see docs)
    db_reference: str = (
        "absolute"  # "absolute": fixed ceiling below; "clip_max": each clip's max -> 255
    )
    db_ceiling: float = -5.0  # dB (re full scale, see LogMel) that maps to 255 when absolute
    amin: float = 1e-10  # power floor before the log: silence reads -100 dB, never -inf

    def __post_init__(self):
        if self.mel_scale not in ("slaney", "htk"):
            raise ValueError(f"mel_scale must be 'slaney' or 'htk', got {self.mel_scale!r}")
        if self.mel_norm not in ("slaney", None):
            raise ValueError(f"mel_norm must be 'slaney' or None, got {self.mel_norm!r}")
        if self.db_reference not in ("absolute", "clip_max"):
            raise ValueError(
                f"db_reference must be 'absolute' or 'clip_max', got {self.db_reference!r}"
            )
        if self.win_length > self.n_fft:
            raise ValueError(f"win_length {self.win_length} exceeds n_fft {self.n_fft}")
        if self.top_db <= 0:
            raise ValueError(f"top_db must be positive, got {self.top_db}")

    @property
    def db_floor(self) -> float:
        """The dB that maps to 0 (black) when db_reference is "absolute"."""
        return self.db_ceiling - self.top_db

    @property
    def upper_frequency(self) -> float:
        """The upper edge of the highest mel band in Hz."""
        return float(self.f_max) if self.f_max is not None else self.sample_rate / 2


# --- waves ---------------------------------------------------------------------------------


def to_float32(wave) -> np.ndarray:
    """A wave as float32 in [-1, 1]: integer PCM is scaled by its full scale, floats kept."""
    wave = np.asarray(wave)
    if wave.dtype.kind == "f":
        return wave.astype(np.float32, copy=False)
    if wave.dtype.kind == "i":
        return (wave / float(2 ** (8 * wave.dtype.itemsize - 1))).astype(np.float32)
    if wave.dtype.kind == "u":  # unsigned PCM (8-bit wav) is offset by half its range
        half = float(2 ** (8 * wave.dtype.itemsize - 1))
        return ((wave - half) / half).astype(np.float32)
    raise AudioError(f"cannot read a wave of dtype {wave.dtype} (expected float or integer PCM)")


def load_audio(path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Read a sound file (wav, flac, ogg vorbis/opus, ...) as mono float32 at `sample_rate`.

    Channels are averaged. NaN/inf samples are set to 0 with an AudioWarning; a file that
    cannot be read, holds no samples, or only non-finite ones raises AudioError naming it.
    """
    path = Path(path)
    if not path.is_file():  # checked first: a device such as /dev/zero is never read
        raise AudioError(not_a_file_reason(path))
    try:
        data, file_rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except Exception as error:  # soundfile raises LibsndfileError, RuntimeError, TypeError...
        raise AudioError(f"{path}: not a readable sound file ({error})") from error
    if data.shape[0] == 0:
        raise AudioError(f"{path}: the file holds no audio samples (expected at least one)")
    wave = data.mean(axis=1)
    wave = _repair_non_finite(wave, path)
    return resample(wave, file_rate, sample_rate)


def not_a_file_reason(path: Path) -> str:
    """Why `path`, which is not a regular file, cannot be read as a sound file."""
    if path.is_dir():
        return f"{path} is a directory: give sound files, or the files in it ({path}/*)"
    if path.exists():
        return f"{path} is not a regular file (a device or a pipe): give a sound file"
    return f"{path}: no such file"


def _repair_non_finite(wave: np.ndarray, source) -> np.ndarray:
    """Set NaN/inf samples to 0 (warning once); all-bad input is an AudioError."""
    finite = np.isfinite(wave)
    if finite.all():
        return wave
    if not finite.any():
        raise AudioError(f"{source}: every sample is NaN or infinite (expected finite audio)")
    warnings.warn(
        f"{source}: {int((~finite).sum())} of {wave.size} samples are NaN or infinite; set to 0",
        AudioWarning,
        stacklevel=3,
    )
    return np.where(finite, wave, 0.0).astype(np.float32)


def resample(wave: np.ndarray, orig_rate: int, new_rate: int) -> np.ndarray:
    """Resample (T,) or (B, T) waves from `orig_rate` to `new_rate` Hz (windowed sinc), float32."""
    wave = to_float32(wave)
    if int(orig_rate) == int(new_rate):
        return wave
    if orig_rate <= 0 or new_rate <= 0:
        raise AudioError(f"sample rates must be positive, got {orig_rate} -> {new_rate}")
    out = AF.resample(torch.from_numpy(np.ascontiguousarray(wave)), int(orig_rate), int(new_rate))
    return out.numpy()


def fit_one_second(wave, sample_rate: int = SAMPLE_RATE, mode: str = "centre") -> np.ndarray:
    """Exactly one second of `wave`, float32 (sample_rate,).

    Short clips are zero-padded symmetrically (extra sample on the right). Long clips:
    mode "centre" takes the middle second, "loudest" the second with the most energy
    (candidate starts every 10 ms; ties go to the earliest). Mode "word" prepares a spoken
    word as AV-Digits' clips were made (see fit_word_clip).
    """
    wave = to_float32(wave)
    if wave.ndim != 1:
        raise AudioError(f"fit_one_second expects a mono wave (T,), got shape {wave.shape}")
    if mode not in CLIP_MODES:
        raise ValueError(f"mode must be one of {', '.join(CLIP_MODES)}, got {mode!r}")
    if mode == "word":
        return fit_word_clip(wave, sample_rate)
    length = int(sample_rate)
    excess = wave.size - length
    if excess <= 0:
        left = -excess // 2
        return np.pad(wave, (left, -excess - left))
    start = excess // 2 if mode == "centre" else _loudest_start(wave, length, sample_rate // 100)
    return wave[start : start + length].copy()


def fit_word_clip(wave, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """One second for a recorded word, made the way AV-Digits' clips are (without their random
    augmentation): its loudest second, trimmed of leading and trailing silence (TRIM_DB),
    scaled to a peak of WORD_PEAK_DBFS and centred. The front end maps absolute levels to grey
    levels, so a quiet microphone would otherwise show the model a darker word than any it
    was trained on. A silent second is returned as it is."""
    second = fit_one_second(wave, sample_rate, "loudest")
    word = trim_silence(second, sample_rate)
    peak = float(np.abs(word).max()) if word.size else 0.0
    if peak < SILENT_PEAK:
        return second
    scaled = word * np.float32(10 ** (WORD_PEAK_DBFS / 20) / peak)
    return fit_one_second(scaled, sample_rate, "centre")


def trim_silence(
    wave: np.ndarray, sample_rate: int = SAMPLE_RATE, trim_db: float = TRIM_DB
) -> np.ndarray:
    """The word without its leading/trailing silence (10-ms frames, TRIM_DB below the loudest)."""
    rms = frame_rms(wave, sample_rate)
    if rms.size == 0 or rms.max() <= 0:
        return wave[:0]
    hop = sample_rate // 100
    loud = np.flatnonzero(rms >= rms.max() * 10 ** (-trim_db / 20))
    margin = 2  # frames kept either side: soft onsets and releases
    start = max(0, loud[0] - margin) * hop
    stop = min(rms.size, loud[-1] + 1 + margin) * hop
    return wave[start:stop]


def frame_rms(wave: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """RMS of consecutive 10-ms frames."""
    hop = sample_rate // 100
    frames = wave[: wave.size // hop * hop].reshape(-1, hop)
    return np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))


def _loudest_start(wave: np.ndarray, length: int, hop: int) -> int:
    """Start of the `length`-sample window with the most energy, on a grid of `hop` samples."""
    energy = np.concatenate(([0.0], np.cumsum(wave.astype(np.float64) ** 2)))
    starts = np.arange(0, wave.size - length + 1, max(hop, 1))
    if starts[-1] != wave.size - length:  # also try the window flush with the end
        starts = np.append(starts, wave.size - length)
    window_energy = energy[starts + length] - energy[starts]
    return int(starts[np.argmax(window_energy)])


def segment_seconds(wave, sample_rate: int = SAMPLE_RATE, seconds: float = 1.0) -> np.ndarray:
    """Cut a mono wave into non-overlapping segments (S, sample_rate*seconds); drop the tail."""
    wave = to_float32(wave)
    if wave.ndim != 1:
        raise AudioError(f"segment_seconds expects a mono wave (T,), got shape {wave.shape}")
    length = int(round(sample_rate * seconds))
    if length <= 0:
        raise ValueError(f"segment length must be positive, got {seconds} s at {sample_rate} Hz")
    count = wave.size // length
    return wave[: count * length].reshape(count, length)


# --- spectrograms --------------------------------------------------------------------------


class LogMel(torch.nn.Module):
    """Batched log-mel spectrogram: (B, T) waves -> (B, n_mels, T // hop) dB, image orientation.

    Power is scaled so that a full-scale sine (amplitude 1) reads 0 dB in a bin, i.e. dB re
    full scale; with the slaney band normalisation a band then holds the mean density over
    its width. Frames are centred on the middle of each hop (pad (n_fft - hop) / 2 zeros per
    side), so a 1-s clip at 16 kHz gives exactly 100 frames, frame t centred at t*10 + 5 ms.
    """

    def __init__(self, config: FrontEndConfig = FrontEndConfig()):
        super().__init__()
        self.config = config
        window = torch.hann_window(config.win_length, periodic=True)
        filterbank = AF.melscale_fbanks(
            n_freqs=config.n_fft // 2 + 1,
            f_min=config.f_min,
            f_max=config.upper_frequency,
            n_mels=config.n_mels,
            sample_rate=config.sample_rate,
            norm=config.mel_norm,
            mel_scale=config.mel_scale,
        )
        if config.mel_norm == "slaney":
            # Area-normalised triangles times the bin spacing: a band reads the mean power per
            # FFT bin over its width, so white noise reads the same dB in every band.
            filterbank = filterbank * (config.sample_rate / config.n_fft)
        self.register_buffer("window", window, persistent=False)
        self.register_buffer("filterbank", filterbank, persistent=False)  # (n_freqs, n_mels)
        # One-sided amplitude of a sine is A * sum(window) / 2.
        self.power_scale = (2.0 / float(window.sum())) ** 2

    def forward(self, waves: torch.Tensor) -> torch.Tensor:
        config = self.config
        if waves.ndim != 2:
            raise AudioError(f"LogMel expects waves of shape (B, T), got {tuple(waves.shape)}")
        if waves.shape[-1] < config.hop_length:
            raise AudioError(
                f"waves of {waves.shape[-1]} samples are shorter than one hop "
                f"({config.hop_length}); pad them first (fit_one_second)"
            )
        waves = waves.to(self.window.dtype)
        pad = (config.n_fft - config.hop_length) // 2
        padded = torch.nn.functional.pad(waves, (pad, config.n_fft - config.hop_length - pad))
        spectrum = torch.stft(
            padded,
            n_fft=config.n_fft,
            hop_length=config.hop_length,
            win_length=config.win_length,
            window=self.window,
            center=False,
            return_complex=True,
        )  # (B, n_freqs, frames)
        power = spectrum.real.square() + spectrum.imag.square()
        mel = torch.einsum("bft,fm->bmt", power * self.power_scale, self.filterbank)
        db = 10.0 * torch.log10(mel.clamp_min(config.amin))
        return db.flip(-2)  # row 0 = highest band, as in the published images


_LOG_MEL_CACHE: dict[FrontEndConfig, LogMel] = {}


def _log_mel_module(config: FrontEndConfig) -> LogMel:
    """One LogMel per config, so that repeated numpy calls do not rebuild the filterbank."""
    if config not in _LOG_MEL_CACHE:
        _LOG_MEL_CACHE[config] = LogMel(config)
    return _LOG_MEL_CACHE[config]


def log_mel(waves, config: FrontEndConfig = FrontEndConfig()) -> np.ndarray:
    """Numpy log-mel: (T,) -> (n_mels, frames) or (B, T) -> (B, n_mels, frames) float32 dB."""
    waves = to_float32(waves)
    if waves.ndim not in (1, 2):
        raise AudioError(f"log_mel expects (T,) or (B, T) waves, got shape {waves.shape}")
    batch = waves[None] if waves.ndim == 1 else waves
    if not np.isfinite(batch).all():
        raise AudioError("waves hold NaN or infinite samples (load_audio repairs files)")
    with torch.no_grad():
        db = _log_mel_module(config)(torch.from_numpy(np.ascontiguousarray(batch))).numpy()
    return db[0] if waves.ndim == 1 else db


def db_to_uint8(db, config: FrontEndConfig = FrontEndConfig()):
    """dB spectrogram(s) -> the published 8-bit image (loud is bright); numpy or torch in/out.

    "absolute": db_floor..db_ceiling -> 0..255. "clip_max": each spectrogram's own maximum
    (over its last two axes) -> 255, top_db below it -> 0.
    """
    is_tensor = isinstance(db, torch.Tensor)
    values = db.double() if is_tensor else np.asarray(db, dtype=np.float64)
    if config.db_reference == "absolute":
        ceiling = config.db_ceiling
    elif is_tensor:
        ceiling = values.amax(dim=(-2, -1), keepdim=True)
    else:
        ceiling = values.max(axis=(-2, -1), keepdims=True)
    scaled = (values - (ceiling - config.top_db)) * (255.0 / config.top_db)
    if is_tensor:
        return scaled.round().clamp(0, 255).to(torch.uint8)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def uint8_to_db(u8, config: FrontEndConfig = FrontEndConfig()):
    """8-bit image -> dB (float; numpy or torch like the input), the inverse of db_to_uint8.

    With db_reference "clip_max" the clip's absolute level is lost: the result is dB
    relative to the clip's maximum (255 -> 0 dB).
    """
    ceiling = config.db_ceiling if config.db_reference == "absolute" else 0.0
    if isinstance(u8, torch.Tensor):
        return u8.float() * (config.top_db / 255.0) + (ceiling - config.top_db)
    return np.asarray(u8, dtype=np.float32) * np.float32(config.top_db / 255.0) + np.float32(
        ceiling - config.top_db
    )


def spectrogram_uint8(waves, config: FrontEndConfig = FrontEndConfig()) -> np.ndarray:
    """(T,) or (B, T) waves -> (B, n_mels, frames) uint8 images: log_mel then db_to_uint8."""
    db = log_mel(waves, config)
    return db_to_uint8(db[None] if db.ndim == 2 else db, config)


def audio_file_to_uint8(
    path, config: FrontEndConfig = FrontEndConfig(), mode: str = "loudest"
) -> np.ndarray:
    """One sound file -> its (n_mels, 100) uint8 image: load, fit one second (`mode`), map."""
    wave = load_audio(path, config.sample_rate)
    one_second = fit_one_second(wave, config.sample_rate, mode)
    return spectrogram_uint8(one_second, config)[0]


class Clips(NamedTuple):
    """What load_clips read: uint8 spectrograms (N, n_mels, 100) of the readable files, those
    files, {file: why it could not be read}, {file: what is odd about it (a warning)}, and
    the 1-s clips the spectrograms were made from, float32 (N, samples) (what an encoder
    that reads the audio reads)."""

    spectrograms: np.ndarray
    readable: list
    failures: dict
    notes: dict
    waves: np.ndarray | None = None


def load_clips(paths, config: FrontEndConfig | None = None, mode: str = "loudest") -> Clips:
    """Spectrograms of the readable files; files are decoded one by one (I/O), the
    spectrograms made in one batch. A silent file or one far shorter than a word is still
    translated, with a note saying so."""
    config = config or FrontEndConfig()
    waves, readable, failures, notes = [], [], {}, {}
    for path in map(Path, paths):
        try:
            wave = load_audio(path, config.sample_rate)
        except AudioError as error:
            failures[str(path)] = str(error)
            continue
        if note := clip_note(wave, config.sample_rate):
            notes[str(path)] = note
        waves.append(fit_one_second(wave, config.sample_rate, mode))
        readable.append(path)
    if not waves:
        empty = np.zeros((0, config.sample_rate), np.float32)
        return Clips(np.zeros((0, config.n_mels, 100), np.uint8), readable, failures, notes, empty)
    waves = np.stack(waves)
    return Clips(spectrogram_uint8(waves, config), readable, failures, notes, waves)


def clip_note(wave: np.ndarray, sample_rate: int) -> str | None:
    """What makes a clip a doubtful input, or None: silence, or far less than a word."""
    peak = float(np.abs(wave).max()) if wave.size else 0.0
    if peak < SILENT_PEAK:
        level = 20 * np.log10(max(peak, 1e-12))
        return f"silent (peak {level:.0f} dBFS): there is no sound to imagine from"
    seconds = wave.size / sample_rate
    if seconds < MIN_CLIP_SECONDS:
        return (
            f"only {seconds:.2f} s of audio (padded with silence to 1 s; a spoken word lasts "
            f"{MIN_CLIP_SECONDS} s or more)"
        )
    return None


def hz_to_mel(frequency, mel_scale: str = "slaney") -> np.ndarray:
    """Hz -> mel on the "slaney" (linear below 1 kHz, log above) or "htk" scale."""
    frequency = np.asarray(frequency, dtype=np.float64)
    if mel_scale == "htk":
        return 2595.0 * np.log10(1.0 + frequency / 700.0)
    log_step = np.log(6.4) / 27.0
    linear = frequency / (200.0 / 3.0)
    logarithmic = 15.0 + np.log(np.maximum(frequency, 1e-9) / 1000.0) / log_step
    return np.where(frequency < 1000.0, linear, logarithmic)


def mel_to_hz(mel, mel_scale: str = "slaney") -> np.ndarray:
    """mel -> Hz, the inverse of hz_to_mel."""
    mel = np.asarray(mel, dtype=np.float64)
    if mel_scale == "htk":
        return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)
    log_step = np.log(6.4) / 27.0
    return np.where(mel < 15.0, mel * 200.0 / 3.0, 1000.0 * np.exp(log_step * (mel - 15.0)))


def mel_band_centres(config: FrontEndConfig = FrontEndConfig()) -> np.ndarray:
    """Centre frequency in Hz of each mel band, (n_mels,), lowest band first."""
    edges = np.linspace(
        hz_to_mel(config.f_min, config.mel_scale),
        hz_to_mel(config.upper_frequency, config.mel_scale),
        config.n_mels + 2,
    )
    return mel_to_hz(edges[1:-1], config.mel_scale)


def mel_band_of_frequency(frequency: float, config: FrontEndConfig = FrontEndConfig()) -> int:
    """The mel band (0 = lowest) whose centre is nearest to `frequency` Hz on the mel scale."""
    centres = hz_to_mel(mel_band_centres(config), config.mel_scale)
    return int(np.argmin(np.abs(centres - hz_to_mel(frequency, config.mel_scale))))


def image_row_of_band(band: int, config: FrontEndConfig = FrontEndConfig()) -> int:
    """The image row (0 = top) that shows mel band `band` (0 = lowest)."""
    return config.n_mels - 1 - band
