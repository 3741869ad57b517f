"""The `s2i` command: sub-commands are thin wrappers over the library modules.

Each module in COMMAND_GROUPS has `register(subparsers)`, which adds its sub-commands and
sets `func` (called with the parsed arguments; returns an exit status or None). Heavy
imports (torch) happen inside the handlers, so `s2i --help` stays instant.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import math
import os
import sys
import tempfile
from pathlib import Path

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


class DeprecatedAlias(argparse.Action):
    """An option's old spelling, kept for one release: it stores its value where the new
    spelling does (`dest`) and prints one DeprecationWarning line on stderr naming `new`."""

    def __init__(self, option_strings, dest, new: str, **kwargs):
        super().__init__(option_strings, dest, help=argparse.SUPPRESS, **kwargs)
        self.new = new

    def __call__(self, parser, namespace, values, option_string=None):
        print(
            f"DeprecationWarning: {option_string} is now {self.new}; {option_string} is "
            "accepted in this release only",
            file=sys.stderr,
        )
        setattr(namespace, self.dest, values)


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


# Seeds reach numpy's and torch's generators, which take integers in [0, 2**63).
SEED_RANGE = (0, 2**63 - 1)


def check_range(value, option: str, low=None, high=None, why: str = "") -> None:
    """Refuse a numeric option that is not finite or lies outside [low, high] (None: open).

    why: the reason for the bound, added to the message (e.g. "one image per draw").
    """
    if value is None:
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise S2IError(f"{option} {value}: expected a finite number")
    if (low is not None and value < low) or (high is not None and value > high):
        span = f"between {low} and {high}" if None not in (low, high) else None
        span = span or (f"at least {low}" if high is None else f"at most {high}")
        raise S2IError(f"{option} {value}: must be {span}" + (f" ({why})" if why else ""))


def check_input_file(path, option: str) -> Path:
    """Refuse `path` (the value of `option`) unless it is an existing regular file; a device
    such as /dev/zero is refused without reading it."""
    path = Path(path)
    if not path.exists():
        raise S2IError(f"{option} {path}: no such file")
    if path.is_dir():
        raise S2IError(f"{option} {path}: a folder, not a file")
    if not path.is_file():
        raise S2IError(f"{option} {path}: not a regular file (a device or a pipe)")
    return path


def check_not_below_a_file(path, option: str) -> None:
    """Refuse an output `path` (the value of `option`) whose would-be parent folders include
    a file: nothing could be made there, and finding out after the work loses it."""
    for parent in reversed(Path(path).absolute().parents):
        if parent.exists() and not parent.is_dir():
            raise S2IError(
                f"{option} {path}: {parent} is a file, so no folder can be made below it; "
                f"choose another {option}"
            )


@contextlib.contextmanager
def made_output_folder(folder, option: str, file_names=()):
    """prepare_output_folder's folder for a command's work: when the work fails and the
    folder did not exist before and is still empty, it is removed again (a refused run
    leaves nothing behind)."""
    existed = Path(folder).exists()
    prepared = prepare_output_folder(folder, option, file_names)
    try:
        yield prepared
    except BaseException:
        if not existed and prepared.is_dir() and not any(prepared.iterdir()):
            prepared.rmdir()
        raise


def prepare_output_folder(folder, option: str, file_names=()) -> Path:
    """Make `folder` (the value of `option`) and prove it writable before any work starts:
    a temporary file is created in it and removed. `file_names`: the files the command will
    write there; refused if a folder (or anything but a file) already holds one's name."""
    folder = Path(folder)
    check_not_below_a_file(folder, option)
    if folder.exists() and not folder.is_dir():
        raise S2IError(f"{option} {folder}: a file is there; give a folder (made if missing)")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".s2i-write-test-"):
            pass
    except OSError as error:
        raise S2IError(
            f"{option} {folder}: cannot write there ({error.strerror or error}); choose "
            f"another {option} or make it writable"
        ) from None
    for name in file_names:
        target = folder / name
        if target.exists() and not target.is_file():
            kind = "a folder" if target.is_dir() else "not a regular file"
            raise S2IError(
                f"{option} {folder}: {target} is {kind}, where the output file {name} must "
                f"go; move it away or choose another {option}"
            )
    return folder


def prepare_output_file(path, option: str) -> Path:
    """prepare_output_folder for the folder of one output file `path` (the value of
    `option`), with the messages naming the file."""
    path = Path(path)
    check_not_below_a_file(path, option)
    if path.exists() and not path.is_file():
        raise S2IError(f"{option} {path}: a folder (or device) is there; give a file name")
    prepare_output_folder(path.parent, f"{option} {path}: its folder")
    return path


def main(argv: list[str] | None = None) -> int:
    # Idle OpenMP threads sleep instead of spinning. Read once, when torch is first imported
    # (every handler imports it lazily, after this line); notebook kernels started by
    # `s2i pipeline` inherit it. On a CPU shared with any other busy process, spinning made
    # 2-thread training steps many times slower than 1 thread (benchmarks/RESULTS.md,
    # "Twenty minutes: the training sounds embedded once", OpenMP spinning).
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
