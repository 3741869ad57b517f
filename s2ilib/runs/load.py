"""Trained runs in use: the networks of a run directory, in eval mode, frozen."""

from __future__ import annotations

import typing
from dataclasses import dataclass
from pathlib import Path

import torch

from s2ilib.errors import S2IError
from s2ilib.runs.checkpoint import latest_checkpoint, load_checkpoint
from s2ilib.runs.rundir import read_config

# The networks each kind of run holds (informativity runs: s2ilib.informativity).
RUN_NETWORKS = {
    "ae": ("autoencoder",),
    "align": ("autoencoder", "image_encoder"),
    "gan": ("autoencoder", "generator", "discriminator"),
    "flow": ("autoencoder", "flow"),
}
# The kinds of run that translate sounds to images (a GAN's generator, a flow's decoder).
TRANSLATOR_KINDS = ("gan", "flow")


@dataclass
class TrainedRun:
    """The networks of a finished (or checkpointed) run, in eval mode.

    autoencoder: the AE of an ae run; for an align run the AE with its aligned encoder; for
    a gan run the frozen AE its encoder came from (weights from the GAN checkpoint's own
    copy). generator: a gan run's generator or a flow run's decoder (the same interface:
    generator(embeddings, codes) -> images); discriminator: gan runs only; image_encoder:
    align runs only.
    """

    run_dir: Path
    kind: str  # "ae", "align", "gan" or "flow"
    config: dict  # config.json
    step: int  # optimiser steps of the loaded checkpoint
    autoencoder: typing.Any
    generator: typing.Any = None
    discriminator: typing.Any = None
    embedding_dim: int = 0
    image_size: int | None = None  # generated image side (gan runs)
    image_encoder: typing.Any = None

    @property
    def encoder(self):
        """The audio encoder (with its alignment head, if any)."""
        return self.autoencoder.encoder


def loadable_run(run_dir, kind=None, checkpoint=None) -> tuple[dict, Path]:
    """(config, checkpoint path) of a run that load_run can load, checked without building a
    network: a run of `kind` (one or a tuple of kinds) with a checkpoint (its latest unless
    `checkpoint`); an S2IError naming what is wrong otherwise."""
    run_dir = Path(run_dir)
    config = read_config(run_dir)
    if config.get("kind") not in RUN_NETWORKS:
        raise S2IError(f"{run_dir}: a {config.get('kind')!r} run has no networks to load here")
    expected = (kind,) if isinstance(kind, str) else kind
    if expected is not None and config["kind"] not in expected:
        wanted = " or ".join(repr(k) for k in expected)
        raise S2IError(f"{run_dir}: a {config['kind']!r} run, not a {wanted} run")
    checkpoint = Path(checkpoint) if checkpoint else latest_checkpoint(run_dir)
    if checkpoint is None:
        raise S2IError(f"{run_dir}: no checkpoint yet (checkpoints/last.pt)")
    return config, checkpoint


def load_run(run_dir, device="cpu", checkpoint=None, kind=None) -> TrainedRun:
    """The trained networks of a run directory (its latest checkpoint unless `checkpoint`);
    `kind`: the kind of run expected, or a tuple of kinds (TRANSLATOR_KINDS for a
    translator), an error naming them otherwise."""
    from s2ilib.models import build_models

    run_dir = Path(run_dir)
    config, checkpoint = loadable_run(run_dir, kind, checkpoint)
    names = RUN_NETWORKS[config["kind"]]
    state = load_checkpoint(checkpoint, map_location=device)
    # Every weight comes from the checkpoint, pretrained ones included (a speech front's
    # 42 tensors are buffers in its state dict, and a strict load refuses one missing):
    # loading a run reads no pretrained file and needs no openWakeWord.
    networks = build_models(config["models"], names, load_pretrained=False)
    for name, network in networks.items():
        network.load_state_dict(state["models"][name])
        network.to(device).eval().requires_grad_(False)
    generator = networks.get("generator", networks.get("flow"))
    if config["kind"] == "flow" and next(generator.parameters()).device.type == "cpu":
        # oneDNN convolves NHWC maps without reordering them: a flow draws x1.5 faster on
        # the CPU, the same images to 1e-5 (benchmarks/RESULTS.md, "Drawing with a flow").
        generator.to(memory_format=torch.channels_last)
    if "memory" in state:  # a flow that recalls before it redraws (FlowConfig.recall_from)
        from s2ilib.models.flow import FlowMemory

        generator.attach_memory(FlowMemory.from_state(state["memory"]))
    return TrainedRun(
        run_dir=run_dir,
        kind=config["kind"],
        config=config,
        step=int(state["progress"]["step"]),
        autoencoder=networks["autoencoder"],
        generator=generator,
        discriminator=networks.get("discriminator"),
        image_encoder=networks.get("image_encoder"),
        embedding_dim=int(config["models"]["autoencoder"]["embedding_dim"]),
        image_size=generator.config.image_size if generator is not None else None,
    )
