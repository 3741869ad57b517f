"""The supervised ceiling (beyond the paper): how well can a data set's test sounds be
recognised at all?

A copy of an earlier run's audio encoder (AE or alignment run; that run is left as it is)
plus a linear layer is trained as a classifier on the training sounds WITH their labels
(cross-entropy, Adam with a cosine schedule, the alignment stage's augmentation), then
scored on a split, overall and per engine, language and voice set-up. The translator never
sees the labels, so the stages after the encoder can do no better on those sounds: on
unseen voices, informativity reaches at most about this accuracy times the real-image
ceiling. A "ceiling" run directory holds the classifier and metrics.json.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from s2ilib import metrics
from s2ilib.atomic import write_json
from s2ilib.datasets.sounds import Rows, clips_of, voice_groups
from s2ilib.datasets.torch_data import select_indices
from s2ilib.runs.stats import METRICS_FILE, read_metrics
from s2ilib.train import fastpath
from s2ilib.train.augment import AugmentSettings, augment_spectrograms
from s2ilib.train.common import (
    frozen_front_features,
    load_autoencoder_weights,
    resolve_earlier_run,
    without_augmentation_for_frozen_front,
)
from s2ilib.train.config import CeilingTrainConfig
from s2ilib.train.engine import BaseTask, RunPlan
from s2ilib.translate import encode

BREAKDOWN_COLUMNS = ("voice_group", "engine", "language", "sex", "setup")


class CeilingTask(BaseTask):
    """The encoder copy + linear classifier, its optimiser and the labelled sounds."""

    kind = "ceiling"
    config_class = CeilingTrainConfig

    def __init__(self, config: CeilingTrainConfig, document: dict, data, device):
        from s2ilib.datasets.torch_data import SpectrogramDataset
        from s2ilib.models import build_models

        self.config, self.device, self.document, self.data = config, device, document, data
        self.autoencoder = build_models(document["models"], ["autoencoder"])["autoencoder"]
        self.train_set = SpectrogramDataset(
            data.split("train"), config.classes, config.limit_per_class, config.seed
        )
        num_classes = int(self.train_set.labels.max()) + 1
        width = self.autoencoder.config.embedding_dim
        self.classifier = torch.nn.Sequential(
            self.autoencoder.encoder, torch.nn.Linear(width, num_classes)
        ).to(device)
        self.classifier.train()
        optimizer = fastpath.make_adam(
            self.classifier.parameters(), fastpath.REFERENCE, device, lr=config.lr,
            betas=config.betas, weight_decay=config.weight_decay,
        )  # fmt: skip
        self.optimizers = {"classifier": (optimizer, config.lr)}
        self.augment = AugmentSettings.from_config(config)

    @classmethod
    def plan(cls, config: CeilingTrainConfig) -> RunPlan:
        config, ae_models, checkpoint = resolve_earlier_run(config, ("ae", "align"))
        config = without_augmentation_for_frozen_front(config, ae_models)
        run_config = {
            "data": config.data,
            "ae_run": config.ae_run,
            "ae_checkpoint": str(checkpoint),
            "models": {"autoencoder": ae_models},
        }
        return RunPlan(config, run_config, f"{Path(config.data).name}-{config.split}")

    def initialize(self) -> None:
        """A new run: the earlier run's encoder weights (the linear layer starts fresh)."""
        load_autoencoder_weights(
            self.autoencoder, self.document["ae_checkpoint"], lambda key: False, self.device
        )
        self.classifier.train()
        self._serve_front_features()

    def _serve_front_features(self) -> None:
        """With a frozen front, the training set serves its features of the sounds (from their
        spectrograms or audio), computed once, as the classifier's inputs (the plan turned
        augmentation off)."""
        encoder = self.autoencoder.encoder
        self.train_set.use_inputs(frozen_front_features(encoder, self.train_set, self.device))

    def optimize_parameters(self, batch) -> dict:
        spectrograms, labels, *inputs = (part.to(self.device, non_blocking=True) for part in batch)
        logits = self.classifier(
            inputs[0] if inputs else augment_spectrograms(spectrograms, self.augment)
        )
        loss = F.cross_entropy(logits, labels)
        optimizer = self.optimizers["classifier"][0]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return {"loss": loss.detach()}

    def evaluate(self, step: int, samples_path: Path):
        """No sample grids: the classifier is scored once, at the end."""
        return {}, None

    def finish(self, run_dir: Path, log) -> None:
        """Accuracy on the scored split, overall and per metadata column -> metrics.json."""
        records = self.data.split(self.config.split)
        kept = select_indices(records.labels, self.config.classes)
        extra = dict(records.extra)
        if "engine" in extra:
            extra["voice_group"] = voice_groups(self.data, records)
        audio = clips_of(records, kept)
        result = score_sounds(self.classifier, Rows(records.spectrograms, kept),
                              np.asarray(records.labels)[kept],
                              {k: np.asarray(v)[kept] for k, v in extra.items()},
                              self.device, audio=audio)  # fmt: skip
        self.classifier.train()
        write_json(run_dir / METRICS_FILE, {"split": self.config.split, **result})
        log.info(
            f"supervised ceiling ({self.config.split}): accuracy {result['accuracy']:.3f} "
            f"(chance {result['chance']:.3f})"
        )

    def state_dict(self) -> dict:
        return {
            "kind": self.kind,
            "models": {"classifier": self.classifier.state_dict()},
            "optimizers": {"classifier": self.optimizers["classifier"][0].state_dict()},
            "loss_state": {},
        }

    def load_state_dict(self, state: dict) -> None:
        self.classifier.load_state_dict(state["models"]["classifier"])
        self.optimizers["classifier"][0].load_state_dict(state["optimizers"]["classifier"])
        self._serve_front_features()


def score_sounds(
    classifier, spectrograms, labels, extra: dict, device, bootstrap=1000, audio=None
) -> dict:
    """A sound classifier's accuracy, overall and per value of each metadata column given,
    class-balanced, with 95% bootstrap intervals (overall: sounds resampled within each
    class; per value: the value's sounds resampled together), `audio` the sounds' clips for
    an encoder that reads them:
    {"accuracy", "ci",
    "chance", "num_sounds", "breakdown": {column: {value: {"accuracy", "ci", "num_sounds"}}}}."""
    predictions = encode(classifier, spectrograms, device, audio=audio).argmax(1).numpy()
    correct = (predictions == labels).astype(np.float64)
    overall = _accuracy(correct, labels, bootstrap)
    return {
        "accuracy": overall["accuracy"],
        "ci": overall["ci"],
        "chance": float(np.bincount(labels).max() / len(labels)),
        "num_sounds": int(len(correct)),
        "breakdown": {
            column: _accuracy_by(correct, labels, np.asarray(extra[column]).astype(str), bootstrap)
            for column in BREAKDOWN_COLUMNS
            if column in extra
        },
    }


def _accuracy(correct: np.ndarray, labels: np.ndarray, bootstrap: int) -> dict:
    """Accuracy as the mean over classes of each class's accuracy (as informativity is
    averaged), with a 95% interval from resampling the sounds within each class."""
    classes = int(labels.max()) + 1
    summary = metrics.bootstrap_summary(correct, labels, classes, bootstrap, seed=0)
    return {"accuracy": summary["mean"], "ci": summary["ci"], "num_sounds": len(correct)}


def _accuracy_by(correct, labels, groups, bootstrap: int) -> dict:
    """_accuracy per group, its interval from resampling the group's sounds together
    (metrics.group_bootstrap_summary: a group holds few sounds of each class)."""
    classes = int(labels.max()) + 1
    found = {}
    for value in np.unique(groups):
        members = groups == value
        summary = metrics.group_bootstrap_summary(
            correct[members], labels[members], classes, bootstrap, seed=0
        )
        found[str(value)] = {"accuracy": summary["mean"], "ci": summary["ci"],
                             "num_sounds": int(members.sum())}  # fmt: skip
    return found


def read_ceiling(run_dir) -> dict:
    """The metrics.json of a finished ceiling run."""
    return read_metrics(run_dir)
