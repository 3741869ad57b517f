"""`s2i train-informativity` and `s2i evaluate`: the informativity classifiers and the scores."""

from __future__ import annotations

import sys
from pathlib import Path

from s2ilib.cli import add_command


def register(subparsers):
    """Add this group's sub-commands to the `s2i` parser."""
    train = add_command(
        subparsers,
        "train-informativity",
        run_train_informativity,
        help="train the informativity classifiers (one binary CNN per class + a K-way CNN)",
        description=(
            "Train the paper's binary informativity classifiers (one per class) and a K-way "
            "classifier on the REAL images of a data set's image pool: positives are images "
            "of the class, negatives images of the other classes and degraded images (noise, "
            "heavy blur, flat grey, shuffled patches, two-class mixtures). Model selection on "
            "val; the accuracy on real test images (the ceiling) goes to metrics.json."
        ),
    )
    train.add_argument(
        "--data", required=True, help="data set folder (anything open_dataset opens)"
    )
    train.add_argument("--runs-root", default="runs", help="folder of numbered run directories")
    train.add_argument("--run-dir", help="exact run directory to create (must not exist)")
    train.add_argument(
        "--desc", default="", help="run name suffix: runs/NNNNN-informativity-<desc>"
    )
    train.add_argument(
        "--image-size", type=int, default=32, help="image side: the generator's (demo 32, paper 96)"
    )
    train.add_argument("--epochs", type=int, default=20, help="at most this many epochs")
    train.add_argument(
        "--batch-size", type=int, default=32, help="images per binary classifier per step"
    )
    train.add_argument("--lr", type=float, default=2e-3, help="Adam learning rate")
    train.add_argument(
        "--degraded-fraction",
        type=float,
        default=0.5,
        help="share of the negatives that are degraded images",
    )
    train.add_argument(
        "--patience", type=int, default=4, help="early stop after this many epochs without gain"
    )
    train.add_argument(
        "--limit-per-class", type=int, help="at most this many images per class and split"
    )
    train.add_argument("--seed", type=int, default=0, help="weights, batches, degradations")
    train.add_argument(
        "--device", default="auto", help="cpu, cuda, cuda:N, or auto: CUDA if available"
    )

    evaluate = add_command(
        subparsers,
        "evaluate",
        run_evaluate,
        help="informativity, K-way accuracy, Frechet distance and baselines of a GAN run",
        description=(
            "Translate every sound of a split (or of --audio-dir) with a GAN run (dropout on "
            "at test time) and score the images with an informativity run's classifiers; "
            "writes metrics.json, metrics.md and metrics.tex to --out."
        ),
    )
    evaluate.add_argument("--gan", required=True, help="run directory of `s2i train-gan`")
    evaluate.add_argument(
        "--informativity", required=True, help="run directory of `s2i train-informativity`"
    )
    evaluate.add_argument(
        "--data", required=True, help="data set folder (real images, training sounds)"
    )
    evaluate.add_argument("--split", default="test", help="split whose sounds are translated")
    evaluate.add_argument("--out", required=True, help="folder for metrics.json/.md/.tex")
    evaluate.add_argument(
        "--samples", type=int, default=1, help="generator draws per sound (dropout on)"
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
        "--labels", help="CSV 'file,label' for --audio-dir (label: class name or 0-based index)"
    )
    evaluate.add_argument("--no-baselines", action="store_true", help="skip the baselines")
    evaluate.add_argument(
        "--nn-limit-per-class",
        type=int,
        help="nearest neighbour: at most this many training sounds per class",
    )
    evaluate.add_argument(
        "--seed", type=int, default=0, help="dropout masks, baselines' draws, bootstrap"
    )
    evaluate.add_argument(
        "--device", default="auto", help="cpu, cuda, cuda:N, or auto: CUDA if available"
    )


def run_train_informativity(args) -> int:
    from s2ilib.informativity import InformativityTrainConfig, train_informativity

    config = InformativityTrainConfig(
        image_size=args.image_size,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        degraded_fraction=args.degraded_fraction,
        patience=args.patience,
        limit_per_class=args.limit_per_class,
        seed=args.seed,
    )
    run_dir = train_informativity(
        args.data,
        runs_root=args.runs_root,
        run_dir=args.run_dir,
        config=config,
        device=args.device,
        desc=args.desc,
    )
    sys.stdout.write(f"run: {Path(run_dir).resolve()}\n")
    return 0


def run_evaluate(args) -> int:
    from s2ilib.evaluate import evaluate_run, format_tables, write_report

    result = evaluate_run(
        args.gan,
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
        baselines=not args.no_baselines,
        nn_limit_per_class=args.nn_limit_per_class,
    )
    paths = write_report(result, args.out)
    for skipped in result["skipped_files"]:
        print(f"skipped {skipped['file']}: {skipped['reason']}", file=sys.stderr)
    sys.stdout.write(format_tables(result)[0].split("\n\n### ")[0] + "\n")
    sys.stdout.write(f"metrics: {paths['json'].resolve()}\n")
    return 0
