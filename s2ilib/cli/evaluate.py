"""`s2i evaluate`: score a decoder run (GAN or flow) with the informativity classifiers,
beside the baselines."""

from __future__ import annotations

import sys
from pathlib import Path

from s2ilib.cli import (
    SEED_RANGE,
    DeprecatedAlias,
    add_clip_mode_argument,
    add_command,
    check_input_file,
    check_range,
    made_output_folder,
)

# More draws per sound than this is a typo rather than a plan: each draw translates and
# scores every sound once more.
MAX_SAMPLES = 1000
MAX_BOOTSTRAP = 1_000_000  # resamples of the 95% intervals; beyond this only time grows
MAX_BATCH_SIZE = 65536
REPORT_FILES = ("metrics.json", "metrics.md", "metrics.tex", "per_sound.csv")  # report.write_report


def register(subparsers):
    """Add this group's sub-commands to the `s2i` parser."""
    evaluate = add_command(
        subparsers,
        "evaluate",
        run_evaluate,
        help="informativity, K-way accuracy, Frechet distance and baselines of a decoder run",
        description=(
            "Translate every sound of a split (or of --audio-dir) with a decoder run (a flow "
            "from fresh noise, or a GAN with dropout on at test time) and score the images "
            "with an informativity run's classifiers; writes metrics.json, metrics.md and "
            "metrics.tex to --out."
        ),
    )
    decoder = evaluate.add_mutually_exclusive_group(required=True)
    decoder.add_argument("--decoder", help="run directory of `s2i train-flow` or `s2i train-gan`")
    decoder.add_argument("--gan", dest="decoder", action=DeprecatedAlias, new="--decoder")
    evaluate.add_argument(
        "--informativity", required=True, help="run directory of `s2i train-informativity`"
    )
    evaluate.add_argument(
        "--data", required=True, help="data set folder (real images, training sounds)"
    )
    evaluate.add_argument("--split", default="test", help="split whose sounds are translated")
    evaluate.add_argument("--out", required=True, help="folder for metrics.json/.md/.tex")
    evaluate.add_argument(
        "--samples", type=int, default=1, help="draws per sound (flow: noises; GAN: dropout masks)"
    )
    evaluate.add_argument(
        "--bootstrap", type=int, default=1000, help="bootstrap resamples for the 95%% CIs (0: none)"
    )
    evaluate.add_argument("--batch-size", type=int, default=256, help="sounds per batch")
    evaluate.add_argument(
        "--voices", nargs="+", help="keep only these voices (AV-Digits 'voice' column)"
    )
    evaluate.add_argument("--languages", nargs="+", help="keep only these languages (e.g. en es)")
    evaluate.add_argument("--engines", nargs="+", help="keep only these engines (e.g. pico flite)")
    evaluate.add_argument("--audio-dir", help="score your own audio files from this folder instead")
    evaluate.add_argument(
        "--labels",
        help="UTF-8 CSV for --audio-dir, header 'file,label' (label: class name or 0-based "
        "index), optionally more columns named language, voice, engine, speaker, sex, kind or "
        "voice_group (an empty cell: 'unknown'); metrics.md then breaks informativity down "
        "by language, engine, sex and voice_group, and the table per language is printed",
    )
    add_clip_mode_argument(evaluate, "--clip-mode", "--audio-dir file")
    evaluate.add_argument("--no-baselines", action="store_true", help="skip the baselines")
    evaluate.add_argument(
        "--ceiling",
        help="a run of `s2i train-ceiling` on the same split: its accuracy per kind of voice "
        "goes beside informativity",
    )
    evaluate.add_argument(
        "--nn-limit-per-class",
        type=int,
        help="nearest neighbour: at most this many training sounds per class",
    )
    evaluate.add_argument(
        "--seed",
        type=int,
        default=0,
        help="draws (noises, dropout masks), baselines' draws, bootstrap",
    )
    evaluate.add_argument(
        "--device", default="auto", help="cpu, cuda, cuda:N, or auto: CUDA if available"
    )


def check_evaluate_arguments(args) -> None:
    """Refuse bad options before any run is loaded: numbers out of range, --labels without
    --audio-dir (the split would be scored instead, silently) or the reverse, a missing
    --audio-dir or --labels, and an --out that cannot take the reports."""
    from s2ilib.errors import S2IError

    check_range(args.samples, "--samples", 1, MAX_SAMPLES, "draws per sound")
    check_range(args.bootstrap, "--bootstrap", 0, MAX_BOOTSTRAP, "0: no intervals")
    check_range(args.batch_size, "--batch-size", 1, MAX_BATCH_SIZE, "sounds per batch")
    check_range(args.seed, "--seed", *SEED_RANGE)
    check_range(args.nn_limit_per_class, "--nn-limit-per-class", 1)
    if args.labels is not None and args.audio_dir is None:
        raise S2IError(
            f"--labels {args.labels} needs --audio-dir, the folder holding the files it "
            "lists (without it the split's own sounds would be scored, not yours)"
        )
    if args.audio_dir is not None:
        audio_dir = Path(args.audio_dir)
        if not audio_dir.exists():
            raise S2IError(f"--audio-dir {audio_dir}: no such folder")
        if not audio_dir.is_dir():
            raise S2IError(f"--audio-dir {audio_dir}: not a folder (give the folder of files)")
        if args.labels is None:
            raise S2IError(f"--audio-dir {audio_dir} needs --labels, a CSV 'file,label'")
        check_input_file(args.labels, "--labels")


def run_evaluate(args) -> int:
    check_evaluate_arguments(args)
    with made_output_folder(args.out, "--out", REPORT_FILES):
        return _evaluate_into(args)


def _evaluate_into(args) -> int:
    """The evaluation of checked arguments, its report written to args.out."""
    from s2ilib.evaluate import evaluate_run
    from s2ilib.report import printed_tables, write_report

    result = evaluate_run(
        args.decoder,
        args.informativity,
        args.data,
        split=args.split,
        samples=args.samples,
        bootstrap=args.bootstrap,
        batch_size=args.batch_size,
        device=args.device,
        seed=args.seed,
        voices=args.voices,
        languages=args.languages,
        engines=args.engines,
        audio_dir=args.audio_dir,
        labels_csv=args.labels,
        clip_mode=args.clip_mode,
        baselines=not args.no_baselines,
        nn_limit_per_class=args.nn_limit_per_class,
        ceiling_run=args.ceiling,
    )
    paths = write_report(result, args.out)
    for skipped in result["skipped_files"]:
        print(f"skipped {skipped['file']}: {skipped['reason']}", file=sys.stderr)
    for note in result.get("input_notes", []):
        print(f"warning: {note}", file=sys.stderr)
    sys.stdout.write(printed_tables(result))
    sys.stdout.write(f"metrics: {paths['json'].resolve()}\n")
    return 0
