"""More espeak-ng training voices per language (issue 28): does a second or third training
set-up of every language lift the languages one voice cannot teach (Cantonese)?

AV-Digits trains every language on one espeak-ng set-up (a dialect and a voice variant, 4
renditions of each digit: 40 clips); 29 of its 36 languages have no other training voice.
`s2i build-avdigits --espeak-setups 3,1,2 --engines espeak-ng --out EXTRA` builds the same
plan with three training set-ups a language: its first is the shipped one (the same clips),
the second and third are new variants of the training pool. This script takes those new
training clips from EXTRA and measures, on frozen features of the main job's front
(Whisper-base's 6-layer encoder on the audio, mean and max over its frames, as
front_compare.py's validation chose), how the shipped test split is read with the shipped
training split alone, with every language's second set-up added, and with its third too.
Read-outs as in front_compare.py (the nearest training clip, a logistic probe; validation
chooses the probe's weight and the read-out). No decoder is trained here.

    .venv/bin/python benchmarks/espeak_training_voices.py --extra /tmp/avd_e3 --threads 2 \\
        --json-out espeak_training_voices.json
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


def extra_training_clips(data, extra) -> dict[int, np.ndarray]:
    """{k: files of every language's k-th espeak-ng training set-up} for the set-ups of
    `extra`'s training split the shipped training split lacks (k = 2, 3, ...); checks
    that each language's first set-up in `extra` is the shipped one."""
    shipped = data.split("train").extra
    shipped_setups = set(np.asarray(shipped["setup"]).astype(str))
    rows = extra.split("train").extra
    files = np.asarray(rows["file"]).astype(str)
    setups = np.asarray(rows["setup"]).astype(str)
    languages = np.asarray(rows["language"]).astype(str)
    by_rank: dict[int, list[str]] = {}
    for language in dict.fromkeys(languages):
        order = list(dict.fromkeys(setups[languages == language]))
        if order[0] not in shipped_setups:
            raise SystemExit(
                f"{language}: the extra build's first set-up {order[0]} is not shipped"
            )
        for rank, setup in enumerate(order[1:], start=2):
            by_rank.setdefault(rank, []).extend(files[setups == setup])
    return {rank: np.asarray(found) for rank, found in by_rank.items()}


def extra_labels(extra, files: np.ndarray) -> np.ndarray:
    rows = extra.split("train")
    index = {name: i for i, name in enumerate(np.asarray(rows.extra["file"]).astype(str))}
    return np.asarray(rows.labels, np.int64)[[index[name] for name in files]]


def features_of(args, data, extra, extra_files: dict) -> dict:
    """{'train' | 'val' | 'test' | k: (N, D)} frozen features of the shipped splits and of
    each rank's extra training clips."""
    encoder = load_encoder(args.whisper_model, 6)
    waves = {s: clip_waves(Path(data.root), np.asarray(data.split(s).extra["file"]).astype(str))
             for s in SPLITS}  # fmt: skip
    waves |= {rank: clip_waves(Path(extra.root), files) for rank, files in extra_files.items()}
    pooled, seconds = front_features("audio", encoder, {"mean+max": mean_max},
                                     {"audio": waves}, args.batch_size)  # fmt: skip
    clips = sum(len(w) for w in waves.values())
    print(f"{FRONT}: {1000 * seconds / clips:.1f} ms a clip ({clips} clips)", flush=True)
    return pooled["mean+max"]


def training_sets(data, extra, extra_files: dict) -> dict[str, tuple[np.ndarray, dict]]:
    """{name: (rows of the shipped training split, {rank: rows of its extra clips})}: the
    shipped split, with each added set-up whole, and the same clip count spread over more
    voices (the espeak-ng set-ups' renditions shared out between 2 or 3 set-ups)."""
    shipped = data.split("train").extra
    espeak = np.asarray(shipped["engine"]).astype(str) == "espeak-ng"
    rendition = np.asarray(shipped["rendition"]).astype(int)
    rows = extra.split("train").extra
    index = {name: i for i, name in enumerate(np.asarray(rows["file"]).astype(str))}
    extra_rendition = {rank: np.asarray(rows["rendition"]).astype(int)[[index[f] for f in files]]
                       for rank, files in extra_files.items()}  # fmt: skip
    every = np.ones(len(rendition), bool)
    found = {"1 set-up x 4 renditions (shipped)": (every, {})}
    for upto in sorted(extra_files):
        whole = {
            rank: np.ones(len(extra_files[rank]), bool) for rank in extra_files if rank <= upto
        }
        found[f"{upto} set-ups x 4 renditions"] = (every, whole)
    found["2 set-ups x 2 renditions"] = (~espeak | (rendition < 2), {2: extra_rendition[2] < 2})
    if 3 in extra_files:
        found["3 set-ups x 2+1+1 renditions"] = (
            ~espeak | (rendition < 2),
            {2: extra_rendition[2] == 0, 3: extra_rendition[3] == 0},
        )
    return found


def evaluate(args, data, extra, extra_files, features) -> dict:
    classes = len(data.classes)
    records = {s: data.split(s) for s in SPLITS}
    labels = {s: np.asarray(records[s].labels, np.int64) for s in SPLITS}
    rank_labels = {rank: extra_labels(extra, files) for rank, files in extra_files.items()}
    kinds = {s: voice_masks(data, records[s]) for s in ("val", "test")}
    languages = language_masks(records["test"])
    report = {}
    for name, (shipped, added) in training_sets(data, extra, extra_files).items():
        split_features = {s: features[s] for s in SPLITS}
        split_labels = dict(labels)
        split_features["train"] = np.concatenate(
            [features["train"][shipped], *(features[r][m] for r, m in added.items())]
        )
        split_labels["train"] = np.concatenate(
            [labels["train"][shipped], *(rank_labels[r][m] for r, m in added.items())]
        )
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
    extra_files = extra_training_clips(data, extra)
    for rank, files in extra_files.items():
        print(f"set-up {rank} of each language: {len(files)} training clips")
    if args.features and Path(args.features).is_file():
        with np.load(args.features) as saved:
            features = {int(k) if k.isdigit() else k: saved[k] for k in saved.files}
    else:
        features = features_of(args, data, extra, extra_files)
        if args.features:
            np.savez(args.features, **{str(k): v for k, v in features.items()})
    report = evaluate(args, data, extra, extra_files, features)
    print_tables(report)
    if args.json_out:
        write_json(args.json_out, report)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--extra", required=True,
                        help="an AV-Digits build with more espeak-ng training set-ups "
                             "(s2i build-avdigits --espeak-setups 3,1,2 --engines espeak-ng)")  # fmt: skip
    parser.add_argument(
        "--whisper-model",
        nargs="+",
        metavar="PATH",
        help="Whisper-base's weights (default: the installed packages)",
    )
    parser.add_argument("--features", metavar="NPZ",
                        help="keep the frozen features in this file, and read them from it "
                             "when it exists (the same --extra build)")  # fmt: skip
    add_readout_arguments(parser)
    return parser


if __name__ == "__main__":
    raise SystemExit(main())
