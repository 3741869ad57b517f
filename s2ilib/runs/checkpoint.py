"""Checkpoints written atomically, with everything a killed run needs to resume exactly.

A checkpoint is a dict saved with torch.save: the networks' and optimisers' state dicts,
the position (step, epoch, batch within the epoch), the RNG states of torch (CPU and every
CUDA device), numpy and Python (s2ilib.seeding), and the task's own state (a loss's moving
averages, a model selection's best weights); under torchrun also `world_size` and
`rng_by_rank` (every rank's RNG state, rank 0's being "rng"), so that each rank resumes its
own dropout stream. It is written through s2ilib.atomic (temporary file, fsync, rename), so a
process killed at any moment leaves either the old or the new file, never a torn one.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch

from s2ilib.atomic import TEMP_PREFIX, atomic_write, fsync_folder, remove_temp_files
from s2ilib.errors import S2IError
from s2ilib.runs.rundir import CHECKPOINT_DIR, LAST_CHECKPOINT

_STEP_CHECKPOINT = re.compile(r"^step_(\d+)\.pt$")


def step_checkpoint_name(step: int) -> str:
    """File name of the kept checkpoint of `step`."""
    return f"step_{step:07d}.pt"


def latest_checkpoint(run_dir) -> Path | None:
    """checkpoints/last.pt of a run, else its highest step_XXXXXXX.pt, else None."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    if (folder / LAST_CHECKPOINT).is_file():
        return folder / LAST_CHECKPOINT
    kept = [
        (int(match.group(1)), path)
        for path in folder.glob("step_*.pt")
        if (match := _STEP_CHECKPOINT.match(path.name))
    ]
    return max(kept)[1] if kept else None


def atomic_torch_save(obj, path) -> Path:
    """torch.save to `path` through s2ilib.atomic (temporary file, fsync, rename)."""
    return atomic_write(path, lambda file: torch.save(obj, file), durable=True)


def save_checkpoint(run_dir, state: dict, step: int, keep: bool = False) -> Path:
    """Write checkpoints/last.pt (and, with `keep`, step_XXXXXXX.pt: a hard link, no copy)."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    last = folder / LAST_CHECKPOINT
    if not keep:
        return atomic_torch_save(state, last)
    kept = atomic_torch_save(state, folder / step_checkpoint_name(step))
    temporary = folder / f"{TEMP_PREFIX}{LAST_CHECKPOINT}.{os.getpid()}"
    temporary.unlink(missing_ok=True)
    os.link(kept, temporary)
    os.replace(temporary, last)
    fsync_folder(folder)
    return last


def remove_stale_temp_files(run_dir) -> None:
    """Delete temporary files a killed writer left in checkpoints/."""
    remove_temp_files(Path(run_dir) / CHECKPOINT_DIR)


def load_checkpoint(path, map_location="cpu") -> dict:
    """A checkpoint dict; a clear S2IError when the file is not one."""
    try:
        # weights_only=False: the RNG states hold numpy arrays and Python tuples.
        return torch.load(path, map_location=map_location, weights_only=False)
    except (OSError, RuntimeError, EOFError, ValueError) as error:
        raise S2IError(f"{path}: cannot read this checkpoint ({error})") from error
