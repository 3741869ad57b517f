"""Evaluation of a trained translator: informativity, K-way accuracy, Frechet distance, baselines.

`evaluate_run(decoder_run, informativity_run, data)` translates every sound of a split (or of a
folder of audio files) to images, in batches: the decoder run's frozen encoder, then its
decoder (a GAN's generator with dropout on at test time as the paper does, or a flow from
fresh starting noise; `samples` draws per sound), and
scores them with the informativity run's classifiers (s2ilib.informativity). Measured for
the generator and, in the same run, for the baselines:

- informativity: the share of images from class-c sounds that class c's binary classifier
  judges interpretable, per class and its mean over classes (the paper's headline), with a
  95% bootstrap interval (sounds resampled within each class). With `samples` K > 1 also
  the mean over the K draws per sound and the share of sounds with at least one
  interpretable draw ("any of K").
- K-way accuracy and confusion matrix of the K-way classifier on the images (all draws).
- Frechet distance between the images and the real images of the split, in the K-way
  classifier's penultimate feature space (FID's formula; FID proper needs Inception
  weights, which cannot be downloaded here, so numbers are comparable only within the
  workbook), and intra-class diversity: per class the mean distance between two images'
  features, its mean over classes, and its ratio to that of the real images.
- imagination (s2ilib.metrics explains each): precision, recall, density and coverage of
  one draw against the real images (k = PRDC_K), and, with K >= 2 draws, draw diversity:
  the spread between the K images of one sound over the spread between real images of its
  class (1.0 = as varied as real handwriting; 0 = one template per sound).
- pixel agreement with the sound's own frame (L1 on [0, 1], PSNR in dB capped at
  PSNR_CAP_DB, SSIM), only where the data set pairs each sound with its own frame.

Baselines, each one image per sound:
- "random_real": a uniformly random real image of the split (any class). Its expected
  informativity is the chance level, reported exactly as "chance": the positive rate of
  class c's classifier on all real images of the split, mean over classes (plus the
  classifiers' false-positive rate on real images of other classes). Chance for K-way
  accuracy is 1/K.
- "nearest_neighbour": the image paired with the training sound whose embedding is closest
  (cosine) to the test sound's; with class pairing, a random training image of that
  sound's class (as the GAN's pairing). Retrieval, no generation.
- "real": the sound's own frame (record pairing) or a random real image of the sound's
  class from the split (class pairing): the ceiling.
All images are scored at the classifiers' image size (resized when the generator's differs).

This module computes; s2ilib.report writes the tables (Markdown, LaTeX). The sounds come
from s2ilib.datasets.sounds, the images from s2ilib.translate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from s2ilib import metrics
from s2ilib.datasets.sounds import (
    Rows,
    SoundSet,
    clip_mode_for,
    clips_of,
    select_sounds,
    sounds_from_audio_dir,
)
from s2ilib.datasets.torch_data import to_unit_range
from s2ilib.errors import S2IError
from s2ilib.translate import draw_batches, encode, sound_conditions, sound_keys

SCHEMA = "s2i-evaluate/2"  # 2: the decoder run under "decoder_run" (1: "gan_run")
PSNR_CAP_DB = 100.0  # identical images have infinite PSNR; capped so that JSON stays valid
PRDC_K = 5  # neighbours of the precision/recall/density/coverage balls (Naeem et al. 2020)
BREAKDOWN_COLUMNS = ("voice_group", "language", "engine", "sex")
HEADLINE_BREAKDOWNS = ("voice_group", "language")  # the headline's by_<column>, ceiling beside
BASELINES = ("nearest_neighbour", "random_real", "real")
FID_NOTE = (
    "Frechet distance is measured in the K-way informativity classifier's penultimate "
    "feature space, not Inception's: the field's FID needs Inception weights that cannot be "
    "downloaded here, so values compare methods within this workbook only."
)


# --------------------------------------------------------------------------------------
# Scoring, batched
# --------------------------------------------------------------------------------------


def score_images(bank, image_batches, targets=None) -> dict[str, np.ndarray]:
    """Score an iterable of image batches (B, 3, S, S) in [-1, 1] with every classifier.

    targets: None, or a callable (start, stop) -> the paired frames (float, [-1, 1]) of those
    images, for the pixel metrics. Returns positive (N, K), kway (N,), probabilities (N, K),
    features (N, F) (InformativityBank.score) and, with targets, pixel (N, 3) = L1, PSNR, SSIM.
    """
    parts, pixel_parts, start = [], [], 0
    for images in image_batches:
        images = bank.prepare(images)
        parts.append(bank.score(images))
        if targets is not None:
            target = bank.prepare(targets(start, start + len(images)))
            pixel_parts.append(pixel_agreement(images, target))
        start += len(images)
    scored = {key: torch.cat([part[key] for part in parts]).numpy() for key in parts[0]}
    if targets is not None:
        scored["pixel"] = torch.cat(pixel_parts).numpy()
    return scored


def pixel_agreement(images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(B, 3): L1, PSNR (capped) and SSIM of images against targets, both in [-1, 1]."""
    images, targets = images.add(1).div(2), targets.add(1).div(2)
    psnr = metrics.psnr(images, targets).clamp(max=PSNR_CAP_DB)
    return torch.stack(
        [metrics.l1_error(images, targets), psnr, metrics.ssim(images, targets)], 1
    ).cpu()


def _pool_batches(pool, positions: np.ndarray, batch_size: int):
    """Images `positions` of an ImagePool as float batches in [-1, 1]."""
    for start in range(0, len(positions), batch_size):
        yield pool.float(torch.as_tensor(positions[start : start + batch_size]))


def _frames_as_float(frames, start: int, stop: int, image_size: int) -> torch.Tensor:
    """Frames [start, stop) of a uint8 (N, H, W, C) array, resized, as floats in [-1, 1]."""
    from s2ilib.informativity import resize_to_uint8

    return to_unit_range(resize_to_uint8(frames[start:stop], image_size))


def _frame_batches(frames, image_size: int, batch_size: int):
    for start in range(0, len(frames), batch_size):
        yield _frames_as_float(frames, start, start + batch_size, image_size)


# --------------------------------------------------------------------------------------
# Summaries
# --------------------------------------------------------------------------------------


def summarise(
    draws: list[dict],
    labels: np.ndarray,
    num_classes: int,
    reference: dict,
    num_resamples: int,
    seed: int,
) -> dict:
    """Metrics of one method from its scored draws (one dict per draw, same sounds)."""
    rows = np.arange(len(labels))
    own = np.stack([draw["positive"][rows, labels] for draw in draws]).astype(np.float64)
    summary = {"draws": len(draws)}
    summary["informativity"] = metrics.bootstrap_summary(
        own[0], labels, num_classes, num_resamples, seed
    )
    if len(draws) > 1:
        summary["informativity_samples"] = metrics.bootstrap_summary(
            own.mean(0), labels, num_classes, num_resamples, seed
        )
        summary["informativity_any"] = metrics.bootstrap_summary(
            own.max(0), labels, num_classes, num_resamples, seed
        )
    all_labels = np.tile(labels, len(draws))
    predicted = np.concatenate([draw["kway"] for draw in draws])
    features = np.concatenate([draw["features"] for draw in draws])
    summary["kway_accuracy"] = float(np.mean(predicted == all_labels))
    summary["kway_confusion"] = metrics.confusion_matrix(
        all_labels, predicted, num_classes
    ).tolist()
    summary["frechet_distance"] = (  # a covariance needs two images at least
        metrics.frechet_distance(features, reference["features"]) if len(features) > 1 else None
    )
    summary["diversity"] = diversity(
        features, all_labels, num_classes, reference["diversity"], seed
    )
    summary |= imagination(draws, labels, num_classes, reference, seed)
    if "pixel" in draws[0]:
        pixel = np.concatenate([draw["pixel"] for draw in draws])
        summary["pixel"] = dict(zip(("l1", "psnr", "ssim"), pixel.mean(0).tolist(), strict=True))
    else:
        summary["pixel"] = None
    return summary


def imagination(draws: list[dict], labels, num_classes: int, reference: dict, seed: int) -> dict:
    """Realism and coverage of one draw (precision, recall, density, coverage against the
    real images; one image per sound, so methods compare at equal size) and, with K >= 2
    draws, draw diversity: the spread between one sound's draws over the spread between
    real images of its class (metrics.draw_diversity; 1.0 = as varied as real data), and the
    same within the class each draw is judged to show (metrics.same_class_draw_diversity:
    draws of other digits do not count as variety there)."""
    first = draws[0]["features"]
    enough = min(len(first), len(reference["features"])) > PRDC_K  # k-NN balls need k + 1
    prdc = (
        metrics.precision_recall_density_coverage(reference["features"], first, PRDC_K)
        if enough
        else None
    )
    result = {"prdc": prdc, "draw_diversity": None, "draw_diversity_same_class": None}
    if len(draws) > 1:
        stacked = np.stack([draw["features"] for draw in draws], axis=1)  # (N, K, F)
        real = (reference["features"], reference["labels"], num_classes)
        result["draw_diversity"] = metrics.draw_diversity(stacked, labels, *real, seed=seed)
        judged = np.stack([draw["kway"] for draw in draws], axis=1)  # (N, K)
        result["draw_diversity_same_class"] = metrics.same_class_draw_diversity(
            stacked, judged, reference["diversity"]
        )
    return result


def diversity(features, labels, num_classes: int, real_per_class, seed: int) -> dict:
    """Intra-class diversity of images' features, and its ratio to the real images'."""
    per_class = metrics.mean_pairwise_distances(features, labels, num_classes, seed=seed)
    mean = float(np.nanmean(per_class)) if np.isfinite(per_class).any() else float("nan")
    real_mean = float(np.nanmean(real_per_class))
    return {
        "per_class": per_class.tolist(),
        "mean": mean,
        "real_mean": real_mean,
        "ratio": mean / real_mean if real_mean > 0 else float("nan"),
    }


def breakdown(
    sounds: SoundSet, draws: list[dict], num_classes: int, num_resamples: int, seed: int
) -> dict:
    """Informativity and K-way accuracy per value of each metadata column (AV-Digits)."""
    rows = np.arange(len(sounds))
    own = np.stack([draw["positive"][rows, sounds.labels] for draw in draws]).astype(np.float64)
    correct = np.stack([draw["kway"] == sounds.labels for draw in draws]).astype(np.float64)
    result = {}
    for column in BREAKDOWN_COLUMNS:
        if column not in sounds.extra:
            continue
        values = np.asarray(sounds.extra[column]).astype(str)
        result[column] = {}
        for value in sorted(set(values.tolist())):
            members = values == value
            labels = sounds.labels[members]
            entry = {
                "num_sounds": int(members.sum()),
                "informativity": metrics.group_bootstrap_summary(
                    own[0, members], labels, num_classes, num_resamples, seed
                ),
                "kway_accuracy": float(correct[:, members].mean()),
            }
            if len(draws) > 1:
                entry["informativity_samples"] = metrics.group_bootstrap_summary(
                    own[:, members].mean(0), labels, num_classes, num_resamples, seed
                )
            result[column][value] = entry
    return result


def false_positive_rate(scored: dict, image_labels: np.ndarray, num_classes: int) -> float:
    """Mean over classifiers c of their positive rate on real images of other classes."""
    positive = scored["positive"].astype(np.float64)
    other = image_labels[:, None] != np.arange(num_classes)[None, :]
    with np.errstate(invalid="ignore"):
        rates = (positive * other).sum(0) / other.sum(0)
    return float(np.nanmean(rates))


# --------------------------------------------------------------------------------------
# The whole evaluation
# --------------------------------------------------------------------------------------


@dataclass
class _Scorer:
    """What every method is scored against: classifiers, sounds, real images, settings."""

    bank: Any  # informativity.InformativityBank
    sounds: SoundSet
    pool: Any  # informativity.ImagePool of the split's real images (the reference set)
    reference: dict  # "features" of every pool image (in pool order), per-class "diversity"
    batch_size: int
    bootstrap: int
    seed: int

    def score(self, image_batches) -> dict[str, np.ndarray]:
        """Scores of one image per sound (pixel metrics where the sounds have frames)."""
        targets = None
        if self.sounds.frames is not None:
            size = self.bank.image_size

            def targets(start, stop):
                return _frames_as_float(self.sounds.frames, start, stop, size)

        return score_images(self.bank, image_batches, targets)

    def summarise(self, draws: list[dict]) -> dict:
        k = self.bank.num_classes
        summary = summarise(draws, self.sounds.labels, k, self.reference, self.bootstrap, self.seed)
        summary["frechet_class_matched"] = self.class_matched_frechet(draws)
        return summary

    def class_matched_frechet(self, draws: list[dict]) -> float | None:
        """The Frechet distance of real images of the digits a method drew: for each of its
        images, a random real image of the class the K-way classifier reads in it. It is
        what a method drawing those digits as real handwriting scores, so it separates which
        digits were drawn (a sharpened class guess moves both) from how they were drawn (the
        method's distance beyond it). A reference, not a bound: images unlike any digit (a
        flat grey) can score below the real images of the one digit they are read as."""
        judged = torch.as_tensor(np.concatenate([draw["kway"] for draw in draws]))
        if len(judged) < 2:  # a covariance needs two images at least
            return None
        positions = self.pool.draw(judged, torch.Generator().manual_seed(self.seed + 3))
        features = self.reference["features"][positions.numpy()]  # the pool's, scored once
        return metrics.frechet_distance(features, self.reference["features"])


def evaluate_translator(
    translate,
    bank,
    data,
    sounds: SoundSet,
    split: str = "test",
    samples: int = 1,
    bootstrap: int = 1000,
    batch_size: int = 256,
    seed: int = 0,
    baselines: bool = True,
    encoder=None,
    device="cpu",
    nn_limit_per_class: int | None = None,
) -> dict:
    """Score a translator and the baselines on `sounds`; returns the metrics dict.

    translate: callable (draw) -> iterable of image batches (B, 3, S, S) in [-1, 1], one
    image per sound in order. bank: an informativity.InformativityBank. encoder: the audio
    encoder for the nearest-neighbour baseline (skipped when None).
    """
    from s2ilib.informativity import load_pool

    k = bank.num_classes
    if len(data.classes) != k:
        raise S2IError(f"{data.root}: {len(data.classes)} classes, the classifiers have {k}")
    if len(sounds) == 0:
        raise S2IError(f"{sounds.source}: no sounds to evaluate")
    pool = load_pool(data, split, bank.image_size)
    real_scores = {
        key: value.numpy() for key, value in bank.score_all(pool.images, batch_size).items()
    }
    real = real_scores["features"]
    reference = {
        "features": real,
        "labels": pool.labels.numpy(),
        "diversity": metrics.mean_pairwise_distances(real, pool.labels.numpy(), k, seed=seed),
    }
    scorer = _Scorer(bank, sounds, pool, reference, batch_size, bootstrap, seed)
    generated = [scorer.score(translate(draw)) for draw in range(samples)]
    methods = {"generator": scorer.summarise(generated)}
    chance = chance_levels(real_scores, pool.labels.numpy(), np.unique(sounds.labels), k)
    if baselines:
        methods |= baseline_methods(scorer, data, encoder, device, nn_limit_per_class)
    return {
        "methods": methods,
        "chance": chance,
        "breakdown": breakdown(sounds, generated, k, bootstrap, seed),
        "per_sound": sound_table(sounds, generated, list(data.classes)),
    }


def sound_table(sounds: SoundSet, draws: list[dict], classes: list[str]) -> dict[str, list]:
    """Each sound's scores, as columns of one row per sound (write_report's per_sound.csv):
    its name, class and metadata, then for each draw k = 1, 2, ...: interpretable_k (1 when
    its class's binary classifier judges the image interpretable: what informativity
    counts), read_as_k (the class the K-way classifier reads in it) and own_probability_k
    (the K-way classifier's probability of the sound's class: notebook 06 ranks by it)."""
    rows, labels = np.arange(len(sounds)), sounds.labels
    names = np.asarray(classes)
    table = {"name": np.asarray(sounds.names).astype(str).tolist(), "class": names[labels].tolist()}
    table |= {column: np.asarray(v).astype(str).tolist() for column, v in sounds.extra.items()}
    for k, draw in enumerate(draws, 1):
        table[f"interpretable_{k}"] = draw["positive"][rows, labels].astype(int).tolist()
        table[f"read_as_{k}"] = names[draw["kway"]].tolist()
        table[f"own_probability_{k}"] = draw["probabilities"][rows, labels].tolist()
    return table


def chance_levels(real_scores: dict, pool_labels, sound_classes, num_classes: int) -> dict:
    """Chance informativity, false-positive rate and K-way accuracy (see CHANCE_NOTE).

    Exact over the split's real images (no sampling): classifier c's positive rate on all of
    them (any class), averaged over the classes of the sounds.
    """
    return {
        "informativity": float(real_scores["positive"][:, sound_classes].mean()),
        "false_positive_rate": false_positive_rate(real_scores, pool_labels, num_classes),
        "kway_accuracy": 1.0 / num_classes,
    }


def baseline_methods(scorer: _Scorer, data, encoder, device, nn_limit) -> dict:
    """Random real image, nearest-neighbour retrieval (given an encoder) and real images."""
    pool, sounds = scorer.pool, scorer.sounds
    rng = torch.Generator().manual_seed(scorer.seed)
    random_positions = torch.randint(0, len(pool), (len(sounds),), generator=rng).numpy()
    random_scores = scorer.score(_pool_batches(pool, random_positions, scorer.batch_size))
    methods = {"random_real": scorer.summarise([random_scores])}
    if encoder is not None:
        batches = nearest_neighbour_batches(scorer, data, encoder, device, nn_limit)
        methods["nearest_neighbour"] = scorer.summarise([scorer.score(batches)])
    methods["real"] = scorer.summarise([scorer.score(real_batches(scorer))])
    return methods


def real_batches(scorer: _Scorer):
    """The ceiling: own frames (record pairing) or random real images of the sound's class."""
    sounds, size, batch_size = scorer.sounds, scorer.bank.image_size, scorer.batch_size
    if sounds.frames is not None:
        return _frame_batches(sounds.frames, size, batch_size)
    rng = torch.Generator().manual_seed(scorer.seed + 1)
    positions = scorer.pool.draw(torch.as_tensor(sounds.labels), rng).numpy()
    return _pool_batches(scorer.pool, positions, batch_size)


def nearest_neighbour_batches(scorer: _Scorer, data, encoder, device, limit_per_class=None):
    """Images of the training sounds closest (cosine of embeddings) to each sound.

    Record pairing: the neighbour's own frame; class pairing: a random training image of
    the neighbour's class (as the GAN's training pairs them).
    """
    from s2ilib.datasets.torch_data import select_indices
    from s2ilib.informativity import load_pool

    bank, batch_size, seed = scorer.bank, scorer.batch_size, scorer.seed
    train = data.split("train")
    indices = select_indices(train.labels, None, limit_per_class, seed)
    train_spectrograms = Rows(train.spectrograms, indices)
    train_audio = clips_of(train, indices)
    train_embeddings = encode(encoder, train_spectrograms, device, batch_size, train_audio)
    train_embeddings = F.normalize(train_embeddings)
    sounds = scorer.sounds
    embeddings = F.normalize(encode(encoder, sounds.spectrograms, device, batch_size, sounds.audio))
    nearest = torch.cat([(part @ train_embeddings.T).argmax(1) for part in embeddings.split(4096)])
    neighbours = indices[nearest.numpy()]
    if data.pairing == "record":
        return _frame_batches(Rows(train.images, neighbours), bank.image_size, batch_size)
    train_pool = load_pool(data, "train", bank.image_size)
    neighbour_labels = torch.as_tensor(np.asarray(train.labels, np.int64)[neighbours])
    positions = train_pool.draw(neighbour_labels, torch.Generator().manual_seed(seed + 2))
    return _pool_batches(train_pool, positions.numpy(), batch_size)


def evaluate_run(
    decoder_run,
    informativity_run,
    data,
    split: str = "test",
    samples: int = 1,
    bootstrap: int = 1000,
    batch_size: int = 256,
    device=None,
    seed: int = 0,
    voices=None,
    languages=None,
    engines=None,
    audio_dir=None,
    labels_csv=None,
    clip_mode: str = "auto",
    baselines: bool = True,
    nn_limit_per_class: int | None = None,
    ceiling_run=None,
) -> dict:
    """Translate and score every sound of `split` (or of `audio_dir` + `labels_csv`).

    decoder_run: a run directory or a loaded s2ilib.runs.TrainedRun (kind "gan" or "flow");
    informativity_run: a run directory or an InformativityBank; data: a path or DataSet
    (its image pool gives the real images, its train split the nearest-neighbour set).
    samples: draws per sound (a flow's starting noises, a GAN's dropout masks); bootstrap: resamples for the 95%
    intervals (0 = none); ceiling_run: a supervised-ceiling run (s2i train-ceiling) of the
    same split, reported beside (how recognisable the sounds are at all); clip_mode: how one
    second is made of each `audio_dir` file (s2ilib.audio.CLIP_MODES; "auto": as the data
    set's clips were, datasets.sounds.clip_mode_for). Returns the dict written to metrics.json.
    """
    if samples < 1:
        raise S2IError(f"samples {samples}: expected >= 1")
    run, bank, data, device = _open_inputs(decoder_run, informativity_run, data, device)
    filters = {"voices": voices, "languages": languages, "engines": engines}
    sounds, skipped = _choose_sounds(data, split, filters, (audio_dir, labels_csv, clip_mode))
    result = evaluate_translator(
        keyed_draws(run, sounds, device, seed, batch_size), bank, data, sounds, split=split,
        samples=samples, bootstrap=bootstrap, batch_size=batch_size, seed=seed,
        baselines=baselines, encoder=run.encoder, device=device,
        nn_limit_per_class=nn_limit_per_class,
    )  # fmt: skip
    settings = {"split": split, "samples": samples, "bootstrap": bootstrap, "seed": seed}
    header = _header(run, bank, data, sounds, settings, filters, skipped, audio_dir is None)
    header["sound_ceiling"] = _sound_ceiling(ceiling_run, split)
    return _finite(header | result)


def keyed_draws(run, sounds, device, seed: int = 0, batch_size: int = 256):
    """translate(draw) -> the image batches (in [-1, 1]) of draw `draw` of every sound of
    `sounds` (a SoundSet or RecordSet) by a decoder run, the sounds encoded once. Draws are
    keyed: a sound's draw k depends on the sound, k and `seed` alone."""
    embeddings, front = sound_conditions(run, sounds.spectrograms, device, sounds.audio, batch_size)
    keys = sound_keys(sounds.spectrograms[:])

    def translate(draw):
        return draw_batches(
            run.generator, embeddings, device, draw, seed, batch_size=batch_size, keys=keys,
            front=front,
        )  # fmt: skip

    return translate


def _sound_ceiling(ceiling_run, split: str) -> dict | None:
    """A ceiling run's metrics (None when none is given), checked to score `split`."""
    from s2ilib.runs import read_metrics

    if ceiling_run is None:
        return None
    ceiling = read_metrics(ceiling_run) | {"run": str(ceiling_run)}
    if ceiling.get("split") != split:
        raise S2IError(
            f"{ceiling_run}: a ceiling of the {ceiling.get('split')!r} split, not {split!r}"
        )
    return ceiling


def _choose_sounds(data, split: str, filters: dict, own) -> tuple:
    """(SoundSet, skipped files): a split's sounds, filtered, or those of `own` = (a folder, a
    labels CSV, the clip mode) when it names a folder."""
    audio_dir, labels_csv, clip_mode = own
    if audio_dir is None and labels_csv is not None:  # else the split is scored, silently
        raise S2IError(
            f"--labels {labels_csv} needs --audio-dir, the folder holding the files it lists"
        )
    if audio_dir is None:
        return select_sounds(data, split, **filters), []
    if labels_csv is None:
        raise S2IError("--audio-dir needs --labels (a CSV file,label)")
    mode = clip_mode_for(data.root, clip_mode)
    return sounds_from_audio_dir(audio_dir, labels_csv, list(data.classes), mode)


def _open_inputs(decoder_run, informativity_run, data, device):
    """(decoder run, classifiers, data set, device), each loaded when given as a path."""
    from s2ilib.datasets import open_dataset
    from s2ilib.devices import resolve_device
    from s2ilib.informativity import load_informativity
    from s2ilib.runs import TRANSLATOR_KINDS, load_run

    device = resolve_device(device)
    run = decoder_run
    if isinstance(decoder_run, str | Path):
        run = load_run(decoder_run, device, kind=TRANSLATOR_KINDS)
    if run.generator is None:
        raise S2IError(
            f"{run.run_dir}: a '{run.kind}' run has no generator (expected a gan or flow run)"
        )
    bank = informativity_run
    if isinstance(informativity_run, str | Path):
        bank = load_informativity(informativity_run, device)
    data = open_dataset(data) if isinstance(data, str | Path) else data
    return run, bank, data, device


def _header(run, bank, data, sounds, settings: dict, filters: dict, skipped, own_split) -> dict:
    """What metrics.json records besides the metrics: runs, sounds, settings, ceilings."""
    return {
        "schema": SCHEMA,
        "decoder_run": str(run.run_dir),
        "decoder_kind": run.kind,  # "gan" or "flow"
        "decoder_step": getattr(run, "step", None),
        "informativity_run": str(bank.run_dir),
        "data": str(data.root),
        "split": settings["split"],
        "sounds": sounds.source,
        "num_sounds": len(sounds),
        "classes": list(data.classes),
        "num_classes": bank.num_classes,
        "pairing": data.pairing if own_split else "none",  # own files have no frame
        "samples": settings["samples"],
        "bootstrap": settings["bootstrap"],
        "ci_level": metrics.CI_LEVEL,
        "seed": settings["seed"],
        "generator_image_size": run.image_size,
        "classifier_image_size": bank.image_size,
        "filters": {name: list(values or []) for name, values in filters.items()},
        "skipped_files": skipped,
        "input_notes": sounds.notes,
        "ceiling": bank.ceilings,
        "notes": {"frechet_distance": FID_NOTE, "chance": CHANCE_NOTE},
    }


def headline(metrics_dict: dict) -> dict:
    """The figures a report leads with: the generator's informativity (95% CI), diversity,
    draw diversity, realism (Frechet distance, precision, recall, density, coverage), the
    ceiling, nearest-neighbour retrieval's informativity and Frechet distance beside, and
    per kind of voice and per language where the sounds have them ("by_voice_group",
    "by_language": breakdown_with_ceiling)."""
    methods = metrics_dict["methods"]
    generator, retrieval = methods["generator"], methods.get("nearest_neighbour") or {}
    prdc, draws = generator.get("prdc") or {}, generator.get("draw_diversity") or {}
    by_column = {
        f"by_{column}": table
        for column in HEADLINE_BREAKDOWNS
        if (table := breakdown_with_ceiling(metrics_dict, column))
    }
    return by_column | {
        "informativity": generator["informativity"]["mean"],
        "informativity_ci": generator["informativity"]["ci"],
        "informativity_ceiling": (methods.get("real") or {}).get("informativity", {}).get("mean"),
        "diversity_ratio": generator["diversity"]["ratio"],
        "draw_diversity": draws.get("mean"),
        "draw_diversity_same_class": (generator.get("draw_diversity_same_class") or {}).get("mean"),
        "kway_accuracy": generator["kway_accuracy"],
        "frechet_distance": generator["frechet_distance"],
        "frechet_class_matched": generator.get("frechet_class_matched"),
        **{name: prdc.get(name) for name in ("precision", "recall", "density", "coverage")},
        "retrieval_informativity": retrieval.get("informativity", {}).get("mean"),
        "retrieval_frechet_distance": retrieval.get("frechet_distance"),
    }


def breakdown_with_ceiling(metrics_dict: dict, column: str) -> dict:
    """{value: {"informativity", "informativity_ci", "ceiling", "ceiling_ci", "num_sounds"}}
    per value of metadata `column` (the breakdown's informativity beside the supervised sound
    ceiling's accuracy on the same sounds; None where the ceiling has no such value), or {}
    when the sounds have no such column."""
    entries = metrics_dict.get("breakdown", {}).get(column)
    if not entries:
        return {}
    ceiling = ((metrics_dict.get("sound_ceiling") or {}).get("breakdown") or {}).get(column, {})
    return {
        value: {
            "informativity": entry["informativity"]["mean"],
            "informativity_ci": entry["informativity"]["ci"],
            "ceiling": ceiling.get(value, {}).get("accuracy"),
            "ceiling_ci": ceiling.get(value, {}).get("ci"),
            "num_sounds": entry["num_sounds"],
        }
        for value, entry in entries.items()
    }


def generator_row(run, metrics_dict: dict) -> dict:
    """One comparison row: a GAN run's loss (a flow run: "flow matching") and its
    generator's headline metrics."""
    generator = metrics_dict["methods"]["generator"]
    train, models = run.config.get("train", {}), run.config.get("models", {})
    aligned = models.get("autoencoder", {}).get("alignment_head", False)
    return {
        "encoder": "aligned" if aligned else "autoencoder",
        "loss": train.get("loss", "flow matching" if run.kind == "flow" else None),
        "spectral_norm": bool(models.get("discriminator", {}).get("spectral_norm", False)),
        "informativity": generator["informativity"]["mean"],
        "informativity_ci": generator["informativity"]["ci"],
        "diversity_ratio": generator["diversity"]["ratio"],
        "kway_accuracy": generator["kway_accuracy"],
        "frechet_distance": generator["frechet_distance"],
        "frechet_class_matched": generator.get("frechet_class_matched"),
        # imagination (issue 15): how varied a sound's draws are, and realism/coverage
        "draw_diversity": (generator.get("draw_diversity") or {}).get("mean"),
        "draw_diversity_same_class": (generator.get("draw_diversity_same_class") or {}).get("mean"),
        **{name: (generator.get("prdc") or {}).get(name)
           for name in ("precision", "recall", "density", "coverage")},
    }  # fmt: skip


def compare_generators(
    run_dirs, bank, data, split: str = "test", bootstrap: int = 1000, device=None, seed: int = 0,
    samples: int = 1,
) -> dict[str, dict]:  # fmt: skip
    """`generator_row` of each GAN run with `samples` draws per sound (2 or more: the draw
    diversity too), no baselines (they do not change)."""
    from s2ilib.devices import resolve_device
    from s2ilib.runs import TRANSLATOR_KINDS, load_run

    device = resolve_device(device)
    rows = {}
    for run_dir in run_dirs:
        run = load_run(run_dir, device, kind=TRANSLATOR_KINDS)
        result = evaluate_run(
            run,
            bank,
            data,
            split=split,
            samples=samples,
            bootstrap=bootstrap,
            device=device,
            seed=seed,
            baselines=False,
        )
        rows[str(run_dir)] = generator_row(run, result)
    return rows


CHANCE_NOTE = (
    "Chance informativity = the positive rate of class c's classifier on all real images of "
    "the split (any class), mean over classes: what a translator that outputs a uniformly "
    "random real image would score on average (the 'Random real image' row is one such "
    "draw). Chance K-way accuracy = 1/K."
)


def _finite(value):
    """NaN/inf -> None, recursively (JSON has neither)."""
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value
