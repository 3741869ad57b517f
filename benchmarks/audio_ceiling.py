"""The supervised ceiling of a data set's test sounds (s2ilib.train.ceiling).

Fine-tunes a copy of a run's audio encoder as a 10-way classifier on the training sounds,
with labels and the alignment stage's augmentation, and prints its accuracy on the test
sounds, overall and per engine, language and voice set-up. The translator never sees the
labels, so this bounds the informativity any recipe can reach on these sounds. The same as
`s2i train-ceiling --ae-run RUN`, plus a printed summary and an optional JSON copy.

    .venv/bin/python benchmarks/audio_ceiling.py --run runs/NNN-ae-... [--epochs 60]

--run takes an AE or align run (its encoder is the starting point; the run is not changed).
--no-augment trains on the sounds as they are. Runs on one CPU thread unless --threads.
"""

from __future__ import annotations

import argparse
import json
import sys

import torch

from s2ilib.train.ceiling import read_ceiling
from s2ilib.train.config import AUGMENT_FIELDS, CeilingTrainConfig
from s2ilib.train.registry import train_ceiling


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    settings = {"ae_run": args.run, "data": args.data or "", "num_epochs": args.epochs,
                "split": args.split, "seed": args.seed}  # fmt: skip
    if args.no_augment:
        settings |= dict.fromkeys(AUGMENT_FIELDS, 0)
    run_dir = train_ceiling(CeilingTrainConfig.from_dict(settings), args.runs_root,
                            progress_bar=False)  # fmt: skip
    result = read_ceiling(run_dir)
    print(f"{args.split} accuracy {result['accuracy']:.3f} (chance {result['chance']:.3f})")
    for column, values in result["breakdown"].items():
        print(f"per {column}: " + ", ".join(f"{k} {v['accuracy']:.3f}" for k, v in values.items()))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"run": args.run, "ceiling_run": str(run_dir), "epochs": args.epochs,
                       **result}, handle, indent=1)  # fmt: skip
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="AE or align run directory")
    parser.add_argument("--data", help="data set folder (default: AV-Digits)")
    parser.add_argument("--epochs", type=int, default=60, help="training epochs (default 60)")
    parser.add_argument("--split", default="test", help="split scored (default test)")
    parser.add_argument("--no-augment", action="store_true", help="no augmentation")
    parser.add_argument("--seed", type=int, default=0, help="seed of init order and draws")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--runs-root", default="runs", help="where the ceiling run is made")
    parser.add_argument("--json", help="also write the result to this JSON file")
    return parser


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as error:  # S2IError and friends: one line, not a traceback
        from s2ilib.errors import S2IError

        if not isinstance(error, S2IError):
            raise
        print(f"audio_ceiling: error: {error}", file=sys.stderr)
        sys.exit(2)
