"""`s2i summary`: parameters, shapes and FLOPs of a preset's networks."""

from __future__ import annotations

import json

from s2ilib.cli import add_command
from s2ilib.models import PRESET_NAMES  # torch-free: `s2i --help` stays instant


def register(subparsers):
    """Add this group's sub-commands to the `s2i` parser."""
    command = add_command(
        subparsers,
        "summary",
        run_summary,
        help="parameters, input/output shapes and FLOPs of a preset's networks",
        description=(
            "Print the trainable parameters, per-sample input/output shapes and per-sample "
            "FLOPs (forward, forward+backward) of the autoencoder, generator, discriminator "
            "and informativity classifier of a preset, and of the flow decoder (recipe flow) at "
            "its defaults and the preset's image size. Networks are built on the meta "
            "device, so even the paper preset needs no memory and takes seconds."
        ),
    )
    command.add_argument("--preset", choices=PRESET_NAMES, default="paper", help="network sizes")
    command.add_argument(
        "--embedding-dim", type=int, default=512, help="audio embedding size D (bottleneck)"
    )
    command.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run_summary(args) -> int:
    from s2ilib.models.summary import format_summary, summarize

    summary = summarize(args.preset, args.embedding_dim)
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary))
    return 0
