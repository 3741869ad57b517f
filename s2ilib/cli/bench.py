"""`s2i bench ...`: benchmarks (loader now; room for train and imagine)."""

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
    loader.add_argument("--json-out", default=None, help="also write the JSON result to this file")


def _need_benchmark(args) -> int:
    print("s2i bench: name a benchmark, e.g. `s2i bench loader`", file=sys.stderr)
    return 2


def run_loader(args) -> int:
    from s2ilib import bench

    result = bench.bench_loader(
        size_mb=args.size_mb,
        rss_size_mb=args.rss_size_mb,
        prefix_mb=args.prefix_mb,
        batch_size=args.batch_size,
        workdir=args.workdir,
    )
    text = json.dumps(result, indent=2)
    print(text)
    if args.json_out:
        Path(args.json_out).write_text(text + "\n")
    print(bench.summary_line(result))
    return 0
