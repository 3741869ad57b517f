"""`s2i train-ae`, `train-align`, `train-gan`, `train-flow`, `train-informativity` and
`train-ceiling`:
every task of the training engine, each in its own resumable run directory.

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
    CeilingTrainConfig,
    FlowTrainConfig,
    GANTrainConfig,
    InformativityTrainConfig,
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
    ("--front", "front", str, "input network: conv (the paper's), speech or whisper (pretrained)"),
    ("--front-input", "front_input", str, "what a frozen front reads: auto, spectrogram, audio"),
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
    ("--noise-dim", "noise_dim", int, "size of the Gaussian code given to G (0: none)"),
    ("--code-encoder", "code_encoder", _flag, "conditional VAE-GAN codes of the paired images"),
    ("--latent-weight", "latent_weight", float, "cLR-GAN half batch: weight of reading codes back"),
]
FLOW_OPTIONS = [
    ("--ae-run", "ae_run", str, "run directory of the autoencoder or alignment run (required)"),
    ("--lr", "lr", float, "AdamW learning rate"),
    ("--ema-decay", "ema_decay", float, "decay of the sampling weights' moving average"),
    ("--condition-dropout", "condition_dropout", float, "share of pairs shown no sound"),
    ("--guidance", "guidance", float, "classifier-free guidance scale when sampling (1: none)"),
    ("--guidance-from", "guidance_from", float, "guide only from t = this on (0: from the noise)"),
    (
        "--guidance-until",
        "guidance_until",
        float,
        "guide only while t < this (t: 0 noise, 1 image)",
    ),
    ("--sample-steps", "sample_steps", int, "ODE steps from noise to image"),
    (
        "--recall-from",
        "recall_from",
        float,
        "start at t = this from a recalled training image mixed with the noise (0: noise only)",
    ),
    (
        "--recall-neighbours",
        "recall_neighbours",
        int,
        "recall the class this many nearest training sounds vote for (1: the nearest's)",
    ),
]
ALIGN_OPTIONS = [
    ("--ae-run", "ae_run", str, "run directory of the trained autoencoder (required)"),
    ("--mode", "mode", str, "finetune (encoder learns too) or head (encoder frozen)"),
    ("--lr", "lr", float, "Adam learning rate of the head and the image tower"),
    ("--encoder-lr", "encoder_lr", float, "Adam learning rate of the encoder (finetune)"),
    ("--temperature", "temperature", float, "initial temperature of the similarity logits"),
]


INFORMATIVITY_OPTIONS = [
    ("--image-size", "image_size", int, "image side: the generator's (demo 32, paper 96)"),
    ("--kway-batch-size", "kway_batch_size", int, "images per step of the K-way classifier"),
    ("--lr", "lr", float, "Adam learning rate"),
    ("--degraded-fraction", "degraded_fraction", float, "share of negatives that are degraded"),
    ("--patience", "patience", int, "early stop after this many epochs without gain"),
]
CEILING_OPTIONS = [
    ("--ae-run", "ae_run", str, "AE or align run whose encoder is copied (required)"),
    ("--split", "split", str, "the split scored"),
    ("--lr", "lr", float, "Adam learning rate"),
]
# (command, run kind, config class, its own options, help)
COMMANDS = [
    ("train-ae", "ae", AETrainConfig, AE_OPTIONS,
     "train the audio autoencoder (stage 1) on spectrograms"),
    ("train-gan", "gan", GANTrainConfig, GAN_OPTIONS,
     "train the generator + discriminator (stage 2) on a frozen AE encoder"),
    ("train-flow", "flow", FlowTrainConfig, FLOW_OPTIONS,
     "train recipe flow's flow-matching decoder on a frozen AE or align encoder (beyond the "
     "paper: varied, realistic images of one sound)"),
    ("train-align", "align", AlignTrainConfig, ALIGN_OPTIONS,
     "align the AE encoder with the paired images (contrastive; beyond the paper)"),
    ("train-informativity", "informativity", InformativityTrainConfig, INFORMATIVITY_OPTIONS,
     "train the informativity classifiers (one binary CNN per class + a K-way CNN) on the "
     "data set's real images; their ceilings go to the run's metrics.json"),
    ("train-ceiling", "ceiling", CeilingTrainConfig, CEILING_OPTIONS,
     "the supervised ceiling: how well the test sounds can be recognised at all (a copy of "
     "a run's encoder trained WITH labels; beyond the paper)"),
]  # fmt: skip


def register(subparsers):
    """Add one sub-command per training task."""
    for command, kind, config_class, options, text in COMMANDS:
        parser = add_command(subparsers, command, _handler(config_class, kind), help=text,
                             description=f"{text}.\n\n{__doc__}")  # fmt: skip
        _add_options(parser, config_class, COMMON_OPTIONS + options, kind)


def _handler(config_class, kind: str):
    """The sub-command's handler: train (or resume) a run of `kind`."""
    return lambda args: _run(args, config_class, kind)


def _field_defaults(config_class) -> dict:
    return {f.name: f.default for f in fields(config_class) if f.default is not MISSING}


def _add_options(parser, config_class, options, kind: str) -> None:
    defaults = _field_defaults(config_class)
    for flag, name, kind_type, text in options:
        if name not in defaults:  # an option of another stage
            continue
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
    _add_flags(parser, defaults, kind)


# Switches: (flag, config field, argparse action, value stored, help)
SWITCHES = [
    ("--no-test-time-dropout", "test_time_dropout", "store_false", None,
     "sample with dropout off (the paper keeps it on)"),
    ("--reference-mode", "fast_path", "store_const", "off",
     "train as the authors did: fp32, eager, host-side data (= --fast-path off)"),
    ("--keep-checkpoints", "keep_checkpoints", "store_true", None,
     "also keep checkpoints/step_XXXXXXX.pt at every checkpoint"),
]  # fmt: skip


def _add_flags(parser, defaults: dict, kind: str) -> None:
    """The switches (where the config has their field) and the run options."""
    for flag, name, action, const, text in SWITCHES:
        if name in defaults:
            extra = {"const": const} if const is not None else {}
            parser.add_argument(flag, dest=name, action=action, default=argparse.SUPPRESS,
                                help=text, **extra)  # fmt: skip
    if kind in ("gan", "flow", "align"):
        parser.add_argument(
            "--recipe",
            help="start from a named recipe's settings: paper, aligned or imagine "
            "(train-gan), flow (train-flow), any (train-align: its alignment) "
            "(s2ilib.train.recipes)",
        )
    parser.add_argument("--config", help="JSON file of settings (or a run's config.json)")
    parser.add_argument(
        "--set", dest="assignments", action="append", default=[], metavar="KEY=VALUE",
        help="set any config field (value parsed as JSON when it parses), e.g. --set betas=[0.5,0.99]",
    )  # fmt: skip
    _add_run_options(parser, kind)


def _add_run_options(parser, kind: str) -> None:
    """Where the run goes, resuming, device, threads, progress bar."""
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
    """The settings --recipe gives this stage (train-gan: its GAN part; train-flow: its flow
    decoder's; train-align: its alignment part)."""
    from s2ilib.errors import S2IError
    from s2ilib.train.recipes import align_settings, recipe

    name = getattr(args, "recipe", None)
    if not name:
        return {}
    if config_class is AlignTrainConfig:
        return align_settings(name)
    decoder = "flow" if config_class is FlowTrainConfig else "gan"
    if recipe(name).decoder != decoder:
        raise S2IError(
            f"recipe {name!r} trains a {recipe(name).decoder} decoder: use "
            f"`s2i train-{recipe(name).decoder} --recipe {name}`"
        )
    return dict(recipe(name).flow if decoder == "flow" else recipe(name).gan)


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


def _run(args, config_class, kind: str) -> int:
    _set_thread_environment(args.threads)
    from s2ilib.train.registry import resume_run, start_run

    if args.resume:
        _check_resume_alone(args, config_class)
        run_dir = resume_run(args.resume, args.device, not args.no_progress, kind=kind)
    else:
        config = config_class.from_dict(_config_values(args, config_class))
        run_dir = start_run(
            kind, config, args.runs_root, args.desc, args.run_dir, args.device, not args.no_progress
        )
    from s2ilib.distributed import launch_rank

    if launch_rank() == 0:  # under torchrun: one line, not one per process
        sys.stdout.write(f"run: {Path(run_dir).resolve()}\n")
    return 0


def run_train_ae(args) -> int:
    return _run(args, AETrainConfig, "ae")


def run_train_gan(args) -> int:
    return _run(args, GANTrainConfig, "gan")


def run_train_align(args) -> int:
    return _run(args, AlignTrainConfig, "align")
