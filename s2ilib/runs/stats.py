"""What a run logged: its stats table, its sample grids and its warnings."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from s2ilib.errors import S2IError
from s2ilib.runs.rundir import LOG_FILE, SAMPLES_DIR, STATS_FILE, read_config

RECALL_FILE = "recall.json"  # a flow run's recall choice (train.flow.FlowTask.finish)
METRICS_FILE = "metrics.json"  # what an informativity or ceiling run measured at its end

_SAMPLE_GRID = re.compile(r"^step_(\d+)\.png$")
STALL_MARK = "warning: discriminator stalled"  # written by s2ilib.train.stall
DISCRIMINATOR_KINDS = ("gan",)  # the kinds of run that train a discriminator (a flow has none)


def read_stats(run_dir):
    """A run's stats.jsonl as a pandas table (one row per logged step)."""
    import pandas as pd

    path = Path(run_dir) / STATS_FILE
    return pd.DataFrame(
        [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    )


def read_stats_by(runs: dict, column: str):
    """Several runs' stats in one table, each row labelled with its run's name in `column`
    (runs: {name: run directory}), to plot them side by side."""
    import pandas as pd

    tables = [read_stats(path).assign(**{column: name}) for name, path in runs.items()]
    return pd.concat(tables, ignore_index=True)


def sample_grids(run_dir) -> dict[int, Path]:
    """Every sample grid of a run, by the step it was drawn at (in step order)."""
    found = {}
    for path in (Path(run_dir) / SAMPLES_DIR).glob("step_*.png"):
        if match := _SAMPLE_GRID.match(path.name):
            found[int(match.group(1))] = path
    return dict(sorted(found.items()))


def sample_grid_paths(run_dir, count: int = 3) -> list[Path]:
    """Up to `count` sample grids of a run, evenly spread from first to last."""
    paths = list(sample_grids(run_dir).values())
    if len(paths) <= count:
        return paths
    picks = np.linspace(0, len(paths) - 1, count).round().astype(int)
    return [paths[i] for i in picks]


def sample_grid_near(run_dir, step: int) -> Path:
    """The sample grid drawn closest to `step` (to compare runs at equal length)."""
    grids = sample_grids(run_dir)
    if not grids:
        raise FileNotFoundError(f"{run_dir}: no sample grids in {SAMPLES_DIR}/")
    return grids[min(grids, key=lambda drawn: abs(drawn - step))]


def has_discriminator(run_dir) -> bool:
    """Whether a run trained a discriminator (a GAN run), so that it can have stalled."""
    return read_config(run_dir).get("kind") in DISCRIMINATOR_KINDS


def stall_warnings(run_dir) -> list[str]:
    """The discriminator-stall warnings a GAN run logged (lines of its log.txt), oldest first;
    none for a run with no discriminator (a flow run), whatever its log says."""
    if not has_discriminator(run_dir):
        return []
    log = Path(run_dir) / LOG_FILE
    if not log.is_file():
        return []
    return [line for line in log.read_text().splitlines() if STALL_MARK in line]


def stall_report(runs: dict) -> dict[str, list[str] | str]:
    """{name: its stall warnings, or "no stall"} for the runs ({name: run directory}) that
    have a discriminator to stall; runs without one (flow runs) are left out."""
    report = {}
    for name, path in runs.items():
        if has_discriminator(path):
            report[name] = stall_warnings(path) or "no stall"
    return report


def read_recall_choice(run_dir) -> dict | None:
    """The front weight a flow run's validation split chose for its recall, with the
    accuracy at each weight (recall.json: s2ilib.train.flow.choose_front_weight), or None
    for a run that made no such choice (no frozen front, no recall, a weight given)."""
    path = Path(run_dir) / RECALL_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def read_metrics(run_dir) -> dict:
    """The metrics.json a finished informativity or ceiling run wrote."""
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        raise S2IError(f"{run_dir}: no {METRICS_FILE} (the run has not finished)")
    return json.loads(path.read_text())
