"""The supervised ceiling of a data set's test sounds (s2ilib.probes.supervised_ceiling).

Fine-tunes a copy of a run's audio encoder as a 10-way classifier on the training sounds,
with labels and the alignment stage's augmentation, and prints its accuracy on the test
sounds, overall and per engine, language and voice set-up. The translator never sees the
labels, so this bounds the informativity any recipe can reach on these sounds.

    .venv/bin/python benchmarks/audio_ceiling.py --run runs/NNN-ae-... [--epochs 60]

--run takes an AE or align run (its encoder is the starting point; the run is not changed).
--no-augment trains on the sounds as they are. Runs on one CPU thread unless --threads.
"""

from __future__ import annotations

import argparse
import json
import sys

import torch

from s2ilib.datasets import open_dataset
from s2ilib.probes import supervised_ceiling
from s2ilib.train.ae import resolve_data
from s2ilib.train.augment import AugmentSettings
from s2ilib.train.rundir import load_run

NO_AUGMENTATION = AugmentSettings(
    max_shift_frames=0, max_gain_db=0.0, max_frequency_warp=0.0, max_time_warp=0.0
)


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    run = load_run(args.run)
    data = open_dataset(resolve_data(args.data or run.config.get("data")))
    augment = NO_AUGMENTATION if args.no_augment else AugmentSettings()
    result = supervised_ceiling(
        run.autoencoder.encoder,
        data.split("train"),
        data.split(args.split),
        augment,
        epochs=args.epochs,
        seed=args.seed,
    )
    print(f"{args.split} accuracy {result['accuracy']:.3f} (chance {result['chance']:.3f})")
    for column, values in result["breakdown"].items():
        print(f"per {column}: " + ", ".join(f"{k} {v:.3f}" for k, v in values.items()))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"run": str(run.run_dir), "epochs": args.epochs, **result}, handle, indent=1)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="AE or align run directory")
    parser.add_argument("--data", help="data set folder (default: the run's)")
    parser.add_argument("--epochs", type=int, default=60, help="training epochs (default 60)")
    parser.add_argument("--split", default="test", help="split scored (default test)")
    parser.add_argument("--no-augment", action="store_true", help="no augmentation")
    parser.add_argument("--seed", type=int, default=0, help="seed of init order and draws")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--json", help="also write the result to this JSON file")
    return parser


if __name__ == "__main__":
    sys.exit(main())
