"""Recipe `flow`: the flow-matching decoder on the frozen audio encoder (`s2i train-flow`).

Beyond the paper (issue 15): the GAN's generator, trained with an L1 pixel loss against a
random image of the sound's class, draws one blurred class template per sound; a
conditional flow learns the whole distribution of images given the sound. One step: for
paired (sound, image), draw noise x0 ~ N(0, I) and a time t (logit-normal: most of the
training where the path is hardest, Esser et al. 2024), and regress the decoder's velocity
at x_t = (1 - t) x0 + t x1 toward x1 - x0. As for the GAN, the frozen encoder's whole
autoencoder is copied into every checkpoint, so a flow run loads on its own.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from s2ilib.errors import S2IError
from s2ilib.models.flow import FlowMemory
from s2ilib.train.common import (
    fixed_validation_pairs,
    fixed_validation_set,
    frozen_encoder_run_config,
    frozen_front_features,
    resolve_earlier_run,
    save_sample_grid,
)
from s2ilib.train.config import FlowTrainConfig
from s2ilib.train.decoder import FrozenEncoderTask
from s2ilib.train.engine import RunPlan

GREY_CHECK_IMAGES = 256  # images of the pool looked at to tell grey data from colour
# The front weights (FlowConfig.recall_front_weight) the validation split chooses among
FRONT_WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
VALIDATION_NOISE_SEED = 20260112  # the validation loss's fixed noise and times
MEMORY_CHUNK = 1024  # images resized at a time when the recall memory is built


def grey_images(data, split: str = "train") -> bool:
    """True when the first images of the split's image pool have three equal channels."""
    images = np.asarray(data.image_pool(split).images[:GREY_CHECK_IMAGES])
    if images.ndim == 3 or images.shape[-1] == 1:
        return True
    return bool((images[..., :1] == images).all())


def flow_network_config(config: FlowTrainConfig, image_size: int, grey: bool) -> dict:
    """The decoder's FlowConfig (a plain dict for config.json) from the training config."""
    from s2ilib.models.config import FlowConfig, config_dict

    channels = {"auto": 1 if grey else 3, "1": 1, "3": 3}[config.image_channels]
    names = ("patch", "channels", "condition_dim", "sample_steps", "solver", "guidance",
             "guidance_from", "guidance_until", "recall_from", "recall_neighbours",
             "recall_front_weight")  # fmt: skip
    settings = {name: getattr(config, name) for name in names}
    network = FlowConfig(
        embedding_dim=config.embedding_dim,
        image_size=image_size,
        image_channels=channels,
        **settings,
    )
    return config_dict(network)


def recall_memory(train_set, embeddings: torch.Tensor, channels: int) -> FlowMemory:
    """The memory a recalling flow draws on (FlowConfig.recall_from): the training sounds'
    embeddings and the images each was paired with, at the set's image size, as uint8."""
    from s2ilib.datasets.torch_data import resize_images

    first, count = train_set.paired_image_ranges()
    total, size = train_set.image_count(), train_set.image_size
    chunks = []
    for start in range(0, total, MEMORY_CHUNK):
        stored = train_set.images[np.arange(start, min(start + MEMORY_CHUNK, total))]
        unit = resize_images(stored, size)[:, :channels]  # [-1, 1], as training sees them
        chunks.append(unit.add(1).mul(127.5).round().to(torch.uint8).cpu())
    return FlowMemory(
        embeddings=F.normalize(embeddings.float()).cpu(),
        first=torch.as_tensor(first, dtype=torch.long),
        count=torch.as_tensor(count, dtype=torch.long),
        images=torch.cat(chunks),
    )


@torch.no_grad()
def choose_front_weight(memory: FlowMemory, memory_labels, sounds: dict, neighbours: int = 1):
    """(the weight, {weight: accuracy}): the front weight (FRONT_WEIGHTS) whose recall
    fetches the images of the right class for the most validation sounds (class-balanced
    accuracy of the recalled training sound's class; the first best on a tie, so the
    embedding alone where the front adds nothing). sounds: the validation sounds'
    "embeddings", "front_features" and "labels"; memory_labels: the class of each memory row."""
    from s2ilib.metrics import balanced_mean

    labels, memory_labels = torch.as_tensor(sounds["labels"]), torch.as_tensor(memory_labels)
    classes = int(max(labels.max(), memory_labels.max())) + 1
    device = memory.embeddings.device
    embeddings, front = sounds["embeddings"].to(device), sounds["front_features"].to(device)
    by_embedding = memory.similarity(embeddings, None, weight=0.0)  # each cosine once
    by_front = memory.similarity(embeddings, front, weight=1.0)
    accuracy = {}
    for weight in FRONT_WEIGHTS:
        mixed = (1 - weight) * by_embedding + weight * by_front  # FlowMemory.similarity's mix
        recalled = memory.vote(mixed, neighbours).cpu()
        right = (memory_labels[recalled] == labels).float().numpy()
        accuracy[weight] = balanced_mean(right, labels.numpy(), classes)[2]
    return max(accuracy, key=accuracy.get), accuracy


def flow_matching_loss(decoder, images, embeddings, condition_dropout: float) -> torch.Tensor:
    """Mean squared error of the decoder's velocity at a random point of the straight path
    from noise to `images` (B, C, S, S), the embedding hidden with p = condition_dropout."""
    count, device = len(images), images.device
    noise = torch.randn_like(images)
    times = torch.sigmoid(torch.randn(count, device=device))
    keep = torch.rand(count, device=device) >= condition_dropout
    t = times[:, None, None, None]
    predicted = decoder.velocity((1 - t) * noise + t * images, times,
                                 decoder.conditions(embeddings, keep))  # fmt: skip
    return F.mse_loss(predicted, images - noise)


@torch.no_grad()
def update_average(average, trained, decay: float) -> None:
    """average <- decay * average + (1 - decay) * trained, parameter by parameter."""
    torch._foreach_lerp_(list(average.parameters()), list(trained.parameters()), 1.0 - decay)


class FlowTask(FrozenEncoderTask):
    """Frozen encoder, the decoder being trained and its moving average, paired data."""

    kind = "flow"
    config_class = FlowTrainConfig

    def __init__(self, config: FlowTrainConfig, document: dict, data, device):
        from s2ilib.datasets.torch_data import PairedDataset
        from s2ilib.models import build_models

        self.config, self.device, self.document = config, device, document
        networks = build_models(document["models"], ["autoencoder", "flow"])
        self.autoencoder = networks["autoencoder"].to(device).eval().requires_grad_(False)
        self.flow = networks["flow"].to(device).train()
        self.average = copy.deepcopy(self.flow).eval().requires_grad_(False)
        self.updates = 0  # optimiser steps the moving average has seen (its warm-up)
        flow_config = self.flow.config
        self.train_set = PairedDataset(
            data, "train", flow_config.image_size, config.classes, config.limit_per_class,
            config.seed,
        )  # fmt: skip
        self.optimizer = torch.optim.AdamW(
            self.flow.parameters(), lr=config.lr, betas=config.betas,
            weight_decay=config.weight_decay,
        )  # fmt: skip
        self.optimizers = {"flow": (self.optimizer, config.lr)}
        _, self.val_images, _ = fixed_validation_pairs(data, config, flow_config.image_size, device)
        self.val_set = fixed_validation_set(data, config)  # the same sounds, to embed
        self._refresh_validation_embeddings()

    @classmethod
    def plan(cls, config: FlowTrainConfig) -> RunPlan:
        """`ae_run` is an autoencoder or alignment run (the `flow` recipe: alignment)."""
        from s2ilib.datasets import open_dataset
        from s2ilib.models import preset

        config, ae_models, ae_checkpoint = resolve_earlier_run(config, ("ae", "align"))
        if config.recall_front_weight and ae_models.get("front", "conv") == "conv":
            raise S2IError(
                f"recall_front_weight {config.recall_front_weight}: the encoder of "
                f"{config.ae_run} has no frozen front (front 'conv') to recall by; leave it "
                "unset or 0"
            )
        image_size = config.image_size or preset(config.preset).generator.image_size
        grey = grey_images(open_dataset(config.data))
        network = {"flow": flow_network_config(config, image_size, grey)}
        run_config = frozen_encoder_run_config(config, ae_models, ae_checkpoint, network)
        desc = f"{Path(config.data).name}-{image_size}px-d{config.embedding_dim}"
        return RunPlan(config, run_config, desc)

    def _refresh_embeddings(self) -> None:
        """The embeddings (FrozenEncoderTask), then, for a flow that recalls before it
        redraws, its memory of the training images (saved with every checkpoint), with
        the training sounds' front features for an encoder with a frozen front."""
        super()._refresh_embeddings()
        self.recall_choice, self.val_front_features, memory = None, None, None
        if self.flow.config.recall_from > 0:
            channels = self.flow.config.image_channels
            memory = recall_memory(self.train_set, self.train_set.sound_features, channels)
            if self.training_front_features is not None:
                memory = self._with_front(memory)
        for decoder in (self.flow, self.average):
            decoder.attach_memory(memory)
        if self.average.recalls_by_front():  # the sample grids' sounds, for their recall
            sounds, positions = self.val_set
            self.val_front_features = frozen_front_features(
                self.autoencoder.encoder, sounds, self.device, positions
            )

    def _with_front(self, memory: FlowMemory) -> FlowMemory:
        """The memory with the training sounds' front features and the front weight: the
        config's, or the one the validation split chooses (`recall_choice`; limit_per_class
        sounds of each class when the run has that limit)."""
        from s2ilib.datasets.torch_data import select_indices

        config, encoder = self.config, self.autoencoder.encoder
        memory = memory.with_front(self.training_front_features, config.recall_front_weight or 0.0)
        if config.recall_front_weight is not None:
            return memory
        sounds = self.val_set[0]
        positions = select_indices(sounds.labels.numpy(), None, config.limit_per_class, config.seed)
        front = frozen_front_features(encoder, sounds, self.device, positions)
        with torch.no_grad():
            embeddings = torch.cat([encoder(chunk) for chunk in front.split(config.batch_size)])
        validation = {"embeddings": embeddings, "front_features": front,
                      "labels": sounds.labels[torch.as_tensor(positions)]}  # fmt: skip
        weight, accuracy = choose_front_weight(
            memory, self.train_set.sounds.labels, validation, self.flow.config.recall_neighbours
        )
        self.recall_choice = {"front_weight": weight, "validation_accuracy": accuracy}
        return replace(memory, front_weight=weight)

    def finish(self, run_dir: Path, log) -> None:
        """The front weight the validation split chose, and its accuracy at each weight
        (recall.json; logged)."""
        if self.recall_choice is None:
            return
        from s2ilib.atomic import write_json
        from s2ilib.runs.stats import RECALL_FILE

        choice = self.recall_choice
        table = ", ".join(f"{w}: {a:.3f}" for w, a in choice["validation_accuracy"].items())
        log.info(f"recall by the front: weight {choice['front_weight']} chosen on validation "
                 f"(recalled class accuracy by weight: {table})")  # fmt: skip
        accuracy = {str(w): a for w, a in choice["validation_accuracy"].items()}
        write_json(run_dir / RECALL_FILE, choice | {"validation_accuracy": accuracy})

    def _modelled(self, images: torch.Tensor) -> torch.Tensor:
        """The channels the flow models (grey data: the first of three equal ones)."""
        return images[:, : self.flow.config.image_channels]

    def optimize_parameters(self, batch) -> dict:
        embeddings, images, _ = (part.to(self.device, non_blocking=True) for part in batch)
        loss = flow_matching_loss(
            self.flow, self._modelled(images), embeddings, self.config.condition_dropout
        )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        stats = {"flow_loss": loss.detach()}
        if self.config.grad_clip:
            stats["grad_norm"] = torch.nn.utils.clip_grad_norm_(
                self.flow.parameters(), self.config.grad_clip
            ).detach()
        self.optimizer.step()
        self.updates += 1
        decay = min(self.config.ema_decay, (1 + self.updates) / (10 + self.updates))
        update_average(self.average, self.flow, decay)
        return stats

    @torch.no_grad()
    def evaluate(self, step: int, samples_path: Path):
        """The averaged decoder's flow loss on the validation pairs (fixed noise and
        times), and a grid: real images, then two draws of generated ones."""
        from s2ilib.seeding import rng_devices

        config = self.config
        count = min(config.num_samples, len(self.val_embeddings))
        with torch.random.fork_rng(devices=rng_devices(self.device)):
            torch.manual_seed(VALIDATION_NOISE_SEED)
            val_loss = flow_matching_loss(
                self.average, self._modelled(self.val_images), self.val_embeddings, 0.0
            ).item()
            shown = [self.val_images[:count]]
            front = self.val_front_features
            front = None if front is None else front[:count]
            shown += [self.average(self.val_embeddings[:count], None, front) for _ in range(2)]
        grid = save_sample_grid(torch.cat(shown), count, samples_path)
        return {"val_flow_loss": val_loss}, grid

    def state_dict(self) -> dict:
        """The averaged decoder is the run's "flow" (what load_run samples with); the
        trained weights and the optimiser are kept for resuming."""
        state = {
            "kind": self.kind,
            "models": {
                "autoencoder": self.autoencoder.state_dict(),
                "flow": self.average.state_dict(),
                "flow_trained": self.flow.state_dict(),
            },
            "optimizers": {"flow": self.optimizer.state_dict()},
            "average_updates": self.updates,
        }
        if self.average.memory is not None:  # what load_run gives a recalling flow
            state["memory"] = self.average.memory.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        self.autoencoder.load_state_dict(state["models"]["autoencoder"])
        self.average.load_state_dict(state["models"]["flow"])
        self.flow.load_state_dict(state["models"]["flow_trained"])
        self.optimizer.load_state_dict(state["optimizers"]["flow"])
        self.updates = int(state["average_updates"])
        self.autoencoder.eval()
        self._refresh_embeddings()
