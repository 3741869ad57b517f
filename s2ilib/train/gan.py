"""Stage 2: the generator and discriminator on the frozen audio encoder (`s2i train-gan`).

The encoder comes from an autoencoder or alignment run (`ae_run`); its whole autoencoder
is copied into every GAN checkpoint and its configuration into the GAN's config.json, so a
GAN run loads on its own even if the earlier run is moved or deleted.
"""

from __future__ import annotations

from pathlib import Path

import torch

from s2ilib import distributed
from s2ilib.train import fastpath
from s2ilib.train.common import (
    fixed_validation_pairs,
    fixed_validation_set,
    frozen_encoder_run_config,
    repeatable_sampling,
    resolve_earlier_run,
    save_sample_grid,
)
from s2ilib.train.config import GANTrainConfig
from s2ilib.train.decoder import FrozenEncoderTask
from s2ilib.train.engine import RunPlan
from s2ilib.train.losses import make_gan_loss, pixel_loss
from s2ilib.train.stall import StallDetector
from s2ilib.train.steps import GANStage, embed_sounds, gan_step

CODE_ENCODER_CHANNELS = (32, 64, 128)  # the code encoder's conv widths (3 stride-2 layers)


def build_code_encoder(generator_config) -> torch.nn.Module:
    """The conditional VAE-GAN's image encoder: an image of the generator's size -> the
    mean and log-variance of its noise_dim code (a small CNN of the alignment's kind)."""
    from s2ilib.models import ImageEncoder, ImageEncoderConfig

    config = ImageEncoderConfig(
        embedding_dim=2 * generator_config.noise_dim,
        image_size=generator_config.image_size,
        image_channels=generator_config.image_channels,
        channels=CODE_ENCODER_CHANNELS,
    )
    return ImageEncoder(config)


def build_gan_stage(networks: dict, config, fast, device, train_set) -> GANStage:
    """The GAN's step bundle from {"encoder", "generator", "discriminator"[, "code_encoder"]}:
    Adam for G (with the code encoder) and D (fused on the fast path), the adversarial loss,
    fast path, DDP under torchrun."""
    trained = {
        "generator": [p for name in ("generator", "code_encoder") if name in networks
                      for p in networks[name].parameters()],
        "discriminator": list(networks["discriminator"].parameters()),
    }  # fmt: skip
    adam = {
        name: fastpath.make_adam(
            trained[name], fast, device, lr=lr, betas=config.betas,
            weight_decay=config.weight_decay,
        )
        for name, lr in (("generator", config.lr_generator),
                         ("discriminator", config.lr_discriminator))
    }  # fmt: skip
    step_networks, autocast = fastpath.prepare_task(fast, networks, train_set, device)
    step_networks = distributed.wrap_networks(
        step_networks, ["generator", "discriminator", "code_encoder"], device,
        config.sync_batchnorm,
    )  # fmt: skip
    return GANStage(
        **step_networks,
        generator_optimizer=adam["generator"],
        discriminator_optimizer=adam["discriminator"],
        loss=make_gan_loss(config.loss, config),
        adversarial_weight=config.adversarial_weight,
        pixel_weight=config.pixel_weight,
        grad_clip=config.grad_clip,
        autocast=autocast,
        kl_weight=config.kl_weight,
        latent_weight=config.latent_weight,
    )


class GANTask(FrozenEncoderTask):
    """Frozen encoder, generator, discriminator, their optimisers, loss and paired data."""

    kind = "gan"
    config_class = GANTrainConfig
    torchrun_ready = True

    def __init__(self, config: GANTrainConfig, document: dict, data, device):
        from s2ilib.datasets.torch_data import PairedDataset
        from s2ilib.models import build_models, init_weights

        self.config, self.device, self.document = config, device, document
        networks = build_models(document["models"], ["autoencoder", "generator", "discriminator"])
        self.autoencoder = networks["autoencoder"].to(device).eval().requires_grad_(False)
        self.generator, self.discriminator = networks["generator"], networks["discriminator"]
        for network in (self.generator, self.discriminator):
            if config.init == "dcgan":
                network.apply(init_weights)
            network.to(device).train()
        image_size = self.generator.config.image_size
        self.train_set = PairedDataset(
            data, "train", image_size, config.classes, config.limit_per_class, config.seed
        )
        self.code_encoder = None
        if config.code_encoder:
            self.code_encoder = build_code_encoder(self.generator.config).to(device).train()
        trained = {"encoder": self.autoencoder.encoder} | {
            "generator": self.generator,
            "discriminator": self.discriminator,
        }
        if self.code_encoder is not None:
            trained["code_encoder"] = self.code_encoder
        self.fast = fastpath.resolve_fast_path(config, device)
        self.stage = build_gan_stage(trained, config, self.fast, device, self.train_set)
        self.optimizers = {
            "generator": (self.stage.generator_optimizer, config.lr_generator),
            "discriminator": (self.stage.discriminator_optimizer, config.lr_discriminator),
        }
        self.stall_detector = StallDetector(
            config.stall_window, config.stall_tolerance, config.stall_gap
        )
        _, self.val_images, _ = fixed_validation_pairs(data, config, image_size, device)
        self.val_set = fixed_validation_set(data, config)  # the same sounds, to embed
        self._refresh_validation_embeddings()

    @classmethod
    def plan(cls, config: GANTrainConfig) -> RunPlan:
        """`ae_run` may be an autoencoder run or an alignment run (s2i train-align): the GAN
        then conditions on the aligned embedding."""
        from s2ilib.models import preset

        config, ae_models, ae_checkpoint = resolve_earlier_run(config, ("ae", "align"))
        presets = preset(config.preset, config.embedding_dim).as_dict()
        networks = {
            "generator": presets["generator"] | {"noise_dim": config.noise_dim},
            "discriminator": presets["discriminator"] | {"spectral_norm": config.spectral_norm},
        }
        run_config = frozen_encoder_run_config(config, ae_models, ae_checkpoint, networks)
        desc = f"{Path(config.data).name}-{config.preset}-d{config.embedding_dim}-{config.loss}"
        return RunPlan(config, run_config, desc)

    def optimize_parameters(self, batch) -> dict:
        embeddings, images, _ = (
            fastpath.to_memory_format(part.to(self.device, non_blocking=True), self.fast)
            for part in batch
        )
        return gan_step(self.stage, embeddings, images)

    def _embed(self, spectrograms: torch.Tensor) -> torch.Tensor:
        return embed_sounds(self.stage, fastpath.to_memory_format(spectrograms, self.fast))

    def observe(self, row: dict) -> list[str]:
        """A warning when the discriminator stalls (s2ilib.train.stall)."""
        warning = self.stall_detector.observe(row)
        return [warning] if warning else []

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

    def _saved_networks(self) -> tuple[str, ...]:
        extra = () if self.code_encoder is None else ("code_encoder",)
        return ("autoencoder", "generator", "discriminator", *extra)

    def state_dict(self) -> dict:
        optimizers = {name: pair[0].state_dict() for name, pair in self.optimizers.items()}
        return {
            "kind": self.kind,
            "models": {name: getattr(self, name).state_dict() for name in self._saved_networks()},
            "optimizers": optimizers,
            "loss_state": self.stage.loss.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        for name in self._saved_networks():
            getattr(self, name).load_state_dict(state["models"][name])
        for name, (optimizer, _) in self.optimizers.items():
            optimizer.load_state_dict(state["optimizers"][name])
        self.stage.loss.load_state_dict(state["loss_state"])
        self.autoencoder.eval()
        self._refresh_embeddings()
