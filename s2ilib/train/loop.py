"""The one training loop both trainings share, and the run set-up around it.

A *task* (AETask in ae.py, GANTask in gan.py) knows its networks and data; the loop knows
time: epochs and steps, learning-rate schedule, progress bar, stats, samples, checkpoints
and the NaN guard. Reproducibility: the data order of epoch e is a permutation drawn from a
generator seeded with (seed, e), the class pairing is redrawn by `set_epoch(e)`, and a
checkpoint stores the position within the epoch and every RNG state, so a resumed run
replays exactly the steps an uninterrupted one would have taken. Under torchrun
(s2ilib.distributed) every rank runs this loop on its slice of each global batch; rank 0
alone logs, samples and writes the run directory.

The task interface:
  kind, config, train_set (a Dataset with __getitems__, optionally set_epoch),
  optimizers -> {name: (optimizer, base lr)},
  initialize() (a new run only), train_step(batch) -> {name: 0-d device tensor},
  evaluate(step, samples_path) -> ({name: float}, grid tensor (C, H, W) in [0, 1]),
  state_dict() / load_state_dict(state),
  optionally observe(stats row) -> [warning text] (logged and raised as TrainingWarning).
"""

from __future__ import annotations

import sys
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from s2ilib import distributed
from s2ilib.devices import use_all_cores
from s2ilib.errors import S2IError
from s2ilib.train.checkpoint import (
    latest_checkpoint,
    load_checkpoint,
    remove_stale_temp_files,
    rng_state,
    save_checkpoint,
    seed_everything,
    set_rng_state,
)
from s2ilib.train.rundir import (
    CONFIG_FILE,
    ENVIRONMENT_FILE,
    SAMPLES_DIR,
    RunLog,
    create_run_dir,
    environment_info,
    read_config,
    write_json,
)
from s2ilib.train.steps import lr_factor


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


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """A torch generator seeded by (seed, epoch) alone."""
    return torch.Generator().manual_seed(
        int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])
    )


def epoch_batches(num_items: int, batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    """The batches (index arrays) of epoch `epoch`: a permutation seeded by (seed, epoch),
    cut into whole batches (the last partial batch is dropped: BatchNorm needs >= 2)."""
    order = torch.randperm(num_items, generator=epoch_generator(seed, epoch)).numpy()
    count = num_items // batch_size
    return [order[i * batch_size : (i + 1) * batch_size] for i in range(count)]


def batches_per_epoch(num_items: int, batch_size: int) -> int:
    """Whole batches per epoch; an error when the training set is smaller than one batch."""
    if num_items < batch_size:
        raise S2IError(f"batch_size {batch_size} > {num_items} training sounds: lower batch_size")
    return num_items // batch_size


def epoch_loader(dataset, batches: list[np.ndarray], num_workers: int, generator) -> DataLoader:
    """A DataLoader yielding `batches` in order, each fetched by one __getitems__ call.

    `generator` seeds the workers: without one, DataLoader draws that seed from the global
    torch RNG, which would shift the dropout masks of a resumed run.
    """
    return DataLoader(
        dataset,
        batch_sampler=[b.tolist() for b in batches],
        collate_fn=_keep_batch,
        num_workers=num_workers,
        generator=generator,
    )


def _keep_batch(batch):
    return batch


def validation_split(data) -> str:
    """'val' when the data set has it, else 'train' (samples then show training sounds)."""
    return "val" if "val" in data.sounds else "train"


def spread_over_classes(labels: np.ndarray, count: int, seed: int) -> np.ndarray:
    """`count` positions drawn at random but cycling through the classes (one of each class
    first, then a second of each, ...), so a small sample grid shows every class."""
    labels = np.asarray(labels)
    order = np.random.default_rng(seed).permutation(len(labels))
    shuffled = labels[order]
    rank = np.zeros(len(labels), np.int64)
    for label in np.unique(shuffled):
        members = shuffled == label
        rank[members] = np.arange(members.sum())
    return order[np.lexsort((shuffled, rank))][:count]


def rng_devices(device: torch.device) -> list:
    """Devices whose RNG torch.random.fork_rng must save (none besides the CPU on CPU)."""
    return [device] if device.type == "cuda" else []


def total_steps(config, num_items: int) -> int:
    """num_steps, else num_epochs whole epochs."""
    return config.num_steps or config.num_epochs * batches_per_epoch(num_items, config.batch_size)


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


def set_learning_rates(task, step: int, total: int) -> float:
    """Apply the schedule to every optimiser; returns the factor applied."""
    config = task.config
    factor = lr_factor(config.lr_schedule, step, total, config.warmup_steps)
    for optimizer, base_lr in task.optimizers.values():
        for group in optimizer.param_groups:  # "lr_ratio": a group's lr relative to base_lr
            group["lr"] = base_lr * factor * group.get("lr_ratio", 1.0)
    return factor


def run_loop(task, run_dir, log: RunLog, progress: Progress, progress_bar: bool = True) -> Progress:
    """Train `task` from `progress` to its last step; logs, samples and checkpoints."""
    return _Loop(task, run_dir, log, progress, progress_bar).run()


class _Loop:
    """State of one run of the loop: what is pending between two log lines."""

    def __init__(self, task, run_dir, log: RunLog, progress: Progress, progress_bar: bool):
        from tqdm.auto import tqdm

        self.task, self.config, self.run_dir, self.log = task, task.config, run_dir, log
        main = distributed.is_main()  # the other ranks train silently
        self.progress, self.verbose = progress, main and not progress_bar
        self.total = total_steps(self.config, len(task.train_set))
        self.bar = tqdm(
            total=self.total, initial=progress.step, disable=not (main and progress_bar)
        )
        self.pending, self.stopwatch = [], Stopwatch()

    def run(self) -> Progress:
        while self.progress.step < self.total:
            if self.run_epoch():
                self.progress.epoch, self.progress.batch_in_epoch = self.progress.epoch + 1, 0
        self.bar.close()
        return self.progress

    def run_epoch(self) -> bool:
        """The rest of the current epoch; False when the run ended inside it."""
        config, dataset, epoch = self.config, self.task.train_set, self.progress.epoch
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(epoch)
        batches = epoch_batches(len(dataset), config.batch_size, config.seed, epoch)
        generator = epoch_generator(config.seed + 1, epoch)
        remaining = [distributed.rank_slice(b) for b in batches[self.progress.batch_in_epoch :]]
        for batch in epoch_loader(dataset, remaining, config.num_workers, generator):
            factor = set_learning_rates(self.task, self.progress.step, self.total)
            self.pending.append(self.task.train_step(batch))
            self.progress.step += 1
            self.progress.batch_in_epoch += 1
            self.stopwatch.samples += config.batch_size  # global: over all ranks
            self.bar.update(1)
            self.after_step(factor)
            if self.progress.step == self.total:
                return False
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
            _write_checkpoint(self.task, self.run_dir, self.progress, self.log)
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


def _log_row(task, log: RunLog, means, progress, factor, stopwatch, with_samples) -> dict:
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
        log.image("samples", grid, progress.step)
    row["time"] = round(time.time(), 3)
    log.stats(row)
    log.info(_row_text(row), echo=False)
    log_observations(task, row, log)
    return row


def log_observations(task, row: dict, log: RunLog) -> list[str]:
    """The task's warnings about a stats row (if it has `observe`): each goes to log.txt and
    stderr and is raised as a TrainingWarning (notebooks show it). Returns them."""
    messages = getattr(task, "observe", lambda _: [])(row)
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


def _write_checkpoint(task, run_dir, progress: Progress, log: RunLog) -> None:
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
# Run set-up: new runs and resumed ones
# --------------------------------------------------------------------------------------


def start_run(
    task_class,
    config,
    run_config: dict,
    runs_root="runs",
    desc: str = "",
    run_dir=None,
    device=None,
    progress_bar: bool = True,
) -> Path:
    """Create a run directory, write config.json + environment.json and train from step 0.

    run_config: what config.json holds besides "kind", "desc" and "train" (networks' configs,
    data path, AE run). Under torchrun, rank 0 creates the directory and every rank trains.
    """
    from s2ilib.datasets import open_dataset

    with distributed.session(device) as device:
        data = open_dataset(run_config["data"])  # before the run directory: fail early
        # likewise: a batch that does not split over the ranks, SyncBatchNorm on the CPU
        _check_world(task_class, config, device)

        def create() -> Path:
            created = create_run_dir(runs_root, task_class.kind, desc, run_dir)
            document = {"kind": task_class.kind, "desc": desc, "train": config.as_dict()}
            write_json(created / CONFIG_FILE, document | run_config)
            write_json(created / ENVIRONMENT_FILE, _environment(device, config))
            return created

        created = distributed.share_from_main(create)
        document = {"kind": task_class.kind, "desc": desc, "train": config.as_dict(), **run_config}
        return _train(task_class, config, document, created, device, None, progress_bar, data)


def resume_run(run_dir, device=None, progress_bar: bool = True) -> Path:
    """Continue a run from its latest checkpoint (from step 0 if it has none yet)."""
    from s2ilib.train.ae import AETask
    from s2ilib.train.align import AlignTask
    from s2ilib.train.gan import GANTask

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise S2IError(f"{run_dir}: no such run directory to resume")
    document = read_config(run_dir)
    task_class = {"ae": AETask, "align": AlignTask, "gan": GANTask}.get(document.get("kind"))
    if task_class is None:
        raise S2IError(f"{run_dir / CONFIG_FILE}: unknown run kind {document.get('kind')!r}")
    config = task_class.config_class.from_dict(document["train"])
    with distributed.session(device) as device:
        _check_world(task_class, config, device)

        def prepare() -> Path | None:
            remove_stale_temp_files(run_dir)
            environment = _read_environment(run_dir)
            environment.setdefault("resumed", []).append(_environment(device, config))
            write_json(run_dir / ENVIRONMENT_FILE, environment)
            return latest_checkpoint(run_dir)

        checkpoint = distributed.share_from_main(prepare)  # every rank loads the same file
        return _train(task_class, config, document, run_dir, device, checkpoint, progress_bar)


def _check_world(task_class, config, device) -> None:
    """S2IError, before any file is written, for what this world cannot train."""
    if distributed.is_distributed() and not getattr(task_class, "torchrun_ready", False):
        raise S2IError(
            f"{task_class.kind} runs do not train under torchrun yet (their networks are not "
            "wrapped in DistributedDataParallel): start them as one process"
        )
    distributed.check_settings(config.batch_size, config.sync_batchnorm, device)


def _environment(device, config) -> dict:
    if device.type == "cpu":
        use_all_cores()
    return environment_info(device) | distributed.describe(config.batch_size)


def _read_environment(run_dir: Path) -> dict:
    import json

    path = run_dir / ENVIRONMENT_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


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


def _train(task_class, config, document, run_dir, device, checkpoint, progress_bar, data=None):
    """Build the task (seeded), restore the checkpoint if any, run the loop."""
    from s2ilib.datasets import open_dataset

    if device.type == "cpu":
        use_all_cores()
    data = data or open_dataset(document["data"])
    seed_everything(config.seed)  # the same weights on every rank
    task = task_class(config, document, data, device)
    state = None
    if checkpoint is None:
        task.initialize()
    else:
        # On the CPU: torch.set_rng_state wants CPU tensors; load_state_dict moves the rest.
        state = load_checkpoint(checkpoint, map_location="cpu")
        task.load_state_dict(state)
    progress = Progress(**state["progress"]) if state else Progress()
    log = (
        RunLog(run_dir, resume_step=progress.step) if distributed.is_main() else SilentLog(run_dir)
    )
    try:
        what = f"resumed at step {progress.step}" if checkpoint else "started"
        log.info(f"{task_class.kind} run {run_dir} {what} on {device}")
        log.info(batch_summary(task))
        if state is None:
            distributed.seed_rank(config.seed)  # ranks > 0: their own dropout masks
        else:
            restore_rng(state, config.seed, log)
        run_loop(task, run_dir, log, progress, progress_bar)
        log.info(f"finished at step {progress.step}")
    finally:
        log.close()
    return run_dir
