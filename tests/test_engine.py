"""The training engine's guarantees for every task kind: a killed run resumes to the same
weights, a resume refuses what it cannot continue, and a run that cannot fill one batch
fails at once instead of spinning."""

from __future__ import annotations

import json
import shutil
import subprocess
import time

import pytest
from test_train import (
    AE_ARGS,
    assert_same_models,
    kill_after_checkpoint,
    run_path,
    s2i,
    workdir,  # noqa: F401 (a fixture)
)

from s2ilib.datasets.avdigits import AVDIGITS_DIR
from s2ilib.runs import load_checkpoint

INFORMATIVITY_ARGS = (
    "train-informativity", "--data", AVDIGITS_DIR, "--image-size", 32, "--epochs", 3,
    "--limit-per-class", 80, "--checkpoint-every", 2, "--keep-checkpoints",
)  # fmt: skip


def _models(run_dir) -> dict:
    return load_checkpoint(run_dir / "checkpoints" / "last.pt")["models"]


@pytest.fixture(scope="module")
def small_ae_run(workdir) -> object:  # noqa: F811
    """A short tiny autoencoder run that later stages start from."""
    return run_path(s2i(*AE_ARGS[:AE_ARGS.index("--steps")], "--steps", 4, "--batch-size", 8,
                        "--desc", "small", cwd=workdir))  # fmt: skip


@pytest.mark.slow  # the same engine resume as the AE, align and flow kills in the gate
def test_killed_informativity_run_resumes_to_identical_classifiers(workdir):  # noqa: F811
    reference = run_path(s2i(*INFORMATIVITY_ARGS, "--desc", "reference", cwd=workdir))
    killed = kill_after_checkpoint((*INFORMATIVITY_ARGS, "--desc", "killed"), workdir, 4, 15)
    assert run_path(s2i("train-informativity", "--resume", killed, cwd=workdir)) == killed
    ours = load_checkpoint(killed / "checkpoints" / "last.pt")
    theirs = load_checkpoint(reference / "checkpoints" / "last.pt")
    assert_same_models(theirs["models"], ours["models"])
    assert_same_models(theirs["best"]["models"], ours["best"]["models"])
    metrics = [json.loads((run / "metrics.json").read_text()) for run in (reference, killed)]
    for key in ("true_positive_rate", "false_positive_rate_degraded", "kway_accuracy"):
        assert metrics[0][key] == metrics[1][key], key
    epochs = [row for row in map(json.loads, (killed / "stats.jsonl").read_text().splitlines())
              if "val_kway_accuracy" in row]  # fmt: skip
    assert [row["epoch"] for row in epochs] == [1, 2, 3]  # one model-selection row per epoch


@pytest.mark.slow  # the same engine resume as the AE, align and flow kills in the gate
def test_killed_ceiling_run_resumes_to_identical_weights(workdir, small_ae_run):  # noqa: F811
    args = ("train-ceiling", "--ae-run", small_ae_run, "--data", "data", "--split", "val",
            "--steps", 12, "--batch-size", 8, "--checkpoint-every", 2, "--keep-checkpoints")  # fmt: skip
    reference = run_path(s2i(*args, "--desc", "reference", cwd=workdir))
    killed = kill_after_checkpoint((*args, "--desc", "killed"), workdir, 4, 12)
    s2i("train-ceiling", "--resume", killed, cwd=workdir)
    assert_same_models(_models(reference), _models(killed))
    result = json.loads((killed / "metrics.json").read_text())
    assert 0.0 <= result["accuracy"] <= 1.0 and result["split"] == "val"
    assert result == json.loads((reference / "metrics.json").read_text())


def test_resume_refuses_what_it_cannot_continue(workdir, small_ae_run):  # noqa: F811
    wrong_kind = s2i("train-gan", "--resume", small_ae_run, cwd=workdir, check=False)
    assert wrong_kind.returncode == 2 and "a run of kind 'ae', not 'gan'" in wrong_kind.stderr
    assert "s2i train-ae --resume" in wrong_kind.stderr
    run = run_path(s2i(*AE_ARGS[:AE_ARGS.index("--steps")], "--steps", 4, "--batch-size", 8,
                       "--checkpoint-every", 2, "--keep-checkpoints", "--desc", "broken",
                       cwd=workdir))  # fmt: skip
    environment = (run / "environment.json").read_text()
    checkpoints = sorted((run / "checkpoints").iterdir())
    assert [path.name for path in checkpoints] == ["last.pt", "step_0000002.pt", "step_0000004.pt"]
    for path in checkpoints:  # torn, every one: nothing to fall back to
        path.write_bytes(path.read_bytes()[:1000])
    torn = s2i("train-ae", "--resume", run, cwd=workdir, check=False)
    assert torn.returncode == 2 and "no checkpoint can be read" in torn.stderr, torn.stderr
    for name in ("last.pt", "step_0000004.pt", "step_0000002.pt"):
        assert f"checkpoints/{name} cannot be read" in torn.stderr
    assert "Traceback" not in torn.stderr
    assert (run / "environment.json").read_text() == environment  # no "resumed" recorded
    for path in (run / "checkpoints").iterdir():
        path.unlink()
    stats = (run / "stats.jsonl").read_text()
    gone = s2i("train-ae", "--resume", run, cwd=workdir, check=False)
    assert gone.returncode == 2 and "no checkpoint to resume from" in gone.stderr
    assert (run / "stats.jsonl").read_text() == stats  # nothing appended


def test_a_torn_last_checkpoint_resumes_from_the_newest_kept_one(workdir):  # noqa: F811
    """--keep-checkpoints writes step_XXXXXXX.pt as a file of its own: truncating last.pt
    leaves it whole, and a resume falls back to it (saying so on stderr and in log.txt),
    then replays exactly what the uninterrupted run did."""
    args = (*AE_ARGS[:AE_ARGS.index("--steps")], "--steps", 8, "--batch-size", 8,
            "--checkpoint-every", 2, "--keep-checkpoints")  # fmt: skip
    reference = run_path(s2i(*args, "--desc", "whole", cwd=workdir))
    torn = reference.with_name(reference.name.replace("whole", "torn"))
    shutil.copytree(reference, torn)
    folder = torn / "checkpoints"
    with open(folder / "last.pt", "r+b") as file:  # in place, as a full disk or a bad copy
        file.truncate(4096)
    assert load_checkpoint(folder / "step_0000008.pt")["progress"]["step"] == 8  # intact
    for step in (6, 8):  # as if the run had been killed after its checkpoint at step 4
        (folder / f"step_{step:07d}.pt").unlink()
    resumed = s2i("train-ae", "--resume", torn, cwd=workdir)
    note = "checkpoints/last.pt cannot be read ("
    fallback = "; resuming from checkpoints/step_0000004.pt"
    lines = [line for line in resumed.stderr.splitlines() if note in line]
    assert len(lines) == 1 and lines[0].endswith(fallback), resumed.stderr
    assert any(
        note in line and line.endswith(fallback)
        for line in (torn / "log.txt").read_text().splitlines()
    )
    assert "resumed at step 4" in resumed.stderr
    assert_same_models(_models(reference), _models(torn))
    steps = [json.loads(line)["step"] for line in (torn / "stats.jsonl").read_text().splitlines()]
    assert steps == [2, 4, 6, 8]  # the torn run's later lines were dropped and written again


def test_a_second_resume_of_a_run_in_training_is_refused(workdir):  # noqa: F811
    args = (*AE_ARGS[:AE_ARGS.index("--steps")], "--steps", 400, "--batch-size", 8,
            "--checkpoint-every", 2, "--desc", "locked")  # fmt: skip
    first = s2i(*args, cwd=workdir, wait=False)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not list(workdir.glob("runs/*-ae-locked/.lock")):
            time.sleep(0.05)
        run = next(workdir.glob("runs/*-ae-locked"))
        second = s2i("train-ae", "--resume", run, cwd=workdir, check=False)
        assert second.returncode == 2 and "the run is being trained by pid" in second.stderr
    finally:
        first.kill()
        first.communicate()


@pytest.mark.parametrize(
    "extra, message",
    [
        (("--limit-per-class", 5, "--steps", 10), "batch_size 64 > 15 training items"),
        (("--batch-size", 3000, "--steps", 2), "batch_size 3000 > 36 training items"),
        (("--classes", 42, "--steps", 2), "no training items of classes [42]"),
        (("--classes", 1, 42, "--steps", 2), "no training items of classes [42]"),
        (("--lr", -1, "--steps", 2), "AETrainConfig.lr must be a finite number > 0, got -1.0"),
        (("--lr", "nan", "--steps", 2), "AETrainConfig.lr must be a finite number > 0, got nan"),
        (("--epochs", 0), "AETrainConfig.num_epochs must be an integer >= 1, got 0"),
    ],
)
def test_a_run_that_cannot_train_fails_at_once(workdir, extra, message):  # noqa: F811
    command = ("train-ae", "--data", "data", "--preset", "tiny", "--desc", "cannot", *extra)
    try:
        result = s2i(*command, cwd=workdir, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail(f"s2i {' '.join(map(str, command))} hung")
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not list(workdir.glob("runs/*-ae-cannot"))  # no debris
