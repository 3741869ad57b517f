"""`s2i bench ...`: benchmarks (loader, train, imagine), each printing JSON and one line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from s2ilib.cli import HelpFormatter, add_command


def register(subparsers):
    """Add `s2i bench` and its benchmarks to the `s2i` parser."""
    bench = add_command(subparsers, "bench", _need_benchmark, help="run a benchmark and print JSON")
    benchmarks = bench.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True)
    loader = benchmarks.add_parser(
        "loader",
        help="memory-mapped reader vs the authors' byte-at-a-time loader, and open cost in RSS",
        description=(
            "Generate spec_image_bin and audio_bin file sets in a temporary folder, time the\n"
            "authors' byte-at-a-time reader (on a prefix, extrapolated) against the\n"
            "memory-mapped RecordSet read in batches, both from the page cache, and measure\n"
            "the peak RSS that opening a large (sparse) file set adds in a fresh process."
        ),
        formatter_class=HelpFormatter,
    )
    loader.set_defaults(func=run_loader)
    loader.add_argument(
        "--size-mb",
        type=float,
        default=512,
        help="MB of random-content records generated per layout for the timings",
    )
    loader.add_argument(
        "--rss-size-mb",
        type=float,
        default=2048,
        help="MB of the sparse file set whose open cost is measured (1/8 of it too)",
    )
    loader.add_argument(
        "--prefix-mb", type=float, default=3, help="MB the byte-at-a-time reader is timed on"
    )
    loader.add_argument(
        "--batch-size", type=int, default=256, help="records per batch copied out of the memory map"
    )
    loader.add_argument(
        "--workdir",
        default=None,
        help="folder for the temporary files (default: the system temp folder; "
        "/dev/shm avoids slow deletes on disks mounted with discard)",
    )
    loader.add_argument(
        "--threads", type=int, default=1, help="threads copying each batch (memmap reader)"
    )
    loader.add_argument(
        "--repeats", type=int, default=3, help="interleaved timings of each reader (fastest kept)"
    )
    loader.add_argument("--json-out", default=None, help="also write the JSON result to this file")
    _add_train(benchmarks)
    _add_imagine(benchmarks)


def _add_train(benchmarks) -> None:
    train = benchmarks.add_parser(
        "train",
        help="samples/s and MFU of the AE and GAN training steps, fast path vs reference mode",
        description=(
            "Time the autoencoder step and the GAN step (G + D on the frozen encoder) of a\n"
            "preset on random data, in reference mode (fp32, eager, host data) and on the\n"
            "fast path (bf16 autocast, channels_last, torch.compile, fused Adam, data on the\n"
            "GPU), in one process. FLOPs per sample are counted with FlopCounterMode on one\n"
            "step; MFU is measured against a large torch.matmul timed on the same device."
        ),
        formatter_class=HelpFormatter,
    )
    train.set_defaults(func=run_train)
    train.add_argument(
        "--preset", default=None, help="model preset (default: paper on CUDA, demo on CPU)"
    )
    train.add_argument("--device", default="auto", help="cpu, cuda[:N] or auto")
    train.add_argument("--batch-size", type=int, default=64, help="samples per step")
    train.add_argument("--steps", type=int, default=10, help="timed steps per mode")
    train.add_argument("--warmup", type=int, default=2, help="untimed steps first (compiling)")
    train.add_argument("--embedding-dim", type=int, default=512, help="audio embedding width D")
    train.add_argument(
        "--features",
        nargs="+",
        default=None,
        help="fast-path features (default: all on CUDA; bf16 channels_last fused_adam on CPU)",
    )
    train.add_argument(
        "--only", choices=["ae", "gan"], default=None, help="time one step kind only"
    )
    train.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="STEPS",
        help="also profile STEPS steps of each kind and mode (torch.profiler: top ops)",
    )
    train.add_argument("--json-out", default=None, help="also write the JSON result to this file")


def _add_imagine(benchmarks) -> None:
    imagine = benchmarks.add_parser(
        "imagine",
        help="latency of one 1-s clip, audio file -> PNG, and clips/s in batches (CPU)",
        description=(
            "Write a GAN run directory holding randomly initialised networks of a preset (or\n"
            "take a trained decoder run, --run) and 1-s WAV files, then time\n"
            "s2ilib.imagine.imagine_files on the CPU: one clip end to end (first call, then the\n"
            "median after warm-up), each stage, and a batch of clips."
        ),
        formatter_class=HelpFormatter,
    )
    imagine.set_defaults(func=run_imagine)
    imagine.add_argument("--preset", default="paper", help="model preset of the random GAN")
    imagine.add_argument(
        "--run",
        default=None,
        help="a trained decoder run (GAN or flow, e.g. the main job's) to time instead of a "
        "random GAN; --preset and --embedding-dim are then the run's",
    )
    imagine.add_argument("--batch", type=int, default=16, help="clips per batched call")
    imagine.add_argument("--repeats", type=int, default=5, help="timed calls (median)")
    imagine.add_argument("--embedding-dim", type=int, default=512, help="audio embedding width D")
    imagine.add_argument(
        "--precision", default="auto", choices=["auto", "fp32", "bf16"], help="imagine precision"
    )
    imagine.add_argument("--workdir", default=None, help="folder for the temporary run and clips")
    imagine.add_argument("--json-out", default=None, help="also write the JSON result to this file")


def _need_benchmark(args) -> int:
    print("s2i bench: name a benchmark, e.g. `s2i bench loader`", file=sys.stderr)
    return 2


def _report(result: dict, json_out, line: str) -> int:
    text = json.dumps(result, indent=2)
    print(text)
    if json_out:
        Path(json_out).write_text(text + "\n")
    print(line)
    return 0


def run_train(args) -> int:
    from s2ilib import bench
    from s2ilib.errors import S2IError

    if args.batch_size < 2 or args.steps < 1 or args.warmup < 0:
        raise S2IError("--batch-size must be >= 2 (BatchNorm), --steps >= 1, --warmup >= 0")
    result = bench.bench_train(
        preset_name=args.preset,
        device=args.device,
        batch_size=args.batch_size,
        steps=args.steps,
        warmup=args.warmup,
        embedding_dim=args.embedding_dim,
        features=tuple(args.features) if args.features else None,
        kinds=(args.only,) if args.only else ("ae", "gan"),
        profile=args.profile,
    )
    return _report(result, args.json_out, bench.train_summary_line(result))


def run_imagine(args) -> int:
    from s2ilib import bench
    from s2ilib.errors import S2IError

    if args.batch < 1 or args.repeats < 1:
        raise S2IError("--batch and --repeats must be >= 1")
    result = bench.bench_imagine(
        run=args.run,
        preset_name=args.preset,
        batch=args.batch,
        repeats=args.repeats,
        embedding_dim=args.embedding_dim,
        precision=args.precision,
        workdir=args.workdir,
    )
    return _report(result, args.json_out, bench.imagine_summary_line(result))


def run_loader(args) -> int:
    from s2ilib import bench
    from s2ilib.errors import S2IError

    if args.repeats < 1 or args.threads < 1:
        raise S2IError("--repeats and --threads must be >= 1")
    result = bench.bench_loader(
        size_mb=args.size_mb,
        rss_size_mb=args.rss_size_mb,
        prefix_mb=args.prefix_mb,
        batch_size=args.batch_size,
        workdir=args.workdir,
        repeats=args.repeats,
        threads=args.threads,
    )
    return _report(result, args.json_out, bench.summary_line(result))
