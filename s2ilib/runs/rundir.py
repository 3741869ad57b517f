"""Run directories that explain themselves: creating, describing and logging them.

    runs/NNNNN-<kind>-<desc>/
        config.json        the full resolved config: training, networks, data path, AE run
        environment.json   python/torch versions, device, git commit, host, CPU count
        log.txt            what the run printed
        stats.jsonl        one JSON line per log interval: step, epoch, losses, grad norms, lr
        events.out.tfevents.*   TensorBoard
        samples/step_XXXXXXX.png
        checkpoints/last.pt (+ step_XXXXXXX.pt when kept)

NNNNN is the next free number in the runs root; an existing directory is never reused
except by `--resume`. Torch-free (TensorBoard's writer is imported when a log opens).
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

from s2ilib.atomic import write_text
from s2ilib.errors import S2IError

CONFIG_FILE = "config.json"
ENVIRONMENT_FILE = "environment.json"
LOG_FILE = "log.txt"
STATS_FILE = "stats.jsonl"
SAMPLES_DIR = "samples"
CHECKPOINT_DIR = "checkpoints"
LAST_CHECKPOINT = "last.pt"
RUN_KINDS = ("ae", "align", "gan", "flow", "informativity", "ceiling")
_RUN_NAME = re.compile(r"^(\d{5})-")


def sanitize_desc(text: str) -> str:
    """A description safe in a folder name: letters, digits, '.', '_' and '-' only."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "run"


def next_run_number(runs_root) -> int:
    """1 + the highest NNNNN- prefix among the runs root's entries (0 when none)."""
    root = Path(runs_root)
    numbers = [int(m.group(1)) for p in root.iterdir() if (m := _RUN_NAME.match(p.name))]
    return max(numbers, default=-1) + 1


def create_run_dir(runs_root, kind: str, desc: str, run_dir=None) -> Path:
    """Create and return a new run directory: `run_dir` if given, else runs_root/NNNNN-kind-desc.

    Refuses (S2IError) to reuse an existing directory: continue a run with --resume instead.
    """
    if kind not in RUN_KINDS:
        raise ValueError(f"run kind {kind!r}: expected one of {RUN_KINDS}")
    if run_dir is not None:
        run_dir = Path(run_dir)
        if run_dir.exists():
            raise S2IError(
                f"{run_dir}: run directory exists; pass --resume {run_dir} to continue it"
            )
        run_dir.mkdir(parents=True)
        return run_dir
    root = Path(runs_root)
    root.mkdir(parents=True, exist_ok=True)
    for _ in range(100):  # another process may take the same number between scan and mkdir
        candidate = root / f"{next_run_number(root):05d}-{kind}-{sanitize_desc(desc)}"
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise S2IError(f"{root}: could not create a new run directory")


def read_config(run_dir) -> dict:
    """The config.json of a run, with a clear error when it is not a run directory."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise S2IError(f"{run_dir}: not a run directory (no {CONFIG_FILE})")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise S2IError(f"{path}: not valid JSON ({error})") from error


def read_environment(run_dir) -> dict:
    """A run's environment.json ({} when it has none)."""
    path = Path(run_dir) / ENVIRONMENT_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def git_commit(folder) -> str | None:
    """The commit of the git work tree holding `folder` (+ '-dirty'), or None."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=10
        )
        if commit.returncode != 0:
            return None
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return commit.stdout.strip() + ("-dirty" if status.stdout.strip() else "")


def environment_info(device) -> dict:
    """What the run ran on: versions, device, git commit, host, CPU count and threads."""
    import numpy
    import torch

    info = {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
        "hostname": socket.gethostname(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "openmp": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")},
        "device": str(device),
        "cuda": torch.version.cuda,
        "git_commit": git_commit(Path(__file__).resolve().parent),
        "command": sys.argv,
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    if torch.device(device).type == "cuda":
        info["device_name"] = torch.cuda.get_device_name(torch.device(device))
    return info


def _stats_step(line: str) -> float:
    """The step of a stats.jsonl line; infinity for a torn (unparsable) line."""
    try:
        return json.loads(line)["step"]
    except (json.JSONDecodeError, KeyError, TypeError):
        return math.inf


class RunLog:
    """log.txt, stats.jsonl and TensorBoard of one run (appending when resumed)."""

    def __init__(self, run_dir, resume_step: int = 0, tensorboard: bool = True):
        self.run_dir = Path(run_dir)
        if resume_step:
            self._drop_stats_after(resume_step)
        self.log_file = open(self.run_dir / LOG_FILE, "a", buffering=1)
        self.stats_file = open(self.run_dir / STATS_FILE, "a", buffering=1)
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            # purge_step drops events a killed run wrote after its last checkpoint.
            self.writer = SummaryWriter(str(self.run_dir), purge_step=resume_step or None)

    def _drop_stats_after(self, step: int) -> None:
        """Remove stats lines a killed run wrote after the checkpoint it resumes from, and a
        line it was killed in the middle of."""
        path = self.run_dir / STATS_FILE
        if path.is_file():
            kept = [line for line in path.read_text().splitlines() if _stats_step(line) <= step]
            write_text(path, "".join(line + "\n" for line in kept))

    def info(self, message: str, echo: bool = True) -> None:
        """A time-stamped line in log.txt (and on stderr)."""
        line = f"{time.strftime('%H:%M:%S')} {message}"
        self.log_file.write(line + "\n")
        if echo:
            print(line, file=sys.stderr, flush=True)

    def stats(self, row: dict) -> None:
        """One stats.jsonl line; numeric fields also go to TensorBoard at row['step']."""
        self.stats_file.write(json.dumps(row) + "\n")
        if self.writer is None:
            return
        for key, value in row.items():
            if key not in ("step", "epoch", "time") and isinstance(value, int | float):
                self.writer.add_scalar(key, value, row["step"])

    def image(self, tag: str, image_chw, step: int) -> None:
        """A sample grid (C, H, W) in [0, 1] to TensorBoard."""
        if self.writer is not None:
            self.writer.add_image(tag, image_chw, step)

    def close(self) -> None:
        self.log_file.close()
        self.stats_file.close()
        if self.writer is not None:
            self.writer.close()
