"""Audio-visual alignment between stage 1 and 2 (`s2i train-align`): beyond the paper.

The paper's autoencoder learns to reconstruct spectrograms, nothing more: its embedding need
not separate what the images show (on AV-Digits a linear probe reads the digit no better
from it than from the spectrogram). This stage adds what the GAN needs: a contrastive
(CLIP-style) objective pulls the embedding of a sound towards the embedding of the image it
is paired with and away from the other images of the batch. Only the pairing is used, as
for the GAN (no class labels). The result is an "align" run whose autoencoder (encoder +
alignment head) a GAN run takes in place of an AE run: `s2i train-gan --ae-run ALIGN_RUN`.

It trains through the same machinery as the other stages: a step bundle (steps.AlignStage),
the fast path, and DistributedDataParallel under torchrun, where every rank's embeddings are
gathered so that the contrastive loss sees the whole global batch as negatives.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

from s2ilib import distributed
from s2ilib.train import fastpath
from s2ilib.train.augment import AugmentSettings
from s2ilib.train.common import (
    fixed_validation_inputs,
    fixed_validation_pairs,
    frozen_front_features,
    load_autoencoder_weights,
    resolve_earlier_run,
    save_sample_grid,
    without_augmentation_for_frozen_front,
)
from s2ilib.train.config import AlignTrainConfig
from s2ilib.train.engine import BaseTask, RunPlan
from s2ilib.train.losses import contrastive_loss, pairing_positives
from s2ilib.train.steps import AlignStage, align_step

MAX_LOGIT_SCALE = 100.0  # CLIP's clamp of 1 / temperature


class ContrastivePair(nn.Module):
    """The two towers and the temperature: (spectrograms, images) -> (audio embeddings,
    image embeddings, logit scale = 1 / temperature, clamped at CLIP's 100)."""

    def __init__(self, audio_encoder: nn.Module, image_encoder: nn.Module, temperature: float):
        super().__init__()
        self.audio_encoder, self.image_encoder = audio_encoder, image_encoder
        self.log_logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / temperature)))

    def logit_scale(self) -> torch.Tensor:
        return self.log_logit_scale.exp().clamp(max=MAX_LOGIT_SCALE)

    def forward(self, spectrograms, images):
        return self.audio_encoder(spectrograms), self.image_encoder(images), self.logit_scale()


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


class AlignTask(BaseTask):
    """Audio encoder + alignment head, image tower, temperature, their optimiser, pairs."""

    kind = "align"
    config_class = AlignTrainConfig
    torchrun_ready = True

    def __init__(self, config: AlignTrainConfig, document: dict, data, device):
        from s2ilib.datasets.torch_data import PairedDataset
        from s2ilib.models import build_models

        self.config, self.device, self.document = config, device, document
        networks = build_models(document["models"], ["autoencoder", "image_encoder"])
        self.autoencoder = networks["autoencoder"].to(device)
        image_encoder = networks["image_encoder"].to(device).train()
        self.pair = ContrastivePair(self.autoencoder.encoder, image_encoder, config.temperature)
        self.pair.to(device).log_logit_scale.requires_grad_(config.learn_temperature)
        self._set_modes()
        image_size = image_encoder.config.image_size
        self.train_set = PairedDataset(
            data, "train", image_size, config.classes, config.limit_per_class, config.seed
        )
        self.stage = self._build_stage()
        self.optimizers = {"align": (self.stage.optimizer, config.lr)}
        _, self.val_images, self.val_labels = fixed_validation_pairs(
            data, config, image_size, device
        )
        # What the encoder reads of the same sounds (a frozen front's features, once)
        self.val_inputs = fixed_validation_inputs(self.autoencoder.encoder, data, config, device)

    def _build_stage(self) -> AlignStage:
        """Adam over the parameter groups, fast path, DDP under torchrun."""
        config, device = self.config, self.device
        self.fast = fastpath.resolve_fast_path(config, device)
        optimizer = fastpath.make_adam(
            self._parameter_groups(), self.fast, device, betas=config.betas
        )
        networks, autocast = fastpath.prepare_task(
            self.fast, {"pair": self.pair}, self.train_set, device
        )
        networks = distributed.wrap_networks(networks, ["pair"], device, config.sync_batchnorm)
        return AlignStage(
            model=networks["pair"],
            pair=self.pair,
            optimizer=optimizer,
            augment=AugmentSettings.from_config(config),
            positives=self.positives,
            gather=distributed.all_gather_with_grad,
            grad_clip=config.grad_clip,
            autocast=autocast,
        )

    @classmethod
    def plan(cls, config: AlignTrainConfig) -> RunPlan:
        """The config with preset, embedding width and data resolved from the AE run, and
        config.json's networks (the AE's autoencoder with an alignment head, the image tower)."""
        from s2ilib.models import ImageEncoderConfig, preset
        from s2ilib.models.config import config_dict

        config, ae_models, ae_checkpoint = resolve_earlier_run(config, ("ae",))
        config = without_augmentation_for_frozen_front(config, ae_models)
        generator = preset(config.preset, config.embedding_dim).generator
        image_encoder = ImageEncoderConfig(
            config.embedding_dim, generator.image_size, generator.image_channels,
            config.image_channels,
        )  # fmt: skip
        head = {"alignment_head": True, "normalise_bands": config.normalise_bands}
        run_config = {
            "data": config.data,
            "ae_run": config.ae_run,
            "ae_checkpoint": str(ae_checkpoint),
            "models": {
                "autoencoder": ae_models | head,
                "image_encoder": config_dict(image_encoder),
            },
        }
        desc = f"{Path(config.data).name}-{config.preset}-d{config.embedding_dim}-{config.mode}"
        return RunPlan(config, run_config, desc)

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

        Each group keeps its ratio to the base lr under the schedule ("lr_ratio").
        """
        config, encoder = self.config, self.autoencoder.encoder
        fast = [*encoder.head.parameters(), *self.pair.image_encoder.parameters()]
        if config.learn_temperature:
            fast.append(self.pair.log_logit_scale)
        groups = [{"params": fast, "lr": config.lr}]
        if config.mode == "finetune":
            slow = list(encoder.layers.parameters())
            ratio = config.encoder_lr / config.lr
            groups.append({"params": slow, "lr": config.encoder_lr, "lr_ratio": ratio})
        return groups

    def initialize(self) -> None:
        """A new run: the autoencoder's weights from the AE run (the head starts fresh)."""
        load_autoencoder_weights(
            self.autoencoder,
            self.document["ae_checkpoint"],
            lambda key: key.startswith("encoder.head."),
            self.device,
        )
        self._set_modes()
        self._serve_front_features()

    def _serve_front_features(self) -> None:
        """With a frozen front, the training set serves its features of the sounds (from their
        spectrograms or audio, computed once; the plan turned augmentation off) in place of
        the spectrograms."""
        encoder = self.autoencoder.encoder
        features = frozen_front_features(encoder, self.train_set.sounds, self.device)
        self.train_set.use_sound_features(features)

    def positives(self, labels: torch.Tensor) -> torch.Tensor | None:
        """The batch's positive mask for contrastive_loss (None: the diagonal only)."""
        if self.config.positives == "pairing" and self.train_set.pairing == "class":
            return pairing_positives(labels)
        return None

    def optimize_parameters(self, batch) -> dict:
        spectrograms, images, labels = (
            fastpath.to_memory_format(part.to(self.device, non_blocking=True), self.fast)
            for part in batch
        )
        return align_step(self.stage, spectrograms, images, labels)

    @torch.no_grad()
    def embed_validation(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(audio, image) embeddings of the fixed validation pairs, in eval mode."""
        encoder, image_encoder = self.autoencoder.encoder, self.pair.image_encoder
        size = self.config.batch_size
        encoder.eval()
        image_encoder.eval()
        audio = torch.cat([encoder(chunk) for chunk in self.val_inputs.split(size)])
        images = torch.cat([image_encoder(chunk) for chunk in self.val_images.split(size)])
        self._set_modes()
        image_encoder.train()
        return audio, images

    @torch.no_grad()
    def evaluate(self, step: int, samples_path: Path):
        """Validation contrastive loss, retrieval accuracies and a grid: paired images (top)
        over each sound's most similar validation image (bottom)."""
        config = self.config
        audio, images = self.embed_validation()
        scale, positives = self.pair.logit_scale(), self.positives(self.val_labels)
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
                "image_encoder": self.pair.image_encoder.state_dict(),
            },
            "optimizers": {"align": self.stage.optimizer.state_dict()},
            "loss_state": {"log_logit_scale": self.pair.log_logit_scale.detach().cpu()},
        }

    def load_state_dict(self, state: dict) -> None:
        self.autoencoder.load_state_dict(state["models"]["autoencoder"])
        self.pair.image_encoder.load_state_dict(state["models"]["image_encoder"])
        self.stage.optimizer.load_state_dict(state["optimizers"]["align"])
        with torch.no_grad():
            self.pair.log_logit_scale.copy_(state["loss_state"]["log_logit_scale"])
        self._set_modes()
        self._serve_front_features()
