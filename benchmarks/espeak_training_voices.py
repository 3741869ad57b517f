"""More espeak-ng training voices per language (issue 28): does a language taught by two or
three espeak-ng voices read unheard voices better than one taught by one voice, and at the
same number of training clips?

`s2i build-avdigits --engines espeak-ng --espeak-setups 3,1,2 --espeak-renditions 4 --out
EXTRA` builds AV-Digits' espeak-ng plan with three training set-ups (voices) a language of 4
renditions each; the shipped set's own espeak-ng training clips are among them (the same
draws: a larger count keeps the clips a smaller one makes). This script takes every
espeak-ng training clip from EXTRA and the rest (the other engines' and the people's
training clips, validation, test) from the shipped set, and compares training splits that
differ only in their espeak-ng part: 1, 2 or 3 set-ups a language of 4 renditions, and the
same clip count as one set-up of 4 spread over 2 set-ups of 2 or 3 set-ups of 2+1+1. Each is
measured on frozen features of the main job's front (Whisper-base's 6-layer encoder on the
audio, mean and max over its frames, as front_compare.py's validation chose), read out as
in front_compare.py (the nearest training clip, a logistic probe; validation chooses the
probe's weight and the read-out) on the shipped test split. No decoder is trained here.

    .venv/bin/python benchmarks/espeak_training_voices.py --extra EXTRA --threads 2 \\
        --features espeak_training_voices.npz --json-out espeak_training_voices.json
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

# sibling scripts: benchmarks/ is on sys.path
from front_compare import (
    SPLITS,
    add_readout_arguments,
    add_whisper_model_argument,
    cell,
    clip_waves,
    front_features,
    language_masks,
    mean_max,
    readouts,
    scored,
    voice_masks,
)
from whisper_port import load_encoder

from s2ilib.atomic import write_json
from s2ilib.datasets import open_dataset
from s2ilib.datasets.avdigits import AVDIGITS_DIR

FRONT = "Whisper-base, 6 layers, mean+max, audio"
ESPEAK = "espeak-ng"
POOL = "espeak-ng training pool"  # EXTRA's espeak-ng training clips

# The training splits compared: {name: {set-up rank (1 = a language's first): renditions}}
TRAINING_SETS = {
    "1 set-up x 4 renditions": {1: 4},
    "2 set-ups x 4 renditions": {1: 4, 2: 4},
    "3 set-ups x 4 renditions": {1: 4, 2: 4, 3: 4},
    "2 set-ups x 2 renditions": {1: 2, 2: 2},
    "3 set-ups x 2+1+1 renditions": {1: 2, 2: 1, 3: 1},
}


def column(records, name: str) -> np.ndarray:
    return np.asarray(records.extra[name]).astype(str)


def espeak_pool(data, extra) -> dict[str, np.ndarray]:
    """EXTRA's espeak-ng training clips: file, label, rank of the set-up within its language
    (1, 2, ...: the order the build planned them, which its manifest keeps) and rendition;
    checks that it holds every shipped espeak-ng training clip."""
    rows = extra.split("train")
    keep = column(rows, "engine") == ESPEAK
    files, setups = column(rows, "file")[keep], column(rows, "setup")[keep]
    languages = column(rows, "language")[keep]
    rank = np.zeros(len(files), np.int64)
    for language in dict.fromkeys(languages):
        for k, setup in enumerate(dict.fromkeys(setups[languages == language]), start=1):
            rank[setups == setup] = k
    shipped = data.split("train")
    missing = set(column(shipped, "file")[column(shipped, "engine") == ESPEAK]) - set(files)
    if missing:
        raise SystemExit(f"{len(missing)} shipped espeak-ng training clips are not in --extra, "
                         f"e.g. {sorted(missing)[0]}: build it with this commit's plan")  # fmt: skip
    return {
        "file": files,
        "label": np.asarray(rows.labels, np.int64)[keep],
        "rank": rank,
        "rendition": column(rows, "rendition")[keep].astype(np.int64),
    }


def clip_lists(data, extra, pool) -> dict:
    """{split | POOL: (folder, files)}: the shipped splits (training: every engine but
    espeak-ng) and EXTRA's espeak-ng training clips."""
    lists = {s: (Path(data.root), column(data.split(s), "file")) for s in SPLITS}
    train = data.split("train")
    lists["train"] = (Path(data.root), column(train, "file")[column(train, "engine") != ESPEAK])
    return lists | {POOL: (Path(extra.root), pool["file"])}


def features_of(args, lists: dict) -> dict:
    """{split | POOL: (N, D)} frozen features, read from --features when it holds these
    very clips (their names are kept beside them), else computed (and kept there)."""
    names = np.concatenate([files for _, files in lists.values()])
    if args.features and Path(args.features).is_file():
        with np.load(args.features) as saved:
            if np.array_equal(saved["names"], names):
                return {key: saved[key] for key in lists}
        print(f"{args.features} holds other clips: computing the features again")
    encoder = load_encoder(args.whisper_model, 6)
    waves = {key: clip_waves(root, files) for key, (root, files) in lists.items()}
    pooled, seconds = front_features("audio", encoder, {"mean+max": mean_max},
                                     {"audio": waves}, args.batch_size)  # fmt: skip
    print(f"{FRONT}: {1000 * seconds / len(names):.1f} ms a clip ({len(names)} clips)", flush=True)
    features = pooled["mean+max"]
    if args.features:
        np.savez(args.features, names=names, **features)
    return features


def pool_mask(pool, renditions_by_rank: dict[int, int]) -> np.ndarray:
    """The pool's clips of the given set-up ranks, their first `renditions` each."""
    wanted = np.zeros(len(pool["file"]), bool)
    for rank, renditions in renditions_by_rank.items():
        wanted |= (pool["rank"] == rank) & (pool["rendition"] < renditions)
    return wanted


def evaluate(args, data, pool, features) -> dict:
    classes = len(data.classes)
    records = {s: data.split(s) for s in SPLITS}
    labels = {s: np.asarray(records[s].labels, np.int64) for s in SPLITS}
    labels["train"] = labels["train"][column(records["train"], "engine") != ESPEAK]
    kinds = {s: voice_masks(data, records[s]) for s in ("val", "test")}
    languages = language_masks(records["test"])
    report = {}
    for name, renditions_by_rank in TRAINING_SETS.items():
        chosen = pool_mask(pool, renditions_by_rank)
        split_features = {s: features[s] for s in SPLITS}
        split_labels = dict(labels)
        split_features["train"] = np.concatenate([features["train"], features[POOL][chosen]])
        split_labels["train"] = np.concatenate([labels["train"], pool["label"][chosen]])
        guesses, weight = readouts(split_features, split_labels, classes, args)
        result = {"training clips": len(split_labels["train"]), "probe weight": weight}
        for readout, guess in guesses.items():
            result[readout] = {
                split: scored(guess[split], labels[split], kinds[split], classes, args.bootstrap)
                for split in ("val", "test")
            }
            result[readout]["by language"] = scored(guess["test"], labels["test"], languages,
                                                    classes, args.bootstrap)  # fmt: skip
        result["chosen"] = max(guesses, key=lambda r: result[r]["val"]["all"]["mean"])
        report[name] = result
    return report


def print_tables(report: dict) -> None:
    names = list(report)
    first = report[names[0]]
    groups = list(first["nearest"]["test"])
    print(f"\n{FRONT}; test split, class accuracy (balanced over classes), 95% bootstrap "
          "intervals; * = validation's read-out\n")  # fmt: skip
    counts = {g: first["nearest"]["test"][g]["n"] for g in groups}
    print("| training voices | clips | read-out | val all | "
          + " | ".join(f"{g} ({counts[g]})" for g in groups) + " |")  # fmt: skip
    print("|---|---:|---|---:|" + "---:|" * len(groups))
    for name, result in report.items():
        for readout in ("probe", "nearest"):
            star = "*" if readout == result["chosen"] else ""
            scores = result[readout]
            print(f"| {name} | {result['training clips']} | {readout}{star} | "
                  f"{scores['val']['all']['mean']:.3f} | "
                  + " | ".join(cell(scores["test"][g]) for g in groups) + " |")  # fmt: skip
    by_language = {n: report[n][report[n]["chosen"]]["by language"] for n in names}
    print("\ntest split by language (each column's read-out as validation chose)\n")
    print("| language (n) | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for language, summary in by_language[names[0]].items():
        print(f"| {language} ({summary['n']}) | "
              + " | ".join(cell(by_language[n][language]) for n in names) + " |")  # fmt: skip
    means = {n: [s["mean"] for s in by_language[n].values()] for n in names}
    print("| mean over languages | " + " | ".join(f"{np.mean(means[n]):.3f}" for n in names) + " |")
    for line, bound in (("below 0.5", 0.5), ("below 0.4", 0.4)):
        print(f"| languages {line} | "
              + " | ".join(str(sum(m < bound for m in means[n])) for n in names) + " |")  # fmt: skip


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    data, extra = open_dataset(AVDIGITS_DIR), open_dataset(args.extra)
    pool = espeak_pool(data, extra)
    for rank in sorted(set(pool["rank"].tolist())):
        print(f"set-up {rank} of each language: {int((pool['rank'] == rank).sum())} clips")
    features = features_of(args, clip_lists(data, extra, pool))
    report = evaluate(args, data, pool, features)
    print_tables(report)
    if args.json_out:
        write_json(args.json_out, report)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--extra", required=True,
                        help="an AV-Digits build with more espeak-ng training set-ups (s2i "
                             "build-avdigits --engines espeak-ng --espeak-setups 3,1,2 "
                             "--espeak-renditions 4)")  # fmt: skip
    add_whisper_model_argument(parser)
    parser.add_argument("--features", metavar="NPZ",
                        help="keep the frozen features in this .npz file, and read them from "
                             "it when it holds the same clips")  # fmt: skip
    add_readout_arguments(parser)
    return parser


if __name__ == "__main__":
    raise SystemExit(main())
