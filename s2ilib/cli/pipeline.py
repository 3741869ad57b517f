"""`s2i pipeline`: the main job, every notebook in order through papermill."""

from __future__ import annotations

import json
import sys

from s2ilib.cli import add_command
from s2ilib.models import PRESET_NAMES


def register(subparsers):
    """Add `s2i pipeline` to the `s2i` parser."""
    from s2ilib.pipeline import STEPS

    command = add_command(
        subparsers,
        "pipeline",
        _run_pipeline,
        help="run the notebooks in order (papermill) and write a report",
        description=(
            "Run notebooks/01..07 through papermill, passing each step's run directories to "
            "the next. Executed notebooks, their HTML exports and summary.json (run "
            "directories, wall times, headline metrics) go to --out. Every --set is checked "
            "against the steps' parameters before anything runs. On failure the pipeline "
            "stops, keeps everything done so far, names the executed notebook showing the "
            "error and exits 2; --resume then skips the steps already done."
        ),
    )
    command.add_argument(
        "--preset",
        default="demo",
        choices=PRESET_NAMES,
        help=(
            "model size preset (tiny: tests; demo: 2-core CPU; paper: the authors' networks; "
            "paper-attention: paper with their 2026 attention generator)"
        ),
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
        type=_step_name,
        help="run only these steps (in pipeline order)",
    )
    command.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra notebook parameter, a JSON or Python literal (e.g. --set num_epochs=5); repeatable",
    )


def _step_name(name: str) -> str:
    """A --steps name; a step's name before this release (s2ilib.notebook.RENAMED_STEPS) is
    taken as its new one, with one DeprecationWarning line on stderr."""
    from s2ilib.notebook import RENAMED_STEPS

    if name in RENAMED_STEPS:
        print(
            f"DeprecationWarning: step {name} is now {RENAMED_STEPS[name]}; the old name is "
            "accepted in this release only",
            file=sys.stderr,
        )
    return RENAMED_STEPS.get(name, name)


def _run_pipeline(args):
    from s2ilib.pipeline import STEPS, PipelineOptions, run_pipeline
    from s2ilib.train.config import parse_assignments

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
        overrides=parse_assignments(args.overrides),
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
