"""Which training-time augmentations help unseen voices? An ablation of the alignment stage.

For each variant (a set of AlignTrainConfig augmentation settings on top of the recipe's),
the recipe's alignment stage is trained on the same AE run, and its embedding is read out
by a linear probe (trained on the training voices' embeddings, scored on the test split),
overall and per kind of voice (held-out human speakers, unseen synthetic voices, the
held-out engine), beside the supervised ceiling if asked. Prints a Markdown table and
writes JSON.

    .venv/bin/python benchmarks/augment_ablation.py --ae-run runs/NNN-ae-... \\
        --variant base= --variant noise=noise_probability:0.5 \\
        --variant all=reverb_probability:0.5,noise_probability:0.5,band_limit_probability:0.5
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch

from s2ilib.datasets import open_dataset
from s2ilib.datasets.sounds import voice_groups
from s2ilib.probes import compare_probes
from s2ilib.runs import load_run
from s2ilib.train.config import parse_assignments
from s2ilib.train.recipes import align_config
from s2ilib.train.registry import train_align


def parse_variant(text: str) -> tuple[str, dict]:
    """'name=key:value,key:value' -> (name, settings)."""
    name, _, settings = text.partition("=")
    pairs = [item.replace(":", "=", 1) for item in settings.split(",") if item]
    return name, parse_assignments(pairs)


def run_variant(args, name: str, settings: dict) -> dict:
    """Train the recipe's alignment with `settings`; probe its embedding per voice group."""
    started = time.time()
    config = align_config(args.recipe, args.ae_run, {"num_epochs": args.epochs,
                                                     "seed": args.seed, **settings})  # fmt: skip
    run_dir = train_align(config, args.runs_root, f"ablation-{name}", progress_bar=False)
    run = load_run(run_dir)
    data = open_dataset(run.config["data"])  # the run's resolved data folder
    test = data.split(args.split)
    probe = compare_probes(run.encoder, data.split("train"), test,
                           groups=voice_groups(data, test), seed=args.seed)  # fmt: skip
    return {"variant": name, "settings": settings, "run": str(run_dir),
            "seconds": round(time.time() - started, 1), **probe}  # fmt: skip


def table(results: list[dict]) -> str:
    groups = sorted({g for r in results for g in r["embedding_by_group"]})
    lines = ["| variant | probe (all) | " + " | ".join(groups) + " | s |",
             "|---|---:|" + "---:|" * len(groups) + "---:|"]  # fmt: skip
    for r in results:
        cells = [f"{r['embedding_by_group'].get(g, float('nan')):.3f}" for g in groups]
        lines.append(f"| {r['variant']} | {r['embedding']:.3f} | " + " | ".join(cells)
                     + f" | {r['seconds']:.0f} |")  # fmt: skip
    return "\n".join(lines)


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    results = [run_variant(args, *parse_variant(text)) for text in args.variant]
    print(table(results))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=1)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ae-run", required=True, help="the AE run every variant aligns")
    parser.add_argument("--variant", action="append", required=True,
                        help="name=key:value,... (AlignTrainConfig settings); repeatable")  # fmt: skip
    parser.add_argument("--recipe", default="aligned", help="whose alignment settings")
    parser.add_argument("--epochs", type=int, default=60, help="alignment epochs")
    parser.add_argument("--split", default="test", help="the split probed")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--runs-root", default="runs/ablation", help="where the runs go")
    parser.add_argument("--json", help="also write the results to this JSON file")
    return parser


if __name__ == "__main__":
    sys.exit(main())
