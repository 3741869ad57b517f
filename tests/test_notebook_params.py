"""Notebook parameter validation: unknown names, wrong types and missing paths fail early."""

from __future__ import annotations

import dataclasses
import os

import pytest

from s2ilib.notebook import ParameterError, load_parameters, user_variables, write_step_outputs


@dataclasses.dataclass(frozen=True)
class Example:
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
    from s2ilib.notebook import GANParameters

    ae_run = tmp_path / "runs" / "00000-ae"
    ae_run.mkdir(parents=True)
    write_step_outputs(
        tmp_path / "report", "02_audio_autoencoder", {"pass_on": {"ae_run": str(ae_run)}}
    )
    config = load_parameters(GANParameters, {"report_dir": str(tmp_path / "report")})
    assert config.ae_run == str(ae_run)
    explicit = load_parameters(
        GANParameters, {"report_dir": str(tmp_path / "report"), "ae_run": str(tmp_path)}
    )
    assert explicit.ae_run == str(tmp_path)
    with pytest.raises(ParameterError, match="parameter ae_run is empty"):
        load_parameters(GANParameters, {"report_dir": str(tmp_path / "nothing")})


def test_recipes_are_checked_and_align_runs_come_from_notebook_02(tmp_path):
    from s2ilib.notebook import GANParameters

    ae_run, align_run = tmp_path / "runs" / "00000-ae", tmp_path / "runs" / "00001-align"
    for folder in (ae_run, align_run):
        folder.mkdir(parents=True)
    write_step_outputs(
        tmp_path / "report",
        "02_audio_autoencoder",
        {"pass_on": {"ae_run": str(ae_run), "align_run": str(align_run)}},
    )
    config = load_parameters(GANParameters, {"report_dir": str(tmp_path / "report")})
    assert (config.ae_run, config.align_run) == (str(ae_run), str(align_run))
    assert (config.recipe, config.compare_recipe) == ("aligned", "paper")
    with pytest.raises(ParameterError, match="parameter recipe='fancy'"):
        load_parameters(GANParameters, {"report_dir": str(tmp_path / "report"), "recipe": "fancy"})
