"""Stage 1: the audio autoencoder, trained on spectrograms alone (`s2i train-ae`)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from s2ilib import distributed
from s2ilib.train import fastpath
from s2ilib.train.common import (
    fixed_validation_inputs,
    fixed_validation_sounds,
    front_input_for,
    frozen_front_features,
    repeatable_sampling,
    resolve_data,
    save_sample_grid,
)
from s2ilib.train.config import AETrainConfig
from s2ilib.train.engine import BaseTask, RunPlan
from s2ilib.train.losses import reconstruction_loss
from s2ilib.train.steps import AEStage, ae_step


def make_optimizer(parameters, config, fast=fastpath.REFERENCE, device="cpu"):
    """SGD with momentum (the authors') or Adam (fused on the fast path), as the config says."""
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            parameters, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
        )
    return fastpath.make_adam(
        parameters, fast, device, lr=config.lr, betas=config.betas, weight_decay=config.weight_decay
    )


def build_ae_stage(autoencoder, config, fast, device, train_set) -> AEStage:
    """The autoencoder's step bundle: optimiser, fast path, DDP under torchrun."""
    optimizer = make_optimizer(autoencoder.parameters(), config, fast, device)
    networks, autocast = fastpath.prepare_task(
        fast, {"autoencoder": autoencoder}, train_set, device
    )
    networks = distributed.wrap_networks(networks, ["autoencoder"], device, config.sync_batchnorm)
    return AEStage(networks["autoencoder"], optimizer, config.grad_clip, autocast)


class AETask(BaseTask):
    """The autoencoder, its optimiser and the training spectrograms."""

    kind = "ae"
    config_class = AETrainConfig
    torchrun_ready = True

    def __init__(self, config: AETrainConfig, document: dict, data, device):
        from s2ilib.datasets.torch_data import SpectrogramDataset
        from s2ilib.models import build_models, init_weights

        self.config, self.device = config, device
        self.autoencoder = build_models(document["models"], ["autoencoder"])["autoencoder"]
        if config.init == "dcgan":
            self.autoencoder.apply(init_weights)
        self.autoencoder.to(device).train()
        self.fast = fastpath.resolve_fast_path(config, device)
        self.train_set = SpectrogramDataset(
            data.split("train"), config.classes, config.limit_per_class, config.seed
        )
        # A frozen front's features of the training sounds (from their spectrograms or their
        # audio), computed once, are the encoder's inputs; the spectrograms stay the
        # reconstruction targets.
        self.train_set.use_inputs(
            frozen_front_features(self.autoencoder.encoder, self.train_set, device)
        )
        self.stage = build_ae_stage(self.autoencoder, config, self.fast, device, self.train_set)
        self.optimizers = {"autoencoder": (self.stage.optimizer, config.lr)}
        self.val_sounds = fixed_validation_sounds(data, config, device)
        self.val_inputs = fixed_validation_inputs(self.autoencoder.encoder, data, config, device)

    @classmethod
    def plan(cls, config: AETrainConfig) -> RunPlan:
        from s2ilib.models import preset
        from s2ilib.models.config import config_dict

        config = config.updated({"data": resolve_data(config.data)})
        presets = preset(config.preset, config.embedding_dim)
        # config_dict: the whisper front's weights' sha256 is recorded (front_weights)
        front_input = front_input_for(config.data, config.front, config.front_input)
        autoencoder = replace(presets.autoencoder, front=config.front, front_input=front_input)
        autoencoder = config_dict(autoencoder)
        run_config = {"data": config.data, "models": {"autoencoder": autoencoder}}
        front = "" if config.front == "conv" else f"-{config.front}"
        front += "-audio" if front_input == "audio" else ""
        desc = f"{Path(config.data).name}-{config.preset}-d{config.embedding_dim}{front}"
        return RunPlan(config, run_config, desc)

    def optimize_parameters(self, batch) -> dict:
        spectrograms = fastpath.to_memory_format(
            batch[0].to(self.device, non_blocking=True), self.fast
        )
        inputs = batch[2].to(self.device, non_blocking=True) if len(batch) > 2 else None
        return ae_step(self.stage, spectrograms, inputs)

    @torch.no_grad()
    def evaluate(self, step: int, samples_path: Path):
        """Validation MSE and a grid of inputs (top row) over reconstructions (bottom row)."""
        config = self.config
        with repeatable_sampling(
            self.autoencoder, config.seed, config.test_time_dropout, self.device
        ):
            chunks = self.val_inputs.split(config.batch_size)
            reconstruction = torch.cat([self.autoencoder(chunk)[0] for chunk in chunks])
        val_loss = reconstruction_loss(reconstruction, self.val_sounds).item()
        count = min(config.num_samples, len(self.val_sounds))
        shown = torch.cat([self.val_sounds[:count], reconstruction[:count]])
        return {"val_loss": val_loss}, save_sample_grid(shown, count, samples_path)

    def state_dict(self) -> dict:
        return {
            "kind": self.kind,
            "models": {"autoencoder": self.autoencoder.state_dict()},
            "optimizers": {"autoencoder": self.stage.optimizer.state_dict()},
            "loss_state": {},
        }

    def load_state_dict(self, state: dict) -> None:
        self.autoencoder.load_state_dict(state["models"]["autoencoder"])
        self.stage.optimizer.load_state_dict(state["optimizers"]["autoencoder"])
