"""The gallery's interpolation (recall off and on) and the stall warnings of runs without a
discriminator, on tiny trained runs."""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pytest

from s2ilib import gallery
from s2ilib.datasets import open_dataset
from s2ilib.runs import TRANSLATOR_KINDS, has_discriminator, load_run, stall_report, stall_warnings
from s2ilib.runs.rundir import LOG_FILE, read_config
from s2ilib.runs.stats import STALL_MARK


def _two_sounds_of_two_classes(run):
    """The spectrograms of a validation sound of the first class and of another class."""
    sounds = open_dataset(read_config(run.run_dir)["train"]["data"]).split("val")
    first = int(np.flatnonzero(sounds.labels == sounds.labels[0])[0])
    second = int(np.flatnonzero(sounds.labels != sounds.labels[0])[0])
    return sounds.spectrograms[first], sounds.spectrograms[second]


@pytest.fixture(scope="module")
def flow_run(tiny_flow_run):
    return load_run(tiny_flow_run, kind=TRANSLATOR_KINDS)


def test_interpolation_with_recall_off_draws_from_noise_and_leaves_the_run_as_it_was(
    flow_run, one_torch_thread
):
    assert gallery.recalls(flow_run)  # recipe flow's sampling: recall from 0.3
    trained = flow_run.generator.config
    a, b = _two_sounds_of_two_classes(flow_run)
    recalled = gallery.interpolate(flow_run, a, b, 5, "cpu")
    from_noise = gallery.interpolate(flow_run, a, b, 5, "cpu", recall=False)
    assert (
        from_noise.shape == recalled.shape == (5, *recalled.shape[1:])
        and from_noise.dtype == np.uint8
    )
    assert (from_noise != recalled).any(axis=(1, 2, 3)).all()  # every image drawn otherwise
    assert flow_run.generator.config is trained  # the run samples as it was trained
    np.testing.assert_array_equal(gallery.interpolate(flow_run, a, b, 5, "cpu"), recalled)
    # Recall off reads no training image: without the memory it still draws, and the same.
    memory, flow_run.generator.memory = flow_run.generator.memory, None
    try:
        np.testing.assert_array_equal(
            gallery.interpolate(flow_run, a, b, 5, "cpu", recall=False), from_noise
        )
    finally:
        flow_run.generator.memory = memory


def test_the_run_gets_its_sampling_back_when_a_draw_fails(flow_run):
    trained = flow_run.generator.config
    with (
        pytest.raises(RuntimeError, match="inside"),
        gallery.flow_sampling(flow_run, recall_from=0.0),
    ):
        assert flow_run.generator.config == dataclasses.replace(trained, recall_from=0.0)
        raise RuntimeError("a draw failed inside")
    assert flow_run.generator.config is trained


def test_a_gan_has_no_recall_so_both_rows_are_one(tiny_gan_run, one_torch_thread):
    run = load_run(tiny_gan_run, kind=TRANSLATOR_KINDS)
    assert not gallery.recalls(run)
    a, b = _two_sounds_of_two_classes(run)
    np.testing.assert_array_equal(
        gallery.interpolate(run, a, b, 4, "cpu", recall=False),
        gallery.interpolate(run, a, b, 4, "cpu"),
    )
    with (
        pytest.raises(ValueError, match="no flow sampling"),
        gallery.flow_sampling(run, guidance=3.0),
    ):
        pass


def _copy_with_stall_line(run_dir, folder):
    """A copy of a run whose log.txt ends with a discriminator-stall warning."""
    copy = shutil.copytree(run_dir, folder / run_dir.name, ignore=shutil.ignore_patterns("*.pt"))
    with open(copy / LOG_FILE, "a") as log:
        log.write(f"{STALL_MARK} at step 2: d_loss 1.0000-1.0000 over the last 5 stats lines\n")
    return copy


def test_only_a_run_with_a_discriminator_reports_stalls(tiny_gan_run, tiny_flow_run, tmp_path):
    gan, flow = (
        _copy_with_stall_line(tiny_gan_run, tmp_path),
        _copy_with_stall_line(tiny_flow_run, tmp_path),
    )
    assert has_discriminator(gan) and not has_discriminator(flow)
    assert len(stall_warnings(gan)) == 1 and STALL_MARK in stall_warnings(gan)[0]
    assert stall_warnings(flow) == []  # a flow has no discriminator to stall, whatever its log
    report = stall_report({"aligned": gan, "flow": flow, "paper": tiny_gan_run})
    assert list(report) == ["aligned", "paper"]  # the flow run is not asked
    assert report["aligned"] == stall_warnings(gan) and report["paper"] == "no stall"


def test_interpolation_rows_draw_a_recalling_flow_both_ways_and_a_gan_once(
    flow_run, tiny_gan_run, one_torch_thread
):
    gan = load_run(tiny_gan_run, kind=TRANSLATOR_KINDS)
    a, b = _two_sounds_of_two_classes(flow_run)
    rows = gallery.interpolation_rows({"flow": flow_run, "GAN": gan}, a, b, 3, "cpu")
    assert list(rows) == ["flow\nrecall off", "flow\nrecall on", "GAN"]
    np.testing.assert_array_equal(
        rows["flow\nrecall off"], gallery.interpolate(flow_run, a, b, 3, "cpu", recall=False)
    )
    np.testing.assert_array_equal(
        rows["flow\nrecall on"], gallery.interpolate(flow_run, a, b, 3, "cpu")
    )
    np.testing.assert_array_equal(rows["GAN"], gallery.interpolate(gan, a, b, 3, "cpu"))


def test_the_ranking_reads_the_evaluation_of_the_same_run_and_draws_otherwise(
    flow_run, tiny_informativity_run, tmp_path, one_torch_thread
):
    """Notebook 06's q: read from notebook 05's per_sound.csv when that evaluation drew the
    same run's draws (the same as drawing every sound again), drawn otherwise."""
    from s2ilib.evaluate import evaluate_run
    from s2ilib.informativity import load_informativity
    from s2ilib.report import write_report

    data = open_dataset(read_config(flow_run.run_dir)["train"]["data"])
    bank = load_informativity(tiny_informativity_run, "cpu")
    evaluation = tmp_path / "evaluation"

    def q(seed, folder=None):
        return gallery.own_class_confidence(flow_run, bank, data, "val", "cpu", seed, folder)

    with gallery.flow_sampling(flow_run, sample_steps=2):  # the draws are all it checks
        metrics = evaluate_run(flow_run, bank, data, "val", bootstrap=0, baselines=False, seed=3)
        write_report(metrics, evaluation)
        read, source = q(3, evaluation)
        assert source.startswith("evaluation/per_sound.csv")
        drawn, source = q(3)
    assert source == "every sound drawn once here"
    assert read.shape == (len(data.split("val")),) and read.dtype == drawn.dtype
    np.testing.assert_allclose(read, drawn, atol=1e-5)

    def recorded(seed=3, split="val", run=flow_run):
        return gallery.recorded_confidence(evaluation, run, bank, data, split, seed)

    np.testing.assert_array_equal(recorded(), read)
    assert recorded(seed=4) is None and recorded(split="test") is None  # not its draws
    another_step = dataclasses.replace(flow_run, step=flow_run.step + 1)  # trained on since
    assert recorded(run=another_step) is None
    metrics_text = (evaluation / "metrics.json").read_text()
    (evaluation / "metrics.json").write_text(metrics_text[:100])  # torn: drawn, no error
    assert recorded() is None
    (evaluation / "metrics.json").write_text(metrics_text)
    (evaluation / "per_sound.csv").unlink()  # an evaluation from before the table
    assert recorded() is None
