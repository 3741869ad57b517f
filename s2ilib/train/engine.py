"""The one training engine: every task of the workbook trains through it.

A *task* (the `Task` protocol: AETask, AlignTask, GANTask, InformativityTask, CeilingTask)
knows its networks, data and one optimisation step; the engine knows time: epochs and
steps, the learning-rate schedule, the progress bar, stats (log.txt, stats.jsonl,
TensorBoard), sample grids, checkpoints, the NaN guard, resuming. Reproducibility: the data
order of epoch e is drawn from a generator seeded with (seed, e) alone, and a checkpoint
stores the position within the epoch, every RNG state and the task's own state, so a
resumed run replays exactly the steps an uninterrupted one would have taken. Under torchrun
(s2ilib.distributed) every rank runs the engine on its slice of each global batch; rank 0
alone logs, samples and writes the run directory.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import sys
import time
import warnings
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np
import torch
from torch.utils.data import DataLoader

from s2ilib import distributed
from s2ilib.atomic import write_json
from s2ilib.devices import use_all_cores
from s2ilib.errors import S2IError
from s2ilib.runs.checkpoint import (
    load_checkpoint,
    readable_checkpoint,
    remove_stale_temp_files,
    save_checkpoint,
)
from s2ilib.runs.rundir import (
    CONFIG_FILE,
    ENVIRONMENT_FILE,
    SAMPLES_DIR,
    STATS_FILE,
    RunLog,
    create_run_dir,
    environment_info,
    read_environment,
)
from s2ilib.seeding import epoch_generator, rng_state, seed_everything, set_rng_state

LOCK_FILE = ".lock"  # held by the process training a run directory


class TrainingWarning(UserWarning):
    """Something in the logged stats that a person should look at (a stalled discriminator)."""


class NonFiniteLossError(S2IError):
    """A loss (or gradient norm) became NaN or infinite; the run stops."""


@dataclass
class Progress:
    """Where a run is: optimiser steps done, current epoch, batches done in that epoch."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0


@dataclass(frozen=True)
class RunPlan:
    """What a new run of a task is made of: its resolved config, what config.json holds
    besides it (networks' configs, data path, earlier run), and its default description."""

    config: Any
    run_config: dict
    desc: str


class Task(Protocol):
    """What the engine needs of a task (BaseTask gives the optional members' defaults)."""

    kind: ClassVar[str]  # the run kind: "ae", "align", "gan", "informativity", "ceiling"
    config_class: ClassVar[type]  # its config dataclass (train.config)
    torchrun_ready: ClassVar[bool]  # trains under torchrun (networks wrapped by DDP)
    config: Any
    optimizers: dict  # name -> (optimizer, base lr): the schedule scales every group

    @classmethod
    def plan(cls, config) -> RunPlan:
        """The config resolved (data path, earlier run, presets) for a new run."""

    def initialize(self) -> None:
        """A new run only: what the seeded construction does not (weights of an earlier run)."""

    def steps_per_epoch(self) -> int:
        """Optimiser steps in one epoch (an S2IError when the data cannot fill one)."""

    def epoch_batches(self, epoch: int, start: int) -> Iterable:
        """The batches of epoch `epoch` from batch `start` on (this rank's slices)."""

    def optimize_parameters(self, batch) -> dict:
        """One optimisation step; returns detached 0-d device tensors to log."""

    def evaluate(self, step: int, samples_path: Path) -> tuple[dict, torch.Tensor | None]:
        """Validation stats and a sample grid (C, H, W) in [0, 1] written to samples_path."""

    def end_epoch(self, epoch: int) -> dict:
        """Work at the end of each epoch (model selection); stats to log, {} for none."""

    def finished(self) -> bool:
        """True when the task stops before its last step (early stopping)."""

    def observe(self, row: dict) -> list[str]:
        """Warnings about a logged stats row (logged, raised as TrainingWarning)."""

    def finish(self, run_dir: Path, log) -> None:
        """Rank 0, after the last step: final results written into the run directory."""

    def state_dict(self) -> dict:
        """{"kind", "models", "optimizers", "loss_state", ...}: what a checkpoint holds."""

    def load_state_dict(self, state: dict) -> None:
        """Restore `state_dict`'s content."""


class BaseTask:
    """The optional members' defaults, and batches from a torch Dataset (`train_set`)."""

    torchrun_ready: ClassVar[bool] = False

    def initialize(self) -> None:
        """Nothing beyond the seeded construction."""

    def steps_per_epoch(self) -> int:
        return batches_per_epoch(len(self.train_set), self.config.batch_size)

    def epoch_batches(self, epoch: int, start: int) -> Iterable:
        return dataset_batches(self.train_set, self.config, epoch, start)

    def end_epoch(self, epoch: int) -> dict:
        return {}

    def finished(self) -> bool:
        return False

    def observe(self, row: dict) -> list[str]:
        return []

    def finish(self, run_dir: Path, log) -> None:
        """Nothing: the last checkpoint is the result."""


# --------------------------------------------------------------------------------------
# Batches
# --------------------------------------------------------------------------------------


def epoch_order(num_items: int, batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    """The batches (index arrays) of epoch `epoch`: a permutation seeded by (seed, epoch),
    cut into whole batches (the last partial batch is dropped: BatchNorm needs >= 2)."""
    order = torch.randperm(num_items, generator=epoch_generator(seed, epoch)).numpy()
    count = num_items // batch_size
    return [order[i * batch_size : (i + 1) * batch_size] for i in range(count)]


def batches_per_epoch(num_items: int, batch_size: int) -> int:
    """Whole batches per epoch; an error when the training set is smaller than one batch."""
    if num_items < batch_size:
        raise S2IError(
            f"batch_size {batch_size} > {num_items} training items: lower batch_size "
            "(or use more of the data: limit_per_class, classes)"
        )
    return num_items // batch_size


def dataset_batches(dataset, config, epoch: int, start: int) -> DataLoader:
    """This rank's slices of epoch `epoch`'s batches from batch `start` on, each fetched by
    one __getitems__ call. The workers' seed comes from (seed + 1, epoch): without one,
    DataLoader draws it from the global torch RNG, which would shift a resumed run's
    dropout masks."""
    dataset.set_epoch(epoch)
    batches = epoch_order(len(dataset), config.batch_size, config.seed, epoch)[start:]
    return DataLoader(
        dataset,
        batch_sampler=[distributed.rank_slice(b).tolist() for b in batches],
        collate_fn=_keep_batch,
        num_workers=config.num_workers,
        generator=epoch_generator(config.seed + 1, epoch),
    )


def _keep_batch(batch):
    return batch


# --------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------


def lr_factor(schedule: str, step: int, total_steps: int, warmup_steps: int = 0) -> float:
    """Multiplier of the base learning rate at `step` (0-based) of `total_steps`."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    if schedule == "linear":
        return 1.0 - progress
    return 1.0


def set_learning_rates(task, step: int, total: int) -> float:
    """Apply the schedule to every optimiser; returns the factor applied."""
    config = task.config
    factor = lr_factor(config.lr_schedule, step, total, config.warmup_steps)
    for optimizer, base_lr in task.optimizers.values():
        for group in optimizer.param_groups:  # "lr_ratio": a group's lr relative to base_lr
            group["lr"] = base_lr * factor * group.get("lr_ratio", 1.0)
    return factor


def total_steps(task) -> int:
    """num_steps, else num_epochs whole epochs (the data must fill one epoch either way)."""
    per_epoch = task.steps_per_epoch()
    return task.config.num_steps or task.config.num_epochs * per_epoch


def gather_stats(pending: list[dict], first_step: int) -> dict[str, float]:
    """Mean of each value over the pending steps (and over the ranks under torchrun), in ONE
    device-to-host copy; raises NonFiniteLossError naming the first step and value that is
    NaN or infinite (on every rank alike)."""
    names = list(pending[0])
    values = torch.stack([torch.stack([row[n].float() for n in names]) for row in pending])
    values = distributed.all_reduce_mean(values).cpu()  # the same means on every rank
    finite = torch.isfinite(values)
    if not bool(finite.all()):
        row, column = (~finite).nonzero()[0].tolist()
        raise NonFiniteLossError(
            f"step {first_step + row}: {names[column]} is {values[row, column].item()} "
            "(the run stops; checkpoints/last.pt, if any, holds the last good state)"
        )
    return dict(zip(names, values.mean(0).tolist(), strict=True))


class Stopwatch:
    """Training samples per second between two log lines (evaluation and checkpoints are
    left out: `restart` after them)."""

    def __init__(self):
        self.restart()

    def restart(self) -> None:
        self.start, self.samples = time.perf_counter(), 0

    def rate(self) -> float:
        elapsed = time.perf_counter() - self.start
        return self.samples / elapsed if elapsed > 0 else 0.0


def run_loop(task, run_dir, log, progress: Progress, progress_bar: bool = True) -> Progress:
    """Train `task` from `progress` to its last step; logs, samples and checkpoints."""
    return _Loop(task, run_dir, log, progress, progress_bar).run()


class _Loop:
    """State of one run of the loop: what is pending between two log lines."""

    def __init__(self, task, run_dir, log, progress: Progress, progress_bar: bool):
        from tqdm.auto import tqdm

        self.task, self.config, self.run_dir, self.log = task, task.config, run_dir, log
        main = distributed.is_main()  # the other ranks train silently
        self.progress, self.verbose = progress, main and not progress_bar
        self.total = total_steps(task)
        self.bar = tqdm(
            total=self.total, initial=progress.step, disable=not (main and progress_bar)
        )
        self.pending, self.stopwatch = [], Stopwatch()

    def run(self) -> Progress:
        while self.progress.step < self.total and not self.task.finished():
            if self.run_epoch():
                self.end_epoch()
        self.bar.close()
        return self.progress

    def run_epoch(self) -> bool:
        """The rest of the current epoch; True when all its batches were trained."""
        batches = self.task.epoch_batches(self.progress.epoch, self.progress.batch_in_epoch)
        for batch in batches:
            factor = set_learning_rates(self.task, self.progress.step, self.total)
            self.pending.append(self.task.optimize_parameters(batch))
            self.progress.step += 1
            self.progress.batch_in_epoch += 1
            self.stopwatch.samples += self.config.batch_size  # global: over all ranks
            self.bar.update(1)
            self.after_step(factor)
            if self.progress.step == self.total:
                return self.progress.batch_in_epoch == self.task.steps_per_epoch()
        return True

    def after_step(self, factor: float) -> None:
        """Log, sample and checkpoint when due."""
        config, step = self.config, self.progress.step
        last = step == self.total
        sample = step % config.sample_every == 0 or last
        checkpoint = step % config.checkpoint_every == 0 or last
        if not (step % config.log_every == 0 or sample or checkpoint):
            return
        means = _synced_stats(self.pending, step, self.log)  # every rank: a collective
        self.pending = []
        if distributed.is_main():
            row = _log_row(
                self.task, self.log, means, self.progress, factor, self.stopwatch, sample
            )
            if self.verbose:  # no progress bar: the log line is the only sign of progress
                print(_row_text(row), file=sys.stderr, flush=True)
            self.bar.set_postfix({k: f"{v:.4g}" for k, v in row.items() if _shown(k)})
        if checkpoint:
            write_checkpoint(self.task, self.run_dir, self.progress, self.log)
        self.stopwatch.restart()

    def end_epoch(self) -> None:
        """The task's end-of-epoch work; its stats are logged and checkpointed."""
        stats = self.task.end_epoch(self.progress.epoch)
        self.progress.epoch, self.progress.batch_in_epoch = self.progress.epoch + 1, 0
        if not stats:
            return
        if distributed.is_main():
            row = {"step": self.progress.step, "epoch": self.progress.epoch, **stats}
            self.log.stats(row | {"time": round(time.time(), 3)})
            self.log.info(_row_text(row), echo=self.verbose)
        write_checkpoint(self.task, self.run_dir, self.progress, self.log)
        self.stopwatch.restart()


def _shown(name: str) -> bool:
    return name.endswith("loss") or name == "samples_per_s"


def _synced_stats(pending, step: int, log) -> dict[str, float]:
    """The pending stats' means (NaN guard: logged, then raised)."""
    try:
        return gather_stats(pending, step - len(pending) + 1)
    except NonFiniteLossError as error:
        log.info(f"stopped: {error}")
        raise


def _log_row(task, log, means, progress, factor, stopwatch, with_samples) -> dict:
    """Rank 0: add validation and samples when due to the stats, log a line."""
    row = {"step": progress.step, "epoch": progress.epoch, **means}
    row["samples_per_s"] = round(stopwatch.rate(), 2)
    row["lr_factor"] = factor
    for name, (optimizer, _) in task.optimizers.items():
        row[f"lr_{name}"] = optimizer.param_groups[0]["lr"]
    if with_samples:
        path = Path(log.run_dir) / SAMPLES_DIR / f"step_{progress.step:07d}.png"
        val_stats, grid = task.evaluate(progress.step, path)
        row |= val_stats
        if grid is not None:
            log.image("samples", grid, progress.step)
    row["time"] = round(time.time(), 3)
    log.stats(row)
    log.info(_row_text(row), echo=False)
    log_observations(task, row, log)
    return row


def log_observations(task, row: dict, log) -> list[str]:
    """The task's warnings about a stats row: each goes to log.txt and stderr and is raised
    as a TrainingWarning (notebooks show it). Returns them."""
    messages = task.observe(row)
    for message in messages:
        log.info(f"warning: {message}")
        warnings.warn(message, TrainingWarning, stacklevel=2)
    return messages


def _row_text(row: dict) -> str:
    text = " ".join(f"{k} {v:.4g}" for k, v in row.items() if k not in ("step", "epoch", "time"))
    return f"step {row['step']} epoch {row['epoch']} {text}"


def check_finite_weights(models: dict, step: int) -> None:
    """Raise NonFiniteLossError when a network's weights hold NaN or inf (one host sync)."""
    names, flags = [], []
    for name, state in models.items():
        tensors = [t for t in state.values() if t.is_floating_point()]
        names.append(name)
        flags.append(torch.stack([torch.isfinite(t).all() for t in tensors]).all())
    finite = torch.stack(flags).cpu().tolist()
    if not all(finite):
        raise NonFiniteLossError(
            f"step {step}: the {names[finite.index(False)]} weights are NaN or infinite "
            "(the run stops; checkpoints/last.pt, if any, holds the last good state)"
        )


def write_checkpoint(task, run_dir, progress: Progress, log) -> None:
    """Rank 0 writes the checkpoint (with every rank's RNG state); all ranks wait for it."""
    state = task.state_dict() | {"progress": asdict(progress), "rng": rng_state()}
    rng_by_rank = distributed.gather_to_main(state["rng"])  # every rank: a collective
    try:  # the weights are the same on every rank, so every rank stops alike
        check_finite_weights(state["models"], progress.step)
    except NonFiniteLossError as error:
        log.info(f"stopped: {error}")
        raise
    if distributed.is_main():
        if distributed.is_distributed():
            state |= {"world_size": len(rng_by_rank), "rng_by_rank": rng_by_rank}
        save_checkpoint(run_dir, state, progress.step, keep=task.config.keep_checkpoints)
        log.info(f"checkpoint at step {progress.step}", echo=False)
    distributed.barrier()  # nobody runs ahead of a state a resumed run would restart from


def restore_rng(state: dict, seed: int, log) -> None:
    """This rank's RNG state from a checkpoint. Resumed on another world size than the one
    that wrote it, rank 0 takes the saved main stream and the other ranks fresh streams
    seeded by (seed, rank, step): the run goes on, but is no bit-exact replay."""
    saved_world = state.get("world_size", 1)
    if saved_world == distributed.world_size():
        set_rng_state(state.get("rng_by_rank", [state["rng"]])[distributed.rank()])
        return
    set_rng_state(state["rng"])
    distributed.seed_rank(seed, state["progress"]["step"])
    log.info(
        f"checkpoint written by {saved_world} rank(s), resumed on {distributed.world_size()}: "
        "batch slices, BatchNorm statistics and dropout streams differ from the original run"
    )


# --------------------------------------------------------------------------------------
# Runs: new and resumed
# --------------------------------------------------------------------------------------


def start(task_class, plan: RunPlan, runs_root="runs", desc=None, run_dir=None, device=None,
          progress_bar: bool = True) -> Path:  # fmt: skip
    """Create a run directory, write config.json + environment.json and train from step 0.

    Under torchrun, rank 0 creates the directory and every rank trains.
    """
    from s2ilib.datasets import open_dataset

    config, desc = plan.config, desc or plan.desc
    if run_dir is not None and Path(run_dir).exists():  # before any work: fail early
        raise S2IError(f"{run_dir}: run directory exists; pass --resume {run_dir} to continue it")
    with distributed.session(device) as device:
        data = open_dataset(plan.run_config["data"])  # before the run directory: fail early
        _check_world(task_class, config, device)  # likewise
        document = {"kind": task_class.kind, "desc": desc, "train": config.as_dict()}
        document |= plan.run_config
        task = _build(task_class, config, document, data, device)  # and the data fit a batch
        _check_finite_json(document)  # likewise

        def create() -> Path:
            created = create_run_dir(runs_root, task_class.kind, desc, run_dir)
            write_json(created / CONFIG_FILE, document, allow_nan=False)
            write_json(created / ENVIRONMENT_FILE, _environment(device, config))
            return created

        created = distributed.share_from_main(create)
        with _RunLock(created):
            task.initialize()
            _train(task, created, device, None, progress_bar)
        return created


def _check_finite_json(document: dict) -> None:
    """S2IError when config.json would hold NaN or an infinity (not JSON: strict readers
    refuse it). The configs' own checks refuse such numbers first; this is the last guard."""
    try:
        json.dumps(document, allow_nan=False)
    except ValueError as error:
        raise S2IError(f"config.json cannot hold a number that is not finite ({error})") from error


def resume(task_class, run_dir, document: dict, device=None, progress_bar: bool = True) -> Path:
    """Continue a run from its newest readable checkpoint (a clear error when it has none
    left)."""
    from s2ilib.datasets import open_dataset

    run_dir = Path(run_dir)
    config = task_class.config_class.from_dict(document["train"])
    with distributed.session(device) as device, _RunLock(run_dir):
        _check_world(task_class, config, device)
        state, note = _checkpoint_to_resume(run_dir)
        task = _build(task_class, config, document, open_dataset(document["data"]), device)
        if state is None:
            task.initialize()
        else:
            task.load_state_dict(state)
        if distributed.is_main():
            _record_resume(run_dir, device, config)
        _train(task, run_dir, device, state, progress_bar, note)
        return run_dir


def _checkpoint_to_resume(run_dir: Path) -> tuple[dict | None, str | None]:
    """The checkpoint state a resumed run restarts from, and a note when a newer checkpoint
    could not be read (runs.checkpoint.readable_checkpoint); (None, None) only for a run
    killed before its first checkpoint and before logging anything (it starts from step 0).
    Rank 0 chooses the file; the other ranks read the one it chose."""
    chosen = {}

    def choose() -> tuple[Path | None, str | None]:
        remove_stale_temp_files(run_dir)
        readable = readable_checkpoint(run_dir)
        if readable is None:
            _check_nothing_logged(run_dir)
            return None, None
        path, chosen["state"], note = readable
        return path, note

    path, note = distributed.share_from_main(choose)
    if path is None:
        return None, None
    state = chosen["state"] if "state" in chosen else load_checkpoint(path)
    return state, note


def _check_nothing_logged(run_dir: Path) -> None:
    """S2IError for a run without checkpoints that logged training steps all the same."""
    stats = run_dir / STATS_FILE
    if stats.is_file() and stats.read_text().strip():
        raise S2IError(
            f"{run_dir}: no checkpoint to resume from (checkpoints/ is empty or gone) although "
            "the run logged training steps; restore checkpoints/ or start a new run"
        )


def _record_resume(run_dir: Path, device, config) -> None:
    """environment.json gains this resume (once the checkpoint has proved readable)."""
    environment = read_environment(run_dir)
    environment.setdefault("resumed", []).append(_environment(device, config))
    write_json(run_dir / ENVIRONMENT_FILE, environment)


class _RunLock:
    """An exclusive lock on a run directory while a process trains it (rank 0 only): a
    second `--resume` of the same run is refused instead of writing over the first."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / LOCK_FILE
        self.file = None

    def __enter__(self):
        if not distributed.is_main() and distributed.is_distributed():
            return self
        self.file = open(self.path, "a+")
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.file.seek(0)
            holder = self.file.read().strip() or "another process"
            self.file.close()
            raise S2IError(
                f"{self.path.parent}: the run is being trained by {holder}; wait for it to "
                "finish (or stop it) before resuming"
            ) from None
        self.file.seek(0)
        self.file.truncate()
        self.file.write(f"pid {os.getpid()}\n")
        self.file.flush()
        return self

    def __exit__(self, *exc):
        if self.file is not None:
            fcntl.flock(self.file, fcntl.LOCK_UN)
            self.file.close()
        return False


def _check_world(task_class, config, device) -> None:
    """S2IError, before any file is written, for what this world cannot train."""
    if distributed.is_distributed() and not task_class.torchrun_ready:
        raise S2IError(
            f"{task_class.kind} runs train in one process only (they are small enough for "
            "one device and their model selection or metrics run on rank 0): start them "
            "without torchrun"
        )
    distributed.check_settings(config.batch_size, config.sync_batchnorm, device)


def _environment(device, config) -> dict:
    if device.type == "cpu":
        use_all_cores()
    return environment_info(device) | distributed.describe(config.batch_size)


def _build(task_class, config, document: dict, data, device):
    """The task, seeded (the same weights on every rank), checked to fill an epoch."""
    if device.type == "cpu":
        use_all_cores()
    seed_everything(config.seed)
    task = task_class(config, document, data, device)
    task.steps_per_epoch()  # an S2IError now, not an endless loop later
    return task


class SilentLog:
    """What ranks other than 0 log to: nothing (rank 0 writes the run's files)."""

    def __init__(self, run_dir):
        self.run_dir = Path(run_dir)

    def info(self, message: str, echo: bool = True) -> None:
        pass

    def stats(self, row: dict) -> None:
        pass

    def image(self, tag: str, image_chw, step: int) -> None:
        pass

    def close(self) -> None:
        pass


def batch_summary(task) -> str:
    """'world size W, per-rank batch b, global batch B, lr ...': what one step trains on."""
    config = task.config
    rates = ", ".join(f"lr {name} {lr:g}" for name, (_, lr) in task.optimizers.items())
    return (
        f"world size {distributed.world_size()}, "
        f"per-rank batch {distributed.per_rank_batch(config.batch_size)}, "
        f"global batch {config.batch_size}, {rates}"
    )


def _train(task, run_dir, device, state, progress_bar: bool, note: str | None = None) -> None:
    """Run the loop from the checkpoint `state` (None: step 0), then the task's finish;
    `note`: why an older checkpoint than the newest was resumed from (logged and printed)."""
    config = task.config
    progress = Progress(**state["progress"]) if state else Progress()
    log = (
        RunLog(run_dir, resume_step=progress.step) if distributed.is_main() else SilentLog(run_dir)
    )
    try:
        what = f"resumed at step {progress.step}" if state else "started"
        if note:
            log.info(note)
        log.info(f"{task.kind} run {run_dir} {what} on {device}")
        log.info(batch_summary(task))
        if state is None:
            distributed.seed_rank(config.seed)  # ranks > 0: their own dropout masks
        else:
            restore_rng(state, config.seed, log)
        run_loop(task, run_dir, log, progress, progress_bar)
        if distributed.is_main():
            task.finish(Path(run_dir), log)
        log.info(f"finished at step {progress.step}")
    finally:
        log.close()
