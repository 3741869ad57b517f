"""Why a decoder on the sound embedding does not out-inform retrieval: what the embedding
knows of a sound's class, read out every way, and how much of it the flow's redraw keeps.

Retrieval (`s2i evaluate`'s nearest-neighbour baseline) shows a real image of the class of
the training sound nearest to the sound. A decoder conditioned on the same embedding can be
more informative only if it knows the class better than that nearest sound does. This
script measures, on one flow run (recipe `flow`) and one split:

1. **Read-outs of the embedding**: the class of each sound as told by the nearest training
   sound (what retrieval and recall use), by a similarity-weighted vote of the k nearest,
   by a linear probe fit on the training sounds, by the nearest sound after test-time
   augmentation (embeddings averaged over shifted, louder and quieter copies), and by the
   flow itself used as a classifier (Li et al. 2023, "Your diffusion model is secretly a
   zero-shot classifier": of the C nearest classes, the one whose image the sound helps the
   flow explain most, alone and added to the similarity), overall and per kind of voice.
2. **What the redraw keeps**: one draw of the run as it samples (recall and redraw, or from
   noise), judged by the informativity classifiers' K-way read-out against the class of the
   nearest training sound and the true class.
3. **Recall by vote** (`--vote K ...`): the run's draws scored by `evaluate_run`, with the
   baselines, when the recalled image is one of the class the k nearest sounds vote for
   (`FlowConfig.recall_neighbours`).

The memory recalled from is built here from the data set's whole training split
(`recall_redraw.attach_training_memory`, as a run trained on all of it saves it), so its
rows are the split's training sounds in order, and runs without a memory are measured too.

    .venv/bin/python benchmarks/informativity_bound.py --run runs/NNN-flow-recipe-flow \
        --informativity runs/NNN-informativity-avdigits-32px --split val --vote 5 20

3.7 minutes on 2 CPU cores for AV-Digits' 1,000 validation sounds with `--vote 5 20` (each
`--vote` setting, and the nearest sound's beside it, about 50 s of that).
"""

from __future__ import annotations

import argparse
import time
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

# sibling scripts: benchmarks/ is on sys.path
from flow_guidance import COLUMNS, flow_run_parser, row
from recall_redraw import attach_training_memory

from s2ilib.datasets import open_dataset
from s2ilib.datasets.sounds import voice_groups
from s2ilib.evaluate import evaluate_run, score_images
from s2ilib.informativity import load_informativity
from s2ilib.models.flow import set_sampling
from s2ilib.probes import probe_predictions
from s2ilib.runs import load_run
from s2ilib.train.augment import AugmentSettings, augment_spectrograms
from s2ilib.translate import (
    draw_batches,
    encode,
    keyed_codes,
    sound_keys,
    spectrogram_batches,
)

DISTINCT_SEARCHED = 200  # nearest sounds searched for the flow's distinct candidate classes
AUGMENTED_COPIES = 4  # test-time augmentation: copies averaged with the sound itself
# Shifted, louder and quieter copies: the alignment stage's shift and gain; its warps and
# room were measured too and did no better (RESULTS.md).
TTA_SETTINGS = AugmentSettings(max_frequency_warp=0.0, max_time_warp=0.0)
FLOW_TIMES = (0.1, 0.3, 0.5, 0.7, 0.9)  # where the flow's two losses are compared
FLOW_CANDIDATES = 3  # classes the flow chooses among (the nearest sounds' first three)
FLOW_SIMILARITY_WEIGHT = 10.0  # the cosine's weight beside the flow's loss gain (val's best)
BATCH = 256
NEAREST = "nearest training sound (retrieval's)"


@torch.no_grad()
def augmented_embeddings(encoder, spectrograms, seed: int) -> torch.Tensor:
    """Unit embeddings (N, D): the mean of the sound's and AUGMENTED_COPIES augmented
    copies' unit embeddings (TTA_SETTINGS), renormalised."""
    encoder.eval()
    torch.manual_seed(seed)
    parts = []
    for batch in spectrogram_batches(spectrograms, BATCH):
        total = F.normalize(encoder(batch))
        for _ in range(AUGMENTED_COPIES):
            total = total + F.normalize(encoder(augment_spectrograms(batch, TTA_SETTINGS)))
        parts.append(F.normalize(total))
    return torch.cat(parts)


class Split(NamedTuple):
    """The split's sounds as every part of the script needs them, computed once."""

    records: object  # data.split(name)
    embeddings: torch.Tensor  # (N, D), the encoder's (what the decoder is given)
    keys: torch.Tensor  # (N,) sound_keys of the spectrograms
    codes: torch.Tensor  # (N, noise_dim) the first draw's noise (seed 0)

    @classmethod
    def of(cls, run, data, name: str) -> Split:
        records = data.split(name)
        keys = sound_keys(records.spectrograms)
        embeddings = encode(run.encoder, records.spectrograms, "cpu", audio=records.audio)
        return cls(records, embeddings, keys, keyed_codes(run.generator, keys, 0, 0, "cpu"))


def distinct_nearest(similarity: torch.Tensor, keys: torch.Tensor, count: int):
    """The `count` nearest training sounds of distinct keys (pairing ranges: one per class,
    for class-paired data) among the DISTINCT_SEARCHED nearest: indices and cosines (N,
    count)."""
    top, index = similarity.topk(min(DISTINCT_SEARCHED, similarity.shape[1]), dim=1)
    key = keys[index]
    seen_nearer = (key[:, :, None] == key[:, None, :]).tril(-1).any(2)
    rank = torch.arange(key.shape[1], dtype=torch.float32)[None].expand_as(top)
    chosen = torch.where(seen_nearer, float("inf"), rank).argsort(1)[:, :count]
    return index.gather(1, chosen), top.gather(1, chosen)


@torch.no_grad()
def flow_support(decoder, embeddings, noise, images) -> torch.Tensor:
    """How much the sound helps the flow explain `images` (N, C, S, S): the summed drop of
    the flow-matching loss from the unconditioned to the conditioned velocity, on the
    straight paths from `noise` at FLOW_TIMES (higher: the sound makes them likelier)."""
    support = torch.zeros(len(images))
    for start in range(0, len(images), BATCH):
        part = slice(start, start + BATCH)
        image, begin, embedding = images[part], noise[part], embeddings[part]
        unconditioned = decoder.null_embedding[None].expand_as(embedding)
        for moment in FLOW_TIMES:
            times = torch.full((len(image),), moment)
            noisy = (1 - moment) * begin + moment * image
            loss = [
                (decoder.velocity(noisy, times, condition) - (image - begin)).pow(2).mean((1, 2, 3))
                for condition in (embedding, unconditioned)
            ]
            support[part] += loss[1] - loss[0]
    return support


def flow_choice(decoder, embeddings, codes, similarity, train_labels, weight: float):
    """The class the flow prefers among the FLOW_CANDIDATES nearest classes, each shown by
    the image its nearest training sound recalls for the draw (FlowMemory.paired_images),
    scored by flow_support + `weight` x cosine."""
    memory, config = decoder.memory, decoder.config
    noise = codes.view(-1, config.image_channels, config.image_size, config.image_size)
    index, cosine = distinct_nearest(similarity, memory.first, FLOW_CANDIDATES)
    scores = []
    for column in range(FLOW_CANDIDATES):
        images = memory.paired_images(index[:, column], noise)
        support = flow_support(decoder, embeddings, noise, images)
        scores.append(support + weight * cosine[:, column])
    best = torch.stack(scores, 1).argmax(1, keepdim=True)
    return train_labels[index.gather(1, best).squeeze(1).numpy()]


def readouts(run, data, split: Split) -> dict[str, np.ndarray]:
    """Each read-out's classes (N,) for the split's sounds."""
    train = data.split("train")
    labels = np.asarray(train.labels, np.int64)
    encoder, decoder = run.encoder, run.generator
    known, unit = decoder.memory.embeddings, F.normalize(split.embeddings)
    similarity = unit @ known.T
    guesses = {NEAREST: labels[similarity.argmax(1).numpy()]}
    for k in (5, 20):  # FlowConfig.recall_neighbours' vote
        guesses[f"vote of the {k} nearest"] = labels[decoder.memory.nearest(unit, k).numpy()]
    guesses["linear probe"] = probe_predictions(known.numpy(), labels, unit.numpy())
    augmented = augmented_embeddings(encoder, split.records.spectrograms, seed=1)
    augmented_known = augmented_embeddings(encoder, train.spectrograms, seed=0)
    name = f"nearest, with {AUGMENTED_COPIES} shifted/gained copies"
    guesses[name] = labels[(augmented @ augmented_known.T).argmax(1).numpy()]
    for name, weight in (("the flow", 0.0), ("the flow + cosine", FLOW_SIMILARITY_WEIGHT)):
        guesses[f"{name}, among the {FLOW_CANDIDATES} nearest classes"] = flow_choice(
            decoder, split.embeddings, split.codes, similarity, labels, weight
        )
    return guesses


def groups_of(data, records) -> dict[str, np.ndarray]:
    """Masks of a split's sounds: all, and each kind of voice where the data says."""
    everyone = {"all": np.ones(len(records.labels), bool)}
    if "engine" not in records.extra:
        return everyone
    kinds = voice_groups(data, records)
    return everyone | {kind: kinds == kind for kind in sorted(set(kinds.tolist()))}


def print_readouts(guesses: dict, labels: np.ndarray, groups: dict) -> None:
    print("| read-out of the embedding | " + " | ".join(groups) + " |")
    print("|---|" + "---:|" * len(groups))
    for name, guess in guesses.items():
        right = guess == labels
        print(f"| {name} | " + " | ".join(f"{right[m].mean():.3f}" for m in groups.values()) + " |")


def redraw_kept(run, bank, split: Split, nearest: np.ndarray) -> dict[str, float]:
    """One draw of the run as it samples, judged (K-way) against the class of the nearest
    training sound (`nearest`, what recall starts from) and the true class."""
    labels = np.asarray(split.records.labels)
    with torch.no_grad():
        batches = draw_batches(run.generator, split.embeddings, "cpu", keys=split.keys)
        judged = score_images(bank, batches)["kway"]
    right = nearest == labels
    return {
        "the nearest sound's class is right": right.mean(),
        "drawn as the nearest sound's class": (judged == nearest).mean(),
        "drawn right, where the nearest is right": (judged[right] == labels[right]).mean(),
        "drawn right, where the nearest is wrong": (judged[~right] == labels[~right]).mean(),
        "drawn as the nearest's class, where it is wrong": (
            judged[~right] == nearest[~right]
        ).mean(),
    }


def recall_by_vote(run, bank, data, args) -> None:
    """The run's draws scored with recall_neighbours 1 and each of args.vote (informativity
    per kind of voice: the first draw's, as `s2i evaluate` reports it)."""
    kept = run.generator.config.recall_neighbours
    groups = []
    for k in [1, *args.vote]:
        set_sampling(run.generator, recall_neighbours=k)
        began = time.perf_counter()
        metrics = evaluate_run(run, bank, data, split=args.split, samples=args.samples,
                               bootstrap=args.bootstrap, seed=0, baselines=k == 1)  # fmt: skip
        seconds = f"{time.perf_counter() - began:.0f}"
        by_group = metrics["breakdown"].get("voice_group", {})
        if not groups:
            groups = sorted(by_group)
            print("| recalled from | " + " | ".join([*COLUMNS, *groups]) + " |")
            print("|---|" + "---:|" * (len(COLUMNS) + len(groups)))
        cells = [f"{100 * by_group[g]['informativity']['mean']:.1f}" for g in groups]
        name = "the nearest sound" if k == 1 else f"the vote of the {k} nearest"
        print(
            f"| {name} | "
            + " | ".join([*row(metrics["methods"]["generator"]), seconds, *cells])
            + " |"
        )
        if k == 1:
            baseline = [*row(metrics["methods"]["nearest_neighbour"]), "", *[""] * len(groups)]
            print("| retrieval (baseline) | " + " | ".join(baseline) + " |", flush=True)
    set_sampling(run.generator, recall_neighbours=kept)


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    run, bank = load_run(args.run, kind="flow"), load_informativity(args.informativity)
    set_sampling(run.generator, recall_front_weight=0.0)  # what the embedding alone knows
    data = open_dataset(args.data or run.config["data"])
    attach_training_memory(run, data)  # rows: the whole training split, in its order
    split = Split.of(run, data, args.split)
    labels = np.asarray(split.records.labels)
    guesses = readouts(run, data, split)
    print_readouts(guesses, labels, groups_of(data, split.records))
    config = run.generator.config
    print(
        f"\n| one draw of the run (recall from {config.recall_from:g}, guidance "
        f"{config.guidance:g}), judged by the K-way classifier | share of sounds |"
    )
    print("|---|---:|")
    for name, share in redraw_kept(run, bank, split, guesses[NEAREST]).items():
        print(f"| {name} | {share:.3f} |")
    if args.vote:
        print()
        recall_by_vote(run, bank, data, args)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = flow_run_parser(__doc__.splitlines()[0])
    parser.add_argument("--split", default="val", help="split scored (default val)")
    parser.add_argument("--vote", type=int, nargs="*", default=[],
                        help="also score recall by the vote of these many neighbours")  # fmt: skip
    parser.add_argument("--samples", type=int, default=3, help="draws per sound (--vote)")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    return parser


if __name__ == "__main__":
    raise SystemExit(main())
