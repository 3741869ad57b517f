"""Notebook parameter validation: unknown names, wrong types and missing paths fail early."""

from __future__ import annotations

import dataclasses
import os

import pytest

from s2ilib.notebook import ParameterError, load_parameters, user_variables, write_step_outputs


@dataclasses.dataclass(frozen=True)
class Example:
    PATHS = ("data",)
    FROM_EARLIER_STEPS = ()

    data: str = ""
    epochs: int = 3
    lr: float = 0.1
    name: str | None = None
    smoke: bool = False

    def validate(self):
        if self.data and not os.path.exists(self.data):
            raise ParameterError(f"parameter data={self.data!r}: the data set folder not found")


def test_user_variables_skip_modules_functions_and_ipython_names():
    namespace = {
        "os": os,
        "f": test_user_variables_skip_modules_functions_and_ipython_names,
        "In": [],
        "_": 1,
        "epochs": 2,
        "Example": Example,
    }
    assert user_variables(namespace) == {"epochs": 2}


def test_defaults_and_int_for_float():
    config = load_parameters(Example, {"epochs": 5, "lr": 1})
    assert (config.epochs, config.lr, config.data) == (5, 1, "")
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.epochs = 6


def test_unknown_parameter_is_named():
    with pytest.raises(ParameterError, match=r"unknown parameter\(s\) epoch;.*epochs"):
        load_parameters(Example, {"epoch": 5})


@pytest.mark.parametrize(
    "values, message",
    [
        ({"epochs": "5"}, r"epochs='5': expected int, got str"),
        ({"epochs": 2.5}, r"epochs=2.5: expected int, got float"),
        ({"smoke": 1}, r"smoke=1: expected bool, got int"),
        ({"epochs": True}, r"epochs=True: expected int, got bool"),
        ({"name": 3}, r"name=3: expected str or None, got int"),
    ],
)
def test_wrong_types_are_named(values, message):
    with pytest.raises(ParameterError, match=message):
        load_parameters(Example, values)


def test_missing_path_is_named(tmp_path):
    with pytest.raises(ParameterError, match="parameter data=.*not found"):
        load_parameters(Example, {"data": str(tmp_path / "missing")})
    assert load_parameters(Example, {"data": str(tmp_path)}).data == str(tmp_path)


def test_step_outputs_written_atomically(tmp_path):
    path = write_step_outputs(tmp_path / "report", "02_step", {"pass_on": {"ae_run": "runs/1"}})
    assert path.read_text().count("ae_run") == 1
    assert not list((tmp_path / "report").glob("*.tmp"))


def test_empty_run_parameters_come_from_earlier_steps(tmp_path):
    from s2ilib.notebook import DecoderParameters

    ae_run = tmp_path / "runs" / "00000-ae"
    ae_run.mkdir(parents=True)
    write_step_outputs(
        tmp_path / "report", "02_audio_autoencoder", {"pass_on": {"ae_run": str(ae_run)}}
    )
    # recipe "paper" alone builds on the AE run (the others need notebook 03's align run)
    paper = {"recipe": "paper", "compare_recipe": ""}
    config = load_parameters(DecoderParameters, {"report_dir": str(tmp_path / "report"), **paper})
    assert config.ae_run == str(ae_run)
    explicit = load_parameters(
        DecoderParameters,
        {"report_dir": str(tmp_path / "report"), "ae_run": str(tmp_path), **paper},
    )
    assert explicit.ae_run == str(tmp_path)
    with pytest.raises(ParameterError, match="parameter ae_run is empty"):
        load_parameters(DecoderParameters, {"report_dir": str(tmp_path / "nothing"), **paper})
    with pytest.raises(ParameterError, match="recipe 'flow' needs an alignment run"):
        load_parameters(DecoderParameters, {"report_dir": str(tmp_path / "report")})


def test_recipes_are_checked_and_align_runs_come_from_notebook_02(tmp_path):
    from s2ilib.notebook import DecoderParameters

    ae_run, align_run = tmp_path / "runs" / "00000-ae", tmp_path / "runs" / "00001-align"
    for folder in (ae_run, align_run):
        folder.mkdir(parents=True)
    write_step_outputs(
        tmp_path / "report", "02_audio_autoencoder", {"pass_on": {"ae_run": str(ae_run)}}
    )
    write_step_outputs(
        tmp_path / "report", "03_alignment", {"pass_on": {"align_run": str(align_run)}}
    )
    config = load_parameters(DecoderParameters, {"report_dir": str(tmp_path / "report")})
    assert (config.ae_run, config.align_run) == (str(ae_run), str(align_run))
    # The main run, the flow, with the paper's dense-generator GAN beside it.
    assert (config.recipe, config.comparison_recipes) == ("flow", ["aligned"])
    both = {"report_dir": str(tmp_path / "report"), "compare_recipe": "aligned, paper"}
    assert load_parameters(DecoderParameters, both).comparison_recipes == ["aligned", "paper"]
    with pytest.raises(ParameterError, match="adversarial losses belong to GAN recipes"):
        load_parameters(
            DecoderParameters, {"report_dir": str(tmp_path / "report"), "loss": "hinge"}
        )
    aligned = {"report_dir": str(tmp_path / "report"), "recipe": "aligned", "loss": "hinge"}
    assert load_parameters(DecoderParameters, aligned).loss == "hinge"
    with pytest.raises(ParameterError, match="parameter recipe='fancy'"):
        load_parameters(
            DecoderParameters, {"report_dir": str(tmp_path / "report"), "recipe": "fancy"}
        )
    with pytest.raises(ParameterError, match="parameter compare_recipe='dreamy'"):
        load_parameters(
            DecoderParameters,
            {"report_dir": str(tmp_path / "report"), "compare_recipe": "paper, dreamy"},
        )


@pytest.fixture
def repository(tmp_path, monkeypatch):
    """A stand-in repository root (reports/, runs/) for s2ilib.notebook's lookups."""
    from s2ilib import notebook

    monkeypatch.setattr(notebook, "REPO_ROOT", tmp_path)
    monkeypatch.setattr(notebook, "REPORTS_ROOT", tmp_path / "reports")
    return tmp_path


def _decoder_run(root, name: str):
    run = root / "runs" / name
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.pt").write_bytes(b"x")
    return run


def test_relative_paths_resolve_from_the_repository_root(repository, tmp_path, monkeypatch):
    from s2ilib.notebook import DataExplorationParameters

    (repository / "somewhere").mkdir()
    monkeypatch.chdir(tmp_path / "somewhere")  # a kernel started elsewhere (notebooks/)
    config = load_parameters(DataExplorationParameters, {"figures_dir": "figures"})
    assert config.figures_dir == str(repository / "figures")
    assert config.report_dir == str(repository / "reports" / "interactive")


def test_an_interactive_notebook_finds_the_run_the_main_job_recorded(repository, capsys):
    from s2ilib.notebook import ImagineParameters

    recorded = _decoder_run(repository, "00004-gan-recipe-aligned")
    _decoder_run(repository, "00009-gan-newer")  # newer, but not what the report recorded
    write_step_outputs(
        repository / "reports" / "main", "04_decoders", {"pass_on": {"decoder_run": str(recorded)}}
    )
    config = load_parameters(ImagineParameters, {})
    assert config.decoder_run == str(recorded)
    assert f"decoder_run = {str(recorded)!r} (from {repository / 'reports' / 'main'}" in (
        capsys.readouterr().out
    )


def test_a_report_written_before_the_renaming_still_gives_its_decoder_run(repository, capsys):
    """Reports of the last release name notebook 04 `04_gan_training` and its run `gan_run`."""
    from s2ilib.notebook import GalleryParameters

    recorded = _decoder_run(repository, "00004-flow-recipe-flow")
    _decoder_run(repository, "00009-gan-newer")
    old = {"pass_on": {"gan_run": str(recorded)}}
    write_step_outputs(repository / "reports" / "main", "04_gan_training", old)
    assert load_parameters(GalleryParameters, {}).decoder_run == str(recorded)
    assert "decoder_run = " in capsys.readouterr().out


def test_the_old_parameter_name_gan_run_still_works_and_warns(repository, capsys):
    """`gan_run` (papermill -p, `--set`) is read as decoder_run for one release, with a
    DeprecationWarning line; given beside a different decoder_run it is refused."""
    from s2ilib.notebook import DecoderParameters, GANParameters, ImagineParameters

    run = _decoder_run(repository, "00003-flow-recipe-flow")
    # papermill injects gan_run after the parameters cell, which set decoder_run = ""
    config = load_parameters(ImagineParameters, {"decoder_run": "", "gan_run": str(run)})
    assert config.decoder_run == str(run)
    err = capsys.readouterr().err
    assert "DeprecationWarning: parameter gan_run is now decoder_run" in err
    with pytest.raises(ParameterError, match="gan_run=.* and decoder_run=.* differ"):
        load_parameters(ImagineParameters, {"decoder_run": str(repository), "gan_run": str(run)})
    assert GANParameters is DecoderParameters


def test_without_a_report_the_newest_run_of_the_kind_is_taken(repository, capsys):
    from s2ilib.notebook import ImagineParameters

    _decoder_run(repository, "00002-gan-old")
    newest = _decoder_run(repository, "00007-gan-new")
    (repository / "runs" / "00008-ae-later" / "checkpoints").mkdir(parents=True)
    assert load_parameters(ImagineParameters, {}).decoder_run == str(newest)
    flow = _decoder_run(repository, "00009-flow-recipe-flow")  # a flow run translates too
    assert load_parameters(ImagineParameters, {}).decoder_run == str(flow)
    assert "decoder_run = " in capsys.readouterr().out


def test_a_pipeline_report_takes_runs_from_itself_only(repository):
    from s2ilib.notebook import ImagineParameters

    _decoder_run(repository, "00007-gan-new")
    with pytest.raises(ParameterError, match="parameter decoder_run is empty"):
        load_parameters(ImagineParameters, {"report_dir": str(repository / "reports" / "main")})


def test_the_gan_notebook_can_train_the_attention_generator(tmp_path):
    from s2ilib.notebook import DecoderParameters

    run = tmp_path / "00000-ae"
    run.mkdir()
    values = {"ae_run": str(run), "align_run": str(run), "report_dir": str(tmp_path)}
    config = load_parameters(DecoderParameters, values | {"generator_preset": "paper-attention"})
    assert config.generator_preset == "paper-attention"
    with pytest.raises(ParameterError, match="generator_preset='huge'"):
        load_parameters(DecoderParameters, values | {"generator_preset": "huge"})


def test_gan_settings_without_a_gan_recipe_are_refused(tmp_path):
    """Notebook 04's GAN-only parameters apply to its GAN runs; with flows alone they would
    be silently dropped, so a changed one is refused, naming it."""
    from s2ilib.notebook import DecoderParameters

    run = tmp_path / "00000-ae"
    run.mkdir()
    values = {"ae_run": str(run), "align_run": str(run), "report_dir": str(tmp_path)}
    # The default job trains the `aligned` GAN beside the flow: the values reach it.
    config = load_parameters(DecoderParameters, values | {"pixel_weight": 0.0})
    gan = [c for c in config.training_configs() if hasattr(c, "pixel_weight")]
    assert [c.pixel_weight for c in gan] == [0.0]
    flows_only = values | {"compare_recipe": ""}
    assert load_parameters(DecoderParameters, flows_only).pixel_weight == 10.0  # the default
    for name, value in [("pixel_weight", 100.0), ("lr_generator", 1e-3),
                        ("lr_discriminator", 1e-3)]:  # fmt: skip
        with pytest.raises(ParameterError, match=f"parameter {name}=.*GAN runs only"):
            load_parameters(DecoderParameters, flows_only | {name: value})
        with pytest.raises(ParameterError, match=f"parameter {name}="):
            load_parameters(DecoderParameters, flows_only | {"compare_recipe": "flow", name: value})
    paper = load_parameters(DecoderParameters, flows_only | {"compare_recipe": "paper",
                                                             "lr_generator": 1e-3})  # fmt: skip
    assert paper.lr_generator == 1e-3
