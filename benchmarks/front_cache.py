"""What the speech front's feature cache saves: one split's features computed by the
front, with the cache off, into an empty cache, and from the filled cache in a new process
(as the next notebook of the main job reads them), in one run on this machine.

    .venv/bin/python benchmarks/front_cache.py --split train

Prints one JSON line per setting (seconds, clips per second, the largest difference from
the features computed without the cache) and the ratio. About a minute on 2 CPU cores for
AV-Digits 2's training split.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

from s2ilib.datasets import open_dataset
from s2ilib.datasets.avdigits import AVDIGITS_DIR
from s2ilib.models.speech import PooledSpeech, SpeechFront
from s2ilib.translate import encode


def features(data_dir: str, split: str) -> tuple[np.ndarray, float]:
    """The split's front features and the seconds they took (the cache as the environment
    says)."""
    spectrograms = np.asarray(open_dataset(data_dir).split(split).spectrograms)
    front = PooledSpeech(SpeechFront())
    start = time.perf_counter()
    result = encode(front, spectrograms, "cpu").numpy()
    return result, time.perf_counter() - start


def in_new_process(data_dir: str, split: str, cache: str, out: str) -> float:
    """features() in a fresh Python process with S2I_FRONT_CACHE=cache; saves them to `out`."""
    code = (
        "import sys, numpy as np; sys.path.insert(0, 'benchmarks'); import front_cache as b;"
        f"f, s = b.features({data_dir!r}, {split!r}); np.save({out!r}, f); print(s)"
    )
    env = {**os.environ, "S2I_FRONT_CACHE": cache}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return float(done.stdout.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(AVDIGITS_DIR), help="data set folder")
    parser.add_argument("--split", default="train", help="split whose sounds are read")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    with tempfile.TemporaryDirectory() as folder:
        cache, paths = f"{folder}/cache", [f"{folder}/{name}.npy" for name in "abc"]
        seconds = {
            "off": in_new_process(args.data, args.split, "off", paths[0]),
            "empty cache": in_new_process(args.data, args.split, cache, paths[1]),
            "filled cache": in_new_process(args.data, args.split, cache, paths[2]),
        }
        reference = np.load(paths[0])
        count = len(reference)
        for (setting, spent), path in zip(seconds.items(), paths, strict=True):
            difference = float(np.abs(np.load(path) - reference).max())
            row = {"setting": setting, "sounds": count, "seconds": round(spent, 2)}
            row |= {"clips_per_s": round(count / spent, 1), "max_abs_difference": difference}
            print(json.dumps(row))
    print(
        json.dumps(
            {"speed-up, filled cache over off": round(seconds["off"] / seconds["filled cache"], 1)}
        )
    )


if __name__ == "__main__":
    main()
