"""Training of the informativity classifiers: one binary CNN per class, and one K-way CNN.

The paper judges a generated image "informative" when the binary classifier of its sound's
class says 1. What those classifiers were trained on is not published; this is the recipe
used here (every number is a field of `InformativityTrainConfig`):

- Images: the REAL images of the data set's image pool (AV-Digits: the MNIST pool; VEGAS:
  the video frames), train split for training, val split for model selection, test split
  for the ceilings. Images are resized to the generator's size (bilinear, antialiased),
  grey images expanded to 3 channels, scaled to [-1, 1] as the generator's output.
- Architecture: the authors' binary CNN (models.InformativityClassifier): their conv layers
  12/32/32/32/32 (5x5 then 3x3, stride 2), as many of them as the image size allows (5 at
  96 px, 4 at 64 px, 3 at 32 px; a further stride-2 layer would have no pixels left), FC
  32 -> 32 -> 2 (their file's extra FC layer, which forward never calls, is left out). The
  K-way classifier is the same network with K outputs.
- Batch of binary classifier c (each classifier gets its own batch, all trained together):
  half positives (real images of class c), half negatives; of the negatives a share
  `degraded_fraction` are degraded images, the rest real images of the other classes
  (uniform over the other classes). Degradations, in equal shares, so that garbage is not
  "interpretable": Gaussian noise (random mean and spread), a heavy Gaussian blur of a
  class-c image (sigma = size/6), a constant grey image (random level), a class-c image
  cut into a 4x4 grid of patches shuffled at random, and the 50/50 mixture of a class-c
  image with an image of another class.
- K-way classifier: real images only, uniformly drawn, cross-entropy.
- Adam (lr 2e-3), at most `epochs` epochs (one epoch = each binary classifier sees each
  of its positives once); after each epoch every classifier is scored on the val split
  (balanced accuracy over: val images of its class, val images of other classes, degraded
  val images) and keeps its best weights; training stops early when no classifier
  improved for `patience` epochs.
- Reported ceilings (test split): per class the positive rate of classifier c on real
  class-c images (the informativity a perfect generator would reach), its false-positive
  rate on other classes' images and on degraded images, its accuracy on all real test
  images; the K-way accuracy and confusion matrix.
- Speed: the K binary classifiers run as a Python loop over classes, each on its own
  batch; measured on 2 CPU cores, torch.func.vmap over stacked weights was 2.2x slower and
  a grouped convolution no faster than the loop (the convolutions are too small to gain).

`train_informativity` writes a run directory (kind "informativity": config.json,
metrics.json, log.txt, stats.jsonl, checkpoints/last.pt); `load_informativity` reads it
back as an `InformativityBank` that scores batches of images with every classifier.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from s2ilib import metrics
from s2ilib.errors import S2IError

RUN_KIND = "informativity"
METRICS_FILE = "metrics.json"
DEGRADATIONS = ("noise", "blur", "constant", "shuffled_patches", "mixture")
PAPER_CHANNELS = (12, 32, 32, 32, 32)
PAPER_KERNELS = (5, 3, 3, 3, 3)
PAPER_CONV_DROPOUTS = (0.1, 0.2, 0.3, 0.4, 0.5)
POOL_CHUNK = 1024  # images resized at once when a pool is loaded


@dataclass(frozen=True)
class InformativityTrainConfig:
    """Everything `train_informativity` needs besides the data set and the output folder."""

    image_size: int = 32  # side of the images the classifiers see (= the generator's)
    epochs: int = 20  # at most this many epochs (see the module docstring)
    batch_size: int = 32  # images per binary classifier per step (half positives)
    kway_batch_size: int = 64  # images per step of the K-way classifier
    lr: float = 2e-3  # Adam learning rate of every classifier
    degraded_fraction: float = 0.5  # share of each batch's negatives that are degraded images
    patience: int = 4  # stop after this many epochs without any val improvement
    limit_per_class: int | None = None  # at most this many pool images per class and split
    seed: int = 0  # weights, batches, degradations
    eval_batch_size: int = 512  # images per forward pass when scoring val/test

    def __post_init__(self):
        for name in ("image_size", "epochs", "batch_size", "kway_batch_size", "patience"):
            if getattr(self, name) < 1:
                raise S2IError(f"informativity: {name} = {getattr(self, name)}, expected >= 1")
        if self.batch_size < 4 or self.kway_batch_size < 2:
            raise S2IError("informativity: batch sizes too small for BatchNorm (>= 4 / >= 2)")
        if not 0.0 <= self.degraded_fraction <= 1.0:
            raise S2IError(
                f"informativity: degraded_fraction {self.degraded_fraction} not in [0, 1]"
            )


def classifier_config(image_size: int, n_classes: int):
    """The authors' classifier with as many of their conv layers as `image_size` allows."""
    from s2ilib.models import ClassifierConfig
    from s2ilib.models.config import conv_output_size

    size, layers = image_size, 0
    for kernel in PAPER_KERNELS:
        if conv_output_size(size, kernel, 2) < 1:
            break
        size, layers = conv_output_size(size, kernel, 2), layers + 1
    if layers == 0:
        raise S2IError(f"image_size {image_size}: too small for the classifier's first layer")
    return ClassifierConfig(
        n_classes=n_classes,
        image_size=image_size,
        channels=PAPER_CHANNELS[:layers],
        kernels=PAPER_KERNELS[:layers],
        conv_dropouts=PAPER_CONV_DROPOUTS[:layers],
    )


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
        return self.images[positions].float().div_(127.5).sub_(1.0)

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
        kway (B,) predicted class; features (B, F) the K-way classifier's penultimate layer.
        """
        images = self.prepare(images)
        positive = torch.stack([model(images).argmax(1) == 1 for model in self.binary], dim=1)
        features = penultimate_features(self.kway, images)
        kway = self.kway.logits(features).argmax(1)
        return {"positive": positive.cpu(), "kway": kway.cpu(), "features": features.float().cpu()}

    def score_all(self, images: torch.Tensor, batch_size: int = 512) -> dict[str, torch.Tensor]:
        """`score` over a large set, in batches (uint8 (N, 3, S, S) or floats in [-1, 1])."""
        parts = []
        for start in range(0, len(images), batch_size):
            batch = images[start : start + batch_size]
            if batch.dtype == torch.uint8:
                batch = batch.float().div_(127.5).sub_(1.0)
            parts.append(self.score(batch))
        return {key: torch.cat([part[key] for part in parts]) for key in parts[0]}


def penultimate_features(model, images: torch.Tensor) -> torch.Tensor:
    """The classifier's hidden FC activations (after ReLU; dropout is off in eval mode)."""
    return model.hidden(model.features(images).flatten(1))


# --------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------


class _Trainer:
    """The binary classifiers and the K-way one, their optimiser and batch sampling."""

    def __init__(
        self, config: InformativityTrainConfig, num_classes: int, train: ImagePool, device
    ):
        from s2ilib.models import InformativityClassifier

        self.config, self.num_classes, self.train, self.device = config, num_classes, train, device
        torch.manual_seed(config.seed)
        self.generator = torch.Generator().manual_seed(config.seed)
        binary_config = classifier_config(config.image_size, 2)
        self.binary = [
            InformativityClassifier(binary_config).to(device) for _ in range(num_classes)
        ]
        self.kway = InformativityClassifier(classifier_config(config.image_size, num_classes)).to(
            device
        )
        parameters = [p for model in self.models for p in model.parameters()]
        self.optimizer = torch.optim.Adam(parameters, lr=config.lr)

    @property
    def models(self) -> list:
        return [*self.binary, self.kway]

    def binary_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(K, B, 3, S, S) images and (K, B) targets: classifier k's batch in row k."""
        k, size, g = self.num_classes, self.config.batch_size, self.generator
        n_pos = size // 2
        n_degraded = round((size - n_pos) * self.config.degraded_fraction)
        n_real = size - n_pos - n_degraded
        own = torch.arange(k)[:, None]
        others = (own + torch.randint(1, k, (k, n_real + n_degraded), generator=g)) % k
        positives = self.train.draw(own.expand(k, n_pos), g)
        real_negatives = self.train.draw(others[:, :n_real], g)
        sources = self.train.draw(own.expand(k, n_degraded), g)
        mixed_in = self.train.draw(others[:, n_real:], g)
        degraded = degrade(
            self.train.float(sources.flatten()),
            self.train.float(mixed_in.flatten()),
            random_kinds((k * n_degraded,), g),
            g,
        ).view(k, n_degraded, 3, self.config.image_size, self.config.image_size)
        real = self.train.float(torch.cat([positives, real_negatives], 1).flatten())
        real = real.view(k, n_pos + n_real, *degraded.shape[2:])
        images = torch.cat([real, degraded], dim=1)
        targets = torch.cat([torch.ones(k, n_pos), torch.zeros(k, size - n_pos)], 1).long()
        return images, targets

    def step(self) -> dict[str, float]:
        """One optimiser step of every classifier; returns the mean binary and K-way losses."""
        images, targets = self.binary_batch()
        images, targets = images.to(self.device), targets.to(self.device)
        binary_loss = sum(
            F.nll_loss(model(images[k]), targets[k]) for k, model in enumerate(self.binary)
        ) / len(self.binary)
        positions = torch.randint(
            0, len(self.train), (self.config.kway_batch_size,), generator=self.generator
        )
        kway_images = self.train.float(positions).to(self.device)
        kway_loss = F.nll_loss(self.kway(kway_images), self.train.labels[positions].to(self.device))
        self.optimizer.zero_grad(set_to_none=True)
        (binary_loss + kway_loss).backward()
        self.optimizer.step()
        return {"binary_loss": binary_loss.item(), "kway_loss": kway_loss.item()}

    def bank(self, classes: list[str]) -> InformativityBank:
        for model in self.models:
            model.eval()
        return InformativityBank(self.binary, self.kway, classes, self.config.image_size)


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


def train_informativity(
    data,
    runs_root="runs",
    run_dir=None,
    config: InformativityTrainConfig | None = None,
    device=None,
    desc: str = "",
    verbose: bool = True,
) -> Path:
    """Train the binary and K-way classifiers on `data`'s real images; returns the run dir.

    data: a path or an opened DataSet; config: see InformativityTrainConfig; verbose: echo
    the per-epoch lines of log.txt to stderr.
    """
    from s2ilib.datasets import open_dataset
    from s2ilib.devices import resolve_device
    from s2ilib.train.checkpoint import atomic_torch_save
    from s2ilib.train.rundir import (
        CONFIG_FILE,
        ENVIRONMENT_FILE,
        RunLog,
        create_run_dir,
        environment_info,
        write_json,
    )

    config = config or InformativityTrainConfig()
    data = open_dataset(data) if not hasattr(data, "image_pool") else data
    device = resolve_device(device)
    started = time.time()
    pools = {
        split: load_pool(data, split, config.image_size, config.limit_per_class, config.seed)
        for split in ("train", "val", "test")
    }
    run_dir = create_run_dir(
        runs_root, RUN_KIND, desc or f"{data.kind}-{config.image_size}px", run_dir
    )
    document = {
        "kind": RUN_KIND,
        "desc": desc,
        "data": str(data.root),
        "classes": list(data.classes),
        "train": asdict(config),
        "models": {
            "binary": _plain(classifier_config(config.image_size, 2)),
            "kway": _plain(classifier_config(config.image_size, data.num_classes)),
        },
        "degradations": list(DEGRADATIONS),
    }
    write_json(run_dir / CONFIG_FILE, document)
    write_json(run_dir / ENVIRONMENT_FILE, environment_info(device))
    log = RunLog(run_dir, tensorboard=False)
    trainer = _Trainer(config, data.num_classes, pools["train"], device)
    best = _fit(trainer, data, pools, log, verbose)
    bank = trainer.bank(list(data.classes))
    test_degraded = degraded_set(pools["test"], data.num_classes, config.seed + 2)
    ceilings = judge(bank, pools["test"], test_degraded, config.eval_batch_size)
    results = {
        "split": "test",
        "num_images": len(pools["test"]),
        "classes": list(data.classes),
        **ceilings,
        "best_epoch": {"binary": best["epoch"][:-1], "kway": best["epoch"][-1]},
        "val_balanced_accuracy": best["score"][:-1],
        "val_kway_accuracy": best["score"][-1],
        "train_seconds": round(time.time() - started, 1),
    }
    atomic_torch_save(
        {
            "binary": [model.state_dict() for model in trainer.binary],
            "kway": trainer.kway.state_dict(),
            "classes": list(data.classes),
            "image_size": config.image_size,
        },
        run_dir / "checkpoints" / "last.pt",
    )
    write_json(run_dir / METRICS_FILE, results)
    log.info(
        f"informativity ceilings (test): mean TPR {results['mean_true_positive_rate']:.3f}, "
        f"FPR other classes {results['mean_false_positive_rate']:.3f}, FPR degraded "
        f"{results['mean_false_positive_rate_degraded']:.3f}, K-way accuracy "
        f"{results['kway_accuracy']:.3f} ({results['train_seconds']} s) -> {run_dir}",
        echo=verbose,
    )
    log.close()
    return run_dir


def _fit(trainer: _Trainer, data, pools: dict, log, verbose: bool) -> dict:
    """Epochs with per-classifier model selection on val and early stopping."""
    config, k = trainer.config, data.num_classes
    val_degraded = degraded_set(pools["val"], k, config.seed + 1)
    class_sizes = torch.bincount(pools["train"].labels, minlength=k)
    steps_per_epoch = max(1, int(np.ceil(class_sizes.max().item() / (config.batch_size // 2))))
    best_scores = np.full(k + 1, -np.inf)  # binary classifiers, then the K-way one
    best_states = [copy.deepcopy(m.state_dict()) for m in trainer.models]
    best_epochs, stale = np.zeros(k + 1, int), 0
    for epoch in range(1, config.epochs + 1):
        for model in trainer.models:
            model.train()
        losses = [trainer.step() for _ in range(steps_per_epoch)]
        scores = judge(
            trainer.bank(data.classes), pools["val"], val_degraded, config.eval_batch_size
        )
        current = np.array([*scores["balanced_accuracy"], scores["kway_accuracy"]])
        improved = current > best_scores
        for index in np.flatnonzero(improved):
            best_states[index] = copy.deepcopy(trainer.models[index].state_dict())
        best_scores = np.where(improved, current, best_scores)
        best_epochs[improved] = epoch
        stale = 0 if improved.any() else stale + 1
        row = {
            "epoch": epoch,
            "step": epoch * steps_per_epoch,
            "binary_loss": float(np.mean([x["binary_loss"] for x in losses])),
            "kway_loss": float(np.mean([x["kway_loss"] for x in losses])),
            "val_balanced_accuracy": float(np.mean(scores["balanced_accuracy"])),
            "val_kway_accuracy": scores["kway_accuracy"],
        }
        log.stats(row)
        log.info(" ".join(f"{key} {value:.4g}" for key, value in row.items()), echo=verbose)
        if stale >= config.patience:
            break
    for model, state in zip(trainer.models, best_states, strict=True):
        model.load_state_dict(state)
    return {"epoch": best_epochs.tolist(), "score": best_scores.tolist()}


def _plain(config) -> dict:
    return json.loads(json.dumps(asdict(config)))


# --------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------


def load_informativity(run_dir, device="cpu") -> InformativityBank:
    """The classifiers of a `train_informativity` run, in eval mode on `device`."""
    from s2ilib.models import ClassifierConfig, InformativityClassifier
    from s2ilib.train.checkpoint import load_checkpoint
    from s2ilib.train.rundir import model_config_from_dict, read_config

    run_dir = Path(run_dir)
    document = read_config(run_dir)
    if document.get("kind") != RUN_KIND:
        raise S2IError(f"{run_dir}: a '{document.get('kind')}' run, expected an informativity run")
    checkpoint = run_dir / "checkpoints" / "last.pt"
    if not checkpoint.is_file():
        raise S2IError(f"{run_dir}: no checkpoint (checkpoints/last.pt)")
    state = load_checkpoint(checkpoint, map_location=device)

    def build(config_dict, weights):
        model = InformativityClassifier(model_config_from_dict(ClassifierConfig, config_dict))
        model.load_state_dict(weights)
        return model.to(device).eval().requires_grad_(False)

    binary = [build(document["models"]["binary"], weights) for weights in state["binary"]]
    kway = build(document["models"]["kway"], state["kway"])
    metrics_path = run_dir / METRICS_FILE
    ceilings = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    return InformativityBank(
        binary, kway, list(state["classes"]), int(state["image_size"]), run_dir, ceilings
    )
