"""The published s2i_data layouts, byte for byte: read (memory-mapped), write, infer, validate.

No torch here. Every spectrogram array in the workbook is in *image orientation*, as in the
published JPEGs: uint8 (or float) of shape (128, 100), row 0 = highest mel band, low
frequencies in the bottom row, loud is bright, 100 columns = 10 ms frames of one second.

Record names and .bin labels. The JPEG trees name a record cNNN_sNNNNN_wNNN (class 1-based,
source video, window). The spectrogram/embedding-to-image .bin records start with an 11-byte
ASCII label instead: the class as three digits (001..999; the authors' code reads only
these), then an 8-byte id whose spelling the published files do not document. The id is
parsed into source and window when it follows a known spelling (ID_SPELLINGS): digits
SSSSSWWW, as in 00417722000 (what the writers here produce), or separated _S_W, as in
004_17722_0. Any other id is kept as written. A digits-only label is named
cCCC_sSSSSS_wWWW (the same digits); any other label is named by its characters as written,
so that writing the records back gives the same bytes. A label is refused only when its
class part is not three digits 001..999 or a byte is not ASCII. A JPEG tree needs a source
and a window for its file names: converting an id kept as written to one is refused.
"""

from __future__ import annotations

import os
import re
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from s2ilib.atomic import atomic_write
from s2ilib.errors import FormatError

SPECTROGRAM_SHAPE = (128, 100)  # mel bands x 10-ms frames
IMAGE_SHAPE = (96, 96, 3)  # height x width x RGB
LABEL_BYTES = 11  # ASCII: class (3 digits, 1-based) + the record's id (8 bytes)
CLASS_DIGITS = 3
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class RecordSet:
    """One split of one data set: aligned per-record arrays, lazy where the file allows.

    `spectrograms`, `images` and `embeddings` are array-likes (np.memmap views, or lazy
    stacks that decode files on indexing) supporting len(), .shape, .dtype and indexing by
    int, slice or integer array; indexing returns a plain np.ndarray.
    """

    layout: (
        str  # "jpeg_tree", "audio_bin", "spec_image_bin", "embedding_image_bin", "avdigits", ...
    )
    split: str  # "train", "val" or "test"
    paths: tuple[Path, ...]  # the files or folders the records came from
    names: np.ndarray  # (N,) str, e.g. "c001_s00042_w003", or a .bin label as written
    labels: np.ndarray  # (N,) int64, 0-based class index
    spectrograms: Any = None  # uint8 (N, 128, 100), image orientation
    images: Any = None  # uint8 (N, H, W, C), C in {1, 3}; paired with the spectrogram
    embeddings: Any = None  # float32 (N, D)
    # float32 (N, samples) at 16 kHz, decoded on indexing: the clips the spectrograms were
    # made from, where the data set ships them (AV-Digits); with `keys()`, (N, 4) int64 that
    # name each clip by its file's bytes (models.front_cache keys features by them)
    audio: Any = None
    extra: dict = field(default_factory=dict)  # per-record metadata columns, e.g. "language"

    def __len__(self) -> int:
        return len(self.labels)


# --------------------------------------------------------------------------------------
# Layouts, record types and names
# --------------------------------------------------------------------------------------

LAYOUTS = ("jpeg_tree", "audio_bin", "spec_image_bin", "embedding_image_bin")
EMBEDDING_DIMS = (128, 256, 512, 1024, 2048)  # the published bottleneck widths
NAME_LENGTH = 16  # "cNNN_sNNNNN_wNNN"
JPEG_QUALITY = 95  # writer quality: grey spectrograms come back within ~1 grey level on average
BIN_PREFIX = {"train": "data", "val": "val", "test": "test"}  # split -> .bin name prefix
SPLIT_OF_PREFIX = {"data": "train", "train": "train", "val": "val", "test": "test"}
_NAME_PATTERN = re.compile(r"^c(\d{3})_s(\d{5})_w(\d{3})$")
ID_SPELLINGS = ("SSSSSWWW", "_S_W")  # known spellings of a label's id: digits, or separated
LABEL_EXPECTED = "11 ASCII bytes: the class as 3 digits 001..999, then the record's id"
_EMBEDDING_FOLDER = re.compile(r"embeddings_(\d+)_to_images")
_BIN_NAME = re.compile(r"^(data|train|val|test)_")
_CHUNK_RECORDS = 1024  # records per read/write chunk: bounds memory of streaming writers
_LABEL_SCAN_BYTES = 8 << 20  # window of a file mapped at once while labels are validated


def record_dtype(layout: str, embedding_dim: int | None = None) -> np.dtype:
    """The numpy structured dtype of one record of a .bin layout (packed, no padding)."""
    image = ("image", np.uint8, IMAGE_SHAPE)
    if layout == "audio_bin":
        return np.dtype([("label", np.uint8), ("spectrogram", np.uint8, SPECTROGRAM_SHAPE)])
    if layout == "spec_image_bin":
        return np.dtype(
            [("label", f"S{LABEL_BYTES}"), ("spectrogram", np.uint8, SPECTROGRAM_SHAPE), image]
        )
    if layout == "embedding_image_bin":
        if not embedding_dim or embedding_dim < 1:
            raise ValueError(
                f"embedding_image_bin needs a positive embedding_dim, got {embedding_dim}"
            )
        return np.dtype(
            [("label", f"S{LABEL_BYTES}"), ("embedding", "<f4", (embedding_dim,)), image]
        )
    raise ValueError(f"{layout!r} is not a .bin layout (expected one of {LAYOUTS[1:]})")


def parse_name(name: str) -> tuple[int, int, int]:
    """ "cNNN_sNNNNN_wNNN" -> (0-based class index, source id, window index)."""
    match = _NAME_PATTERN.match(name)
    if not match or int(match.group(1)) < 1:
        raise FormatError(name, "not a record name", expected="cNNN_sNNNNN_wNNN with NNN >= 001")
    return int(match.group(1)) - 1, int(match.group(2)), int(match.group(3))


def format_name(class_index0: int, source_id: int, window: int) -> str:
    """(0-based class index, source id, window) -> "cNNN_sNNNNN_wNNN" (class 1-based)."""
    if not (0 <= class_index0 < 999 and 0 <= source_id < 100_000 and 0 <= window < 1000):
        raise FormatError(
            f"({class_index0}, {source_id}, {window})",
            "does not fit a record name",
            expected="class 0..998, source 0..99999, window 0..999",
        )
    return f"c{class_index0 + 1:03d}_s{source_id:05d}_w{window:03d}"


def label_to_name(label: str | bytes) -> str:
    """One 11-byte label -> its record name (see the module docstring for the rule)."""
    raw = label.encode("utf-8") if isinstance(label, str) else bytes(label)
    if len(raw) > LABEL_BYTES:
        raise FormatError(repr(label), f"{len(raw)} bytes", expected=LABEL_EXPECTED)
    return str(parse_labels(np.array([raw], f"S{LABEL_BYTES}"), repr(label))[1][0])


def name_to_label(name: str) -> bytes:
    """One record name -> its 11-byte label (trailing NUL bytes included)."""
    return names_to_labels([name], repr(name)).tobytes()


def _digit_value(digits: np.ndarray) -> np.ndarray:
    """(N, k) digit values 0..9 -> (N,) int64 decimal numbers."""
    powers = 10 ** np.arange(digits.shape[1] - 1, -1, -1, dtype=np.int64)
    return digits.astype(np.int64) @ powers


def _label_codes(labels) -> np.ndarray:
    """(N,) S11 labels -> (N, 11) uint8, as stored (a short label ends in NUL bytes)."""
    raw = np.ascontiguousarray(labels, dtype=f"S{LABEL_BYTES}").tobytes()
    return np.frombuffer(raw, np.uint8).reshape(-1, LABEL_BYTES)


def _codes_to_text(codes: np.ndarray) -> np.ndarray:
    """(N, 11) ASCII codes -> (N,) str, the label as written (numpy drops trailing NULs)."""
    labels = np.ascontiguousarray(codes, dtype=np.uint8).view(f"S{LABEL_BYTES}").reshape(-1)
    return labels.astype(f"U{LABEL_BYTES}")


def _first_refused(codes: np.ndarray) -> tuple[int, str] | None:
    """The first label the reading rule refuses, and why; None when every label is valid."""
    non_ascii = (codes > 127).any(axis=1)
    digits = codes[:, :CLASS_DIGITS] - ord("0")  # uint8 wraps below '0': one comparison
    bad = non_ascii | (digits > 9).any(axis=1) | (_digit_value(digits) < 1)
    if not bad.any():
        return None
    record = int(np.flatnonzero(bad)[0])
    why = "has a non-ASCII byte" if non_ascii[record] else "does not start with a class 001..999"
    return record, why


def _digit_ids(codes: np.ndarray) -> np.ndarray:
    """Per label: its id is spelled SSSSSWWW (the 8 bytes after the class are digits)."""
    return ((codes[:, CLASS_DIGITS:] - ord("0")) <= 9).all(axis=1)


def _published_names(codes: np.ndarray) -> np.ndarray:
    """(N, 11) digit-only labels CCCSSSSSWWW -> (N,) names cCCC_sSSSSS_wWWW, the same digits."""
    names = np.empty((len(codes), NAME_LENGTH), np.uint8)
    names[:, 0], names[:, 4], names[:, 5], names[:, 11], names[:, 12] = (ord(c) for c in "c_s_w")
    names[:, 1:4], names[:, 6:11], names[:, 13:16] = codes[:, 0:3], codes[:, 3:8], codes[:, 8:11]
    return names.view(f"S{NAME_LENGTH}").reshape(-1).astype(f"U{NAME_LENGTH}")


def parse_labels(labels: np.ndarray, path) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised check of (N,) S11 labels -> (0-based class indices, record names).

    Raises FormatError naming `path` and the first record whose label is refused.
    """
    codes = _label_codes(labels)
    refused = _first_refused(codes)
    if refused:
        record, why = refused
        label = bytes(codes[record])
        raise FormatError(path, f"label {label!r} {why}", record=record, expected=LABEL_EXPECTED)
    classes = _digit_value(codes[:, :CLASS_DIGITS] - ord("0"))
    digit_ids = _digit_ids(codes)
    if digit_ids.all():  # the common case, and the spelling the writers here produce
        return classes - 1, _published_names(codes)
    names = np.empty(len(codes), f"U{NAME_LENGTH}")
    names[digit_ids] = _published_names(codes[digit_ids])
    names[~digit_ids] = _codes_to_text(codes[~digit_ids])
    return classes - 1, names


def label_ids(labels) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N,) valid S11 labels -> (sources, windows, spellings): each id parsed by its spelling.

    spellings holds the index in ID_SPELLINGS of the spelling each id follows, -1 for an id
    kept as written (its source and window are -1 too).
    """
    ids = _label_codes(labels)[:, CLASS_DIGITS:].astype(np.int64)
    sources, windows = np.full(len(ids), -1, np.int64), np.full(len(ids), -1, np.int64)
    spellings = np.full(len(ids), -1, np.int64)
    is_digit, is_separator = (ids >= ord("0")) & (ids <= ord("9")), ids == ord("_")
    digits = ids - ord("0")
    spelled = is_digit.all(axis=1)  # SSSSSWWW
    sources[spelled] = _digit_value(digits[spelled, :5])
    windows[spelled] = _digit_value(digits[spelled, 5:])
    spellings[spelled] = 0
    # _S_W: "_", digits, "_", digits; `middle` is the second separator's position
    middle = np.where(is_separator[:, 1:], np.arange(1, ids.shape[1]), 0).max(axis=1)
    spelled = (
        is_separator[:, 0]
        & (is_separator.sum(axis=1) == 2)
        & (is_digit | is_separator).all(axis=1)
        & (middle >= 2)
        & (middle <= ids.shape[1] - 2)
    )
    source, window = np.zeros(len(ids), np.int64), np.zeros(len(ids), np.int64)
    for position in range(1, ids.shape[1]):
        source = np.where(position < middle, 10 * source + digits[:, position], source)
        window = np.where(position > middle, 10 * window + digits[:, position], window)
    sources[spelled], windows[spelled], spellings[spelled] = source[spelled], window[spelled], 1
    return sources, windows, spellings


def parse_names(names, path=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vectorised parse_name over (N,) names -> (classes0, sources, windows) int64 arrays."""
    names = np.asarray(names, dtype=str).reshape(-1)
    wrong_length = np.char.str_len(names) != NAME_LENGTH
    if wrong_length.any():
        record = int(np.flatnonzero(wrong_length)[0])
        raise FormatError(
            path or names[record],
            f"name {str(names[record])!r} is not a record name",
            record=record,
            expected="cNNN_sNNNNN_wNNN",
        )
    names = names.astype(f"U{NAME_LENGTH}")
    codes = names.view(np.uint32).reshape(-1, NAME_LENGTH)
    template = np.frombuffer(b"c000_s00000_w000", np.uint8).astype(np.uint32)
    is_digit = template == ord("0")
    digits = codes - ord("0")
    bad = (codes[:, ~is_digit] != template[~is_digit]).any(axis=1) | (digits[:, is_digit] > 9).any(
        axis=1
    )
    classes = _digit_value(digits[:, 1:4]) if len(codes) else np.zeros(0, np.int64)
    bad |= classes < 1
    if bad.any():
        record = int(np.flatnonzero(bad)[0])
        raise FormatError(
            path or names[record],
            f"name {str(names[record])!r} is not a record name",
            record=record,
            expected="cNNN_sNNNNN_wNNN with NNN >= 001",
        )
    return classes - 1, _digit_value(digits[:, 6:11]), _digit_value(digits[:, 13:16])


def names_to_labels(names, path=None) -> np.ndarray:
    """Vectorised name_to_label: (N,) record names of either kind -> (N,) S11 labels.

    A cNNN_sNNNNN_wNNN name gives the digits CCCSSSSSWWW; any other name is a label as
    written (at most 11 ASCII characters, NUL-padded), checked by the reading rule.
    """
    names = np.asarray(names, dtype=str).reshape(-1)
    lengths = np.char.str_len(names)
    published, written = lengths == NAME_LENGTH, lengths <= LABEL_BYTES
    if not (published | written).all():
        record = int(np.flatnonzero(~(published | written))[0])
        raise FormatError(
            path or names[record],
            f"name {str(names[record])!r} is not a record name",
            record=record,
            expected=f"cNNN_sNNNNN_wNNN, or {LABEL_EXPECTED}",
        )
    labels = np.empty(len(names), f"S{LABEL_BYTES}")
    rows = np.flatnonzero(published)
    try:
        parse_names(names[rows], path)
    except FormatError as error:
        record = int(rows[error.record])
        raise FormatError(error.path, error.problem, record, error.expected) from None
    codes = names[rows].astype(f"S{NAME_LENGTH}").view(np.uint8).reshape(-1, NAME_LENGTH)
    digits = np.concatenate([codes[:, 1:4], codes[:, 6:11], codes[:, 13:16]], axis=1)
    labels[rows] = np.ascontiguousarray(digits).view(f"S{LABEL_BYTES}").reshape(-1)
    rows = np.flatnonzero(~published)
    wide = names[rows].astype(f"U{LABEL_BYTES}").view(np.uint32).reshape(-1, LABEL_BYTES)
    codes = np.minimum(wide, 255).astype(np.uint8)  # non-ASCII stays above 127: refused next
    refused = _first_refused(codes)
    if refused:
        record, why = int(rows[refused[0]]), refused[1]
        problem = f"name {str(names[record])!r} is not a record name: as a label it {why}"
        expected = f"cNNN_sNNNNN_wNNN, or {LABEL_EXPECTED}"
        raise FormatError(path or names[record], problem, record=record, expected=expected)
    labels[rows] = np.ascontiguousarray(codes).view(f"S{LABEL_BYTES}").reshape(-1)
    return labels


def parse_record_names(names, path=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Record names of either kind -> (classes0, sources, windows); -1 for an id kept as written."""
    labels = names_to_labels(names, path)
    sources, windows, _ = label_ids(labels)
    return _digit_value(_label_codes(labels)[:, :CLASS_DIGITS] - ord("0")) - 1, sources, windows


def tree_names(names, path=None) -> np.ndarray:
    """Record names as JPEG tree file names (cNNN_sNNNNN_wNNN), from ids of a known spelling.

    A name whose id is kept as written, or whose window does not fit 3 digits, is refused:
    a .bin layout keeps any id, a JPEG tree only the published file names.
    """
    names = np.asarray(names, dtype=str).reshape(-1)
    classes, sources, windows = parse_record_names(names, path)
    fits = (sources >= 0) & (sources < 100_000) & (windows >= 0) & (windows < 1000)
    if not fits.all():
        record = int(np.flatnonzero(~fits)[0])
        raise FormatError(
            path or names[record],
            f"record name {str(names[record])!r} has no source and window to name a JPEG file",
            record=record,
            expected=f"an id spelled {' or '.join(ID_SPELLINGS)} with a window below 1000; "
            "a .bin layout keeps any id",
        )
    return _format_names(classes, sources, windows)


def _format_names(classes0, sources, windows) -> np.ndarray:
    """Vectorised format_name, for values known to fit."""
    names = np.zeros(len(classes0), f"U{NAME_LENGTH}")
    if not len(names):  # np.char.zfill fails on empty arrays
        return names
    for prefix, values, width in (("c", classes0 + 1, 3), ("_s", sources, 5), ("_w", windows, 3)):
        digits = np.char.zfill(np.asarray(values, np.int64).astype(str), width)
        names = np.char.add(np.char.add(names, prefix), digits)
    return names.astype(f"U{NAME_LENGTH}")


def positional_names(labels: np.ndarray) -> np.ndarray:
    """Names for records that carry no source ids (audio_bin): s = i // 1000, w = i % 1000."""
    index = np.arange(len(labels), dtype=np.int64)
    return _format_names(np.asarray(labels, np.int64), index // 1000, index % 1000)


# --------------------------------------------------------------------------------------
# Lazy arrays: indexing returns a plain np.ndarray, nothing is read before that
# --------------------------------------------------------------------------------------


class _LazyArray:
    """Shared indexing for lazy (N, ...) arrays: subclasses implement `_take(indices)`."""

    shape: tuple[int, ...]
    dtype: np.dtype

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __getitem__(self, key) -> np.ndarray:
        if isinstance(key, tuple):
            first = self[key[0]]
            return first[key[1:]] if _is_int(key[0]) else first[(slice(None), *key[1:])]
        if _is_int(key):
            index = int(key) + (len(self) if key < 0 else 0)
            if not 0 <= index < len(self):
                raise IndexError(f"index {int(key)} out of range for {len(self)} records")
            return self._take(np.array([index]))[0]
        if isinstance(key, slice):
            return self._take_range(*key.indices(len(self)))
        indices = np.asarray(key)
        if indices.dtype == bool:
            if indices.shape != (len(self),):
                raise IndexError(f"boolean index of shape {indices.shape} for {len(self)} records")
            return self._take(np.flatnonzero(indices))
        if indices.dtype.kind not in "iu":
            raise IndexError(f"cannot index records with {indices.dtype} values")
        flat = indices.astype(np.int64).ravel()
        flat = np.where(flat < 0, flat + len(self), flat)
        if flat.size and (flat.min() < 0 or flat.max() >= len(self)):
            raise IndexError(f"index out of range for {len(self)} records")
        return self._take(flat).reshape(indices.shape + self.shape[1:])

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        whole = self[:]
        return whole if dtype is None else whole.astype(dtype)

    def __iter__(self):
        for start in range(0, len(self), _CHUNK_RECORDS):
            yield from self[start : start + _CHUNK_RECORDS]

    def _take_range(self, start: int, stop: int, step: int) -> np.ndarray:
        return self._take(np.arange(start, stop, step, dtype=np.int64))

    def _copy_range(self, start: int, stop: int, out: np.ndarray) -> None:
        out[...] = self._take_range(start, stop, 1)

    def read_into(self, start: int, out: np.ndarray) -> np.ndarray:
        """Records start .. start + len(out) copied into `out`, a batch buffer the caller
        reuses: no allocation, so no page faults on fresh memory (what it gains over slicing:
        benchmarks/RESULTS.md, "Loader, second pass: buffer reuse"); returns `out`."""
        return read_into(self, start, out)

    def _take(self, indices: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(shape={self.shape}, dtype={self.dtype})"


def read_into(array, start: int, out: np.ndarray) -> np.ndarray:
    """Rows start .. start + len(out) of any record array (lazy, memmap or ndarray) copied
    into the reused buffer `out`; returns `out`."""
    stop = start + len(out)
    if not 0 <= start <= stop <= len(array):
        raise IndexError(f"rows {start}..{stop} out of range for {len(array)} records")
    if out.shape[1:] != tuple(array.shape[1:]) or out.dtype != array.dtype:
        raise ValueError(
            f"buffer {out.shape[1:]} {out.dtype} does not hold rows {array.shape[1:]} {array.dtype}"
        )
    if isinstance(array, _LazyArray):
        array._copy_range(start, stop, out)
    else:
        np.copyto(out, array[start:stop])
    return out


def _is_int(key) -> bool:
    return isinstance(key, int | np.integer) and not isinstance(key, bool | np.bool_)


class ConcatArray(_LazyArray):
    """Same-shaped arrays (memmap field views) seen as one along axis 0, never materialised."""

    def __init__(self, parts):
        self.parts = list(parts)
        if not self.parts:
            raise ValueError("ConcatArray needs at least one part")
        inner, dtype = self.parts[0].shape[1:], self.parts[0].dtype
        for part in self.parts:
            if part.shape[1:] != inner or part.dtype != dtype:
                raise ValueError(f"parts differ: {part.shape[1:]} {part.dtype} vs {inner} {dtype}")
        self.offsets = np.cumsum([0] + [len(part) for part in self.parts])
        self.shape = (int(self.offsets[-1]), *inner)
        self.dtype = dtype

    def _take_range(self, start: int, stop: int, step: int) -> np.ndarray:
        if step != 1:
            return super()._take_range(start, stop, step)
        out = np.empty((max(0, stop - start), *self.shape[1:]), self.dtype)
        self._copy_range(start, stop, out)
        return out

    def _copy_range(self, start: int, stop: int, out: np.ndarray) -> None:
        for part, offset in zip(self.parts, self.offsets[:-1], strict=True):
            low, high = max(start, offset), min(stop, offset + len(part))
            if low < high:
                out[low - start : high - start] = part[low - offset : high - offset]

    def _take(self, indices: np.ndarray) -> np.ndarray:
        out = np.empty((len(indices), *self.shape[1:]), self.dtype)
        part_of = np.searchsorted(self.offsets, indices, side="right") - 1
        for part_index in np.unique(part_of):
            mask = part_of == part_index
            out[mask] = self.parts[part_index][indices[mask] - self.offsets[part_index]]
        return out


class JpegStack(_LazyArray):
    """JPEG files seen as one uint8 (N, *item_shape) array, decoded on indexing.

    Arguments: paths, one file per record; item_shape (H, W) for grey ("L") or (H, W, 3)
    for "RGB"; every file must be a JPEG of exactly that size and mode.
    """

    def __init__(self, paths, item_shape: tuple[int, ...], mode: str):
        self.paths = [str(path) for path in paths]
        self.item_shape, self.mode = tuple(item_shape), mode
        self.shape = (len(self.paths), *self.item_shape)
        self.dtype = np.dtype(np.uint8)

    def _take(self, indices: np.ndarray) -> np.ndarray:
        out = np.empty((len(indices), *self.item_shape), np.uint8)

        def decode_into(slot: int) -> None:
            record = int(indices[slot])
            out[slot] = decode_jpeg(self.paths[record], self.item_shape, self.mode, record)

        if len(indices) >= 32:  # Pillow releases the GIL while decoding
            list(_thread_pool().map(decode_into, range(len(indices))))
        else:
            for slot in range(len(indices)):
                decode_into(slot)
        return out


_POOL: ThreadPoolExecutor | None = None


def _thread_pool() -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1))
    return _POOL


def decode_jpeg(path, item_shape, mode: str, record: int | None = None) -> np.ndarray:
    """Read one JPEG as uint8 of shape item_shape; FormatError naming the file if it is not one."""
    from PIL import Image, UnidentifiedImageError

    height, width = item_shape[:2]
    expected = f"a {mode} JPEG {width} wide x {height} high"
    try:
        with Image.open(path) as image:
            if image.format != "JPEG":
                raise FormatError(path, f"not a JPEG file ({image.format} data)", record, expected)
            if image.mode != mode or image.size != (width, height):
                problem = f"{image.mode} image {image.size[0]} wide x {image.size[1]} high"
                raise FormatError(path, problem, record, expected)
            return np.asarray(image)
    except UnidentifiedImageError:
        raise FormatError(path, "not a JPEG file (unrecognised data)", record, expected) from None
    except OSError as error:
        raise FormatError(path, f"unreadable JPEG ({error})", record, expected) from None


class _RowRange(_LazyArray):
    """Rows [start, stop) of a (lazy) array, still lazy: lets writers stream one output file."""

    def __init__(self, array, start: int, stop: int):
        self.array, self.start = array, start
        self.shape = (stop - start, *array.shape[1:])
        self.dtype = array.dtype

    def _take_range(self, start: int, stop: int, step: int) -> np.ndarray:
        return np.asarray(self.array[self.start + start : self.start + stop : step])

    def _copy_range(self, start: int, stop: int, out: np.ndarray) -> None:
        read_into(self.array, self.start + start, out[: stop - start])

    def _take(self, indices: np.ndarray) -> np.ndarray:
        return np.asarray(self.array[indices + self.start])


# --------------------------------------------------------------------------------------
# Finding and inferring layouts
# --------------------------------------------------------------------------------------

_JPEG_SUFFIXES = (".jpg", ".jpeg")


def _has_jpegs(folder: Path) -> bool:
    with os.scandir(folder) as entries:
        return any(e.is_file() and e.name.lower().endswith(_JPEG_SUFFIXES) for e in entries)


def _jpeg_split_folders(path: Path) -> dict[str, Path]:
    """Split -> folder of spectrogram JPEGs under `path` ({}, if it is no JPEG tree)."""
    if not path.is_dir():
        return {}
    if _has_jpegs(path):  # a folder of JPEGs: its name is the split, else "train"
        return {path.name if path.name in SPLITS else "train": path}
    found = {s: path / s for s in SPLITS if (path / s).is_dir() and _has_jpegs(path / s)}
    if not found and (path / "spectrograms").is_dir():
        return _jpeg_split_folders(path / "spectrograms")
    return found


def _frames_folder(split_folder: Path) -> Path | None:
    """The frames/{split} folder written next to a spectrogram split folder, if any."""
    for root in (split_folder.parent, split_folder.parent.parent):
        candidate = root / "frames" / split_folder.name
        if candidate.is_dir() and candidate.resolve() != split_folder.resolve():
            return candidate
    return None


def _bin_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(
        path.glob("*.bin"),
        key=lambda p: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name)],
    )


def _layout_from_names(path: Path) -> str | None:
    text = path.resolve().as_posix() + "/"
    if "spectrograms_to_images" in text:
        return "spec_image_bin"
    if _EMBEDDING_FOLDER.search(text) or "/embeddings_" in text:
        return "embedding_image_bin"
    if "spectrograms_128x100" in text or "/batches/audio/" in text:
        return "audio_bin"
    return None


def _record_sizes() -> dict[str, int]:
    """Record size in bytes of every .bin layout; embedding layouts keyed by their D."""
    sizes = {
        "audio_bin": record_dtype("audio_bin").itemsize,
        "spec_image_bin": record_dtype("spec_image_bin").itemsize,
    }
    for dim in EMBEDDING_DIMS:
        sizes[f"embedding_image_bin:{dim}"] = record_dtype("embedding_image_bin", dim).itemsize
    return sizes


def _check_not_empty(files: list[Path]) -> list[int]:
    sizes = [f.stat().st_size for f in files]
    for file, size in zip(files, sizes, strict=True):
        if size == 0:
            raise FormatError(file, "empty file", expected="at least one whole record")
    return sizes


def _layout_from_sizes(files: list[Path]) -> str:
    sizes = _check_not_empty(files)
    fits = [k for k, rs in _record_sizes().items() if all(s % rs == 0 for s in sizes)]
    layouts = sorted({k.split(":")[0] for k in fits})
    if len(layouts) == 1:
        return layouts[0]
    listing = ", ".join(f"{k} ({rs} bytes)" for k, rs in _record_sizes().items())
    if not layouts:
        raise FormatError(
            files[0],
            f"{sizes[0]} bytes is a whole number of records of no layout",
            expected=f"a multiple of one record size: {listing}",
        )
    raise FormatError(
        files[0],
        f"size fits several layouts ({', '.join(fits)})",
        expected="the layout given explicitly (--layout)",
    )


def infer_layout(path) -> str:
    """The layout of a file or folder: from the published path names, else from content."""
    path = Path(path)
    if not path.exists():
        raise FormatError(path, "no such file or folder")
    bins = [file for file in _bin_files(path) if file.suffix == ".bin"]
    if bins:
        return _layout_from_names(path) or _layout_from_sizes(bins)
    if _jpeg_split_folders(path):
        return "jpeg_tree"
    raise FormatError(
        path,
        "holds no s2i_data layout",
        expected="*.bin record files, or {train,val,test}/cNNN_sNNNNN_wNNN.jpg",
    )


def infer_embedding_dim(files: list[Path], given: int | None = None) -> int:
    """D of embedding_image_bin records: given, else from the folder name, else the file sizes."""
    if given:
        return int(given)
    match = _EMBEDDING_FOLDER.search(files[0].resolve().as_posix())
    if match:
        return int(match.group(1))
    sizes = _check_not_empty(files)
    dims = [
        d
        for d in EMBEDDING_DIMS
        if all(s % record_dtype("embedding_image_bin", d).itemsize == 0 for s in sizes)
    ]
    if len(dims) == 1:
        return dims[0]
    problem = (
        "size fits no embedding width" if not dims else f"size fits several embedding widths {dims}"
    )
    raise FormatError(
        files[0],
        problem,
        expected=f"a folder named embeddings_<D>_to_images..., or D given (one of {EMBEDDING_DIMS})",
    )


# --------------------------------------------------------------------------------------
# Opening
# --------------------------------------------------------------------------------------


def open_records(
    path, layout: str | None = None, embedding_dim: int | None = None, splits=None
) -> dict[str, RecordSet]:
    """Open a file or folder of one layout -> {split: RecordSet}, memory-mapped or lazy.

    Arguments: layout, one of LAYOUTS (inferred when None); embedding_dim, D of
    embedding_image_bin records (from the folder name or file sizes when None); splits, the
    splits to open (all present when None). Labels of every record are validated here.
    """
    path = Path(path)
    if not path.exists():
        raise FormatError(path, "no such file or folder")
    layout = layout or infer_layout(path)
    if layout not in LAYOUTS:
        raise FormatError(
            path, f"unknown layout {layout!r}", expected=f"one of {', '.join(LAYOUTS)}"
        )
    wanted = tuple(SPLITS if splits is None else ([splits] if isinstance(splits, str) else splits))
    for split in wanted:
        if split not in SPLITS:
            raise FormatError(path, f"unknown split {split!r}", expected=f"one of {SPLITS}")
    if layout == "jpeg_tree":
        folders = _jpeg_split_folders(path)
        if not folders:
            raise FormatError(
                path, "no JPEG tree here", expected="{train,val,test}/cNNN_sNNNNN_wNNN.jpg"
            )
        found = {s: _open_jpeg_split(s, f) for s, f in folders.items() if s in wanted}
    else:
        found = {
            s: _open_bin_split(layout, s, files, embedding_dim)
            for s, files in _bin_files_by_split(path).items()
            if s in wanted
        }
    if not found:
        raise FormatError(path, f"no records of split(s) {', '.join(wanted)}")
    return {s: found[s] for s in SPLITS if s in found}


def _bin_files_by_split(path: Path) -> dict[str, list[Path]]:
    files = [f for f in _bin_files(path) if path.is_file() or f.suffix == ".bin"]
    if not files:
        raise FormatError(path, "no .bin files", expected="{data,val,test}_batch_NNN.bin")
    by_split: dict[str, list[Path]] = {}
    for file in files:
        match = _BIN_NAME.match(file.name)
        if not match:
            raise FormatError(
                file,
                "cannot tell the split from the file name",
                expected="a data_, train_, val_ or test_ prefix",
            )
        by_split.setdefault(SPLIT_OF_PREFIX[match.group(1)], []).append(file)
    return by_split


def _record_count(path: Path, dtype: np.dtype, layout: str) -> int:
    size = path.stat().st_size
    expected = f"whole {dtype.itemsize}-byte {layout} records"
    if size == 0:
        raise FormatError(path, "empty file", expected=expected)
    whole, trailing = divmod(size, dtype.itemsize)
    if trailing:
        raise FormatError(
            path,
            f"{size} bytes is not a whole number of records: {whole} whole records, then "
            f"{trailing} trailing bytes of a truncated record",
            record=whole,
            expected=expected,
        )
    return whole


def _scan_labels(path: Path, dtype: np.dtype, count: int) -> np.ndarray:
    """The label field of every record, read window by window so that RSS stays bounded."""
    import mmap

    out = np.empty(count, dtype["label"])
    per_window = max(1, _LABEL_SCAN_BYTES // dtype.itemsize)
    with open(path, "rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        for start in range(0, count, per_window):
            stop = min(count, start + per_window)
            window = np.frombuffer(mapped, dtype, stop - start, start * dtype.itemsize)
            out[start:stop] = window["label"]
            del window  # an exported buffer would block the mmap from closing
            # Unmap the scanned pages: they stay in the page cache but leave this process's RSS.
            low = start * dtype.itemsize // mmap.PAGESIZE * mmap.PAGESIZE
            mapped.madvise(mmap.MADV_DONTNEED, low, stop * dtype.itemsize - low)
    return out


def _open_bin_split(layout: str, split: str, files: list[Path], embedding_dim) -> RecordSet:
    if layout == "embedding_image_bin":
        embedding_dim = infer_embedding_dim(files, embedding_dim)
    dtype = record_dtype(layout, embedding_dim)
    maps, labels, names = [], [], []
    for file in files:
        count = _record_count(file, dtype, layout)
        raw = _scan_labels(file, dtype, count)
        if layout == "audio_bin":
            labels.append(raw.astype(np.int64))
        else:
            classes, file_names = parse_labels(raw, file)
            labels.append(classes)
            names.append(file_names)
        maps.append(np.memmap(file, dtype=dtype, mode="r", shape=(count,)))
    labels = np.concatenate(labels)
    columns = {
        "spectrograms": "spectrogram" in dtype.names,
        "images": "image" in dtype.names,
        "embeddings": "embedding" in dtype.names,
    }
    field_of = {"spectrograms": "spectrogram", "images": "image", "embeddings": "embedding"}
    arrays = {
        k: ConcatArray([m[field_of[k]] for m in maps]) for k, present in columns.items() if present
    }
    return RecordSet(
        layout=layout,
        split=split,
        paths=tuple(files),
        names=np.concatenate(names) if names else positional_names(labels),
        labels=labels,
        **arrays,
    )


def _jpeg_files(folder: Path) -> tuple[np.ndarray, list[Path]]:
    """Sorted record names and files of the JPEGs in one folder; names must parse."""
    with os.scandir(folder) as entries:
        files = sorted(
            Path(e.path) for e in entries if e.is_file() and e.name.lower().endswith(_JPEG_SUFFIXES)
        )
    stems = np.array([f.stem for f in files], dtype=str)
    try:
        parse_names(stems)
    except FormatError as error:
        raise FormatError(
            files[error.record],
            "file name is not a record name",
            error.record,
            "cNNN_sNNNNN_wNNN.jpg with NNN >= 001",
        ) from None
    return stems.astype(f"U{NAME_LENGTH}"), files


def _open_jpeg_split(split: str, folder: Path) -> RecordSet:
    names, files = _jpeg_files(folder)
    frames_folder = _frames_folder(folder)
    images = None
    if frames_folder is not None:
        frame_names, frame_files = _jpeg_files(frames_folder)
        common, spec_at, frame_at = np.intersect1d(names, frame_names, return_indices=True)
        if len(common) < max(len(names), len(frame_names)):
            warnings.warn(
                f"{folder} + {frames_folder}: kept the {len(common)} records in both; left out "
                f"{len(names) - len(common)} spectrograms without a frame and "
                f"{len(frame_names) - len(common)} frames without a spectrogram",
                stacklevel=3,
            )
        names, files = common, [files[i] for i in spec_at]
        images = JpegStack([frame_files[i] for i in frame_at], IMAGE_SHAPE, "RGB")
    return RecordSet(
        layout="jpeg_tree",
        split=split,
        paths=(folder,) if frames_folder is None else (folder, frames_folder),
        names=names,
        labels=parse_names(names)[0] if len(names) else np.zeros(0, np.int64),
        spectrograms=JpegStack(files, SPECTROGRAM_SHAPE, "L"),
        images=images,
    )


# --------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------


def _check_array(path, what: str, array, count: int, inner: tuple, dtype) -> None:
    shape, actual = tuple(getattr(array, "shape", ())), getattr(array, "dtype", None)
    if shape != (count, *inner) or actual != np.dtype(dtype):
        raise FormatError(
            path,
            f"{what} to write have shape {shape} and dtype {actual}",
            expected=f"{np.dtype(dtype)} of shape {(count, *inner)}",
        )


def _write_records(path, dtype: np.dtype, count: int, fill) -> Path:
    """Write `count` records of `dtype`, built chunk by chunk by fill(chunk, start, stop)."""
    if count == 0:
        raise FormatError(path, "no records to write", expected="at least one record")

    def write(file):
        for start in range(0, count, _CHUNK_RECORDS):
            stop = min(count, start + _CHUNK_RECORDS)
            chunk = np.empty(stop - start, dtype)
            fill(chunk, start, stop)
            chunk.tofile(file)

    return atomic_write(path, write)


def write_audio_bin(path, labels, spectrograms) -> Path:
    """Write an audio_bin file: 1 byte 0-based class index + 128*100 uint8 per record."""
    labels = np.asarray(labels)
    if (
        labels.ndim != 1
        or labels.dtype.kind not in "iu"
        or (labels.size and (labels.min() < 0 or labels.max() > 255))
    ):
        raise FormatError(
            path,
            f"labels to write are {labels.dtype} of shape {labels.shape}",
            expected="1-D integer class indices in 0..255",
        )
    _check_array(path, "spectrograms", spectrograms, len(labels), SPECTROGRAM_SHAPE, np.uint8)

    def fill(chunk, start, stop):
        chunk["label"] = labels[start:stop]
        chunk["spectrogram"] = spectrograms[start:stop]

    return _write_records(path, record_dtype("audio_bin"), len(labels), fill)


def write_spec_image_bin(path, names, spectrograms, images) -> Path:
    """Write a spec_image_bin file: 11-byte label + spectrogram + 96x96x3 image per record."""
    labels = names_to_labels(names, path)
    _check_array(path, "spectrograms", spectrograms, len(labels), SPECTROGRAM_SHAPE, np.uint8)
    _check_array(path, "images", images, len(labels), IMAGE_SHAPE, np.uint8)

    def fill(chunk, start, stop):
        chunk["label"] = labels[start:stop]
        chunk["spectrogram"] = spectrograms[start:stop]
        chunk["image"] = images[start:stop]

    return _write_records(path, record_dtype("spec_image_bin"), len(labels), fill)


def write_embedding_image_bin(path, names, embeddings, images) -> Path:
    """Write an embedding_image_bin file: 11-byte label + D float32 (LE) + image per record.

    D is not stored: name the folder embeddings_<D>_to_images... so that readers find it.
    """
    labels = names_to_labels(names, path)
    dim = getattr(embeddings, "shape", (0, 0))[-1]
    _check_array(path, "embeddings", embeddings, len(labels), (dim,), np.float32)
    _check_array(path, "images", images, len(labels), IMAGE_SHAPE, np.uint8)

    def fill(chunk, start, stop):
        chunk["label"] = labels[start:stop]
        chunk["embedding"] = embeddings[start:stop]
        chunk["image"] = images[start:stop]

    return _write_records(path, record_dtype("embedding_image_bin", dim), len(labels), fill)


def _write_jpegs(folder: Path, names, arrays, inner: tuple, quality: int) -> Path:
    """One JPEG per record in `folder`, named <name>.jpg; each file written atomically."""
    names = np.asarray(names, dtype=str)
    parse_names(names, folder)
    if len(np.unique(names)) != len(names):
        raise FormatError(folder, "duplicate record names", expected="one file per name")
    _check_array(folder, "arrays", arrays, len(names), inner, np.uint8)
    from PIL import Image

    def save(item):
        name, array = item
        options = {"quality": quality, "subsampling": 0}  # 4:4:4 keeps the frames' colour edges
        atomic_write(
            folder / f"{name}.jpg",
            lambda file: Image.fromarray(array).save(file, format="JPEG", **options),
        )

    folder.mkdir(parents=True, exist_ok=True)
    for start in range(0, len(names), _CHUNK_RECORDS):
        chunk = np.asarray(arrays[start : start + _CHUNK_RECORDS])
        list(
            _thread_pool().map(save, zip(names[start : start + _CHUNK_RECORDS], chunk, strict=True))
        )
    return folder


def write_jpeg_tree(root, split: str, names, spectrograms, quality: int = JPEG_QUALITY) -> Path:
    """Write root/split/<name>.jpg: 8-bit grey JPEGs, 100 wide x 128 high (lossy: quality)."""
    return _write_jpegs(Path(root) / split, names, spectrograms, SPECTROGRAM_SHAPE, quality)


def write_image_tree(root, split: str, names, images, quality: int = JPEG_QUALITY) -> Path:
    """Write root/split/<name>.jpg: RGB JPEGs (the frames/ tree paired by name).

    The published frames are 96x96x3; other square or rectangular RGB sizes are accepted
    (e.g. `s2i ingest --frame-size 128`), since only the .bin layouts fix the size.
    """
    images_shape = tuple(np.shape(images)[1:])
    if len(images_shape) != 3 or images_shape[2] != 3:
        raise FormatError(
            Path(root) / split, f"images of shape {images_shape}", expected="(N, H, W, 3) RGB"
        )
    return _write_jpegs(Path(root) / split, names, images, images_shape, quality)


# --------------------------------------------------------------------------------------
# Converting, describing, exporting
# --------------------------------------------------------------------------------------

_NEEDS = {
    "audio_bin": ("spectrograms",),
    "spec_image_bin": ("spectrograms", "images"),
    "embedding_image_bin": ("embeddings", "images"),
    "jpeg_tree": ("spectrograms",),
}


def convert(
    src,
    dst,
    to_layout: str,
    records_per_file: int = 10000,
    layout: str | None = None,
    embedding_dim: int | None = None,
) -> Path:
    """Convert a data set to another layout in a new folder `dst`; returns dst.

    Arguments: to_layout, one of LAYOUTS; records_per_file, records per .bin output file;
    layout / embedding_dim describe `src` (inferred when None). A jpeg_tree target with
    images becomes dst/spectrograms/{split} + dst/frames/{split}. audio_bin keeps no names
    (read back, records are named by position). The folder appears only when complete.
    """
    import shutil

    dst = Path(dst)
    if dst.exists() and (not dst.is_dir() or any(dst.iterdir())):
        raise FormatError(
            dst, "destination exists and is not empty", expected="a new or empty folder"
        )
    if to_layout not in LAYOUTS:
        raise FormatError(
            dst, f"unknown layout {to_layout!r}", expected=f"one of {', '.join(LAYOUTS)}"
        )
    if records_per_file < 1:
        raise FormatError(dst, f"records_per_file is {records_per_file}", expected="at least 1")
    records = open_records(src, layout, embedding_dim)
    for split, recordset in records.items():
        missing = [k for k in _NEEDS[to_layout] if getattr(recordset, k) is None]
        if missing:
            raise FormatError(
                src,
                f"{recordset.layout} {split} records have no {' or '.join(missing)}",
                expected=f"{', '.join(_NEEDS[to_layout])} for {to_layout}",
            )
    staging = dst.parent / f".{dst.name}.partial-{os.getpid()}"
    staging.mkdir(parents=True)
    try:
        for recordset in records.values():
            _write_split(staging, to_layout, recordset, records_per_file)
        if dst.exists():
            dst.rmdir()
        os.replace(staging, dst)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return dst


def _write_split(folder: Path, to_layout: str, records: RecordSet, records_per_file: int) -> None:
    if to_layout == "jpeg_tree":
        try:
            names = tree_names(records.names, "names")
        except FormatError as error:
            path, record = _record_source(records, error.record)
            raise FormatError(path, error.problem, record, error.expected) from None
        if records.images is None:
            write_jpeg_tree(folder, records.split, names, records.spectrograms)
        else:
            write_jpeg_tree(folder / "spectrograms", records.split, names, records.spectrograms)
            write_image_tree(folder / "frames", records.split, names, records.images)
        return
    for number, start in enumerate(range(0, len(records), records_per_file), start=1):
        stop = min(len(records), start + records_per_file)
        path = folder / f"{BIN_PREFIX[records.split]}_batch_{number:03d}.bin"
        names = records.names[start:stop]
        rows = {
            k: _RowRange(getattr(records, k), start, stop)
            for k in ("spectrograms", "images", "embeddings")
            if getattr(records, k) is not None
        }
        if to_layout == "audio_bin":
            write_audio_bin(path, records.labels[start:stop], rows["spectrograms"])
        elif to_layout == "spec_image_bin":
            write_spec_image_bin(path, names, rows["spectrograms"], rows["images"])
        else:
            write_embedding_image_bin(path, names, rows["embeddings"], rows["images"])


def _record_source(records: RecordSet, record: int) -> tuple[Path | str, int]:
    """The file record `record` of a split came from, and its index in that file."""
    array = next(a for a in (records.spectrograms, records.embeddings) if a is not None)
    offsets = getattr(array, "offsets", None)  # a ConcatArray over the split's .bin files
    if offsets is None or len(offsets) != len(records.paths) + 1:
        return (records.paths[0] if records.paths else f"{records.split} records"), record
    part = int(np.searchsorted(offsets, record, side="right")) - 1
    return records.paths[part], record - int(offsets[part])


def _sample_indices(count: int, sample_size: int) -> np.ndarray:
    return np.unique(np.linspace(0, count - 1, min(count, sample_size)).round().astype(np.int64))


_LABELLED_LAYOUTS = ("spec_image_bin", "embedding_image_bin")  # records with an 11-byte label


def label_id_counts(names) -> dict[str, int]:
    """How many record ids follow each known spelling, and how many are kept as written."""
    _, _, spellings = label_ids(names_to_labels(names))
    counts = {spelling: int((spellings == i).sum()) for i, spelling in enumerate(ID_SPELLINGS)}
    counts["as written"] = int((spellings < 0).sum())
    return counts


def describe(records_by_split: dict[str, RecordSet], sample_size: int = 2000) -> dict:
    """A JSON-ready summary: layout, counts per split and class, label ids, shapes, value ranges.

    Value ranges (min/max/mean) come from an evenly spaced sample of at most `sample_size`
    records per split, so that describing a large set stays fast.
    """
    first = next(iter(records_by_split.values()))
    summary = {
        "layout": first.layout,
        "total_records": int(sum(len(r) for r in records_by_split.values())),
        "value_ranges": f"min/max/mean over an evenly spaced sample of at most {sample_size} records per split",
        "splits": {},
    }
    for split, records in records_by_split.items():
        classes, counts = np.unique(records.labels, return_counts=True)
        entry = {
            "count": len(records),
            "paths": [str(p) for p in records.paths],
            "class_counts": {str(int(c)): int(n) for c, n in zip(classes, counts, strict=True)},
            "arrays": {},
            "extra": sorted(records.extra),
        }
        if records.layout in _LABELLED_LAYOUTS:
            entry["label_ids"] = label_id_counts(records.names)
        sample = _sample_indices(len(records), sample_size)
        for key in ("spectrograms", "images", "embeddings"):
            array = getattr(records, key)
            if array is None:
                continue
            values = np.asarray(array[sample]) if len(sample) else np.zeros(0)
            entry["arrays"][key] = {
                "shape": [int(n) for n in array.shape],
                "dtype": str(array.dtype),
                "sample_records": len(sample),
                "min": float(values.min()) if values.size else None,
                "max": float(values.max()) if values.size else None,
                "mean": round(float(values.mean(dtype=np.float64)), 4) if values.size else None,
            }
        summary["splits"][split] = entry
    return summary


def export_npz(records, out_path, chunk_records: int = _CHUNK_RECORDS) -> Path:
    """Write records (a RecordSet or {split: RecordSet}) to one uncompressed .npz.

    Arrays: names (str), labels (int64), splits (str), and spectrograms (uint8 Nx128x100),
    images (uint8 NxHxWxC), embeddings (float32 NxD) where every split has them. Each array
    is streamed into the archive chunk by chunk, so memory stays bounded by `chunk_records`
    records whatever the data size (np.savez would need every array in memory at once).
    """
    import zipfile

    sets = [records] if isinstance(records, RecordSet) else list(records.values())
    if not sets:
        raise FormatError(out_path, "no records to export")
    columns = [
        k
        for k in ("spectrograms", "images", "embeddings")
        if all(getattr(r, k) is not None for r in sets)
    ]
    total = sum(len(r) for r in sets)
    name_dtype = np.result_type(*[np.asarray(r.names, dtype=str).dtype for r in sets])

    def write(file):
        with zipfile.ZipFile(file, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
            _npy_member(
                archive, "names", name_dtype, (total,), (np.asarray(r.names, str) for r in sets)
            )
            _npy_member(archive, "labels", np.int64, (total,), (r.labels for r in sets))
            _npy_member(
                archive,
                "splits",
                np.dtype("U5"),
                (total,),
                (np.full(len(r), r.split, "U5") for r in sets),
            )
            for key in columns:
                inner = getattr(sets[0], key).shape[1:]
                chunks = (
                    getattr(r, key)[start : start + chunk_records]
                    for r in sets
                    for start in range(0, len(r), chunk_records)
                )
                _npy_member(archive, key, getattr(sets[0], key).dtype, (total, *inner), chunks)

    return atomic_write(out_path, write)


def _npy_member(archive, key: str, dtype, shape: tuple, chunks) -> None:
    """Stream chunks of one array into an .npz archive as key.npy (.npy format 1.0)."""
    dtype = np.dtype(dtype)
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
    with archive.open(f"{key}.npy", "w", force_zip64=True) as member:
        np.lib.format.write_array_header_1_0(member, header)
        written = 0
        for chunk in chunks:
            chunk = np.ascontiguousarray(chunk, dtype=dtype)
            if chunk.shape[1:] != tuple(shape[1:]):
                raise FormatError(
                    key, f"chunk of shape {chunk.shape}", expected=f"rows of {shape[1:]}"
                )
            member.write(chunk.tobytes())
            written += len(chunk)
    if written != shape[0]:
        raise FormatError(key, f"{written} rows written", expected=f"{shape[0]} rows")
