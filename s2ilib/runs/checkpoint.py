"""Checkpoints written atomically, with everything a killed run needs to resume exactly.

A checkpoint is a dict saved with torch.save: the networks' and optimisers' state dicts,
the position (step, epoch, batch within the epoch), the RNG states of torch (CPU and every
CUDA device), numpy and Python (s2ilib.seeding), and the task's own state (a loss's moving
averages, a model selection's best weights); under torchrun also `world_size` and
`rng_by_rank` (every rank's RNG state, rank 0's being "rng"), so that each rank resumes its
own dropout stream. It is written through s2ilib.atomic (temporary file, fsync, rename), so a
process killed at any moment leaves either the old or the new file, never a torn one.

A kept checkpoint (step_XXXXXXX.pt) is a file of its own, a copy of last.pt, not a link to
it: a last.pt damaged later (a full disk, a bad copy, a truncation) leaves the kept ones
whole, and `readable_checkpoint` falls back to the newest of them.
"""

from __future__ import annotations

import pickle
import re
import shutil
from pathlib import Path

import torch

from s2ilib.atomic import atomic_write, remove_temp_files
from s2ilib.errors import S2IError
from s2ilib.runs.rundir import CHECKPOINT_DIR, LAST_CHECKPOINT

_STEP_CHECKPOINT = re.compile(r"^step_(\d+)\.pt$")


class CheckpointError(S2IError):
    """A file that cannot be read as a checkpoint (torn, truncated, another kind of file)."""

    def __init__(self, path, reason: str):
        self.path, self.reason = Path(path), reason
        super().__init__(f"{path}: cannot read this checkpoint ({reason})")


def step_checkpoint_name(step: int) -> str:
    """File name of the kept checkpoint of `step`."""
    return f"step_{step:07d}.pt"


def checkpoints_newest_first(run_dir) -> list[Path]:
    """checkpoints/last.pt of a run (when present), then its step_XXXXXXX.pt, highest step
    first: the order a resume tries them in."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    kept = sorted(
        (
            (int(match.group(1)), path)
            for path in folder.glob("step_*.pt")
            if (match := _STEP_CHECKPOINT.match(path.name))
        ),
        reverse=True,
    )
    last = [folder / LAST_CHECKPOINT] if (folder / LAST_CHECKPOINT).is_file() else []
    return last + [path for _, path in kept]


def latest_checkpoint(run_dir) -> Path | None:
    """checkpoints/last.pt of a run, else its highest step_XXXXXXX.pt, else None."""
    candidates = checkpoints_newest_first(run_dir)
    return candidates[0] if candidates else None


def atomic_torch_save(obj, path) -> Path:
    """torch.save to `path` through s2ilib.atomic (temporary file, fsync, rename)."""
    return atomic_write(path, lambda file: torch.save(obj, file), durable=True)


def save_checkpoint(run_dir, state: dict, step: int, keep: bool = False) -> Path:
    """Write checkpoints/last.pt and, with `keep`, step_XXXXXXX.pt: a copy of it, written
    atomically in its turn, so that damage to either file never reaches the other."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    last = atomic_torch_save(state, folder / LAST_CHECKPOINT)
    if keep:
        with open(last, "rb") as source:
            copy = lambda file: shutil.copyfileobj(source, file)  # noqa: E731
            atomic_write(folder / step_checkpoint_name(step), copy, durable=True)
    return last


def remove_stale_temp_files(run_dir) -> None:
    """Delete temporary files a killed writer left in checkpoints/."""
    remove_temp_files(Path(run_dir) / CHECKPOINT_DIR)


def load_checkpoint(path, map_location="cpu") -> dict:
    """A checkpoint dict; a clear S2IError when the file is not one (torn, truncated,
    another kind of file)."""
    try:
        # weights_only=False: the RNG states hold numpy arrays and Python tuples.
        state = torch.load(path, map_location=map_location, weights_only=False)
    except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as error:
        raise CheckpointError(path, _first_sentence(error)) from error
    if not isinstance(state, dict):
        raise CheckpointError(path, f"not a checkpoint: a {type(state).__name__}, not a dict")
    return state


def _first_sentence(error: Exception) -> str:
    """The gist of a reader's error: torch's add paragraphs of advice to the first line."""
    text = str(error).strip()
    return text.splitlines()[0].split(". ")[0] if text else type(error).__name__


def readable_checkpoint(run_dir, map_location="cpu") -> tuple[Path, dict, str | None] | None:
    """The newest checkpoint of a run that can be read: (path, state, note), the note
    saying which newer files could not be read and why ("checkpoints/last.pt cannot be
    read (...); resuming from checkpoints/step_0000040.pt"), None when the newest could.
    None when the run has no checkpoint; an S2IError naming every file tried when none
    can be read."""
    run_dir = Path(run_dir)
    failures = []
    for path in checkpoints_newest_first(run_dir):
        try:
            state = load_checkpoint(path, map_location)
            if "progress" not in state:  # a run saved before the engine: nothing to resume
                raise CheckpointError(path, "not a training checkpoint: no progress in it")
        except CheckpointError as error:
            failures.append(f"{path.relative_to(run_dir)} cannot be read ({error.reason})")
            continue
        note = None
        if failures:
            note = "; ".join(failures) + f"; resuming from {path.relative_to(run_dir)}"
        return path, state, note
    if failures:
        raise S2IError(
            f"{run_dir}: no checkpoint can be read: {'; '.join(failures)} (restore a "
            "checkpoint into checkpoints/ or start a new run)"
        )
    return None
