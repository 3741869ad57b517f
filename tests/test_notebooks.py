"""The notebooks: clean sources, validated parameters, and the whole pipeline through papermill."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import papermill
import pytest

from s2ilib.pipeline import NOTEBOOK_DIR, STEPS

SOURCES = sorted(NOTEBOOK_DIR.glob("*.ipynb"))


def test_every_step_has_a_notebook_and_a_py_percent_twin():
    assert [p.stem for p in SOURCES] == list(STEPS)
    for notebook in SOURCES:
        assert notebook.with_suffix(".py").is_file(), f"{notebook.name} has no py:percent twin"


@pytest.mark.parametrize("notebook", SOURCES, ids=lambda p: p.stem)
def test_source_notebook_is_clean_and_parameterised(notebook):
    content = nbformat.read(notebook, as_version=4)
    code = [c for c in content.cells if c.cell_type == "code"]
    assert not any(c.get("outputs") for c in code), f"{notebook.name}: outputs committed"
    assert not any(c.get("execution_count") for c in code), f"{notebook.name}: execution counts"
    tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{notebook.name}: needs exactly one cell tagged 'parameters'"
    assert content.cells[0].cell_type == "markdown", (
        f"{notebook.name}: starts without an introduction"
    )


@pytest.mark.parametrize("notebook", SOURCES, ids=lambda p: p.stem)
def test_notebook_matches_its_twin(notebook):
    import jupytext

    twin = jupytext.read(notebook.with_suffix(".py"))
    ipynb = nbformat.read(notebook, as_version=4)
    assert [c.source for c in twin.cells] == [c.source for c in ipynb.cells], (
        f"{notebook.name} and its .py twin differ: run `jupytext --sync {notebook}`"
    )


@pytest.mark.parametrize("notebook", SOURCES, ids=lambda p: p.stem)
def test_every_parameter_is_a_documented_config_field(notebook):
    """Each parameters-cell name is read (papermill can parse every line) by the config."""
    names = set(papermill.inspect_notebook(str(notebook)))
    source = nbformat.read(notebook, as_version=4)
    cell = next(c for c in source.cells if "parameters" in c.metadata.get("tags", []))
    assigned = {line.split("=")[0].strip() for line in cell.source.splitlines() if "=" in line}
    assert names == assigned, "papermill could not parse some parameter lines (no '=' in comments)"


@pytest.mark.parametrize("notebook", SOURCES, ids=lambda p: p.stem)
def test_parameters_cell_literals_are_the_dataclass_defaults(notebook):
    """The parameters cell and its dataclass (s2ilib.notebook) declare the same names with
    the same values: one cannot drift from the other."""
    import ast
    import dataclasses

    from s2ilib import notebook as parameters
    from s2ilib.pipeline import STEP_PARAMETERS

    source = nbformat.read(notebook, as_version=4)
    cell = next(c for c in source.cells if "parameters" in c.metadata.get("tags", []))
    literals = {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in ast.parse(cell.source).body
        if isinstance(node, ast.Assign)
    }
    config_class = getattr(parameters, STEP_PARAMETERS[notebook.stem])
    defaults = {f.name: f.default for f in dataclasses.fields(config_class)}
    assert literals == defaults
    assert f"load_parameters({config_class.__name__}, globals())" in "".join(
        c.source for c in source.cells
    )


# Notebook parameters named like a field of the training config(s) their step builds, whose
# default is none of those fields' defaults, and why (any other reads one of them, e.g. 04's
# num_epochs: the flow's length, for the GANs too).
STATED_DIFFERENCES = {
    ("02_audio_autoencoder", "front"): "auto: whisper for AV-Digits, conv for other data",
    ("02_audio_autoencoder", "num_epochs"): "train.config.AE_MAIN_JOB (says why)",
    ("02_audio_autoencoder", "optimizer"): "train.config.AE_MAIN_JOB (says why)",
    ("02_audio_autoencoder", "lr"): "train.config.AE_MAIN_JOB (says why)",
    ("04_decoders", "loss"): "empty: the recipe's own loss",
}


def test_parameter_defaults_are_their_training_configs_defaults():
    """A parameter that is also a field of its step's training config has that field's
    default, unless STATED_DIFFERENCES says why not; AE_MAIN_JOB's values are notebook 02's."""
    import dataclasses

    from s2ilib import notebook as parameters
    from s2ilib.pipeline import STEP_PARAMETERS
    from s2ilib.train import config

    configs = {
        "02_audio_autoencoder": [config.AETrainConfig],
        "03_alignment": [config.AlignTrainConfig],
        "04_decoders": [config.GANTrainConfig, config.FlowTrainConfig],
        "05_informativity_evaluation": [config.InformativityTrainConfig, config.CeilingTrainConfig],
    }
    differences = set()
    for step, classes in configs.items():
        for item in dataclasses.fields(getattr(parameters, STEP_PARAMETERS[step])):
            defaults = {
                f.default for c in classes for f in dataclasses.fields(c) if f.name == item.name
            }
            if defaults and item.default not in defaults:
                differences.add((step, item.name))
    assert differences == set(STATED_DIFFERENCES)
    ae = parameters.AutoencoderParameters()
    assert {name: getattr(ae, name) for name in config.AE_MAIN_JOB} == dict(config.AE_MAIN_JOB)
    decoders = parameters.DecoderParameters()
    assert decoders.num_epochs == config.FlowTrainConfig.num_epochs


def test_parameters_shared_by_several_steps_are_named_in_the_docs():
    """`--set NAME=VALUE` reaches every step with that parameter: docs/notebooks.md names
    each parameter (run directories aside) that several steps take."""
    import collections
    import dataclasses

    from s2ilib import notebook as parameters
    from s2ilib.pipeline import STEP_PARAMETERS

    common = {f.name for f in dataclasses.fields(parameters.TrainingParameters)}
    steps = collections.defaultdict(list)
    for step, name in STEP_PARAMETERS.items():
        for item in dataclasses.fields(getattr(parameters, name)):
            if item.name not in common and not item.name.endswith(("_run", "_runs")):
                steps[item.name].append(step)
    docs = (NOTEBOOK_DIR.parent / "docs" / "notebooks.md").read_text()
    shared = [name for name, where in steps.items() if len(where) > 1]
    assert "num_epochs" in shared
    assert [name for name in shared if f"`{name}`" not in docs] == []


def _execute(notebook: str, out: Path, **parameters):
    return papermill.execute_notebook(
        str(NOTEBOOK_DIR / f"{notebook}.ipynb"),
        str(out),
        parameters=parameters,
        kernel_name="python3",
        progress_bar=False,
        cwd=str(NOTEBOOK_DIR.parent),
    )


@pytest.mark.parametrize(
    "parameters, message",
    [
        ({"exmaples_per_class": 3}, "unknown parameter(s) exmaples_per_class"),
        ({"examples_per_class": "3"}, "examples_per_class='3': expected int, got str"),
        (
            {"data": "/no/such/data"},
            "parameter data='/no/such/data': the data set folder not found",
        ),
    ],
)
def test_bad_parameter_fails_in_the_first_cells(tmp_path, parameters, message):
    out = tmp_path / "executed.ipynb"
    with pytest.raises(papermill.PapermillExecutionError) as error:
        _execute("01_data_exploration", out, **parameters)
    assert error.value.ename == "ParameterError"
    assert message in error.value.evalue
    executed = nbformat.read(out, as_version=4)
    failing = [c for c in executed.cells if any(o.get("ename") for o in c.get("outputs", []))]
    assert failing and "load_parameters(" in failing[0].source, (
        "the config cell must show the error"
    )


def _pipeline(tmp_path, *extra, check=True):
    command = [
        sys.executable,
        "-m",
        "s2ilib",
        "pipeline",
        "--preset",
        "tiny",
        "--smoke",
        "--out",
        str(tmp_path / "report"),
        "--runs-root",
        str(tmp_path / "runs"),
        "--figures-dir",
        str(tmp_path / "figures"),
        *extra,
    ]
    return subprocess.run(command, capture_output=True, text=True, check=check)


def test_whole_pipeline_smoke_run(tmp_path):
    """Every step, with the `aligned` GAN trained beside the main run (the main job's
    default comparison)."""
    result = _pipeline(tmp_path, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    report = tmp_path / "report"
    summary = json.loads((report / "summary.json").read_text())
    assert summary["status"] == "done"
    assert [s["step"] for s in summary["steps"]] == list(STEPS)
    for step in STEPS:
        assert (report / f"{step}.ipynb").is_file() and (report / f"{step}.html").is_file()
    headline = summary["headline"]
    for key in ("informativity", "informativity_ceiling", "diversity_ratio", "kway_accuracy"):
        assert key in headline
    assert 0.0 <= headline["informativity"] <= 1.0
    metrics = json.loads((report / "evaluation" / "metrics.json").read_text())
    assert {"generator", "nearest_neighbour", "random_real", "real"} <= set(metrics["methods"])
    runs = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert any("-ae-" in r for r in runs) and any("-align-" in r for r in runs)
    assert any("-flow-recipe-flow" in r for r in runs)  # the main run: a flow decoder
    assert any("-gan-recipe-aligned" in r for r in runs)  # beside it, the aligned GAN
    assert not any("-gan-recipe-paper" in r for r in runs)  # the authors' only on request
    assert any("-informativity-" in r for r in runs)
    comparison = (report / "evaluation" / "comparison.csv").read_text().splitlines()
    assert len(comparison) == 3 and "flow" in comparison[1] and "aligned" in comparison[2]
    assert "draw_diversity" in comparison[0]
    figures = {p.name for p in (tmp_path / "figures").iterdir()}
    for name in (
        "01_examples",
        "02_ae_reconstructions",
        "03_align_loss",
        "03_aligned_embedding_map",
        "04_decoder_losses",
        "04_recipes_d_loss",
        "05_informativity_per_class",
        "06_gallery",
        "06_draws_by_recipe",
        "07_imagine",
    ):
        assert {f"{name}.png", f"{name}.pdf"} <= figures


@pytest.mark.slow  # test_pipeline_safety keeps a failing step and its resume in the gate
def test_pipeline_failure_keeps_work_and_resume_skips_done_steps(tmp_path):
    first = _pipeline(tmp_path, "--steps", "01_data_exploration")
    assert "wall_seconds" in first.stdout
    not_a_run = tmp_path / "not-a-run"  # passes the check up front, fails in the notebook
    not_a_run.mkdir()
    failed = _pipeline(
        tmp_path,
        "--resume",
        "--steps",
        "01_data_exploration",
        "02_audio_autoencoder",
        "--set",
        f"ae_run={not_a_run}",
        check=False,
    )
    assert failed.returncode == 2
    assert "02_audio_autoencoder.ipynb" in failed.stderr
    staging = tmp_path / "report.partial"  # the job's work, beside the finished report
    summary = json.loads((staging / "summary.json").read_text())
    assert summary["status"] == "failed"
    assert summary["steps"][0]["skipped"].startswith("already done")
    assert summary["steps"][1]["status"] == "failed"
    executed = (staging / "02_audio_autoencoder.ipynb").read_text()
    assert "not a run directory" in executed
    finished = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert finished["status"] == "done" and len(finished["steps"]) == 1


def test_pipeline_rejects_unknown_override(tmp_path):
    result = _pipeline(tmp_path, "--steps", "01_data_exploration", "--set", "epochz=3", check=False)
    assert result.returncode == 2
    assert "unknown notebook parameter(s) epochz" in result.stderr
