"""The main job: run the numbered notebooks in order through papermill.

Each notebook takes common parameters (data, preset, seed, device, smoke, report_dir,
runs_root, figures_dir) plus what earlier steps produced (`ae_run`, `decoder_run`, ...), which
every step records in `<report>/<step>.outputs.json`. Before any step runs, every parameter
of every step that will run is checked as its notebook's config cell checks it
(s2ilib.notebook.check_parameters: names, types, allowed values and ranges, paths, the
training configs made of them); a refused call writes nothing.

A job is written to a staging folder beside the report (`<report>.partial`), which
replaces the report only once every step is done, so a failed or refused call never
touches a finished report. The executed notebooks, their HTML exports and `summary.json`
land there. A failing step stops the pipeline, keeps everything done so far (in the
staging folder) and leaves its executed notebook showing the error; `resume=True`
continues that staging folder (or, when there is none, a copy of the finished report)
and skips the steps already done. Figures are written by the steps themselves into
figures_dir, as they run.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field, replace
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
    "04_decoders": "DecoderParameters",
    "05_informativity_evaluation": "EvaluationParameters",
    "06_qualitative_gallery": "GalleryParameters",
    "07_imagine": "ImagineParameters",
}
STEPS = tuple(STEP_PARAMETERS)
# The run parameters each step passes on to later ones (its outputs' "pass_on"): until it
# has run, the check before the first step cannot look for those runs.
STEP_MAKES = {
    "02_audio_autoencoder": ("ae_run",),
    "03_alignment": ("align_run",),
    "04_decoders": ("decoder_run", "compare_runs"),
    "05_informativity_evaluation": ("informativity_run", "ceiling_run"),
}
STAGING_SUFFIX = ".partial"  # the job being written, beside the report it will replace
ASIDE_SUFFIX = ".previous"  # the finished report, while the new one is moved in


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


def step_parameters(
    options: PipelineOptions, produced: dict, notebook: Path, report: Path | None = None
) -> dict:
    """The parameters one step receives: common ones, earlier outputs, overrides it declares;
    `report`: the folder the job is written to (default: options.out)."""
    report = Path(report or options.out).resolve()
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


def _run_step(options: PipelineOptions, step: str, produced: dict, report: Path) -> dict:
    import papermill

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
            parameters=step_parameters(options, produced, source, report),
            kernel_name=options.kernel,
            cwd=str(REPO_ROOT),
            progress_bar=False,
        )
    except papermill.PapermillExecutionError as error:
        _export_html(executed)
        raise PipelineError(
            f"step {step} failed ({error.ename}: {error.evalue}); the executed notebook "
            f"showing the error is {executed}; the steps done so far are kept there, and "
            f"--resume continues from this step"
        ) from None
    wall = time.perf_counter() - started
    _export_html(executed)
    outputs = _read_outputs(report, step) or {}
    return {"step": step, "status": "done", "wall_seconds": round(wall, 1), "outputs": outputs}


def check_steps(options: PipelineOptions, done: dict | None = None) -> None:
    """Before anything runs: every --set name is a parameter of at least one step that runs
    (no silent typos), and every step still to run gets parameters its notebook accepts
    (s2ilib.notebook.check_parameters); `done`: the steps a resumed job skips."""
    from s2ilib import notebook

    declared = {step: notebook_parameters(NOTEBOOK_DIR / f"{step}.ipynb") for step in options.steps}
    every = set().union(*declared.values())
    unknown = sorted(set(options.overrides) - every)
    if unknown:
        raise PipelineError(
            f"unknown notebook parameter(s) {', '.join(unknown)}; the steps take: {', '.join(sorted(every))}"
        )
    done = done or {}
    produced: dict = {}
    pending: set = set()
    for step in options.steps:
        if step in done:
            produced.update(done[step].get("outputs", {}).get("pass_on", {}))
            continue
        earlier = {name: value for name, value in produced.items() if name not in pending}
        values = step_parameters(options, earlier, NOTEBOOK_DIR / f"{step}.ipynb")
        try:
            notebook.check_parameters(getattr(notebook, STEP_PARAMETERS[step]), values, pending)
        except S2IError as error:
            raise PipelineError(f"step {step}: {error}; nothing was run") from None
        pending |= set(STEP_MAKES.get(step, ()))


def current_names(step: dict) -> dict:
    """A step of an earlier report's summary.json under this release's names: the step
    (s2ilib.notebook.RENAMED_STEPS) and the run parameters it passed on (RENAMED_PARAMETERS),
    so that a report written before the renaming resumes."""
    from s2ilib.notebook import RENAMED_STEPS, renamed_parameters

    outputs = step.get("outputs", {})
    if "pass_on" in outputs:
        outputs = outputs | {"pass_on": renamed_parameters(outputs["pass_on"], warn=False)}
    name = RENAMED_STEPS.get(step.get("step"), step.get("step"))
    return step | {"step": name, "outputs": outputs}


def renamed_overrides(overrides: dict) -> dict:
    """--set values under this release's parameter names; an old name (RENAMED_PARAMETERS)
    is taken with one DeprecationWarning line on stderr."""
    from s2ilib.notebook import ParameterError, renamed_parameters

    try:
        return renamed_parameters(overrides)
    except ParameterError as error:
        raise PipelineError(f"--set: {error}; nothing was run") from None


def run_pipeline(options: PipelineOptions) -> dict:
    """Run the steps in order into the staging folder, then move it over the report;
    returns (and writes) the summary."""
    options = replace(options, overrides=renamed_overrides(options.overrides))
    report = Path(options.out).resolve()
    staging = report.with_name(report.name + STAGING_SUFFIX)
    source = _resumed_folder(report, staging) if options.resume else None
    previous = _read_summary(source) if source else {}
    done = {s["step"]: s for s in map(current_names, previous.get("steps", []))
            if s.get("status") == "done"}  # fmt: skip
    check_steps(options, done)
    _restore_aside(report)
    _prepare_staging(options, report, staging, source)
    summary = {"options": _options_json(options), "steps": [], "status": "running"}
    summary_path = staging / "summary.json"
    produced: dict = {}
    started = time.perf_counter()
    for step in options.steps:
        if step in done:
            result = {**done[step], "skipped": "already done (resume)"}
        else:
            try:
                result = _run_step(options, step, produced, staging)
            except PipelineError as error:
                summary["steps"].append({"step": step, "status": "failed", "error": str(error)})
                _finish(summary, summary_path, started, "failed")
                raise
        summary["steps"].append(result)
        produced.update(result.get("outputs", {}).get("pass_on", {}))
        _write_json(summary_path, summary)
    _finish(summary, summary_path, started, "done")
    return _publish(staging, report)


def _read_summary(folder: Path) -> dict:
    path = folder / "summary.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _resumed_folder(report: Path, staging: Path) -> Path | None:
    """What --resume continues: the staging folder of an unfinished job, else the finished
    report (a copy of it), else nothing; one printed line says which."""
    # (A kill while the job is moved in leaves the staging folder: it is taken first.)
    for folder, what in ((staging, "the unfinished job in"), (report, "the finished report")):
        if (folder / "summary.json").is_file():
            steps = _read_summary(folder).get("steps", [])
            names = [s["step"] for s in steps if s.get("status") == "done"] or ["none"]
            print(f"resuming {what} {folder} (steps done: {', '.join(names)})")
            return folder
    print(f"nothing to resume in {staging} or {report}: running every step")
    return None


def _restore_aside(report: Path) -> None:
    """Finish a move of a new report over a finished one that a kill interrupted: the
    finished report comes back unless the new one is in place."""
    aside = report.with_name(report.name + ASIDE_SUFFIX)
    if aside.is_dir() and not report.exists():
        aside.rename(report)
        print(f"restored the finished report {report} from {aside}")
    elif aside.is_dir():
        shutil.rmtree(aside)


def _prepare_staging(options: PipelineOptions, report: Path, staging: Path, source) -> None:
    """An empty staging folder for a new job, a copy of the finished report to resume, or
    the staging folder as it is (resume)."""
    if source == staging:
        return
    if staging.exists():
        print(f"discarding the unfinished job in {staging} (run with --resume to continue it)")
        shutil.rmtree(staging)
    if source is None:
        staging.mkdir(parents=True)
        return
    copying = staging.with_name(staging.name + ".copying")
    shutil.rmtree(copying, ignore_errors=True)
    shutil.copytree(source, copying)
    copying.rename(staging)  # a copy cut short is never taken for the job


def _publish(staging: Path, report: Path) -> dict:
    """Move the finished job over the report: the old report is set aside, the new one
    renamed in, then the old one deleted. Paths recorded under the staging folder are
    rewritten to the report's; returns the summary."""
    for path in [*staging.glob("*.outputs.json"), staging / "summary.json"]:
        _write_json(path, _moved(json.loads(path.read_text()), str(staging), str(report)))
    aside = report.with_name(report.name + ASIDE_SUFFIX)
    if report.exists():
        shutil.rmtree(aside, ignore_errors=True)
        report.rename(aside)
    staging.rename(report)
    shutil.rmtree(aside, ignore_errors=True)
    return _read_summary(report)


def _moved(value, old: str, new: str):
    """`value` (JSON) with every string path under `old` moved under `new`."""
    if isinstance(value, dict):
        return {key: _moved(item, old, new) for key, item in value.items()}
    if isinstance(value, list):
        return [_moved(item, old, new) for item in value]
    if isinstance(value, str) and (value == old or value.startswith(old + "/")):
        return new + value[len(old) :]
    return value


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
