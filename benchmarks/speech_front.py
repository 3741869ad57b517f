"""What a pretrained speech front knows of the digit a voice says, beside the workbook's own
audio encoder: the lever for AV-Digits' human voices (issue 14).

The translator can be no more informative than its sound embedding knows the class
(benchmarks/informativity_bound.py), and the main job's embedding, learnt from three
training speakers and many synthetic voices, reads only about three in five held-out human
recordings right. Google's speech_embedding (s2ilib.models.speech, pretrained on a large
speech corpus, its weights from the openWakeWord wheel) is read here from the same 8-bit
spectrograms the workbook's encoder sees, with no training of its own, and compared on the
same sounds, per kind of voice, with 95% bootstrap intervals (class-balanced, as
informativity):

- **linear probe**: a logistic regression fit on the training split's features;
- **nearest training sound**: the class of the most similar training sound (cosine of
  standardised features), the read-out retrieval and the flow's recall use.

`--run` adds an AE or align run's encoder (the main job's `00001-align-...`) to the same
table, and, when it has a frozen front, that front's pooled features alone (from what the
run reads: the clips or the spectrograms), before the layers trained after it; `--audio` adds the same network on openWakeWord's own front end (onnxruntime) fed
the data set's audio files (manifest column `file`), which measures what reading it from
the 8-bit images costs. The throughput of each feature extractor (clips per second on this
machine's threads, files read included for `--audio`) is printed beside it.

    .venv/bin/python benchmarks/speech_front.py --run runs/00001-align-avdigits-demo-d512-finetune

About 1.5 minutes on 2 CPU cores for AV-Digits 2 (5,310 sounds).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

# sibling scripts: benchmarks/ is on sys.path
from informativity_bound import groups_of

from s2ilib.audio import FrontEndConfig, fit_one_second, load_audio
from s2ilib.datasets import open_dataset
from s2ilib.datasets.avdigits import AVDIGITS_DIR
from s2ilib.datasets.sounds import clips_of, examples_per_class
from s2ilib.metrics import bootstrap_summary
from s2ilib.models.speech import PAD_FRAMES, PooledSpeech, SpeechFront
from s2ilib.probes import probe_predictions
from s2ilib.runs import load_run
from s2ilib.translate import encode, front_features

AUDIO_PAD = PAD_FRAMES * FrontEndConfig().hop_length  # samples of silence each side, as SpeechFront


def chosen(data, split: str, per_class: int | None) -> np.ndarray:
    """The indices of the split's sounds scored: all, or `per_class` random ones of each
    class (seed 0)."""
    records = data.split(split)
    if per_class is None:
        return np.arange(len(records.labels))
    return examples_per_class(records, per_class)


def timed(extract, indices: dict) -> tuple[dict[str, np.ndarray], float]:
    """Each split's features (N, D) of the `indices` sounds, `extract(split, rows)`, and the
    clips per second it took to make them all."""
    start = time.perf_counter()
    features = {split: extract(split, rows) for split, rows in indices.items()}
    count = sum(len(part) for part in features.values())
    return features, count / (time.perf_counter() - start)


def network_features(network, data):
    """extract() for `timed`: a network's outputs for a split's sounds (their spectrograms,
    or their clips for an encoder that reads them)."""

    @torch.no_grad()
    def extract(split, rows):
        records = data.split(split)
        spectrograms = np.asarray(records.spectrograms[rows])
        return encode(network, spectrograms, "cpu", audio=clips_of(records, rows)).numpy()

    return extract


def frozen_front_features(encoder, data):
    """extract() for `timed`: the pooled features of a run's frozen front (speech or
    whisper), from what it reads (clips or spectrograms), before any trained layer."""

    def extract(split, rows):
        records = data.split(split)
        spectrograms = np.asarray(records.spectrograms[rows])
        return front_features(encoder, spectrograms, "cpu", audio=clips_of(records, rows)).numpy()

    return extract


class OwnFrontEnd:
    """The speech network on openWakeWord's own front end, from the data set's audio files:
    each clip fitted to 1 s as the data set's were, 0.3 s of silence each side (as
    SpeechFront's padding), mean and max over the windows."""

    def __init__(self, data):
        from openwakeword.utils import AudioFeatures

        self.data, self.root = data, Path(data.root)
        self.network = AudioFeatures(inference_framework="onnx")

    def features(self, files) -> np.ndarray:
        waves = np.stack([fit_one_second(load_audio(self.root / name)) for name in files])
        padded = np.pad(waves, ((0, 0), (AUDIO_PAD, AUDIO_PAD)))
        pcm = (np.clip(padded, -1, 1) * 32767).astype(np.int16)
        windows = self.network.embed_clips(pcm, batch_size=256)
        return np.concatenate([windows.mean(1), windows.max(1)], 1)

    def extract(self, split: str, rows) -> np.ndarray:
        """extract() for `timed`: the features of a split's audio files."""
        files = np.asarray(self.data.split(split).extra["file"]).astype(str)[rows]
        return self.features(files)


def nearest_classes(train, train_labels, test) -> np.ndarray:
    """The class of each test row's most similar training row (cosine, standardised)."""
    mean, std = train.mean(0), train.std(0) + 1e-6
    known = F.normalize(torch.from_numpy((train - mean) / std).float(), dim=1)
    query = F.normalize(torch.from_numpy((test - mean) / std).float(), dim=1)
    return train_labels[(query @ known.T).argmax(1).numpy()]


def table(rows: dict, groups: dict, labels, classes: int, resamples: int) -> None:
    print("| features, read-out | " + " | ".join(groups) + " |")
    print("|---|" + "---:|" * len(groups))
    for name, guess in rows.items():
        cells = []
        for mask in groups.values():
            right = (guess == labels)[mask].astype(float)
            summary = bootstrap_summary(right, labels[mask], classes, resamples)
            low, high = summary["ci"]
            cells.append(f"{summary['mean']:.3f} [{low:.3f}, {high:.3f}]")
        print(f"| {name} | " + " | ".join(cells) + " |")


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    data = open_dataset(args.data)
    indices = {split: chosen(data, split, args.per_class) for split in ["train", *args.splits]}
    extractors = {"speech front": PooledSpeech(SpeechFront(black_db=args.black_db))}
    features, speed = {}, {}
    if args.run:
        encoder = load_run(args.run).encoder
        extractors[f"encoder of {Path(args.run).name}"] = encoder
        if encoder.front is not None:  # the run's frozen front alone, before its trained layers
            name = f"frozen front of {Path(args.run).name} ({encoder.front_input})"
            features[name], speed[name] = timed(frozen_front_features(encoder, data), indices)
    for name, network in extractors.items():
        features[name], speed[name] = timed(network_features(network, data), indices)
    if args.audio:
        name = "speech network on the audio files"
        features[name], speed[name] = timed(OwnFrontEnd(data).extract, indices)
    for name, clips_per_second in speed.items():
        print(f"{name}: {clips_per_second:.0f} clips/s ({torch.get_num_threads()} threads)")
    train_labels = np.asarray(data.split("train").labels, np.int64)[indices["train"]]
    for split in args.splits:
        records, rows_of = data.split(split), indices[split]
        labels = np.asarray(records.labels, np.int64)[rows_of]
        rows = {}
        for name, by_split in features.items():
            train, test = by_split["train"], by_split[split]
            rows[f"{name}, linear probe"] = probe_predictions(train, train_labels, test)
            rows[f"{name}, nearest training sound"] = nearest_classes(train, train_labels, test)
        print(f"\n{split} split, {len(labels)} sounds: class accuracy (balanced over classes)\n")
        groups = {name: mask[rows_of] for name, mask in groups_of(data, records).items()}
        table(rows, groups, labels, len(data.classes), args.bootstrap)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", default=str(AVDIGITS_DIR), help="data set folder (default AV-Digits)"
    )
    parser.add_argument("--run", help="an AE or align run whose encoder is compared")
    parser.add_argument("--splits", nargs="+", default=["val", "test"], help="splits scored")
    parser.add_argument("--audio", action="store_true",
                        help="also the network on openWakeWord's front end, from the audio files")  # fmt: skip
    parser.add_argument("--per-class", type=int,
                        help="score a random this many sounds of each class per split (seed 0)")  # fmt: skip
    parser.add_argument("--black-db", type=float, default=20.0,
                        help="dB below the image's floor a black pixel is read at")  # fmt: skip
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    return parser


if __name__ == "__main__":
    raise SystemExit(main())
