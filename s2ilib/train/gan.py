"""Stage 2: train the generator and discriminator on the frozen audio encoder (`s2i train-gan`).

The encoder comes from an autoencoder run (`ae_run`); its whole autoencoder is copied into
every GAN checkpoint and its configuration into the GAN's config.json, so a GAN run loads
on its own even if the AE run is moved or deleted.
"""

from __future__ import annotations

from pathlib import Path

import torch

from s2ilib import distributed
from s2ilib.errors import S2IError
from s2ilib.train import fastpath
from s2ilib.train.ae import (
    fixed_validation_pairs,
    repeatable_sampling,
    save_sample_grid,
)
from s2ilib.train.checkpoint import load_checkpoint
from s2ilib.train.config import GANTrainConfig
from s2ilib.train.loop import start_run
from s2ilib.train.losses import make_gan_loss, pixel_loss
from s2ilib.train.rundir import build_models
from s2ilib.train.stall import StallDetector
from s2ilib.train.steps import train_step


def make_adam(
    parameters, lr: float, config: GANTrainConfig, fast=fastpath.REFERENCE, device="cpu"
) -> torch.optim.Adam:
    """Adam with the config's betas and weight decay (fused on the fast path)."""
    return fastpath.make_adam(
        parameters, fast, device, lr=lr, betas=config.betas, weight_decay=config.weight_decay
    )


class GANTask:
    """Frozen encoder, generator, discriminator, their optimisers, loss and paired data."""

    kind = "gan"
    config_class = GANTrainConfig
    torchrun_ready = True  # trains under torchrun: networks wrapped by distributed.wrap

    def __init__(self, config: GANTrainConfig, document: dict, data, device):
        from s2ilib.datasets.torch_data import PairedDataset
        from s2ilib.models import init_weights

        self.config, self.device, self.document = config, device, document
        networks = build_models(document["models"], ["autoencoder", "generator", "discriminator"])
        self.autoencoder = networks["autoencoder"].to(device).eval().requires_grad_(False)
        self.generator, self.discriminator = networks["generator"], networks["discriminator"]
        for network in (self.generator, self.discriminator):
            if config.init == "dcgan":
                network.apply(init_weights)
            network.to(device).train()
        self.networks = {
            "encoder": self.autoencoder.encoder,
            "generator": self.generator,
            "discriminator": self.discriminator,
        }
        learning_rates = {
            "generator": config.lr_generator,
            "discriminator": config.lr_discriminator,
        }
        self.fast = fastpath.resolve_fast_path(config, device)
        self.optimizers = {
            name: (make_adam(networks[name].parameters(), lr, config, self.fast, device), lr)
            for name, lr in learning_rates.items()
        }
        self.optimizers_by_name = {name: pair[0] for name, pair in self.optimizers.items()}
        # Under torchrun a stateful loss follows the scores of the whole global batch.
        self.gan_loss = distributed.global_scores(make_gan_loss(config.loss, config))
        self.stall_detector = StallDetector(
            config.stall_window, config.stall_tolerance, config.stall_gap
        )
        image_size = self.generator.config.image_size
        self.train_set = PairedDataset(
            data, "train", image_size, config.classes, config.limit_per_class, config.seed
        )
        self.step_networks, self.autocast = fastpath.prepare_task(
            self.fast, self.networks, self.train_set, device
        )
        self.step_networks = distributed.wrap_networks(  # DDP under torchrun
            self.step_networks, ["generator", "discriminator"], device, config.sync_batchnorm
        )
        self._init_validation(data, image_size)

    def _init_validation(self, data, image_size: int) -> None:
        """Fixed validation sounds, their embeddings and paired images (pairing of epoch 0)."""
        self.val_spectrograms, self.val_images, _ = fixed_validation_pairs(
            data, self.config, image_size, self.device
        )
        self._refresh_validation_embeddings()

    def initialize(self) -> None:
        """A new run: load the encoder (whole autoencoder) from the AE run's checkpoint."""
        state = load_checkpoint(self.document["ae_checkpoint"], map_location=self.device)
        encoder = self.autoencoder.encoder
        missing, unexpected = self.autoencoder.load_state_dict(
            state["models"]["autoencoder"], strict=False
        )
        allowed = (
            {"encoder.embedding_mean", "encoder.embedding_std"} if encoder.standardise else set()
        )
        if unexpected or set(missing) - allowed:
            raise S2IError(
                f"{self.document['ae_checkpoint']}: autoencoder weights do not fit "
                f"(missing {missing}, unexpected {unexpected})"
            )
        self.autoencoder.eval()
        if encoder.standardise:
            self._fit_standardisation()
        self._refresh_validation_embeddings()

    @torch.no_grad()
    def _fit_standardisation(self) -> None:
        """Standardise the embedding with its mean and std over the training sounds (the
        buffers start at 0 and 1, so the encoder gives raw embeddings here)."""
        sounds, size = self.train_set.sounds, self.config.batch_size
        chunks = [
            self.autoencoder.encoder(
                sounds.__getitems__(range(start, min(start + size, len(sounds))))[0].to(self.device)
            )
            for start in range(0, len(sounds), size)
        ]
        self.autoencoder.encoder.set_standardisation(torch.cat(chunks))

    @torch.no_grad()
    def _refresh_validation_embeddings(self) -> None:
        """Embed the validation sounds with the encoder's current (loaded) weights."""
        chunks = self.val_spectrograms.split(self.config.batch_size)
        self.val_embeddings = torch.cat([self.autoencoder.encoder(c) for c in chunks])

    def train_step(self, batch) -> dict:
        spectrograms, images, _ = (
            fastpath.to_memory_format(part.to(self.device, non_blocking=True), self.fast)
            for part in batch
        )
        return train_step(
            self.step_networks,
            self.optimizers_by_name,
            self.gan_loss,
            spectrograms,
            images,
            self.config,
            self.autocast,
        )

    @torch.no_grad()
    def evaluate(self, step: int, samples_path: Path):
        """Validation L1 and a grid: real images, then two dropout draws of generated ones."""
        config = self.config
        with repeatable_sampling(
            self.generator, config.seed, config.test_time_dropout, self.device
        ):
            chunks = self.val_embeddings.split(config.batch_size)
            generated = torch.cat([self.generator(chunk) for chunk in chunks])
            count = min(config.num_samples, len(generated))
            second_draw = self.generator(self.val_embeddings[:count])
        val_pixel = pixel_loss(generated, self.val_images).item()
        shown = torch.cat([self.val_images[:count], generated[:count], second_draw])
        return {"val_pixel_loss": val_pixel}, save_sample_grid(shown, count, samples_path)

    def state_dict(self) -> dict:
        return {
            "kind": self.kind,
            "models": {
                "autoencoder": self.autoencoder.state_dict(),
                "generator": self.generator.state_dict(),
                "discriminator": self.discriminator.state_dict(),
            },
            "optimizers": {k: o.state_dict() for k, o in self.optimizers_by_name.items()},
            "loss_state": self.gan_loss.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        for name in ("autoencoder", "generator", "discriminator"):
            getattr(self, name).load_state_dict(state["models"][name])
        for name, optimizer in self.optimizers_by_name.items():
            optimizer.load_state_dict(state["optimizers"][name])
        self.gan_loss.load_state_dict(state["loss_state"])
        self.autoencoder.eval()
        self._refresh_validation_embeddings()


def resolve_gan_run(config: GANTrainConfig) -> tuple[GANTrainConfig, dict]:
    """The config with preset, embedding width, data and AE run resolved, and what
    config.json holds besides it (networks' configs, AE run and checkpoint).

    `ae_run` may be an autoencoder run or an alignment run (s2i train-align): the GAN then
    conditions on the aligned embedding.
    """
    from s2ilib.models import preset
    from s2ilib.train.align import resolve_earlier_run

    config, ae_models, ae_checkpoint = resolve_earlier_run(config, ("ae", "align"))
    presets = preset(config.preset, config.embedding_dim).as_dict()
    run_config = {
        "data": config.data,
        "ae_run": config.ae_run,
        "ae_checkpoint": str(ae_checkpoint),
        "models": {
            "autoencoder": ae_models | {"standardise_embedding": config.standardise_embedding},
            "generator": presets["generator"],
            "discriminator": presets["discriminator"] | {"spectral_norm": config.spectral_norm},
        },
    }
    return config, run_config


def train_gan(
    config: GANTrainConfig,
    runs_root="runs",
    desc: str | None = None,
    run_dir=None,
    device=None,
    progress_bar: bool = True,
) -> Path:
    """Train stage 2 in a new run directory; returns its path."""
    config, run_config = resolve_gan_run(config)
    desc = desc or (
        f"{Path(config.data).name}-{config.preset}-d{config.embedding_dim}-{config.loss}"
    )
    return start_run(GANTask, config, run_config, runs_root, desc, run_dir, device, progress_bar)
