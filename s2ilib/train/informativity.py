"""Training the informativity classifiers: one binary CNN per class, and one K-way CNN.

What the authors' classifiers were trained on is not published; this is the recipe used
here (every number is a field of `InformativityTrainConfig`):

- Images: the REAL images of the data set's image pool (AV-Digits: the MNIST pool; VEGAS:
  the video frames), train split for training, val split for model selection, test split
  for the ceilings. Images are resized to the generator's size (bilinear, antialiased),
  grey images expanded to 3 channels, scaled to [-1, 1] as the generator's output.
- Architecture: the authors' binary CNN (models.paper_classifier); the K-way classifier is
  the same network with K outputs.
- Batch of binary classifier c (each classifier gets its own batch, all trained together):
  half positives (real images of class c), half negatives; of the negatives a share
  `degraded_fraction` are degraded images (s2ilib.informativity.degrade: noise, a heavy
  blur of a class-c image, a constant grey image, a class-c image's shuffled patches, a
  50/50 mixture with another class), the rest real images of the other classes (uniform
  over the other classes).
- K-way classifier: real images only, uniformly drawn, cross-entropy.
- Adam (lr 2e-3), at most `num_epochs` epochs (one epoch = each binary classifier sees each
  of its positives once); after each epoch every classifier is scored on the val split
  (balanced accuracy over: val images of its class, val images of other classes, degraded
  val images) and keeps its best weights; training stops early when no classifier
  improved for `patience` epochs.
- Reported ceilings (test split, metrics.json): per class the positive rate of classifier c
  on real class-c images (the informativity a perfect generator would reach), its
  false-positive rate on other classes' images and on degraded images, its accuracy on all
  real test images; the K-way accuracy and confusion matrix.
- Speed: the K binary classifiers run as a Python loop over classes, each on its own
  batch; measured on 2 CPU cores, torch.func.vmap over stacked weights was slower and a
  grouped convolution no faster than the loop (the convolutions are too small to gain).

It trains through the engine (train.engine) like every stage: resumable checkpoints (with
the best weights so far), NaN guard, TensorBoard, progress bar. The run directory has kind
"informativity"; s2ilib.informativity.load_informativity reads the selected classifiers.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from s2ilib.atomic import write_json
from s2ilib.informativity import (
    DEGRADATIONS,
    METRICS_FILE,
    InformativityBank,
    binary_name,
    degrade,
    degraded_set,
    judge,
    load_pool,
    random_kinds,
)
from s2ilib.train.common import resolve_data
from s2ilib.train.config import InformativityTrainConfig
from s2ilib.train.engine import BaseTask, RunPlan


class InformativityTask(BaseTask):
    """The binary classifiers and the K-way one, their optimiser, batches and selection."""

    kind = "informativity"
    config_class = InformativityTrainConfig

    def __init__(self, config: InformativityTrainConfig, document: dict, data, device):
        from s2ilib.models import InformativityClassifier, model_config_from_dict
        from s2ilib.models.config import ClassifierConfig

        self.config, self.device, self.classes = config, device, list(data.classes)
        self.started = time.time()
        self.pools = {
            split: load_pool(data, split, config.image_size, config.limit_per_class, config.seed)
            for split in ("train", "val", "test")
        }
        self.generator = torch.Generator().manual_seed(config.seed)  # batches, degradations

        def build(name):
            model_config = model_config_from_dict(ClassifierConfig, document["models"][name])
            return InformativityClassifier(model_config).to(device)

        self.binary = [build("binary") for _ in self.classes]
        self.kway = build("kway")
        parameters = [p for model in self.models for p in model.parameters()]
        optimizer = torch.optim.Adam(parameters, lr=config.lr, betas=config.betas)
        self.optimizers = {"classifiers": (optimizer, config.lr)}
        self.val_degraded = degraded_set(self.pools["val"], len(self.classes), config.seed + 1)
        self.best = {
            "models": self._model_states(),
            "scores": [-np.inf] * len(self.models),
            "epochs": [0] * len(self.models),
            "stale": 0,
        }

    @classmethod
    def plan(cls, config: InformativityTrainConfig) -> RunPlan:
        from s2ilib.datasets import open_dataset
        from s2ilib.models import paper_classifier
        from s2ilib.models.config import config_dict

        config = config.updated({"data": resolve_data(config.data)})
        data = open_dataset(config.data)
        run_config = {
            "data": config.data,
            "classes": list(data.classes),
            "models": {
                "binary": config_dict(paper_classifier(config.image_size, 2)),
                "kway": config_dict(paper_classifier(config.image_size, data.num_classes)),
            },
            "degradations": list(DEGRADATIONS),
        }
        return RunPlan(config, run_config, f"{data.kind}-{config.image_size}px")

    @property
    def models(self) -> list:
        return [*self.binary, self.kway]

    def _model_states(self) -> dict:
        """Copies of every classifier's weights, keyed as in the checkpoint."""
        names = [binary_name(k) for k in range(len(self.binary))] + ["kway"]
        return {
            name: copy.deepcopy(m.state_dict()) for name, m in zip(names, self.models, strict=True)
        }

    def steps_per_epoch(self) -> int:
        """Enough steps for each binary classifier to see its largest class's images once."""
        sizes = torch.bincount(self.pools["train"].labels, minlength=len(self.classes))
        return max(1, int(np.ceil(sizes.max().item() / (self.config.batch_size // 2))))

    def epoch_batches(self, epoch: int, start: int):
        """Batches drawn from the task's own generator (its state is in every checkpoint)."""
        for _ in range(start, self.steps_per_epoch()):
            yield self.binary_batch() + (self.kway_positions(),)

    def binary_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(K, B, 3, S, S) images and (K, B) targets: classifier k's batch in row k."""
        k, size, g, train = (
            len(self.classes),
            self.config.batch_size,
            self.generator,
            self.pools["train"],
        )
        n_pos = size // 2
        n_degraded = round((size - n_pos) * self.config.degraded_fraction)
        n_real = size - n_pos - n_degraded
        own = torch.arange(k)[:, None]
        others = (own + torch.randint(1, k, (k, n_real + n_degraded), generator=g)) % k
        positives = train.draw(own.expand(k, n_pos), g)
        real_negatives = train.draw(others[:, :n_real], g)
        sources = train.draw(own.expand(k, n_degraded), g)
        mixed_in = train.draw(others[:, n_real:], g)
        degraded = degrade(
            train.float(sources.flatten()),
            train.float(mixed_in.flatten()),
            random_kinds((k * n_degraded,), g),
            g,
        ).view(k, n_degraded, 3, self.config.image_size, self.config.image_size)
        real = train.float(torch.cat([positives, real_negatives], 1).flatten())
        real = real.view(k, n_pos + n_real, *degraded.shape[2:])
        images = torch.cat([real, degraded], dim=1)
        targets = torch.cat([torch.ones(k, n_pos), torch.zeros(k, size - n_pos)], 1).long()
        return images, targets

    def kway_positions(self) -> torch.Tensor:
        """Positions of the K-way classifier's batch in the training pool."""
        count = len(self.pools["train"])
        return torch.randint(0, count, (self.config.kway_batch_size,), generator=self.generator)

    def optimize_parameters(self, batch) -> dict:
        """One step of every classifier on its batch: the mean binary and the K-way loss."""
        images, targets, positions = batch
        images, targets = images.to(self.device), targets.to(self.device)
        binary_loss = sum(
            F.nll_loss(model(images[k]), targets[k]) for k, model in enumerate(self.binary)
        ) / len(self.binary)
        train = self.pools["train"]
        kway_images = train.float(positions).to(self.device)
        kway_loss = F.nll_loss(self.kway(kway_images), train.labels[positions].to(self.device))
        optimizer = self.optimizers["classifiers"][0]
        optimizer.zero_grad(set_to_none=True)
        (binary_loss + kway_loss).backward()
        optimizer.step()
        return {"binary_loss": binary_loss.detach(), "kway_loss": kway_loss.detach()}

    def evaluate(self, step: int, samples_path: Path):
        """No sample grids: the classifiers are scored at each epoch's end."""
        return {}, None

    def bank(self) -> InformativityBank:
        """The classifiers as they are, in eval mode."""
        for model in self.models:
            model.eval()
        return InformativityBank(self.binary, self.kway, self.classes, self.config.image_size)

    def end_epoch(self, epoch: int) -> dict:
        """Score every classifier on val; each keeps its best weights; count stale epochs."""
        scores = judge(
            self.bank(), self.pools["val"], self.val_degraded, self.config.eval_batch_size
        )
        for model in self.models:
            model.train()
        current = np.array([*scores["balanced_accuracy"], scores["kway_accuracy"]])
        improved = current > np.array(self.best["scores"])
        states = self._model_states() if improved.any() else {}
        for index, name in enumerate(self.best["models"]):
            if improved[index]:
                self.best["models"][name] = states[name]
                self.best["scores"][index] = float(current[index])
                self.best["epochs"][index] = epoch + 1
        self.best["stale"] = 0 if improved.any() else self.best["stale"] + 1
        return {
            "val_balanced_accuracy": float(np.mean(scores["balanced_accuracy"])),
            "val_kway_accuracy": scores["kway_accuracy"],
        }

    def finished(self) -> bool:
        """Early stopping: no classifier improved for `patience` epochs."""
        return self.best["stale"] >= self.config.patience

    def finish(self, run_dir: Path, log) -> None:
        """The selected classifiers' ceilings on the test split -> metrics.json."""
        self.load_best()
        test = self.pools["test"]
        degraded = degraded_set(test, len(self.classes), self.config.seed + 2)
        results = {
            "split": "test",
            "num_images": len(test),
            "classes": self.classes,
            **judge(self.bank(), test, degraded, self.config.eval_batch_size),
            "best_epoch": {"binary": self.best["epochs"][:-1], "kway": self.best["epochs"][-1]},
            "val_balanced_accuracy": self.best["scores"][:-1],
            "val_kway_accuracy": self.best["scores"][-1],
            "train_seconds": round(time.time() - self.started, 1),
        }
        write_json(run_dir / METRICS_FILE, results)
        log.info(
            f"informativity ceilings (test): mean TPR {results['mean_true_positive_rate']:.3f}, "
            f"FPR other classes {results['mean_false_positive_rate']:.3f}, FPR degraded "
            f"{results['mean_false_positive_rate_degraded']:.3f}, K-way accuracy "
            f"{results['kway_accuracy']:.3f} ({results['train_seconds']} s) -> {run_dir}"
        )

    def load_best(self) -> None:
        """Every classifier back to its best epoch's weights."""
        for model, state in zip(self.models, self.best["models"].values(), strict=True):
            model.load_state_dict(state)

    def state_dict(self) -> dict:
        return {
            "kind": self.kind,
            "models": self._model_states(),
            "optimizers": {"classifiers": self.optimizers["classifiers"][0].state_dict()},
            "loss_state": {},
            "best": copy.deepcopy(self.best),
            "batch_generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        for model, weights in zip(self.models, state["models"].values(), strict=True):
            model.load_state_dict(weights)
        self.optimizers["classifiers"][0].load_state_dict(state["optimizers"]["classifiers"])
        self.best = copy.deepcopy(state["best"])
        self.generator.set_state(state["batch_generator"])
