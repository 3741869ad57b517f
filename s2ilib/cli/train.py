"""`s2i train-ae`, `s2i train-align` and `s2i train-gan`: the training stages, in run dirs.

Settings, lowest precedence first: the config dataclass defaults, `--recipe NAME`
(train-align, train-gan: s2ilib.train.recipes), `--config FILE` (JSON: a dict of settings,
or a run's config.json), the named options, then `--set key=value`.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import MISSING, fields
from pathlib import Path

from s2ilib.cli import add_command
from s2ilib.models import PRESET_NAMES
from s2ilib.train.config import (
    AETrainConfig,
    AlignTrainConfig,
    GANTrainConfig,
    load_config_file,
    parse_assignments,
)


def _flag(text: str) -> bool:
    """A boolean option value: true/false, yes/no, 1/0."""
    lowered = text.strip().lower()
    if lowered not in ("true", "false", "yes", "no", "1", "0"):
        raise argparse.ArgumentTypeError(f"{text!r}: expected true or false")
    return lowered in ("true", "yes", "1")


# (flag, config field, type, help) shared by every training command.
COMMON_OPTIONS = [
    ("--data", "data", str, "data set folder (any layout s2i inspect opens); '' = AV-Digits"),
    ("--embedding-dim", "embedding_dim", int, "audio embedding width D"),
    ("--epochs", "num_epochs", int, "passes over the training split"),
    ("--steps", "num_steps", int, "total optimiser steps (overrides --epochs)"),
    ("--batch-size", "batch_size", int, "batch size"),
    ("--lr-schedule", "lr_schedule", str, "learning-rate schedule: constant, cosine or linear"),
    ("--warmup-steps", "warmup_steps", int, "linear warm-up steps"),
    ("--weight-decay", "weight_decay", float, "L2 weight decay"),
    ("--grad-clip", "grad_clip", float, "clip each network's gradient norm to this"),
    ("--init", "init", str, "weight initialisation: default (PyTorch) or dcgan"),
    ("--seed", "seed", int, "seed of weights, data order, pairing and dropout"),
    ("--limit-per-class", "limit_per_class", int, "use at most N sounds per class (quick runs)"),
    ("--classes", "classes", int, "train on these 0-based classes only"),
    ("--log-every", "log_every", int, "steps between stats lines"),
    ("--sample-every", "sample_every", int, "steps between sample grids + validation"),
    ("--checkpoint-every", "checkpoint_every", int, "steps between checkpoints"),
    ("--num-samples", "num_samples", int, "validation sounds per sample grid"),
    ("--val-samples", "val_samples", int, "validation sounds for the validation loss"),
    ("--num-workers", "num_workers", int, "DataLoader worker processes"),
    ("--fast-path", "fast_path", str, "bf16/compile/... fast path: auto (on for CUDA), on, off"),
]
AE_OPTIONS = [
    ("--preset", "preset", str, f"model preset: {', '.join(PRESET_NAMES)}"),
    ("--optimizer", "optimizer", str, "sgd (the authors') or adam"),
    ("--lr", "lr", float, "learning rate"),
    ("--momentum", "momentum", float, "SGD momentum"),
]
GAN_OPTIONS = [
    ("--ae-run", "ae_run", str, "run directory of the trained autoencoder (required)"),
    ("--preset", "preset", str, "generator/discriminator preset (default: the AE run's)"),
    ("--loss", "loss", str, "adversarial loss: paper, moving_average, hinge, non_saturating"),
    ("--lr-g", "lr_generator", float, "generator learning rate (Adam)"),
    ("--lr-d", "lr_discriminator", float, "discriminator learning rate (Adam)"),
    ("--pixel-weight", "pixel_weight", float, "weight of the L1 pixel loss"),
    ("--adversarial-weight", "adversarial_weight", float, "weight of the adversarial loss"),
    ("--ma-decay", "ma_decay", float, "moving_average loss: decay of the score averages"),
    ("--spectral-norm", "spectral_norm", _flag, "spectral normalisation in D: true or false"),
]
ALIGN_OPTIONS = [
    ("--ae-run", "ae_run", str, "run directory of the trained autoencoder (required)"),
    ("--mode", "mode", str, "finetune (encoder learns too) or head (encoder frozen)"),
    ("--lr", "lr", float, "Adam learning rate of the head and the image tower"),
    ("--encoder-lr", "encoder_lr", float, "Adam learning rate of the encoder (finetune)"),
    ("--temperature", "temperature", float, "initial temperature of the similarity logits"),
]


def register(subparsers):
    """Add train-ae, train-gan and train-align."""
    ae = add_command(
        subparsers,
        "train-ae",
        run_train_ae,
        help="train the audio autoencoder (stage 1) on spectrograms",
        description=__doc__,
    )
    _add_options(ae, AETrainConfig, COMMON_OPTIONS + AE_OPTIONS, "ae")
    gan = add_command(
        subparsers,
        "train-gan",
        run_train_gan,
        help="train the generator + discriminator (stage 2) on a frozen AE encoder",
        description=__doc__,
    )
    _add_options(gan, GANTrainConfig, COMMON_OPTIONS + GAN_OPTIONS, "gan")
    align = add_command(
        subparsers,
        "train-align",
        run_train_align,
        help="align the AE encoder with the paired images (contrastive; beyond the paper)",
        description=__doc__,
    )
    _add_options(align, AlignTrainConfig, COMMON_OPTIONS + ALIGN_OPTIONS, "align")


def _field_defaults(config_class) -> dict:
    return {f.name: f.default for f in fields(config_class) if f.default is not MISSING}


def _add_options(parser, config_class, options, kind: str) -> None:
    defaults = _field_defaults(config_class)
    for flag, name, kind_type, text in options:
        extra = {"nargs": "+"} if name == "classes" else {}
        parser.add_argument(
            flag,
            dest=name,
            type=kind_type,
            default=argparse.SUPPRESS,
            help=text
            if "default" in text or "required" in text
            else f"{text} (default: {defaults[name]!r})",
            **extra,
        )
    parser.add_argument(
        "--no-test-time-dropout",
        dest="test_time_dropout",
        action="store_false",
        default=argparse.SUPPRESS,
        help="sample with dropout off (the paper keeps it on)",
    )
    parser.add_argument(
        "--reference-mode",
        dest="fast_path",
        action="store_const",
        const="off",
        default=argparse.SUPPRESS,
        help="train as the authors did: fp32, eager, host-side data (= --fast-path off)",
    )
    parser.add_argument(
        "--keep-checkpoints",
        dest="keep_checkpoints",
        action="store_true",
        default=argparse.SUPPRESS,
        help="also keep checkpoints/step_XXXXXXX.pt at every checkpoint",
    )
    if kind in ("gan", "align"):
        parser.add_argument(
            "--recipe",
            help="start from a named recipe's settings: paper or aligned (s2ilib.train.recipes)",
        )
    parser.add_argument("--config", help="JSON file of settings (or a run's config.json)")
    parser.add_argument(
        "--set",
        dest="assignments",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set any config field (value parsed as JSON when it parses), e.g. --set betas=[0.5,0.99]",
    )
    parser.add_argument("--runs-root", default="runs", help="folder of numbered run directories")
    parser.add_argument("--desc", help=f"run name suffix: runs/NNNNN-{kind}-<desc>")
    parser.add_argument("--run-dir", help="exact run directory to create (must not exist)")
    parser.add_argument(
        "--resume", metavar="RUN_DIR", help="continue this run from its last checkpoint"
    )
    parser.add_argument(
        "--device", default="auto", help="cpu, cuda, cuda:N, or %(default)s: CUDA if available"
    )
    parser.add_argument(
        "--threads",
        type=int,
        help="torch CPU threads (default: OMP_NUM_THREADS when set, else every core); "
        "a resumed run matches an uninterrupted one bit for bit only with the same count",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _recipe_values(args, config_class) -> dict:
    """The settings --recipe gives this stage (train-gan: its GAN part; train-align: its
    alignment part)."""
    from s2ilib.train.recipes import align_settings, recipe

    name = getattr(args, "recipe", None)
    if not name:
        return {}
    return align_settings(name) if config_class is AlignTrainConfig else dict(recipe(name).gan)


def _config_values(args, config_class) -> dict:
    """Settings from --recipe, --config, the named options and --set, in that order of
    precedence."""
    values = _recipe_values(args, config_class)
    values |= load_config_file(args.config) if args.config else {}
    names = {f.name for f in fields(config_class)}
    values |= {k: v for k, v in vars(args).items() if k in names}
    return values | parse_assignments(args.assignments)


def _check_resume_alone(args, config_class) -> None:
    from s2ilib.errors import S2IError

    given = [k for k in vars(args) if k in {f.name for f in fields(config_class)}]
    if given or args.config or args.assignments or args.run_dir or getattr(args, "recipe", None):
        raise S2IError(
            "--resume takes every setting from RUN_DIR/config.json; drop "
            + ", ".join(given + [o for o in ("config", "set", "run_dir") if _given(args, o)])
        )


def _given(args, name: str) -> bool:
    return bool(getattr(args, "assignments" if name == "set" else name, None))


def _set_thread_environment(threads: int | None) -> None:
    """Thread settings that OpenMP reads once, when torch is first imported (below)."""
    if threads:
        os.environ["OMP_NUM_THREADS"] = str(threads)
    # OMP_WAIT_POLICY=PASSIVE is set for every command in s2ilib.cli.main.


def _run(args, config_class, train) -> int:
    _set_thread_environment(args.threads)
    from s2ilib.train.loop import resume_run

    if args.resume:
        _check_resume_alone(args, config_class)
        run_dir = resume_run(args.resume, args.device, not args.no_progress)
    else:
        config = config_class.from_dict(_config_values(args, config_class))
        run_dir = train(
            config, args.runs_root, args.desc, args.run_dir, args.device, not args.no_progress
        )
    from s2ilib.distributed import launch_rank

    if launch_rank() == 0:  # under torchrun: one line, not one per process
        sys.stdout.write(f"run: {Path(run_dir).resolve()}\n")
    return 0


def run_train_ae(args) -> int:
    from s2ilib.train.ae import train_autoencoder

    return _run(args, AETrainConfig, train_autoencoder)


def run_train_gan(args) -> int:
    from s2ilib.train.gan import train_gan

    return _run(args, GANTrainConfig, train_gan)


def run_train_align(args) -> int:
    from s2ilib.train.align import train_align

    return _run(args, AlignTrainConfig, train_align)
