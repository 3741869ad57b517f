"""How far bf16 inference moves the imagined images from fp32 (the `--precision` help's figures).

    .venv/bin/python benchmarks/imagine_precision.py --run runs/NNNNN-gan-... [--files 30]

Translates every 100th AV-Digits clip (up to --files), two dropout draws each with the same
seed, once in fp32 and once under bf16 autocast, and prints the pixel differences in grey
levels beside the difference between the two draws of a sound (variation a user sees anyway).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from s2ilib.audio import load_clips
from s2ilib.datasets.avdigits import AVDIGITS_DIR
from s2ilib.imagine import inference_precision, load_run_for_inference
from s2ilib.translate import translate


def measure(run_dir, files: list[Path], seed: int = 0) -> dict:
    """Pixel statistics of |bf16 - fp32| and of |draw 0 - draw 1| (fp32), grey levels."""
    clips = load_clips(files)
    run = load_run_for_inference(run_dir, "cpu")
    images = {}
    for precision in ("fp32", "bf16"):
        with inference_precision(precision, "cpu"):
            drawn = translate(run, clips.spectrograms, "cpu", 2, seed, audio=clips.waves)
        images[precision] = drawn.astype(np.int16)
    diff = np.abs(images["fp32"] - images["bf16"])
    draws = np.abs(images["fp32"][:, 0] - images["fp32"][:, 1])
    return {
        "files": len(files),
        "images": int(diff.shape[0] * diff.shape[1]),
        "mean": round(float(diff.mean()), 3),
        "p99": float(np.percentile(diff, 99)),
        "worst": int(diff.max()),
        "identical": round(float(np.mean(diff == 0)), 4),
        "draws_mean": round(float(draws.mean()), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="a GAN run directory")
    parser.add_argument("--files", type=int, default=30, help="clips to translate (default 30)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    files = sorted((AVDIGITS_DIR / "audio").glob("*.ogg"))[::100][: args.files]
    result = measure(args.run, files)
    print(
        f"{result['files']} clips, {result['images']} images: |bf16 - fp32| mean "
        f"{result['mean']:.2f} grey levels, 99th percentile {result['p99']:.0f}, worst pixel "
        f"{result['worst']}, identical bytes {result['identical']:.1%}; two dropout draws "
        f"(fp32) differ by {result['draws_mean']:.2f} on average"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
