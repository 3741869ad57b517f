"""Would augmenting the training sounds help the speech front? (It does not, here.)

A stage that trains after the frozen speech front computes the front's features of its
training sounds once and trains without augmentation (s2ilib.train.common.
without_augmentation_for_frozen_front). Augmenting could still be had by computing the
features of a few augmented copies of every sound once and drawing one copy per sound per
epoch. This script measures what that would buy, with the aligned recipe's augmentation
(warps, shift, gain, a room on half the sounds), per kind of voice:

- the untrained front's features: the nearest training sound's class and a linear probe,
  the training sounds alone against them with `--copies` augmented copies;
- the supervised ceiling, emulated on an align run's speech encoder (its projection and
  head, copied, plus a linear layer; Adam 1e-3, cosine, batch 128, `--epochs`), trained on
  the clean features against clean + copies drawn per epoch.

    .venv/bin/python benchmarks/speech_front_augmentation.py \
        --align-run runs/00001-align-avdigits-demo-d512-finetune --copies 2

About 2.5 minutes on 2 CPU cores for AV-Digits 2.
"""

from __future__ import annotations

import argparse
import copy

import numpy as np
import torch
import torch.nn.functional as F

# sibling scripts: benchmarks/ is on sys.path
from informativity_bound import groups_of
from speech_front import nearest_classes

from s2ilib.datasets import open_dataset
from s2ilib.probes import probe_predictions
from s2ilib.runs import load_run
from s2ilib.train.augment import AugmentSettings, augment_spectrograms
from s2ilib.train.config import AlignTrainConfig
from s2ilib.train.recipes import align_settings
from s2ilib.translate import encode, spectrogram_batches

BATCH = 128


@torch.no_grad()
def front_copies(front, spectrograms, copies: int, settings) -> torch.Tensor:
    """(1 + copies, N, 192): the front's features of the sounds, then of `copies` augmented
    copies of them."""
    clean = encode(front, spectrograms, "cpu")
    augmented = [
        torch.cat([front(augment_spectrograms(batch, settings)) for batch in spectrogram_batches(spectrograms, 256)])
        for _ in range(copies)
    ]  # fmt: skip
    return torch.stack([clean, *augmented])


def accuracy_by_group(data, split, guesses) -> dict:
    records = data.split(split)
    right = guesses == np.asarray(records.labels)
    return {
        group: round(float(right[mask].mean()), 3)
        for group, mask in groups_of(data, records).items()
    }


def emulated_ceiling(encoder, bank, labels, queries, epochs: int) -> dict:
    """The encoder's projection and head (copies) + a linear layer trained on `bank` (copies,
    N, 192), one copy per sound drawn per epoch; the classes it gives each query split."""
    torch.manual_seed(0)
    width = encoder.head.layers[-1].out_features
    model = torch.nn.Sequential(copy.deepcopy(encoder.layers), copy.deepcopy(encoder.head),
                                torch.nn.Linear(width, int(labels.max()) + 1))  # fmt: skip
    count = len(labels)
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, epochs * max(count // BATCH, 1)
    )
    model.train()
    for _ in range(epochs):
        order, chosen = torch.randperm(count), torch.randint(0, len(bank), (count,))
        for start in range(0, count - BATCH + 1, BATCH):
            rows = order[start : start + BATCH]
            loss = F.cross_entropy(model(bank[chosen[rows], rows]), labels[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    model.eval()
    with torch.no_grad():
        return {split: model(features).argmax(1).numpy() for split, features in queries.items()}


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    run = load_run(args.align_run)
    data = open_dataset(args.data or run.config["data"])
    settings = AugmentSettings.from_config(
        AlignTrainConfig.from_dict({**align_settings("flow"), "ae_run": args.align_run})
    )
    train = data.split("train")
    labels = np.asarray(train.labels, np.int64)
    bank = front_copies(run.encoder.front, train.spectrograms, args.copies, settings)
    queries = {
        split: encode(run.encoder.front, data.split(split).spectrograms, "cpu")
        for split in args.splits
    }
    banks = {"sounds alone": bank[:1], f"sounds + {args.copies} augmented copies": bank}
    for name, used in banks.items():
        flat, tiled = used.flatten(0, 1).numpy(), np.tile(labels, len(used))
        ceiling = emulated_ceiling(run.encoder, used, torch.as_tensor(labels), queries, args.epochs)
        for split, features in queries.items():
            rows = {"nearest training sound": nearest_classes(flat, tiled, features.numpy()),
                    "linear probe": probe_predictions(flat, tiled, features.numpy()),
                    "emulated ceiling": ceiling[split]}  # fmt: skip
            for read_out, guesses in rows.items():
                print(f"{split} | {name} | {read_out} | {accuracy_by_group(data, split, guesses)}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--align-run", required=True, help="an align run on a speech-front AE run")
    parser.add_argument("--data", help="data set folder (default: the run's)")
    parser.add_argument("--splits", nargs="+", default=["val", "test"], help="splits scored")
    parser.add_argument("--copies", type=int, default=2, help="augmented copies per sound")
    parser.add_argument("--epochs", type=int, default=60, help="epochs of the emulated ceiling")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    return parser


if __name__ == "__main__":
    raise SystemExit(main())
