"""Recall by the front: one flow run sampled with its recall's front weight at 0 (the nearest
training sound by the embedding alone, as before issue 28) and at the weight its validation
split chose (FlowConfig.recall_front_weight; the run's recall.json), on the same sounds,
draws and classifiers: the ablation of the lookup with everything else fixed.

For each weight: the informativity of the flow's images (95% interval), per kind of voice,
the languages under 0.4 and the Frechet distance, and the class accuracy of the recalled
training sound alone (what the redraw starts from).

    .venv/bin/python benchmarks/recall_front.py --run runs/00002-flow-recipe-flow \\
        --informativity runs/00004-informativity-avdigits-32px

About 2 minutes a weight on 2 CPU cores for AV-Digits 2's test split as measured then (1,380
sounds).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from s2ilib.datasets import open_dataset
from s2ilib.datasets.sounds import select_sounds
from s2ilib.evaluate import evaluate_run, headline
from s2ilib.informativity import load_informativity
from s2ilib.metrics import balanced_mean
from s2ilib.models.flow import set_sampling
from s2ilib.runs import load_run
from s2ilib.translate import sound_conditions

GROUPS = ("human speakers", "unseen synthetic voices", "held-out engine")
LOW_LANGUAGE = 0.4  # issue 28's floor for every language


def recalled_class_accuracy(run, data, sounds, conditions, weight: float) -> float:
    """Class-balanced accuracy of the class of the training sound the recall fetches for
    `sounds` (a SoundSet), given their (embeddings, front features)."""
    memory, neighbours = run.generator.memory, run.generator.config.recall_neighbours
    embeddings, front = conditions
    rows = memory.nearest(embeddings, neighbours, front, weight)
    train_labels = np.asarray(data.split("train").labels, np.int64)
    right = (train_labels[rows.numpy()] == sounds.labels).astype(float)
    return balanced_mean(right, sounds.labels, len(data.classes))[2]


def row(weight: float, figures: dict, recalled: float, seconds: float) -> str:
    low, high = figures["informativity_ci"]
    groups = figures.get("by_voice_group", {})
    cells = [f"{groups[g]['informativity']:.3f}" if g in groups else "" for g in GROUPS]
    languages = figures.get("by_language", {})
    under = sorted(k for k, v in languages.items() if v["informativity"] < LOW_LANGUAGE)
    named = f"{len(under)} ({', '.join(under)})" if under else "0"
    return (
        f"| {weight:g} | {figures['informativity']:.3f} [{low:.3f}, {high:.3f}] | "
        + " | ".join(cells)
        + f" | {named} | {figures['frechet_distance']:.3f} | "
        f"{recalled:.3f} | {seconds:.0f} |"
    )


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    run, bank = load_run(args.run, kind="flow"), load_informativity(args.informativity)
    data = open_dataset(args.data or run.config["data"])
    memory = run.generator.memory
    if memory is None or memory.front is None:
        raise SystemExit(f"{args.run}: a flow run without a front in its recall memory")
    weights = args.weights if args.weights is not None else [0.0, memory.front_weight]
    print(f"{args.run}: validation chose front weight {memory.front_weight:g}\n")
    print("| front weight | informativity | " + " | ".join(GROUPS)
          + " | languages < 0.4 | Frechet distance | recalled class | seconds |")  # fmt: skip
    print("|---:|---|" + "---:|" * len(GROUPS) + "---|---:|---:|---:|")
    sounds = select_sounds(data, args.split)
    set_sampling(run.generator, recall_front_weight=1.0)  # so that the front runs too
    conditions = sound_conditions(run, sounds.spectrograms, "cpu", sounds.audio)
    for weight in weights:
        set_sampling(run.generator, recall_front_weight=weight)
        began = time.perf_counter()
        metrics = evaluate_run(run, bank, data, split=args.split, samples=1,
                               bootstrap=args.bootstrap, baselines=False)  # fmt: skip
        seconds = time.perf_counter() - began
        recalled = recalled_class_accuracy(run, data, sounds, conditions, weight)
        print(row(weight, headline(metrics), recalled, seconds), flush=True)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="a flow run whose encoder has a frozen front")
    parser.add_argument("--informativity", required=True, help="an informativity run")
    parser.add_argument("--data", help="data set folder (default: the run's)")
    parser.add_argument("--split", default="test", help="split scored")
    parser.add_argument("--weights", type=float, nargs="+",
                        help="front weights compared (default: 0 and the run's own)")  # fmt: skip
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    return parser


if __name__ == "__main__":
    raise SystemExit(main())
