"""Stage 2: train the generator and discriminator on the frozen audio encoder (`s2i train-gan`).

The encoder comes from an autoencoder run (`ae_run`); its whole autoencoder is copied into
every GAN checkpoint and its configuration into the GAN's config.json, so a GAN run loads
on its own even if the AE run is moved or deleted.
"""

from __future__ import annotations

from pathlib import Path

import torch

from s2ilib.errors import S2IError
from s2ilib.train.ae import repeatable_sampling, resolve_data, save_sample_grid
from s2ilib.train.checkpoint import latest_checkpoint, load_checkpoint
from s2ilib.train.config import GANTrainConfig
from s2ilib.train.loop import spread_over_classes, start_run, validation_split
from s2ilib.train.losses import make_gan_loss, pixel_loss
from s2ilib.train.rundir import build_models, read_config
from s2ilib.train.steps import train_step


def make_adam(parameters, lr: float, config: GANTrainConfig) -> torch.optim.Adam:
    """Adam with the config's betas and weight decay."""
    return torch.optim.Adam(parameters, lr=lr, betas=config.betas, weight_decay=config.weight_decay)


class GANTask:
    """Frozen encoder, generator, discriminator, their optimisers, loss and paired data."""

    kind = "gan"
    config_class = GANTrainConfig

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
        self.optimizers = {
            name: (make_adam(networks[name].parameters(), lr, config), lr)
            for name, lr in learning_rates.items()
        }
        self.optimizers_by_name = {name: pair[0] for name, pair in self.optimizers.items()}
        self.gan_loss = make_gan_loss(config.loss, config)
        image_size = self.generator.config.image_size
        self.train_set = PairedDataset(
            data, "train", image_size, config.classes, config.limit_per_class, config.seed
        )
        self._init_validation(data, image_size)

    def _init_validation(self, data, image_size: int) -> None:
        """Fixed validation sounds, their embeddings and paired images (pairing of epoch 0)."""
        from s2ilib.datasets.torch_data import PairedDataset

        config = self.config
        pairs = PairedDataset(
            data, validation_split(data), image_size, config.classes, seed=config.seed
        )
        positions = spread_over_classes(
            pairs.sounds.labels.numpy(), config.val_samples, config.seed
        )
        spectrograms, images, _ = pairs.__getitems__(positions)
        self.val_images = images.to(self.device)
        self.val_spectrograms = spectrograms.to(self.device)
        self._refresh_validation_embeddings()

    def initialize(self) -> None:
        """A new run: load the encoder (whole autoencoder) from the AE run's checkpoint."""
        state = load_checkpoint(self.document["ae_checkpoint"], map_location=self.device)
        self.autoencoder.load_state_dict(state["models"]["autoencoder"])
        self.autoencoder.eval()
        self._refresh_validation_embeddings()

    @torch.no_grad()
    def _refresh_validation_embeddings(self) -> None:
        """Embed the validation sounds with the encoder's current (loaded) weights."""
        chunks = self.val_spectrograms.split(self.config.batch_size)
        self.val_embeddings = torch.cat([self.autoencoder.encoder(c) for c in chunks])

    def train_step(self, batch) -> dict:
        spectrograms, images, _ = (part.to(self.device, non_blocking=True) for part in batch)
        return train_step(
            self.networks, self.optimizers_by_name, self.gan_loss, spectrograms, images, self.config
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
    config.json holds besides it (networks' configs, AE run and checkpoint)."""
    from s2ilib.models import preset

    if not config.ae_run:
        raise S2IError("no autoencoder run given (--ae-run RUN_DIR of a finished train-ae)")
    ae_run = Path(config.ae_run).expanduser().resolve()
    ae_document = read_config(ae_run)
    if ae_document.get("kind") != "ae":
        raise S2IError(f"{ae_run}: not an autoencoder run (kind {ae_document.get('kind')!r})")
    ae_checkpoint = latest_checkpoint(ae_run)
    if ae_checkpoint is None:
        raise S2IError(f"{ae_run}: the autoencoder run has no checkpoint yet")
    ae_models = ae_document["models"]["autoencoder"]
    embedding_dim = int(ae_models["embedding_dim"])
    if config.embedding_dim not in (None, embedding_dim):
        raise S2IError(
            f"embedding_dim {config.embedding_dim} differs from the AE run's {embedding_dim} "
            f"({ae_run})"
        )
    preset_name = config.preset or ae_document["train"]["preset"]
    config = config.updated(
        {
            "ae_run": str(ae_run),
            "preset": preset_name,
            "embedding_dim": embedding_dim,
            "data": resolve_data(config.data),
        }
    )
    presets = preset(preset_name, embedding_dim).as_dict()
    run_config = {
        "data": config.data,
        "ae_run": str(ae_run),
        "ae_checkpoint": str(ae_checkpoint),
        "models": {
            "autoencoder": ae_models,
            "generator": presets["generator"],
            "discriminator": presets["discriminator"],
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
