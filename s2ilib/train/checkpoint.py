"""Checkpoints written atomically, with everything a killed run needs to resume exactly.

A checkpoint is a dict saved with torch.save: the networks' and optimisers' state dicts,
the position (step, epoch, batch within the epoch), the RNG states of torch (CPU and every
CUDA device), numpy and Python, and the adversarial loss's state; under torchrun also
`world_size` and `rng_by_rank` (every rank's RNG state, rank 0's being "rng"), so that each
rank resumes its own dropout stream (train.loop.restore_rng). It is written to a
temporary file in the same folder, flushed to disk, then renamed over the target
(os.replace), so a process killed at any moment leaves either the old or the new file,
never a torn one.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch

from s2ilib.errors import S2IError
from s2ilib.train.rundir import CHECKPOINT_DIR, LAST_CHECKPOINT, latest_checkpoint

__all__ = ["latest_checkpoint"]  # defined in rundir (torch-free), re-exported here

_TEMP_PREFIX = ".tmp-"


def step_checkpoint_name(step: int) -> str:
    """File name of the kept checkpoint of `step`."""
    return f"step_{step:07d}.pt"


def rng_state() -> dict:
    """Current state of every random generator the training draws from."""
    state = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore the generators saved by `rng_state` (CUDA only when saved and present)."""
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA), numpy and Python's random."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def atomic_torch_save(obj, path) -> Path:
    """torch.save to `path` through a temporary file + fsync + os.replace."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f"{_TEMP_PREFIX}{path.name}.{os.getpid()}")
    try:
        with open(temp, "wb") as file:
            torch.save(obj, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    _fsync_folder(path.parent)
    return path


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (a no-op where folders cannot be opened)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def save_checkpoint(run_dir, state: dict, step: int, keep: bool = False) -> Path:
    """Write checkpoints/last.pt (and, with `keep`, step_XXXXXXX.pt: a hard link, no copy)."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    last = folder / LAST_CHECKPOINT
    if not keep:
        return atomic_torch_save(state, last)
    kept = atomic_torch_save(state, folder / step_checkpoint_name(step))
    temp = folder / f"{_TEMP_PREFIX}{LAST_CHECKPOINT}.{os.getpid()}"
    temp.unlink(missing_ok=True)
    os.link(kept, temp)
    os.replace(temp, last)
    _fsync_folder(folder)
    return last


def remove_stale_temp_files(run_dir) -> None:
    """Delete temporary files a killed writer left in checkpoints/."""
    for temp in (Path(run_dir) / CHECKPOINT_DIR).glob(f"{_TEMP_PREFIX}*"):
        temp.unlink(missing_ok=True)


def load_checkpoint(path, map_location="cpu") -> dict:
    """A checkpoint dict; a clear S2IError when the file is not one."""
    try:
        # weights_only=False: the RNG states hold numpy arrays and Python tuples.
        return torch.load(path, map_location=map_location, weights_only=False)
    except (OSError, RuntimeError, EOFError, ValueError) as error:
        raise S2IError(f"{path}: cannot read this checkpoint ({error})") from error
