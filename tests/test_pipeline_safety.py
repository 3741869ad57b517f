"""The main job never loses a finished report: every parameter is checked before any step
runs (a refused call writes nothing), and a job that fails leaves the report as it was,
its own work kept beside it (`<report>.partial`) for --resume."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from s2ilib.pipeline import PipelineError, PipelineOptions, check_steps


def _pipeline(root: Path, report: Path, *extra: str) -> subprocess.CompletedProcess:
    command = [
        sys.executable, "-m", "s2ilib", "pipeline", "--preset", "tiny", "--smoke",
        "--out", str(report), "--runs-root", str(root / "runs"),
        "--figures-dir", str(root / "figures"), *extra,
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, check=False)


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A finished report: step 01 of the smoke pipeline (the cheapest real step)."""
    root = tmp_path_factory.mktemp("finished")
    result = _pipeline(root, root / "report", "--steps", "01_data_exploration")
    assert result.returncode == 0, result.stderr[-3000:]
    return root / "report"


@pytest.mark.parametrize(
    "assignment, message",
    [
        (
            "front=bogus",
            "step 02_audio_autoencoder: parameter front='bogus': expected one of "
            "'auto', 'conv', 'speech', 'whisper'; nothing was run",
        ),
        (
            "num_epochs=-1",
            "step 02_audio_autoencoder: parameter(s) num_epochs=-1: AETrainConfig.num_epochs",
        ),
    ],
)
def test_a_bad_parameter_is_refused_before_any_step_and_the_report_is_untouched(
    finished, assignment, message
):
    before = _files(finished)
    steps = ("--steps", "01_data_exploration", "02_audio_autoencoder")
    result = _pipeline(finished.parent, finished, *steps, "--set", assignment)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert _files(finished) == before  # byte for byte, nothing added or removed
    assert [p.name for p in finished.parent.glob("report*")] == ["report"]  # no staging


@pytest.mark.parametrize(
    "overrides, steps, message",
    [
        ({"informativity_epochs": 0}, None, "step 05_informativity_evaluation: parameter(s) "),
        ({"samples": 0}, None, "parameter samples=0: expected at least 1"),
        ({"align_epochs": -2}, None, "step 03_alignment: parameter align_epochs=-2"),
        ({"compare_recipe": "flow,dreamy"}, None, "parameter compare_recipe='dreamy'"),
        ({}, ("05_informativity_evaluation",), "parameter decoder_run is empty"),
    ],
)
def test_every_step_to_run_is_checked_up_front(overrides, steps, message):
    """Ranges and choices of later steps too, and a run no step of the job will make."""
    options = PipelineOptions(preset="tiny", overrides=overrides)
    if steps:
        options.steps = steps
    with pytest.raises(PipelineError) as error:
        check_steps(options)
    assert message in str(error.value)


def test_the_runs_earlier_steps_make_are_not_looked_for_up_front():
    check_steps(PipelineOptions(preset="tiny", smoke=True))  # every step, nothing made yet


def test_a_failing_step_keeps_the_report_and_its_work_resumes_beside_it(finished, tmp_path):
    report = tmp_path / "report"
    shutil.copytree(finished, report)
    before = _files(report)
    not_a_run = tmp_path / "not-a-run"  # a folder: valid up front, unreadable as a run
    not_a_run.mkdir()
    steps = ("--steps", "01_data_exploration", "02_audio_autoencoder")
    failed = _pipeline(tmp_path, report, *steps, "--set", f"ae_run={not_a_run}")
    assert failed.returncode == 2
    staging = tmp_path / "report.partial"
    assert str(staging / "02_audio_autoencoder.ipynb") in failed.stderr
    assert _files(report) == before
    summary = json.loads((staging / "summary.json").read_text())
    assert [s["status"] for s in summary["steps"]] == ["done", "failed"]
    assert "not a run directory" in (staging / "02_audio_autoencoder.ipynb").read_text()

    resumed = _pipeline(tmp_path, report, "--resume", "--steps", "01_data_exploration")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming the unfinished job in {staging}" in resumed.stdout
    assert not staging.exists()
    summary = json.loads((report / "summary.json").read_text())
    assert summary["status"] == "done"
    assert summary["steps"][0]["skipped"].startswith("already done")
    assert ".partial" not in (report / "summary.json").read_text()  # paths moved with it
    assert [s["step"] for s in summary["steps"]] == ["01_data_exploration"]


def test_a_report_of_the_last_release_resumes_under_the_new_names(tmp_path):
    """An old summary names step 04 `04_gan_training` and its run `gan_run`: read under the
    new names, step 04 is done and step 05's decoder_run is the run it made."""
    from s2ilib.pipeline import current_names

    run = tmp_path / "00004-flow-recipe-flow"
    run.mkdir()
    old = [{"step": "04_gan_training", "status": "done",
            "outputs": {"pass_on": {"gan_run": str(run), "compare_runs": ""}}}]  # fmt: skip
    options = PipelineOptions(preset="tiny", smoke=True,
                              steps=("04_decoders", "05_informativity_evaluation"))  # fmt: skip
    # read as it is, the old step is not done: step 04 would run again, from nothing
    with pytest.raises(PipelineError, match="step 04_decoders: parameter ae_run is empty"):
        check_steps(options, {s["step"]: s for s in old})
    done = {s["step"]: s for s in map(current_names, old)}
    assert done["04_decoders"]["outputs"]["pass_on"]["decoder_run"] == str(run)
    check_steps(options, done)


def test_set_gan_run_and_an_old_step_name_still_work_and_warn(tmp_path):
    """`--set gan_run=...` and `--steps 04_gan_training` are read under the new names for
    one release, each with a DeprecationWarning line (the check then refuses the path)."""
    result = _pipeline(
        tmp_path, tmp_path / "report", "--steps", "04_gan_training",
        "05_informativity_evaluation", "--set", "gan_run='/no/such/run'",
    )  # fmt: skip
    assert result.returncode == 2
    assert "DeprecationWarning: parameter gan_run is now decoder_run" in result.stderr
    assert "DeprecationWarning: step 04_gan_training is now 04_decoders" in result.stderr
    assert "step 04_decoders: parameter decoder_run='/no/such/run'" in result.stderr
    assert not (tmp_path / "report").exists()
