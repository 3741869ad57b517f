"""The frozen speech front's features, computed once per sound and kept on disk.

The speech front (s2ilib.models.speech) and the whisper front (s2ilib.models.whisper) are
frozen: one spectrogram (or one wave, when the front reads the audio) always gives the same
192 (1024) numbers. The main job's stages (autoencoder, alignment, decoders, supervised ceiling,
evaluation, gallery) each run in their own process and read the same sounds through it,
so each would compute them again; this cache computes a sound's features once per machine.

Keys are exact, so a hit is always the right answer:
- a spectrogram's key is four integer hashes of its 8-bit pixels (the dot product of the
  pixels with fixed random integers below 2**20: every partial sum is an integer below
  2**53, so float64 arithmetic computes it exactly, in any order, batched);
- a wave's key (a front that reads the audio) is the same hash of its float32 samples'
  bits, as 16-bit halves; a data set's clip is named by its file's sha256 instead
  (`keyed_features`: its features are found without decoding it);
- a front's key hashes its weights and the shape of its input, so a changed weight is a
  different front;
- an input that is not an 8-bit image (augmented, or made up) bypasses the cache.

Where: $S2I_FRONT_CACHE, else <repository>/cache/speech_front (git-ignored);
S2I_FRONT_CACHE=off turns it off. One folder per front, one file per batch of new sounds,
written atomically; a torn or unreadable file is skipped (its sounds are computed again).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from s2ilib.atomic import atomic_write

REPO_ROOT = Path(__file__).resolve().parents[2]
HASHES = 4  # integer hashes per sound: a collision of two different sounds needs all four
HASH_RANGE = 2**20  # random multipliers below this: pixel * multiplier * pixels < 2**53
GRID_TOLERANCE = 1e-6  # how far from an 8-bit level an input value may be and still count
MERGE_AT = 32  # files of one front merged into one when a process finds this many


def cache_folder() -> Path | None:
    """The cache's folder ($S2I_FRONT_CACHE, else <repository>/cache/speech_front), or None
    when the variable turns the cache off."""
    setting = os.environ.get("S2I_FRONT_CACHE", "")
    if setting.lower() in OFF:
        return None
    return Path(setting) if setting else REPO_ROOT / "cache" / "speech_front"


OFF = ("off", "0", "false", "no")


@contextlib.contextmanager
def cache_turned_off():
    """Within: every front computes its features, as for a sound it never met (a benchmark
    that repeats one clip would time the cache's hits otherwise); the setting comes back after."""
    saved = os.environ.get("S2I_FRONT_CACHE")
    os.environ["S2I_FRONT_CACHE"] = "off"
    try:
        yield
    finally:
        if saved is None:
            del os.environ["S2I_FRONT_CACHE"]
        else:
            os.environ["S2I_FRONT_CACHE"] = saved


@functools.lru_cache(maxsize=4)
def _multipliers(length: int) -> torch.Tensor:
    """(length, HASHES) fixed random integers below HASH_RANGE, as float64."""
    generator = torch.Generator().manual_seed(length)
    return torch.randint(0, HASH_RANGE, (length, HASHES), generator=generator).double()


def sound_keys(sounds: torch.Tensor) -> torch.Tensor | None:
    """(B, HASHES) int64 keys of waves (B, samples) or of spectrograms in [-1, 1] that are
    8-bit images (x / 127.5 - 1, as the data sets serve them); None when a spectrogram's
    value is off that grid."""
    if sounds.dim() == 2:
        return wave_keys(sounds)
    values = sounds.detach().double().cpu()
    pixels = torch.round((values + 1.0) * 127.5)
    if (pixels / 127.5 - 1.0 - values).abs().max() > GRID_TOLERANCE:
        return None
    flat = pixels.flatten(1)
    return (flat @ _multipliers(flat.shape[1])).long()


def wave_keys(waves: torch.Tensor) -> torch.Tensor:
    """(B, HASHES) int64 keys of float32 waves (B, samples): the hash of their bits, each
    32-bit word as two halves below 2**16 (sums stay below 2**53: exact)."""
    words = waves.detach().float().cpu().contiguous().view(torch.int32).long() & 0xFFFFFFFF
    halves = torch.cat([words & 0xFFFF, words >> 16], 1).double()
    return (halves @ _multipliers(halves.shape[1])).long()


def front_key(front: nn.Module, sample_shape: tuple) -> str:
    """A hash of the front's weights (every parameter and buffer, or what its
    `fingerprint()` says of them where it has one: the whisper front's 20M numbers are
    known by their file's sha256) and its input's shape."""
    digest = hashlib.sha256(repr(tuple(sample_shape)).encode())
    if hasattr(front, "fingerprint"):
        digest.update(front.fingerprint().encode())
        return digest.hexdigest()[:24]
    for name, tensor in [*front.named_parameters(), *front.named_buffers()]:
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:24]


class FrontFeatureCache:
    """Features of sounds by their key, for every front met so far, backed by a folder."""

    def __init__(self, folder: Path | None):
        self.folder = folder
        self.tables: dict[str, dict[bytes, torch.Tensor]] = {}
        self.computed = 0  # sounds this process computed (the rest came from the cache)
        self.served = 0
        self.compute_seconds = 0.0  # time spent computing them

    def features(
        self, front: nn.Module, spectrograms: torch.Tensor, compute: Callable
    ) -> torch.Tensor:
        """compute(spectrograms), taking every sound seen before from the cache."""
        keys = sound_keys(spectrograms) if len(spectrograms) else None
        if keys is None:
            return compute(spectrograms)
        shape = tuple(spectrograms.shape[1:])
        found = self.keyed_features(front, keys, shape, lambda rows: compute(spectrograms[rows]))
        return found.to(spectrograms.device)

    def keyed_features(
        self, front: nn.Module, keys, sample_shape: tuple, compute: Callable
    ) -> torch.Tensor:
        """The features (B, F) of sounds named by `keys` (B, HASHES) int64: those seen before
        from the cache, the rest `compute`d (given their rows, a list) and kept."""
        key = front_key(front, sample_shape)
        table = self._table(key)
        names = _names(torch.as_tensor(keys))
        missing = [index for index, name in enumerate(names) if name not in table]
        if missing:
            started = time.perf_counter()
            computed = compute(missing)
            self.compute_seconds += time.perf_counter() - started
            self._add(key, [names[i] for i in missing], computed)
        self.computed += len(missing)
        self.served += len(names) - len(missing)
        return torch.stack([table[name] for name in names])

    def _table(self, key: str) -> dict[bytes, torch.Tensor]:
        if key not in self.tables:
            self.tables[key] = self._read(key)
        return self.tables[key]

    def _read(self, key: str) -> dict[bytes, torch.Tensor]:
        """Every file of this front in the folder, merged (and rewritten as one file when
        there are many)."""
        table: dict[bytes, torch.Tensor] = {}
        files = sorted(self.folder.glob(f"{key}/*.pt")) if self.folder else []
        for path in files:
            try:
                part = torch.load(path, map_location="cpu", weights_only=True)
                table.update(zip(_names(part["keys"]), part["features"], strict=True))
            except Exception as error:  # a torn or foreign file: compute its sounds again
                warnings.warn(f"{path}: skipped, unreadable ({error})", stacklevel=2)
        if len(files) >= MERGE_AT:
            self._write(key, table)
            for path in files:
                path.unlink(missing_ok=True)
        return table

    def _add(self, key: str, names: list[bytes], features: torch.Tensor) -> None:
        """New sounds' features into the table of front `key` and a file of their own."""
        new = dict(zip(names, features.detach().float().cpu(), strict=True))
        self.tables[key].update(new)
        self._write(key, new)

    def _write(self, key: str, entries: dict[bytes, torch.Tensor]) -> None:
        if self.folder is None or not entries:
            return
        keys = torch.stack([torch.frombuffer(bytearray(n), dtype=torch.int64) for n in entries])
        content = {"keys": keys, "features": torch.stack(list(entries.values()))}
        name = hashlib.sha256(keys.numpy().tobytes()).hexdigest()[:24]
        try:
            atomic_write(self.folder / key / f"{name}.pt", lambda f: torch.save(content, f))
        except OSError as error:  # a read-only checkout: compute, but do not keep
            warnings.warn(f"speech-front cache not written ({error})", stacklevel=2)
            self.folder = None


def _names(keys: torch.Tensor) -> list[bytes]:
    """Each sound's key as bytes (a dict key), from one numpy view of the whole batch."""
    return [row.tobytes() for row in keys.long().numpy()]


_SHARED: dict[str, FrontFeatureCache] = {}


def shared_cache() -> FrontFeatureCache | None:
    """The process's cache for the folder the environment names now (None: turned off)."""
    folder = cache_folder()
    if folder is None:
        return None
    return _SHARED.setdefault(str(folder), FrontFeatureCache(folder))


def activity() -> dict | None:
    """What the process's caches did so far: sounds computed, sounds served, seconds spent
    computing; None when no front ran through them."""
    caches = list(_SHARED.values())
    if not any(cache.computed or cache.served for cache in caches):
        return None
    return {
        "computed": sum(cache.computed for cache in caches),
        "served": sum(cache.served for cache in caches),
        "compute_seconds": round(sum(cache.compute_seconds for cache in caches), 1),
    }
