"""`s2i imagine` and `s2i embed`: use a trained model."""

from __future__ import annotations

import json
import sys

from s2ilib.cli import (
    SEED_RANGE,
    add_clip_mode_argument,
    add_command,
    check_range,
    made_output_folder,
)

# One PNG holds a sound's draws side by side: beyond this it is too wide to look at.
MAX_SAMPLES = 256
IMAGE_SIZE_RANGE = (8, 4096)  # `s2i embed --image-size`: pixels per side in the .bin files


def register(subparsers):
    """Add `s2i imagine` and `s2i embed` to the `s2i` parser."""
    imagine = add_command(
        subparsers,
        "imagine",
        _run_imagine,
        help="audio file(s) -> imagined image(s), one PNG per input",
        description=(
            "Run sound files (wav, flac, ogg, ...) through the training front end and a "
            "trained GAN or flow run, writing OUT/<input name>.png. Each file gives one second "
            "(see --mode); shorter ones are zero-padded. With --samples K the PNG holds K "
            "images side by side: a GAN's drawn with dropout on at test time (the paper's "
            "source of variety) and its code if it takes one, a flow's from K noises. "
            "Unreadable files are reported and skipped (exit status 2 if all fail)."
        ),
    )
    imagine.add_argument("audio", nargs="+", help="sound files to translate")
    imagine.add_argument(
        "--run", required=True, help="a GAN or flow run directory (s2i train-gan, train-flow)"
    )
    imagine.add_argument("--out", required=True, help="folder for the PNGs")
    imagine.add_argument(
        "--samples", type=int, default=1, help="images per sound (draws of one sound)"
    )
    imagine.add_argument(
        "--seed", type=int, default=0, help="seed of the draws (dropout, codes, noise)"
    )
    add_clip_mode_argument(imagine, "--mode", "file")
    imagine.add_argument(
        "--device", default="auto", help="'auto' (CUDA if present, else CPU), 'cpu' or 'cuda[:N]'"
    )
    imagine.add_argument(
        "--precision",
        default="auto",
        choices=["auto", "fp32", "bf16"],
        help="auto: bf16 where the device runs it natively, else fp32; fp32: exact; bf16: "
        "measured on 30 AV-Digits clips with the demo GAN, 0.4 grey levels from fp32 on "
        "average, 99%% of pixels within 2, single pixels up to 102 (a ReLU near its "
        "threshold flips); two dropout draws differ by 2.9 (benchmarks/imagine_precision.py, RESULTS.md)",
    )

    embed = add_command(
        subparsers,
        "embed",
        _run_embed,
        help="embeddings of a data set's sounds (.npz and the published .bin layout)",
        description=(
            "Encode every sound of DATA with the audio encoder of a run (an AE run, or a GAN "
            "run's frozen encoder). Writes OUT/embeddings.npz (names, labels, splits, "
            "embeddings) and, when the set has images, OUT/embeddings_<D>_to_images/"
            "{data,val,test}_batch_001.bin in the published embedding-to-image layout."
        ),
    )
    embed.add_argument("data", help="data set folder (any layout s2i inspect reads)")
    embed.add_argument("--run", required=True, help="an AE or GAN run directory")
    embed.add_argument("--out", required=True, help="output folder")
    embed.add_argument("--splits", nargs="+", default=None, help="splits to embed (default: all)")
    embed.add_argument(
        "--image-size", type=int, default=96, help="image size in the .bin files (published: 96)"
    )
    embed.add_argument("--seed", type=int, default=0, help="seed of the class pairing (AV-Digits)")
    embed.add_argument(
        "--device", default="auto", help="'auto' (CUDA if present, else CPU), 'cpu' or 'cuda[:N]'"
    )


def _run_imagine(args):
    from s2ilib.imagine import imagine_files

    check_range(args.samples, "--samples", 1, MAX_SAMPLES, "images side by side in one PNG")
    check_range(args.seed, "--seed", *SEED_RANGE)
    with made_output_folder(args.out, "--out"):
        report = imagine_files(
            args.run,
            args.audio,
            args.out,
            samples=args.samples,
            device=args.device,
            seed=args.seed,
            mode=args.mode,
            precision=args.precision,
        )
    for path, reason in report["skipped"].items():
        print(f"skipped {path}: {reason}", file=sys.stderr)
    for path, note in report["notes"].items():
        print(f"warning: {path}: {note}", file=sys.stderr)
    for path in report["written"]:
        print(path)
    return 0 if report["written"] else 2


def _run_embed(args):
    from s2ilib.imagine import embed_dataset

    check_range(args.image_size, "--image-size", *IMAGE_SIZE_RANGE)
    check_range(args.seed, "--seed", *SEED_RANGE)
    with made_output_folder(args.out, "--out", ["embeddings.npz"]):
        report = embed_dataset(
            args.run,
            args.data,
            args.out,
            splits=args.splits,
            device=args.device,
            image_size=args.image_size,
            seed=args.seed,
        )
    print(json.dumps(report, indent=2))
