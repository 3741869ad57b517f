"""Recall and redraw: a flow run scored at several recall times t0, with the baselines.

SDEdit (Meng et al. 2022) from retrieval (`FlowConfig.recall_from`, s2ilib.models.flow):
each draw starts at time t0 from the noise mixed with a real training image paired with the
training sound nearest to the sound (cosine of embeddings, as `s2i evaluate`'s retrieval
baseline), x = (1 - t0) noise + t0 image, and the flow integrates to t = 1 (t0 = 0: the
plain flow from noise; t0 = 1 would be retrieval). Each setting is scored by `evaluate_run`
with the baselines in the same report, and its **novelty** is measured: the distance between
each output and the real image it started from, in the informativity classifiers' features
and in pixels, as a share of the distance between two real images of one digit (0: a copy;
1: as different as another hand's image of the digit).

    .venv/bin/python benchmarks/recall_redraw.py --run runs/NNN-flow-recipe-flow \
        --informativity runs/NNN-informativity-avdigits-32px --start 0.2 0.3 --split val

The memory is built here from the run's data set (`s2ilib.train.flow.recall_memory`), so
flow runs trained before recall existed are measured too.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

# a sibling script: benchmarks/ is on sys.path
from flow_guidance import COLUMNS, flow_run_parser, row

from s2ilib.datasets import open_dataset
from s2ilib.datasets.sounds import clips_of
from s2ilib.datasets.torch_data import PairedDataset
from s2ilib.evaluate import evaluate_run, score_images
from s2ilib.informativity import load_informativity, load_pool
from s2ilib.models.flow import set_sampling
from s2ilib.runs import load_run
from s2ilib.train.flow import recall_memory
from s2ilib.translate import encode, keyed_codes, sound_keys


def attach_training_memory(run, data) -> None:
    """Give the run's decoder the memory its training would have saved (recall_memory)."""
    train_set = PairedDataset(data, "train", run.image_size)
    train, rows = data.split("train"), train_set.sounds.indices
    embeddings = encode(run.encoder, train.spectrograms[rows], "cpu", audio=clips_of(train, rows))
    channels = run.generator.config.image_channels
    run.generator.attach_memory(recall_memory(train_set, embeddings, channels))


class Novelty:
    """Output-to-start distances (features, pixels) as shares of those between two real
    training images of one digit (computed once), for the first draw of `count` sounds."""

    def __init__(self, bank, data, image_size: int, count: int, seed: int = 0):
        self.bank, self.count = bank, count
        pool = load_pool(data, "train", image_size)
        generator = torch.Generator().manual_seed(seed)
        first = torch.randint(0, len(pool), (count,), generator=generator)
        one, other = pool.float(first), pool.float(pool.draw(pool.labels[first], generator))
        self.real = self._distances(one, other)

    def _distances(self, images, others) -> tuple[float, float]:
        features = [
            torch.as_tensor(score_images(self.bank, [x])["features"]) for x in (images, others)
        ]
        pixels = (images - others).abs().mean()
        return (features[0] - features[1]).norm(dim=1).mean().item(), pixels.item()

    def shares(self, run, sounds) -> tuple[float, float]:
        decoder = run.generator
        rows = np.arange(min(self.count, len(sounds.labels)))
        spectrograms = sounds.spectrograms[rows]
        embeddings = encode(run.encoder, spectrograms, "cpu", audio=clips_of(sounds, rows))
        codes = keyed_codes(decoder, sound_keys(spectrograms), 0, 0, "cpu")
        side, channels = decoder.config.image_size, decoder.config.image_channels
        with torch.no_grad():
            outputs = decoder(embeddings, codes)
            starts = decoder.memory.recall(embeddings, codes.view(-1, channels, side, side))
        own = self._distances(outputs, starts.expand(-1, 3, -1, -1))
        return own[0] / self.real[0], own[1] / self.real[1]


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    run, bank = load_run(args.run, kind="flow"), load_informativity(args.informativity)
    data = open_dataset(args.data or run.config["data"])
    attach_training_memory(run, data)
    novelty = Novelty(bank, data, run.image_size, args.novelty_sounds)
    print("| start t0 | " + " | ".join(COLUMNS[:-1]) + " | novelty (features) | novelty (pixels) |")
    print("|---:|" + "---:|" * (len(COLUMNS) + 1))
    baselines = True
    for start in args.start:
        set_sampling(run.generator, guidance=args.guidance, guidance_from=0.0,
                     guidance_until=1.0, recall_from=start)  # fmt: skip
        metrics = evaluate_run(run, bank, data, split=args.split, samples=args.samples,
                               bootstrap=args.bootstrap, seed=0, baselines=baselines)  # fmt: skip
        shares = novelty.shares(run, data.split(args.split))
        rows = [(f"{start:g}", metrics["methods"]["generator"], shares)]
        if baselines:
            rows.append(("retrieval (baseline)", metrics["methods"]["nearest_neighbour"], None))
        for name, method, shares in rows:
            cells = row(method) + (["", ""] if shares is None else [f"{x:.2f}" for x in shares])
            print(f"| {name} | " + " | ".join(cells) + " |", flush=True)
        baselines = False
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = flow_run_parser(__doc__.splitlines()[0])
    parser.add_argument("--start", type=float, nargs="+", default=[0.3, 0.5],
                        help="times t0 the flow starts from (0: the plain flow; default 0.3 0.5)")  # fmt: skip
    parser.add_argument("--guidance", type=float, default=1.0,
                        help="guidance weight from t0 on (default 1: none)")  # fmt: skip
    parser.add_argument("--split", default="val", help="split scored (default val)")
    parser.add_argument("--samples", type=int, default=3, help="draws per sound (default 3)")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples")
    parser.add_argument("--novelty-sounds", type=int, default=400,
                        help="sounds of the split whose first draw novelty is measured on")  # fmt: skip
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    return parser


if __name__ == "__main__":
    raise SystemExit(main())
