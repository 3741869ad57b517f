"""The informativity classifiers in use: one binary CNN per class and one K-way CNN.

The paper judges a generated image "informative" when the binary classifier of its sound's
class says 1. This module holds what scores images: the real-image pools (`load_pool`), the
degraded images that must not count as interpretable (`degrade`), the bank of trained
classifiers (`InformativityBank`, `load_informativity`) and their rates on a split
(`judge`). How they are trained (the recipe, every number a field of
`InformativityTrainConfig`) is s2ilib.train.informativity.

The classifier is the authors' binary CNN (models.paper_classifier): their conv layers
12/32/32/32/32 (5x5 then 3x3, stride 2), as many as the image size allows (5 at 96 px, 4
at 64 px, 3 at 32 px), FC 32 -> 32 -> 2; the K-way classifier is the same network with K
outputs, and its hidden layer is the feature space of the Frechet distance and diversity.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from s2ilib import metrics
from s2ilib.datasets.torch_data import to_unit_range
from s2ilib.errors import S2IError

RUN_KIND = "informativity"
METRICS_FILE = "metrics.json"
DEGRADATIONS = ("noise", "blur", "constant", "shuffled_patches", "mixture")
POOL_CHUNK = 1024  # images resized at once when a pool is loaded


# --------------------------------------------------------------------------------------
# Image pools
# --------------------------------------------------------------------------------------


class ImagePool:
    """Real images of one split, resized: uint8 (N, 3, S, S), 0-based labels (N,), by class.

    Fails clearly when a class of 0..num_classes-1 has no image (nothing to draw from).
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, num_classes: int, source=""):
        self.images, self.labels, self.num_classes = images, labels, num_classes
        self.order = torch.argsort(labels, stable=True)  # positions sorted by class
        self.counts = torch.bincount(labels, minlength=num_classes)
        self.starts = torch.cumsum(self.counts, 0) - self.counts
        missing = torch.nonzero(self.counts == 0).flatten().tolist()
        if missing:
            raise S2IError(f"{source}: the image pool has no images of classes {missing}")

    def __len__(self) -> int:
        return len(self.labels)

    def float(self, positions) -> torch.Tensor:
        """Images at `positions` as floats in [-1, 1]."""
        return to_unit_range(self.images[positions])

    def draw(self, classes: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Positions of one uniformly random image of each entry of `classes` (any shape)."""
        uniform = torch.rand(classes.shape, generator=generator)
        offsets = (uniform * self.counts[classes]).long()
        return self.order[self.starts[classes] + offsets]


def resize_to_uint8(images_uint8: np.ndarray, image_size: int) -> torch.Tensor:
    """uint8 (B, H, W, C) -> uint8 (B, 3, S, S), via the loaders' resizing."""
    from s2ilib.datasets.torch_data import from_unit_range, resize_images

    return from_unit_range(
        resize_images(torch.from_numpy(np.ascontiguousarray(images_uint8)), image_size)
    )


def load_pool(data, split: str, image_size: int, limit_per_class=None, seed: int = 0) -> ImagePool:
    """The real images sounds of `split` translate to, resized (chunked reads)."""
    from s2ilib.datasets.torch_data import select_indices

    records = data.image_pool(split)
    if records.images is None:
        raise S2IError(f"{data.root}: split '{split}' has no images")
    indices = select_indices(records.labels, None, limit_per_class, seed)
    chunks = [
        resize_to_uint8(records.images[indices[i : i + POOL_CHUNK]], image_size)
        for i in range(0, len(indices), POOL_CHUNK)
    ]
    labels = torch.as_tensor(np.asarray(records.labels)[indices], dtype=torch.long)
    return ImagePool(torch.cat(chunks), labels, data.num_classes, f"{data.root} ({split})")


# --------------------------------------------------------------------------------------
# Degraded images (negatives that must not count as interpretable)
# --------------------------------------------------------------------------------------


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (B, C, H, W) with reflected borders."""
    radius = max(1, min(int(3 * sigma), images.shape[-1] // 2 - 1))
    window = metrics.gaussian_window(2 * radius + 1, sigma, images.dtype)
    channels = images.shape[1]
    rows = window.view(1, 1, -1, 1).expand(channels, 1, -1, 1)
    cols = window.view(1, 1, 1, -1).expand(channels, 1, 1, -1)
    padded = F.pad(images, (radius, radius, radius, radius), mode="reflect")
    return F.conv2d(F.conv2d(padded, rows, groups=channels), cols, groups=channels)


def shuffle_patches(images: torch.Tensor, grid: int, generator: torch.Generator) -> torch.Tensor:
    """Cut each image into grid x grid patches and permute them at random (per image)."""
    batch, channels, size, _ = images.shape
    patch = size // grid
    inner = images[:, :, : grid * patch, : grid * patch]
    patches = inner.reshape(batch, channels, grid, patch, grid, patch).permute(0, 2, 4, 1, 3, 5)
    patches = patches.reshape(batch, grid * grid, channels, patch, patch)
    permutation = torch.argsort(torch.rand(batch, grid * grid, generator=generator), dim=1)
    shuffled = patches[torch.arange(batch)[:, None], permutation]
    shuffled = shuffled.reshape(batch, grid, grid, channels, patch, patch).permute(0, 3, 1, 4, 2, 5)
    out = images.clone()
    out[:, :, : grid * patch, : grid * patch] = shuffled.reshape(
        batch, channels, grid * patch, grid * patch
    )
    return out


def degrade(
    own: torch.Tensor, other: torch.Tensor, kinds: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """Degraded images in [-1, 1], kind `kinds[i]` (index into DEGRADATIONS) for image i.

    own: images of the classifier's class (blurred, shuffled, mixed); other: images of
    another class (the second half of a mixture). Batched per kind.
    """
    out = torch.empty_like(own)
    batch, channels, size, _ = own.shape

    def uniform(n, low, high):
        return low + (high - low) * torch.rand(n, 1, 1, 1, generator=generator)

    for kind, name in enumerate(DEGRADATIONS):
        chosen = torch.nonzero(kinds == kind).flatten()
        n = len(chosen)
        if n == 0:
            continue
        if name == "noise":
            shape = (n, channels, size, size)
            values = uniform(n, -0.8, 0.8) + uniform(n, 0.1, 1.0) * torch.randn(
                shape, generator=generator
            )
        elif name == "blur":
            values = gaussian_blur(own[chosen], sigma=size / 6)
        elif name == "constant":
            values = uniform(n, -1.0, 1.0).expand(n, channels, size, size)
        elif name == "shuffled_patches":
            values = shuffle_patches(own[chosen], 4, generator)
        else:  # mixture
            values = 0.5 * (own[chosen] + other[chosen])
        out[chosen] = values.clamp(-1, 1)
    return out


def random_kinds(shape, generator: torch.Generator) -> torch.Tensor:
    """Degradation kinds drawn uniformly."""
    return torch.randint(0, len(DEGRADATIONS), shape, generator=generator)


# --------------------------------------------------------------------------------------
# The bank of classifiers
# --------------------------------------------------------------------------------------


@dataclass
class InformativityBank:
    """The K binary classifiers and the K-way one, in eval mode, scoring image batches."""

    binary: list  # InformativityClassifier per class (2 outputs; 1 = interpretable)
    kway: object  # InformativityClassifier with K outputs; its hidden layer = feature space
    classes: list[str]
    image_size: int
    run_dir: Path | None = None
    ceilings: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def device(self) -> torch.device:
        return next(self.kway.parameters()).device

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1] at the classifiers' size and device (resized when needed)."""
        images = images.to(self.device, torch.float32)
        if images.shape[-1] != self.image_size or images.shape[-2] != self.image_size:
            size = (self.image_size, self.image_size)
            images = F.interpolate(images, size=size, mode="bilinear", antialias=True).clamp_(-1, 1)
        return images

    @torch.no_grad()
    def score(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every classifier on a batch (B, 3, S, S) in [-1, 1].

        Returns on the CPU: positive (B, K) bool, classifier k judges image b interpretable;
        kway (B,) predicted class; probabilities (B, K) the K-way classifier's class
        probabilities; features (B, F) the K-way classifier's penultimate layer.
        """
        images = self.prepare(images)
        positive = torch.stack([model(images).argmax(1) == 1 for model in self.binary], dim=1)
        features = penultimate_features(self.kway, images)
        logits = self.kway.logits(features).float()
        return {
            "positive": positive.cpu(),
            "kway": logits.argmax(1).cpu(),
            "probabilities": logits.softmax(1).cpu(),
            "features": features.float().cpu(),
        }

    def score_all(self, images: torch.Tensor, batch_size: int = 512) -> dict[str, torch.Tensor]:
        """`score` over a large set, in batches (uint8 (N, 3, S, S) or floats in [-1, 1])."""
        parts = []
        for start in range(0, len(images), batch_size):
            batch = images[start : start + batch_size]
            if batch.dtype == torch.uint8:
                batch = to_unit_range(batch)
            parts.append(self.score(batch))
        return {key: torch.cat([part[key] for part in parts]) for key in parts[0]}


def penultimate_features(model, images: torch.Tensor) -> torch.Tensor:
    """The classifier's hidden FC activations (after ReLU; dropout is off in eval mode)."""
    return model.hidden(model.features(images).flatten(1))


def degraded_set(pool: ImagePool, num_classes: int, seed: int) -> torch.Tensor:
    """One degraded version (uint8) of every pool image, made in chunks of POOL_CHUNK."""
    g = torch.Generator().manual_seed(seed)
    shift = torch.randint(1, num_classes, pool.labels.shape, generator=g)
    partners = pool.draw((pool.labels + shift) % num_classes, g)  # for the mixtures
    kinds = random_kinds(pool.labels.shape, g)
    chunks = []
    for start in range(0, len(pool), POOL_CHUNK):
        chosen = torch.arange(start, min(start + POOL_CHUNK, len(pool)))
        images = degrade(pool.float(chosen), pool.float(partners[chosen]), kinds[chosen], g)
        chunks.append(images.add_(1).mul_(127.5).round_().to(torch.uint8))
    return torch.cat(chunks)


def judge(
    bank: InformativityBank, pool: ImagePool, degraded: torch.Tensor, batch_size: int
) -> dict:
    """Per-class rates of the binary classifiers and the K-way accuracy on one split."""
    k = bank.num_classes
    real = bank.score_all(pool.images, batch_size)
    fake = bank.score_all(degraded, batch_size)
    labels = pool.labels.numpy()
    positive = real["positive"].numpy().astype(np.float64)
    own = labels[:, None] == np.arange(k)[None, :]
    with np.errstate(invalid="ignore"):
        true_positive = (positive * own).sum(0) / own.sum(0)
        false_positive = (positive * ~own).sum(0) / (~own).sum(0)
    false_positive_degraded = fake["positive"].numpy().mean(0)
    balanced = (true_positive + (1 - false_positive) + (1 - false_positive_degraded)) / 3
    accuracy = (positive == own).mean(0)  # on the split's real images, all classes
    predicted = real["kway"].numpy()
    return {
        "true_positive_rate": true_positive.tolist(),
        "false_positive_rate": false_positive.tolist(),
        "false_positive_rate_degraded": false_positive_degraded.tolist(),
        "balanced_accuracy": balanced.tolist(),
        "accuracy": accuracy.tolist(),
        "mean_true_positive_rate": float(np.nanmean(true_positive)),
        "mean_false_positive_rate": float(np.nanmean(false_positive)),
        "mean_false_positive_rate_degraded": float(np.mean(false_positive_degraded)),
        "kway_accuracy": float(np.mean(predicted == labels)),
        "kway_confusion": metrics.confusion_matrix(labels, predicted, k).tolist(),
    }


# --------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------


def load_informativity(run_dir, device="cpu") -> InformativityBank:
    """The classifiers of an informativity run (the epochs' best ones), eval mode, `device`."""
    from s2ilib.models import ClassifierConfig, InformativityClassifier, model_config_from_dict
    from s2ilib.runs import latest_checkpoint, load_checkpoint, read_config

    run_dir = Path(run_dir)
    document = read_config(run_dir)
    if document.get("kind") != RUN_KIND:
        raise S2IError(f"{run_dir}: a '{document.get('kind')}' run, expected an informativity run")
    checkpoint = latest_checkpoint(run_dir)
    if checkpoint is None:
        raise S2IError(f"{run_dir}: no checkpoint (checkpoints/last.pt)")
    weights = selected_weights(load_checkpoint(checkpoint, map_location=device))

    def build(config_dict, state):
        model = InformativityClassifier(model_config_from_dict(ClassifierConfig, config_dict))
        model.load_state_dict(state)
        return model.to(device).eval().requires_grad_(False)

    classes, models = document["classes"], document["models"]
    binary = [build(models["binary"], weights[binary_name(k)]) for k in range(len(classes))]
    kway = build(models["kway"], weights["kway"])
    metrics_path = run_dir / METRICS_FILE
    ceilings = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    image_size = int(document["train"]["image_size"])
    return InformativityBank(binary, kway, list(classes), image_size, run_dir, ceilings)


def selected_weights(state: dict) -> dict:
    """The selected classifiers' weights by checkpoint key: the engine's checkpoints keep
    them under "best"; runs written before the engine trained them hold "binary"/"kway"."""
    if "best" in state:
        return state["best"]["models"]
    return {binary_name(k): w for k, w in enumerate(state["binary"])} | {"kway": state["kway"]}


def binary_name(index: int) -> str:
    """The checkpoint key of class `index`'s binary classifier."""
    return f"binary_{index}"
