"""`s2i vegas`: unpack and verify the real VEGAS spectrograms in one step."""

from __future__ import annotations

import json

from s2ilib.cli import add_command


def register(subparsers):
    """Add `s2i vegas` to the `s2i` parser."""
    from s2ilib.datasets import vegas

    command = add_command(
        subparsers,
        "vegas",
        _run_vegas,
        help="unpack the VEGAS spectrogram tars into a git-ignored cache and verify counts",
        description=(
            "Extract train.tar (49,435 spectrograms) and val.tar (5,635) of the published "
            "s2i_data set (CC BY 4.0, Fanzeres & Nadeu, built on VEGAS) into OUT/{train,val}/, "
            "verify the file counts and print them. Splits already complete are left alone. "
            "Point S2I_VEGAS_DIR at OUT so that notebooks, tests and `s2i` find them."
        ),
    )
    command.add_argument(
        "--tars", default=str(vegas.tar_dir()), help="folder holding train.tar and val.tar"
    )
    command.add_argument(
        "--out", default=str(vegas.unpack_dir()), help="folder to unpack into (git-ignored cache)"
    )
    command.add_argument(
        "--splits",
        nargs="+",
        default=list(vegas.EXPECTED_COUNTS),
        choices=list(vegas.EXPECTED_COUNTS),
        help="which splits to unpack",
    )
    command.add_argument("--force", action="store_true", help="extract again even if complete")


def _run_vegas(args):
    from s2ilib.datasets import vegas

    counts = vegas.unpack_vegas(args.tars, args.out, tuple(args.splits), force=args.force)
    print(json.dumps({"root": str(args.out), "counts": counts}))
