"""Audio-visual alignment between stage 1 and 2 (`s2i train-align`): beyond the paper.

The paper's autoencoder learns to reconstruct spectrograms, nothing more: its embedding need
not separate what the images show (on AV-Digits a linear probe reads the digit no better
from it than from the spectrogram). This stage adds what the GAN needs: a contrastive
(CLIP-style) objective pulls the embedding of a sound towards the embedding of the image it
is paired with and away from the other images of the batch. Only the pairing is used, as
for the GAN (no class labels). The result is an "align" run whose autoencoder (encoder +
alignment head) a GAN run takes in place of an AE run: `s2i train-gan --ae-run ALIGN_RUN`.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from s2ilib.errors import S2IError
from s2ilib.train.ae import fixed_validation_pairs, resolve_data, save_sample_grid
from s2ilib.train.augment import AugmentSettings, augment_spectrograms
from s2ilib.train.checkpoint import latest_checkpoint, load_checkpoint
from s2ilib.train.config import AlignTrainConfig
from s2ilib.train.loop import start_run
from s2ilib.train.losses import contrastive_loss, pairing_positives
from s2ilib.train.rundir import build_models, read_config
from s2ilib.train.steps import gradient_norm

MAX_LOGIT_SCALE = 100.0  # CLIP's clamp of 1 / temperature


def nearest_images(audio: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """For each sound (row of `audio`), the index of its most similar image (cosine)."""
    normalize = torch.nn.functional.normalize
    return (normalize(audio.float(), dim=1) @ normalize(images.float(), dim=1).T).argmax(1)


def retrieval_accuracy(nearest: torch.Tensor, labels: torch.Tensor) -> dict:
    """How often each sound's most similar image (`nearest_images`) is its own pair, or of
    its own class; labels: (N,) classes of the N pairs (evaluation only)."""
    positions = torch.arange(len(nearest), device=nearest.device)
    return {
        "val_pair_top1": (nearest == positions).float().mean().item(),
        "val_class_top1": (labels[nearest] == labels).float().mean().item(),
    }


class AlignTask:
    """Audio encoder + alignment head, image tower, temperature, their optimiser, pairs."""

    kind = "align"
    config_class = AlignTrainConfig

    def __init__(self, config: AlignTrainConfig, document: dict, data, device):
        from s2ilib.datasets.torch_data import PairedDataset

        self.config, self.device, self.document = config, device, document
        networks = build_models(document["models"], ["autoencoder", "image_encoder"])
        self.autoencoder = networks["autoencoder"].to(device)
        self.image_encoder = networks["image_encoder"].to(device).train()
        initial_scale = math.log(1.0 / config.temperature)
        self.log_logit_scale = torch.nn.Parameter(torch.tensor(initial_scale, device=device))
        self.log_logit_scale.requires_grad_(config.learn_temperature)
        self.augment = AugmentSettings.from_config(config)
        self._set_modes()
        self.optimizer = torch.optim.Adam(self._parameter_groups(), betas=config.betas)
        self.optimizers = {"align": (self.optimizer, config.lr)}
        image_size = self.image_encoder.config.image_size
        self.train_set = PairedDataset(
            data, "train", image_size, config.classes, config.limit_per_class, config.seed
        )
        self._init_validation(data, image_size)

    def _set_modes(self) -> None:
        """The encoder's conv layers learn in finetune mode; in head mode they stay frozen,
        BatchNorm statistics included (eval mode)."""
        encoder = self.autoencoder.encoder
        self.autoencoder.eval().requires_grad_(False)
        encoder.head.train().requires_grad_(True)
        if self.config.mode == "finetune":
            encoder.layers.train().requires_grad_(True)

    def _parameter_groups(self) -> list[dict]:
        """Head, image tower and temperature at lr; the encoder's convs at encoder_lr.

        Each group keeps its ratio to the base lr under the loop's schedule ("lr_ratio").
        """
        config, encoder = self.config, self.autoencoder.encoder
        fast = [*encoder.head.parameters(), *self.image_encoder.parameters()]
        if config.learn_temperature:
            fast.append(self.log_logit_scale)
        groups = [{"params": fast, "lr": config.lr}]
        if config.mode == "finetune":
            slow = list(encoder.layers.parameters())
            ratio = config.encoder_lr / config.lr
            groups.append({"params": slow, "lr": config.encoder_lr, "lr_ratio": ratio})
        return groups

    def _init_validation(self, data, image_size: int) -> None:
        """Fixed validation pairs (pairing of epoch 0) spread over the classes."""
        self.val_spectrograms, self.val_images, self.val_labels = fixed_validation_pairs(
            data, self.config, image_size, self.device
        )

    def initialize(self) -> None:
        """A new run: the autoencoder's weights from the AE run (the head starts fresh)."""
        state = load_checkpoint(self.document["ae_checkpoint"], map_location=self.device)
        missing, unexpected = self.autoencoder.load_state_dict(
            state["models"]["autoencoder"], strict=False
        )
        if unexpected or any(not key.startswith("encoder.head.") for key in missing):
            raise S2IError(
                f"{self.document['ae_checkpoint']}: autoencoder weights do not fit "
                f"(missing {missing}, unexpected {unexpected})"
            )
        self._set_modes()

    def positives(self, labels: torch.Tensor) -> torch.Tensor | None:
        """The batch's positive mask for contrastive_loss (None: the diagonal only)."""
        if self.config.positives == "pairing" and self.train_set.pairing == "class":
            return pairing_positives(labels)
        return None

    def logit_scale(self) -> torch.Tensor:
        """1 / temperature, clamped at CLIP's 100."""
        return self.log_logit_scale.exp().clamp(max=MAX_LOGIT_SCALE)

    def train_step(self, batch) -> dict:
        spectrograms, images, labels = (part.to(self.device, non_blocking=True) for part in batch)
        spectrograms = augment_spectrograms(spectrograms, self.augment)
        loss = contrastive_loss(
            self.autoencoder.encoder(spectrograms),
            self.image_encoder(images),
            self.logit_scale(),
            self.positives(labels),
        )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = gradient_norm(self.autoencoder.encoder, self.config.grad_clip)
        if self.config.grad_clip is not None:  # the image tower's norm is not logged
            gradient_norm(self.image_encoder, self.config.grad_clip)
        self.optimizer.step()
        return {
            "loss": loss.detach(),
            "grad_norm": grad_norm.detach(),
            "temperature": 1.0 / self.logit_scale().detach(),
        }

    @torch.no_grad()
    def embed_validation(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(audio, image) embeddings of the fixed validation pairs, in eval mode."""
        encoder, size = self.autoencoder.encoder, self.config.batch_size
        encoder.eval()
        self.image_encoder.eval()
        audio = torch.cat([encoder(chunk) for chunk in self.val_spectrograms.split(size)])
        images = torch.cat([self.image_encoder(chunk) for chunk in self.val_images.split(size)])
        self._set_modes()
        self.image_encoder.train()
        return audio, images

    @torch.no_grad()
    def evaluate(self, step: int, samples_path: Path):
        """Validation contrastive loss, retrieval accuracies and a grid: paired images (top)
        over each sound's most similar validation image (bottom)."""
        config = self.config
        audio, images = self.embed_validation()
        scale, positives = self.logit_scale(), self.positives(self.val_labels)
        stats = {"val_loss": contrastive_loss(audio, images, scale, positives).item()}
        nearest = nearest_images(audio, images)
        stats |= retrieval_accuracy(nearest, self.val_labels)
        count = min(config.num_samples, len(audio))
        retrieved = self.val_images[nearest[:count]]
        shown = torch.cat([self.val_images[:count], retrieved])
        return stats, save_sample_grid(shown, count, samples_path)

    def state_dict(self) -> dict:
        return {
            "kind": self.kind,
            "models": {
                "autoencoder": self.autoencoder.state_dict(),
                "image_encoder": self.image_encoder.state_dict(),
            },
            "optimizers": {"align": self.optimizer.state_dict()},
            "loss_state": {"log_logit_scale": self.log_logit_scale.detach().cpu()},
        }

    def load_state_dict(self, state: dict) -> None:
        self.autoencoder.load_state_dict(state["models"]["autoencoder"])
        self.image_encoder.load_state_dict(state["models"]["image_encoder"])
        self.optimizer.load_state_dict(state["optimizers"]["align"])
        with torch.no_grad():
            self.log_logit_scale.copy_(state["loss_state"]["log_logit_scale"])
        self._set_modes()


def resolve_earlier_run(config, kinds: tuple[str, ...]) -> tuple:
    """A later stage's config resolved from the run it builds on (`config.ae_run`): that
    run's path, preset and embedding width, and the data path ("" = AV-Digits). Returns
    (config, the run's autoencoder config dict, its latest checkpoint)."""
    if not config.ae_run:
        raise S2IError("no autoencoder run given (--ae-run RUN_DIR of a finished train-ae)")
    run_dir = Path(config.ae_run).expanduser().resolve()
    document = read_config(run_dir)
    if document.get("kind") not in kinds:
        raise S2IError(f"{run_dir}: a {document.get('kind')!r} run (expected {' or '.join(kinds)})")
    checkpoint = latest_checkpoint(run_dir)
    if checkpoint is None:
        raise S2IError(f"{run_dir}: the run has no checkpoint yet")
    ae_models = document["models"]["autoencoder"]
    embedding_dim = int(ae_models["embedding_dim"])
    if config.embedding_dim not in (None, embedding_dim):
        raise S2IError(
            f"embedding_dim {config.embedding_dim} differs from the AE run's {embedding_dim} "
            f"({run_dir})"
        )
    config = config.updated(
        {
            "ae_run": str(run_dir),
            "preset": config.preset or document["train"]["preset"],
            "embedding_dim": embedding_dim,
            "data": resolve_data(config.data),
        }
    )
    return config, ae_models, checkpoint


def resolve_align_run(config: AlignTrainConfig) -> tuple[AlignTrainConfig, dict]:
    """The config with preset, embedding width and data resolved from the AE run, and what
    config.json holds besides it (networks' configs, AE run and checkpoint)."""
    from s2ilib.models import ImageEncoderConfig, preset
    from s2ilib.models.config import config_dict

    config, ae_models, ae_checkpoint = resolve_earlier_run(config, ("ae",))
    generator = preset(config.preset, config.embedding_dim).generator
    image_encoder = ImageEncoderConfig(
        config.embedding_dim, generator.image_size, generator.image_channels, config.image_channels
    )
    run_config = {
        "data": config.data,
        "ae_run": config.ae_run,
        "ae_checkpoint": str(ae_checkpoint),
        "models": {
            "autoencoder": ae_models
            | {"alignment_head": True, "normalise_bands": config.normalise_bands},
            "image_encoder": config_dict(image_encoder),
        },
    }
    return config, run_config


def train_align(
    config: AlignTrainConfig,
    runs_root="runs",
    desc: str | None = None,
    run_dir=None,
    device=None,
    progress_bar: bool = True,
) -> Path:
    """Align the AE run's encoder with images in a new run directory; returns its path."""
    config, run_config = resolve_align_run(config)
    desc = desc or f"{Path(config.data).name}-{config.preset}-d{config.embedding_dim}-{config.mode}"
    return start_run(AlignTask, config, run_config, runs_root, desc, run_dir, device, progress_bar)
