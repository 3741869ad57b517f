"""Device selection shared by training, imagining and evaluation."""

from __future__ import annotations

import os

import torch

from s2ilib.errors import S2IError


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """'auto' (or None) -> CUDA when available, else CPU; otherwise the named device, checked."""
    if isinstance(name, torch.device):
        return name
    if name in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise S2IError(f"--device {name!r}: not a device name ({error})") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise S2IError(
            f"--device {name!r}: CUDA is not available on this machine (use cpu or auto)"
        )
    return device


def use_all_cores(threads: int | None = None) -> int:
    """Let torch use `threads` threads, else OMP_NUM_THREADS when set, else every core this
    process may run on (some environments start torch on fewer); returns the count."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    threads = threads or int(os.environ.get("OMP_NUM_THREADS") or 0) or cores or 1
    torch.set_num_threads(threads)
    return torch.get_num_threads()
