"""The flow-matching decoder (beyond the paper; recipe `flow`): sound embedding -> image.

Flow matching (Lipman et al. 2023; rectified flow, Liu et al. 2023) learns a velocity field
v(x, t | sound) that carries Gaussian noise (t = 0) along straight lines to images (t = 1);
an image is drawn by integrating it over `sample_steps` steps. Unlike the GAN's generator,
nothing pulls a sound's images toward one template: the noise decides which handwriting,
the sound which digit. Classifier-free guidance (Ho & Salimans 2022) sharpens the sound's
say: training replaces the embedding by a learnt "no sound" vector now and then, and
sampling extrapolates from the unconditional velocity toward the conditional one.

Recall and redraw (`FlowConfig.recall_from` > 0): instead of pure noise at t = 0, the draw
starts at t = recall_from from the noise mixed with a real training image paired with the
training sound nearest to the sound (`FlowMemory`, saved with the run; with
`recall_neighbours` k > 1, the nearest of the class the k nearest vote for), and the flow
redraws it (SDEdit, Meng et al. 2022, from retrieval): the image's layout is recalled, its
strokes drawn anew (benchmarks/RESULTS.md, "Recall and redraw", "What the embedding knows").
For an encoder with a frozen pretrained front (speech or whisper), "nearest" weighs in the
front's own features of the sound beside the embedding (`FlowMemory.similarity`): the
layers trained after the front lose voices the front itself tells apart (RESULTS.md,
"Recall by the front's features"); the weight is chosen on the validation split when the
run is trained (s2ilib.train.flow.choose_front_weight).

The module keeps the generator's interface: `decoder(embeddings, codes)` -> images
(B, 3, S, S) in [-1, 1], where `codes` is the starting noise (FlowConfig.noise_dim numbers
a sound; s2ilib.translate.keyed_codes draws it from the sound, the draw and the seed, so
evaluation, `s2i imagine` and the galleries use it unchanged), plus the sounds' front
features (`front_features=`, s2ilib.translate.front_features) for a flow that recalls by
them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from s2ilib.errors import S2IError
from s2ilib.models.config import FlowConfig

TIME_FEATURES = 128  # sinusoidal features of t
TIME_SCALE = 1000.0  # t in [0, 1] is spread over the frequencies as a diffusion step index
VOTE_TEMPERATURE = 0.05  # cosine scale of a neighbour's vote (FlowConfig.recall_neighbours)
FRONT_STD_FLOOR = 1e-6  # added to each front feature's std (a constant feature stays finite)


def time_features(times: torch.Tensor) -> torch.Tensor:
    """(B,) times in [0, 1] -> (B, TIME_FEATURES) sines and cosines (transformer-style)."""
    half = TIME_FEATURES // 2
    frequencies = torch.exp(
        -math.log(10000.0) * torch.arange(half, device=times.device, dtype=torch.float32) / half
    )
    angles = times.float()[:, None] * TIME_SCALE * frequencies[None]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class FlowBlock(nn.Module):
    """Two 3x3 convolutions with a residual path; the condition scales and shifts the
    normalised features between them (FiLM)."""

    def __init__(self, in_channels: int, out_channels: int, condition_dim: int, groups: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2 = nn.GroupNorm(groups, out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.film = nn.Linear(condition_dim, 2 * out_channels)
        self.skip = (
            nn.Conv2d(in_channels, out_channels, 1)
            if in_channels != out_channels
            else nn.Identity()
        )

    def forward(self, features: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        hidden = self.conv1(F.silu(self.norm1(features)))
        scale, shift = self.film(condition)[:, :, None, None].chunk(2, dim=1)
        hidden = F.silu(self.norm2(hidden) * (1 + scale) + shift)
        return self.conv2(hidden) + self.skip(features)


@dataclass
class FlowMemory:
    """What a flow recalls: the training sounds' embeddings (unit length, as the sampler
    compares them by cosine) and, for each, the training images it was paired with: the
    range `first` .. `first + count` of `images` (its own frame, or every image of its
    class for class-paired data). uint8 images (M, C, S, S), C the flow's channels.

    For an encoder with a frozen front, also the training sounds' pooled front features
    (`front`: standardised by `front_mean` and `front_std`, then unit length) and the
    weight of their cosine in the recall's similarity (`front_weight`, chosen on the
    validation split; 0: the embedding alone)."""

    embeddings: torch.Tensor  # (N, D) float32, unit length
    first: torch.Tensor  # (N,) int64
    count: torch.Tensor  # (N,) int64, >= 1
    images: torch.Tensor  # uint8 (M, C, S, S)
    front: torch.Tensor | None = None  # (N, F) float32, standardised, unit length
    front_mean: torch.Tensor | None = None  # (F,)
    front_std: torch.Tensor | None = None  # (F,)
    front_weight: float = 0.0
    FIELDS: ClassVar[tuple[str, ...]] = ("embeddings", "first", "count", "images")
    FRONT_FIELDS: ClassVar[tuple[str, ...]] = ("front", "front_mean", "front_std")

    def _tensors(self) -> dict:
        names = self.FIELDS + self.FRONT_FIELDS
        return {name: getattr(self, name) for name in names if getattr(self, name) is not None}

    def to(self, device) -> FlowMemory:
        """The memory on `device`."""
        return replace(self, **{name: value.to(device) for name, value in self._tensors().items()})

    def state_dict(self) -> dict:
        state = {name: value.cpu() for name, value in self._tensors().items()}
        return state | {"front_weight": float(self.front_weight)}

    @classmethod
    def from_state(cls, state: dict) -> FlowMemory:
        """A saved memory (runs saved before front recall have no front fields)."""
        front = {name: state.get(name) for name in cls.FRONT_FIELDS}
        weight = float(state.get("front_weight", 0.0))
        return cls(*(state[name] for name in cls.FIELDS), **front, front_weight=weight)

    def with_front(self, features: torch.Tensor, weight: float) -> FlowMemory:
        """This memory with the training sounds' front features (N, F), in its rows' order,
        standardised by their own mean and std, and the weight of their cosine."""
        features = features.float().to(self.embeddings.device)
        mean, std = features.mean(0), features.std(0) + FRONT_STD_FLOOR
        memory = replace(self, front_mean=mean, front_std=std, front_weight=float(weight))
        return replace(memory, front=memory.standardised(features))

    def standardised(self, features: torch.Tensor) -> torch.Tensor:
        """Front features (B, F) as the memory compares them: standardised, unit length."""
        return F.normalize((features.float() - self.front_mean) / self.front_std, dim=1)

    def similarity(
        self, embeddings: torch.Tensor, front_features=None, weight: float | None = None
    ) -> torch.Tensor:
        """(B, N) how near each sound is to each training sound: the cosine of the
        embeddings, mixed (1 - w) : w with the cosine of the standardised front features
        when the front weight w (`weight`, else the memory's) is above 0."""
        weight = self.front_weight if weight is None else weight
        similarity = F.normalize(embeddings.float()) @ self.embeddings.T
        if weight == 0:
            return similarity
        if self.front is None:
            raise S2IError(
                f"recall_front_weight {weight}: this flow's memory holds no front features "
                "(its encoder has no frozen front); use recall_front_weight 0"
            )
        if front_features is None:
            raise S2IError(
                f"this flow recalls by the sounds' front features too (weight {weight}): pass "
                "front_features (s2ilib.translate.front_features), or sample with "
                "set_sampling(decoder, recall_front_weight=0.0) for the embedding alone"
            )
        by_front = self.standardised(front_features.to(self.front.device)) @ self.front.T
        return (1 - weight) * similarity + weight * by_front

    def nearest(
        self, embeddings: torch.Tensor, neighbours: int = 1, front_features=None, weight=None
    ) -> torch.Tensor:
        """(B,) for each embedding, the training sound (row) whose images it recalls: the
        nearest (`similarity`), or with `neighbours` k > 1 the nearest of the pairing range
        (class) its k nearest vote for, each vote the softmax of its similarity /
        VOTE_TEMPERATURE."""
        return self.vote(self.similarity(embeddings, front_features, weight), neighbours)

    def vote(self, similarity: torch.Tensor, neighbours: int = 1) -> torch.Tensor:
        """(B,) the row `nearest` names from a (B, N) similarity to the training sounds."""
        if neighbours == 1:
            return similarity.argmax(1)
        top, index = similarity.topk(min(neighbours, similarity.shape[1]), dim=1)
        weights = torch.softmax(top / VOTE_TEMPERATURE, dim=1)
        ranges = self.first[index]  # a range's first image names it
        same_range = (ranges[:, :, None] == ranges[:, None, :]).to(weights.dtype)
        support = (same_range * weights[:, None, :]).sum(2)  # each neighbour's range's votes
        return index.gather(1, support.argmax(1, keepdim=True)).squeeze(1)

    def recall(
        self, embeddings: torch.Tensor, noise: torch.Tensor, neighbours: int = 1, **front
    ) -> torch.Tensor:
        """One image in [-1, 1] (B, C, S, S) for each embedding: one paired with the training
        sound `nearest` names (`front`: its front_features and weight), chosen by the draw's
        own noise (the CDF of its first number), so a draw's recalled image depends on the
        sound, the draw and the seed alone."""
        return self.paired_images(self.nearest(embeddings, neighbours, **front), noise)

    def paired_images(self, sounds: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """For each training sound (row) in `sounds` (B,), one of its paired images in
        [-1, 1] (B, C, S, S), chosen by the draw's `noise` (the CDF of its first number)."""
        uniform = torch.special.ndtr(noise.flatten(1)[:, 0].float())  # N(0, 1) -> U(0, 1)
        offsets = (uniform.clamp(0, 1 - 1e-6) * self.count[sounds]).long()
        chosen = self.images[self.first[sounds] + offsets]
        return chosen.to(noise.dtype) / 127.5 - 1.0


class FlowDecoder(nn.Module):
    """A U-Net velocity field conditioned on the embedding and t, and its ODE sampler."""

    def __init__(self, config: FlowConfig):
        super().__init__()
        self.config = config
        self.memory: FlowMemory | None = None  # what recall_from draws on (attach_memory)
        c, widths = config, config.channels
        self.null_embedding = nn.Parameter(torch.zeros(c.embedding_dim))  # "no sound"
        self.condition = nn.Sequential(
            nn.Linear(c.embedding_dim + TIME_FEATURES, c.condition_dim), nn.SiLU(),
            nn.Linear(c.condition_dim, c.condition_dim), nn.SiLU(),
        )  # fmt: skip
        folded = c.image_channels * c.patch**2
        self.input = nn.Conv2d(folded, widths[0], 3, padding=1)
        inputs = (widths[0], *widths[:-1])
        self.down = nn.ModuleList(
            FlowBlock(i, o, c.condition_dim, c.groups) for i, o in zip(inputs, widths, strict=True)
        )
        self.middle = FlowBlock(widths[-1], widths[-1], c.condition_dim, c.groups)
        self.up = nn.ModuleList(
            FlowBlock(2 * width, inputs[level], c.condition_dim, c.groups)
            for level, width in enumerate(widths)
        )  # up[level] takes the level's skip beside the coarser level's output
        self.output_norm = nn.GroupNorm(c.groups, widths[0])
        self.output = nn.Conv2d(widths[0], folded, 3, padding=1)

    def velocity(self, images, times, embeddings) -> torch.Tensor:
        """The velocity (B, C, S, S) at noisy images (B, C, S, S) at times (B,)."""
        condition = self.condition(torch.cat([embeddings, time_features(times)], dim=1))
        features = self.input(F.pixel_unshuffle(images, self.config.patch))
        skips = []
        for level, block in enumerate(self.down):
            if level:
                features = F.avg_pool2d(features, 2)
            features = block(features, condition)
            skips.append(features)
        features = self.middle(F.avg_pool2d(features, 2), condition)
        for level in reversed(range(len(self.up))):
            features = F.interpolate(features, scale_factor=2.0)
            features = self.up[level](torch.cat([features, skips[level]], dim=1), condition)
        features = self.output(F.silu(self.output_norm(features)))
        return F.pixel_shuffle(features, self.config.patch)

    def conditions(self, embeddings: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """Embeddings where `keep` (B,) is 1, the learnt "no sound" vector where it is 0
        (training for guidance; the vector takes part in every step, as DDP wants)."""
        keep = keep.to(embeddings.dtype)[:, None]
        return embeddings * keep + self.null_embedding[None] * (1 - keep)

    def guided_velocity(self, images, times, embeddings, guidance: float) -> torch.Tensor:
        """Classifier-free guidance: both velocities in one batch, extrapolated."""
        if guidance == 1.0:
            return self.velocity(images, times, embeddings)
        unconditioned = self.null_embedding[None].expand_as(embeddings)
        both = self.velocity(
            torch.cat([images, images]),
            torch.cat([times, times]),
            torch.cat([embeddings, unconditioned]),
        )
        conditional, unconditional = both.chunk(2)
        return unconditional + guidance * (conditional - unconditional)

    def attach_memory(self, memory: FlowMemory | None) -> FlowDecoder:
        """Give the decoder the training set it recalls from (on its device)."""
        device = self.null_embedding.device
        self.memory = None if memory is None else memory.to(device)
        return self

    def _memory(self) -> FlowMemory:
        """The memory, on the decoder's device (Module.to does not move a plain attribute)."""
        if self.memory is None:
            raise S2IError(
                f"this flow decoder starts from a recalled image (recall_from "
                f"{self.config.recall_from}) but holds no memory of training images: load its "
                "run with s2ilib.runs.load_run (runs trained before recall_from existed have "
                "none: set_sampling(decoder, recall_from=0.0))"
            )
        if self.memory.images.device != self.null_embedding.device:
            self.memory = self.memory.to(self.null_embedding.device)
        return self.memory

    def recalls_by_front(self) -> bool:
        """Whether a draw's recall needs the sounds' front features (`forward`'s
        front_features): it recalls, and its front weight (the config's, else the
        memory's) is above 0."""
        c, memory = self.config, self.memory
        if c.recall_from == 0 or memory is None:
            return False
        weight = memory.front_weight if c.recall_front_weight is None else c.recall_front_weight
        return weight > 0

    def forward(
        self, embeddings: torch.Tensor, codes: torch.Tensor | None = None, front_features=None
    ) -> torch.Tensor:
        """Images (B, 3, S, S) in [-1, 1] from embeddings (B, D), integrating the flow from
        the noise `codes` (B, noise_dim) (None: fresh torch.randn); front_features (B, F):
        the sounds' frozen-front features, for a flow that recalls by them
        (`recalls_by_front`)."""
        c = self.config
        shape = (len(embeddings), c.image_channels, c.image_size, c.image_size)
        if codes is None:
            codes = torch.randn(shape, device=embeddings.device)
        images = codes.reshape(shape).to(embeddings.dtype)
        steps = c.sample_steps
        first = round(c.recall_from * steps)
        if first:
            share = first / steps
            recalled = self._memory().recall(
                embeddings, images, c.recall_neighbours,
                front_features=front_features, weight=c.recall_front_weight,
            )  # fmt: skip
            images = (1 - share) * images + share * recalled
        for step in range(first, steps):
            time = step / steps
            guidance = c.guidance if c.guidance_from <= time < c.guidance_until else 1.0
            times = torch.full((len(images),), time, device=images.device)
            velocity = self.guided_velocity(images, times, embeddings, guidance)
            if c.solver == "heun" and step < steps - 1:  # the last step stays an Euler step
                ahead = images + velocity / steps
                velocity = 0.5 * (
                    velocity + self.guided_velocity(ahead, times + 1 / steps, embeddings, guidance)
                )
            images = images + velocity / steps
        images = images.clamp(-1.0, 1.0).contiguous()  # NCHW, whatever the network's layout
        return images.expand(-1, 3, -1, -1) if c.image_channels == 1 else images


def set_sampling(decoder: FlowDecoder, **settings) -> FlowDecoder:
    """Make `decoder` sample with other settings (sample_steps, solver, guidance,
    guidance_from, guidance_until, recall_from, recall_neighbours, recall_front_weight:
    FlowConfig's fields), e.g.
    to compare guidance scales on one run (in place; returns it; the configuration is
    checked)."""
    decoder.config = replace(decoder.config, **settings)
    return decoder
