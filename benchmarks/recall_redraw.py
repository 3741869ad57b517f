"""Recall and redraw: can a flow run meet retrieval by starting from a retrieved image?

SDEdit (Meng et al. 2022) from retrieval: for each sound, the training sound nearest to it
(cosine of embeddings, as `s2i evaluate`'s retrieval baseline) gives a real training image of
its class; the flow starts at time t0 from that image mixed with the draw's noise,
x = (1 - t0) noise + t0 image, and integrates to t = 1 conditioned on the sound (t0 = 0: the
plain flow; t0 = 1: retrieval). Each setting is scored by `evaluate_run` with the baselines in
the same report, and its **novelty** is measured: the distance between each output and the
real image it started from, in the informativity classifiers' features and in pixels, as a
share of the distance between two real images of one digit (0: a copy; 1: as different as
another hand's image of the digit).

    .venv/bin/python benchmarks/recall_redraw.py --run runs/NNN-flow-recipe-flow \
        --informativity runs/NNN-informativity-avdigits-32px --start 0.3 0.5 --split val

Class-paired data only (AV-Digits): the start image is a random training image of the
neighbour's class, chosen by the draw's own noise, so draws are keyed like the flow's.
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import torch
import torch.nn.functional as F

from s2ilib.datasets import open_dataset
from s2ilib.evaluate import evaluate_run, score_images
from s2ilib.informativity import load_informativity, load_pool
from s2ilib.models.flow import set_sampling
from s2ilib.runs import load_run
from s2ilib.translate import encode, keyed_codes, sound_keys


class RecallAndRedraw(torch.nn.Module):
    """A flow decoder started from a noised real image of the nearest training sound's
    class; `last_starts` keeps the pool positions of the latest call's start images."""

    def __init__(self, flow, train_embeddings, train_labels, pool, start: float):
        super().__init__()
        self.flow, self.pool, self.start = flow, pool, start
        self.train_embeddings = F.normalize(train_embeddings)
        self.train_labels, self.config = train_labels, flow.config
        self.last_starts = None

    def start_images(self, embeddings, noise) -> torch.Tensor:
        nearest = (F.normalize(embeddings) @ self.train_embeddings.T).argmax(1)
        classes = self.train_labels[nearest]
        uniform = 0.5 * (1 + torch.erf(noise.flatten(1)[:, 0] / math.sqrt(2)))  # the draw's own
        offsets = (uniform.clamp(0, 1 - 1e-6) * self.pool.counts[classes]).long()
        self.last_starts = self.pool.order[self.pool.starts[classes] + offsets]
        return self.pool.float(self.last_starts)[:, : self.config.image_channels]

    @torch.no_grad()
    def forward(self, embeddings, codes):
        c = self.config
        noise = codes.reshape(len(embeddings), c.image_channels, c.image_size, c.image_size)
        first = round(self.start * c.sample_steps)
        share = first / c.sample_steps
        images = (1 - share) * noise + share * self.start_images(embeddings, noise)
        for step in range(first, c.sample_steps):
            time = step / c.sample_steps
            guidance = c.guidance if c.guidance_from <= time < c.guidance_until else 1.0
            times = torch.full((len(images),), time)
            images = (
                images
                + self.flow.guided_velocity(images, times, embeddings, guidance) / c.sample_steps
            )
        return images.clamp(-1, 1).expand(-1, 3, -1, -1)


def novelty(decoder: RecallAndRedraw, run, bank, sounds, count: int) -> tuple[float, float]:
    """Output-to-start distance (features, pixels) over that of two real images of a digit."""
    spectrograms = sounds.spectrograms[np.arange(min(count, len(sounds.labels)))]
    embeddings = encode(run.encoder, spectrograms, "cpu")
    codes = keyed_codes(decoder, sound_keys(spectrograms), 0, 0, "cpu")
    outputs = decoder(embeddings, codes)
    starts = decoder.pool.float(decoder.last_starts)
    pool = decoder.pool
    generator = torch.Generator().manual_seed(0)
    first = torch.randint(0, len(pool), (len(outputs),), generator=generator)
    second = pool.draw(pool.labels[first], generator)

    def features(images):
        return torch.as_tensor(score_images(bank, [images])["features"])

    real_features = (features(pool.float(first)) - features(pool.float(second))).norm(dim=1)
    real_pixels = (pool.float(first) - pool.float(second)).abs().mean()
    own_features = (features(outputs) - features(starts)).norm(dim=1)
    own_pixels = (outputs - starts.expand_as(outputs)).abs().mean()
    return (own_features.mean() / real_features.mean()).item(), (own_pixels / real_pixels).item()


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    run, bank = load_run(args.run, kind="flow"), load_informativity(args.informativity)
    data = open_dataset(args.data or run.config["data"])
    train = data.split("train")
    train_embeddings = encode(run.encoder, train.spectrograms[np.arange(len(train.labels))], "cpu")
    labels = torch.as_tensor(np.asarray(train.labels, np.int64))
    pool = load_pool(data, "train", run.image_size)
    flow = set_sampling(run.generator, guidance=args.guidance, guidance_from=0.0,
                        guidance_until=1.0)  # fmt: skip
    print("| start t0 | informativity | K-way | Frechet | class-matched real | same-class div. "
          "| coverage | novelty (features) | novelty (pixels) |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    baselines = True
    for start in args.start:
        run.generator = RecallAndRedraw(flow, train_embeddings, labels, pool, start)
        metrics = evaluate_run(run, bank, data, split=args.split, samples=args.samples,
                               bootstrap=args.bootstrap, seed=0, baselines=baselines)  # fmt: skip
        shares = novelty(run.generator, run, bank, data.split(args.split), args.novelty_sounds)
        rows = [(f"{start:g}", metrics["methods"]["generator"], shares)]
        if baselines:
            rows.append(("retrieval (baseline)", metrics["methods"]["nearest_neighbour"], None))
        for name, method, shares in rows:
            print(f"| {name} | " + " | ".join(_cells(method, shares)) + " |", flush=True)
        baselines = False
    return 0


def _cells(method: dict, shares) -> list[str]:
    informativity = method["informativity"]
    low, high = informativity["ci"]
    same_class = (method.get("draw_diversity_same_class") or {}).get("mean")
    return [
        f"{100 * informativity['mean']:.1f} [{100 * low:.1f}, {100 * high:.1f}]",
        f"{100 * method['kway_accuracy']:.1f}",
        f"{method['frechet_distance']:.3f}",
        f"{method['frechet_class_matched']:.3f}",
        "" if same_class is None else f"{same_class:.2f}",
        f"{method['prdc']['coverage']:.3f}",
        *(("", "") if shares is None else (f"{shares[0]:.2f}", f"{shares[1]:.2f}")),
    ]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="a flow run directory (s2i train-flow)")
    parser.add_argument("--informativity", required=True, help="informativity run directory")
    parser.add_argument("--data", help="data set folder (default: the run's)")
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
