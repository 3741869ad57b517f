"""The task registry: every kind of run, and starting or resuming one by its kind.

    train_autoencoder, train_align, train_gan, train_flow, train_informativity, train_ceiling
        -> start_run(kind, config, ...) -> engine.start(Task, Task.plan(config), ...)
    resume_run(run_dir) -> engine.resume(TASKS[kind of the run], ...)

This module sits above the tasks: the engine below knows only the Task protocol.
"""

from __future__ import annotations

from pathlib import Path

from s2ilib.errors import S2IError
from s2ilib.runs.rundir import CONFIG_FILE, read_config
from s2ilib.train import engine
from s2ilib.train.ae import AETask
from s2ilib.train.align import AlignTask
from s2ilib.train.ceiling import CeilingTask
from s2ilib.train.flow import FlowTask
from s2ilib.train.gan import GANTask
from s2ilib.train.informativity import InformativityTask

TASKS = {
    task.kind: task
    for task in (AETask, AlignTask, GANTask, FlowTask, InformativityTask, CeilingTask)
}


def start_run(
    kind: str,
    config,
    runs_root="runs",
    desc: str | None = None,
    run_dir=None,
    device=None,
    progress_bar: bool = True,
) -> Path:
    """Train a new run of `kind` with `config` in a new run directory; returns its path.

    runs_root: where runs/NNNNN-<kind>-<desc> is made (unless `run_dir` names the exact
    folder); desc: the name's suffix (default: data, preset, width, ...).
    """
    task_class = TASKS[kind]
    if not isinstance(config, task_class.config_class):
        raise TypeError(f"a {kind} run takes a {task_class.config_class.__name__}")
    plan = task_class.plan(config)
    return engine.start(task_class, plan, runs_root, desc, run_dir, device, progress_bar)


def resume_run(run_dir, device=None, progress_bar: bool = True, kind: str | None = None) -> Path:
    """Continue a run from its latest checkpoint; `kind`: the kind the caller expects (the
    run's own kind otherwise), an error naming both when they differ."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise S2IError(f"{run_dir}: no such run directory to resume")
    document = read_config(run_dir)
    found = document.get("kind")
    if found not in TASKS:
        raise S2IError(f"{run_dir / CONFIG_FILE}: unknown run kind {found!r}")
    if kind is not None and found != kind:
        raise S2IError(
            f"{run_dir}: a run of kind {found!r}, not {kind!r}: resume it with "
            f"`s2i train-{found} --resume {run_dir}`"
        )
    return engine.resume(TASKS[found], run_dir, document, device, progress_bar)


def train_autoencoder(config, runs_root="runs", desc=None, run_dir=None, device=None,
                      progress_bar: bool = True) -> Path:  # fmt: skip
    """Stage 1 (AETrainConfig) in a new run directory; returns its path."""
    return start_run("ae", config, runs_root, desc, run_dir, device, progress_bar)


def train_align(config, runs_root="runs", desc=None, run_dir=None, device=None,
                progress_bar: bool = True) -> Path:  # fmt: skip
    """The alignment stage (AlignTrainConfig) on an AE run; returns the new run's path."""
    return start_run("align", config, runs_root, desc, run_dir, device, progress_bar)


def train_gan(config, runs_root="runs", desc=None, run_dir=None, device=None,
              progress_bar: bool = True) -> Path:  # fmt: skip
    """Stage 2 (GANTrainConfig) on an AE or align run; returns the new run's path."""
    return start_run("gan", config, runs_root, desc, run_dir, device, progress_bar)


def train_flow(config, runs_root="runs", desc=None, run_dir=None, device=None,
               progress_bar: bool = True) -> Path:  # fmt: skip
    """Recipe `flow`'s decoder (FlowTrainConfig) on an AE or align run; returns its path."""
    return start_run("flow", config, runs_root, desc, run_dir, device, progress_bar)


def train_informativity(config, runs_root="runs", desc=None, run_dir=None, device=None,
                        progress_bar: bool = True) -> Path:  # fmt: skip
    """The informativity classifiers (InformativityTrainConfig); returns the run's path."""
    return start_run("informativity", config, runs_root, desc, run_dir, device, progress_bar)


def train_ceiling(config, runs_root="runs", desc=None, run_dir=None, device=None,
                  progress_bar: bool = True) -> Path:  # fmt: skip
    """The supervised ceiling (CeilingTrainConfig); returns the run's path."""
    return start_run("ceiling", config, runs_root, desc, run_dir, device, progress_bar)
