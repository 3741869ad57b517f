"""The main job: run the numbered notebooks in order through papermill.

Each notebook takes common parameters (data, preset, seed, device, smoke, report_dir,
runs_root, figures_dir) plus what earlier steps produced (`ae_run`, `gan_run`, ...), which
every step records in `<report>/<step>.outputs.json`. The executed notebooks, their HTML
exports and `summary.json` land in the report folder. A failing step stops the pipeline,
keeps everything done so far and leaves its executed notebook showing the error;
`resume=True` skips the steps already done.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from s2ilib.atomic import write_json
from s2ilib.errors import S2IError

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = REPO_ROOT / "notebooks"
# Each step and the parameters dataclass its second cell validates (s2ilib.notebook).
STEP_PARAMETERS = {
    "01_data_exploration": "DataExplorationParameters",
    "02_audio_autoencoder": "AutoencoderParameters",
    "03_alignment": "AlignmentParameters",
    "04_gan_training": "GANParameters",
    "05_informativity_evaluation": "EvaluationParameters",
    "06_qualitative_gallery": "GalleryParameters",
    "07_imagine": "ImagineParameters",
}
STEPS = tuple(STEP_PARAMETERS)


class PipelineError(S2IError):
    """A notebook of the pipeline failed; the message points at its executed copy."""


@dataclass
class PipelineOptions:
    """What `s2i pipeline` runs; `overrides` are extra notebook parameters (name -> literal)."""

    preset: str = "demo"
    data: str | None = None  # None: the shipped AV-Digits
    out: str = "reports/main"
    runs_root: str = "runs"
    figures_dir: str = "figures"
    seed: int = 0
    device: str = "auto"
    smoke: bool = False
    resume: bool = False
    steps: tuple[str, ...] = STEPS
    overrides: dict = field(default_factory=dict)
    kernel: str = "python3"


def notebook_parameters(notebook: Path) -> set[str]:
    """Names declared in the notebook's `parameters` cell."""
    import papermill

    return set(papermill.inspect_notebook(str(notebook)))


def step_parameters(options: PipelineOptions, produced: dict, notebook: Path) -> dict:
    """The parameters one step receives: common ones, earlier outputs, overrides it declares."""
    report = Path(options.out).resolve()
    common = {
        "preset": options.preset,
        "seed": options.seed,
        "device": options.device,
        "smoke": options.smoke,
        "report_dir": str(report),
        "runs_root": str(Path(options.runs_root).resolve()),
        "figures_dir": str(Path(options.figures_dir).resolve()),
        # Headless: no frontend renders live widgets, and nbclient can wait forever on an
        # Output widget's clear_output (seen with the imagine notebook, 07); the static view stays.
        "live_widgets": False,
    }
    if options.data:
        common["data"] = str(Path(options.data).resolve())
    candidates = {**common, **produced, **options.overrides}
    declared = notebook_parameters(notebook)
    return {name: value for name, value in candidates.items() if name in declared}


def _read_outputs(report: Path, step: str) -> dict | None:
    path = report / f"{step}.outputs.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _export_html(executed: Path) -> Path:
    import nbconvert
    import nbformat

    body, _ = nbconvert.HTMLExporter().from_notebook_node(nbformat.read(executed, as_version=4))
    html = executed.with_suffix(".html")
    html.write_text(body, encoding="utf-8")
    return html


def _run_step(options: PipelineOptions, step: str, produced: dict) -> dict:
    import papermill

    report = Path(options.out).resolve()
    source = NOTEBOOK_DIR / f"{step}.ipynb"
    if not source.is_file():
        raise PipelineError(f"{source}: notebook not found")
    executed = report / f"{step}.ipynb"
    (report / f"{step}.outputs.json").unlink(missing_ok=True)
    started = time.perf_counter()
    try:
        papermill.execute_notebook(
            str(source),
            str(executed),
            parameters=step_parameters(options, produced, source),
            kernel_name=options.kernel,
            cwd=str(REPO_ROOT),
            progress_bar=False,
        )
    except papermill.PapermillExecutionError as error:
        _export_html(executed)
        raise PipelineError(
            f"step {step} failed ({error.ename}: {error.evalue}); the executed notebook "
            f"showing the error is {executed}"
        ) from None
    wall = time.perf_counter() - started
    _export_html(executed)
    outputs = _read_outputs(report, step) or {}
    return {"step": step, "status": "done", "wall_seconds": round(wall, 1), "outputs": outputs}


def check_overrides(options: PipelineOptions) -> None:
    """Before anything runs: every --set name must be a parameter of at least one step that
    runs (no silent typos), of the type each such step's parameters dataclass declares."""
    import typing

    from s2ilib import notebook

    declared = set()
    for step in options.steps:
        names = notebook_parameters(NOTEBOOK_DIR / f"{step}.ipynb")
        declared |= names
        hints = typing.get_type_hints(getattr(notebook, STEP_PARAMETERS[step]))
        for name in names & set(options.overrides):
            try:
                notebook.check_type(name, options.overrides[name], hints[name])
            except notebook.ParameterError as error:
                raise PipelineError(f"step {step}: {error}") from None
    unknown = sorted(set(options.overrides) - declared)
    if unknown:
        raise PipelineError(
            f"unknown notebook parameter(s) {', '.join(unknown)}; the steps take: {', '.join(sorted(declared))}"
        )


def run_pipeline(options: PipelineOptions) -> dict:
    """Run the steps in order; returns (and writes) the summary."""
    check_overrides(options)
    report = Path(options.out)
    report.mkdir(parents=True, exist_ok=True)
    summary_path = report / "summary.json"
    previous = (
        json.loads(summary_path.read_text()) if options.resume and summary_path.is_file() else {}
    )
    done = {s["step"]: s for s in previous.get("steps", []) if s.get("status") == "done"}
    summary = {"options": _options_json(options), "steps": [], "status": "running"}
    produced: dict = {}
    started = time.perf_counter()
    for step in options.steps:
        if step in done:
            result = {**done[step], "skipped": "already done (resume)"}
        else:
            try:
                result = _run_step(options, step, produced)
            except PipelineError as error:
                summary["steps"].append({"step": step, "status": "failed", "error": str(error)})
                _finish(summary, summary_path, started, "failed")
                raise
        summary["steps"].append(result)
        produced.update(result.get("outputs", {}).get("pass_on", {}))
        _write_json(summary_path, summary)
    return _finish(summary, summary_path, started, "done")


def _finish(summary: dict, path: Path, started: float, status: str) -> dict:
    summary["status"] = status
    summary["wall_seconds"] = round(time.perf_counter() - started, 1)
    headline = {}
    for step in summary["steps"]:
        headline.update(step.get("outputs", {}).get("headline", {}))
    summary["headline"] = headline
    _write_json(path, summary)
    return summary


def _options_json(options: PipelineOptions) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(options).items()}


def _write_json(path: Path, content: dict) -> None:
    write_json(path, content, default=str)
