"""Atomic file writes: a temporary file next to the target, then a rename over it.

A process killed at any moment leaves either the old file or the new one, never a torn
one. Every writer of the workbook goes through `atomic_write` (data files, JSON records,
checkpoints). Temporary files start with TEMP_PREFIX, so a later run can sweep what a killed
writer left (`remove_temp_files`). Torch-free.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

TEMP_PREFIX = ".tmp-"


def atomic_write(path, write, durable: bool = False) -> Path:
    """Call write(file) on a binary temporary file next to `path`, then rename it over `path`.

    durable: also fsync the file and its folder (checkpoints: the rename survives a crash).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f"{TEMP_PREFIX}{path.name}.")
    try:
        with os.fdopen(handle, "wb") as file:
            write(file)
            if durable:
                file.flush()
                os.fsync(file.fileno())
        os.chmod(temporary, 0o644)  # mkstemp makes it private; the target is a normal file
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    if durable:
        fsync_folder(path.parent)
    return path


def write_bytes(path, data: bytes, durable: bool = False) -> Path:
    """`data` written atomically to `path`."""
    return atomic_write(path, lambda file: file.write(data), durable)


def write_text(path, text: str, durable: bool = False) -> Path:
    """`text` (UTF-8) written atomically to `path`."""
    return write_bytes(path, text.encode("utf-8"), durable)


def write_json(path, value, indent: int = 2, default=None, allow_nan: bool = True) -> Path:
    """`value` as JSON (one trailing newline) written atomically to `path`.

    allow_nan: False refuses NaN and infinities (ValueError) instead of writing the
    `NaN` / `Infinity` that strict JSON readers reject.
    """
    text = json.dumps(value, indent=indent, default=default, allow_nan=allow_nan)
    return write_text(path, text + "\n")


def fsync_folder(folder) -> None:
    """Make a rename inside `folder` durable (a no-op where folders cannot be opened)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def remove_temp_files(folder) -> None:
    """Delete the temporary files a killed writer left in `folder`."""
    for temporary in Path(folder).glob(f"{TEMP_PREFIX}*"):
        temporary.unlink(missing_ok=True)
