"""`s2i pipeline`: the main job, every notebook in order through papermill."""

from __future__ import annotations

import ast
import json

from s2ilib.cli import add_command


def register(subparsers):
    """Add `s2i pipeline` to the `s2i` parser."""
    from s2ilib.pipeline import STEPS

    command = add_command(
        subparsers,
        "pipeline",
        _run_pipeline,
        help="run the notebooks in order (papermill) and write a report",
        description=(
            "Run notebooks/01..06 through papermill, passing each step's run directories to "
            "the next. Executed notebooks, their HTML exports and summary.json (run "
            "directories, wall times, headline metrics) go to --out. On failure the pipeline "
            "stops, keeps everything done so far, names the executed notebook showing the "
            "error and exits 1; --resume then skips the steps already done."
        ),
    )
    command.add_argument(
        "--preset",
        default="demo",
        choices=["tiny", "demo", "paper"],
        help="model size preset (tiny: tests; demo: 2-core CPU; paper: the authors' networks)",
    )
    command.add_argument(
        "--data",
        default=None,
        help="data set folder (default: the shipped AV-Digits in data/avdigits)",
    )
    command.add_argument("--out", default="reports/main", help="report folder")
    command.add_argument("--runs-root", default="runs", help="folder for training run directories")
    command.add_argument(
        "--figures-dir", default="figures", help="folder for the paper-ready figures"
    )
    command.add_argument("--seed", type=int, default=0, help="random seed of every step")
    command.add_argument(
        "--device", default="auto", help="'auto' (CUDA if present, else CPU), 'cpu' or 'cuda[:N]'"
    )
    command.add_argument(
        "--smoke", action="store_true", help="tiny quick run (tests): few steps, small subsets"
    )
    command.add_argument(
        "--resume", action="store_true", help="skip the steps already done in --out"
    )
    command.add_argument(
        "--steps",
        nargs="+",
        default=list(STEPS),
        choices=list(STEPS),
        help="run only these steps (in pipeline order)",
    )
    command.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra notebook parameter, a Python literal (e.g. --set gan_epochs=5); repeatable",
    )


def _parse_overrides(pairs: list[str]) -> dict:
    from s2ilib.errors import S2IError

    overrides = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name:
            raise S2IError(f"--set {pair!r}: expected NAME=VALUE")
        try:
            overrides[name] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            overrides[name] = text  # a bare word is a string
    return overrides


def _run_pipeline(args):
    from s2ilib.pipeline import STEPS, PipelineOptions, run_pipeline

    options = PipelineOptions(
        preset=args.preset,
        data=args.data,
        out=args.out,
        runs_root=args.runs_root,
        figures_dir=args.figures_dir,
        seed=args.seed,
        device=args.device,
        smoke=args.smoke,
        resume=args.resume,
        steps=tuple(s for s in STEPS if s in args.steps),
        overrides=_parse_overrides(args.overrides),
    )
    summary = run_pipeline(options)
    print(
        json.dumps(
            {
                "report": args.out,
                "wall_seconds": summary["wall_seconds"],
                "headline": summary["headline"],
            },
            indent=2,
        )
    )
