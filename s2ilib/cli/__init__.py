"""The `s2i` command: sub-commands are thin wrappers over the library modules.

Each module in COMMAND_GROUPS has `register(subparsers)`, which adds its sub-commands and
sets `func` (called with the parsed arguments; returns an exit status or None). Heavy
imports (torch) happen inside the handlers, so `s2i --help` stays instant.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from s2ilib.errors import S2IError

# Order here is the order `s2i --help` lists the groups in.
COMMAND_GROUPS = [
    "s2ilib.cli.data",  # inspect, export, convert
    "s2ilib.cli.avdigits",  # build-avdigits
    "s2ilib.cli.ingest",  # ingest
    "s2ilib.cli.vegas",  # vegas
    "s2ilib.cli.models",  # summary
    "s2ilib.cli.train",  # train-ae, train-align, train-gan, train-informativity, train-ceiling
    "s2ilib.cli.imagine",  # imagine, embed
    "s2ilib.cli.evaluate",  # evaluate
    "s2ilib.cli.pipeline",  # pipeline
    "s2ilib.cli.bench",  # bench loader, ...
]


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Show defaults next to every option and keep paragraph breaks in descriptions."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="s2i",
        description="Sound-to-Imagination workbook: data tools, training, evaluation.",
        formatter_class=HelpFormatter,
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in COMMAND_GROUPS:
        importlib.import_module(module_name).register(subparsers)
    return parser


def add_command(subparsers, name: str, func, help: str, description: str | None = None):
    """Add one sub-command whose handler is `func(args)`; returns its parser."""
    command = subparsers.add_parser(
        name, help=help, description=description or help, formatter_class=HelpFormatter
    )
    command.set_defaults(func=func)
    return command


def add_clip_mode_argument(command, flag: str, what: str) -> None:
    """The option choosing how one second is made of each user file (s2ilib.audio.CLIP_MODES),
    shared by `s2i imagine` and `s2i evaluate --audio-dir`."""
    command.add_argument(
        flag,
        default="auto",
        choices=["auto", "word", "loudest", "centre"],
        help=f"how one second is made of each {what}: 'word' trims a spoken word of silence, "
        "sets its level and centres it (as AV-Digits' clips were made); 'loudest' takes the "
        "second with most energy, 'centre' the middle one; 'auto' (default) matches the data "
        "the run was trained on (word for AV-Digits, else loudest)",
    )


def main(argv: list[str] | None = None) -> int:
    # Idle OpenMP threads sleep instead of spinning. Read once, when torch is first imported
    # (every handler imports it lazily, after this line); notebook kernels started by
    # `s2i pipeline` inherit it. On a CPU shared with any other busy process, spinning made
    # 2-thread training steps 9-18x slower than 1 thread (measured on the 2-core machines).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    args = build_parser().parse_args(argv)
    try:
        status = args.func(args)
    except S2IError as error:
        print(f"s2i {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"s2i {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and friends: not an error
        sys.stderr.close()
        return 0
    return int(status or 0)
