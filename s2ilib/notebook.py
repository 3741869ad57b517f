"""Notebook support: validated parameters, step outputs and figure saving.

Each notebook has one cell tagged `parameters` holding literals only. papermill injects
overrides after it and merely warns on unknown names, so the cell after it calls
`load_parameters(StepConfig, globals())`: every user variable defined so far becomes a
field of a frozen dataclass, and an unknown name, a wrong type or a missing path fails
right there with a message naming the parameter.
"""

from __future__ import annotations

import dataclasses
import json
import os
import types
import typing
from pathlib import Path

from s2ilib.errors import S2IError
from s2ilib.models import PRESET_NAMES

# Names IPython defines in every namespace; they are not parameters.
_IPYTHON_NAMES = {"In", "Out", "get_ipython", "exit", "quit", "open"}


class ParameterError(S2IError):
    """A notebook parameter that is unknown, of the wrong type or points at nothing."""


def user_variables(namespace: dict) -> dict:
    """The variables a notebook defined (parameters), without modules, functions, IPython's."""
    return {
        name: value
        for name, value in namespace.items()
        if not name.startswith("_")
        and name not in _IPYTHON_NAMES
        and not isinstance(value, types.ModuleType | types.FunctionType | type)
    }


def load_parameters(config_class, namespace: dict):
    """The notebook's parameters as a frozen `config_class`, validated."""
    values = user_variables(namespace)
    fields = {f.name: f for f in dataclasses.fields(config_class)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ParameterError(
            f"unknown parameter(s) {', '.join(unknown)}; this notebook takes: {', '.join(fields)}"
        )
    hints = typing.get_type_hints(config_class)
    for name, value in values.items():
        _check_type(name, value, hints[name])
    values |= runs_from_earlier_steps(config_class, values)
    config = config_class(**values)
    validate = getattr(config, "validate", None)
    if validate:
        validate()
    return config


def runs_from_earlier_steps(config_class, values: dict) -> dict:
    """Empty run parameters that an earlier notebook produced, from its outputs in report_dir.

    Run interactively, notebook 3 then finds the AE run notebook 2 just trained (and so on),
    without copying paths by hand; the pipeline passes them explicitly.
    """
    names = getattr(config_class, "FROM_EARLIER_STEPS", ())
    if not names:
        return {}
    report_dir = Path(values.get("report_dir") or _field_default(config_class, "report_dir"))
    found = {}
    for name in names:
        if values.get(name):
            continue
        outputs = sorted(report_dir.glob("*.outputs.json"), key=lambda p: p.stat().st_mtime)
        for path in reversed(outputs):
            produced = json.loads(path.read_text()).get("pass_on", {}).get(name)
            if produced:
                print(f"{name} = {produced!r} (from {path})")
                found[name] = produced
                break
    return found


def _field_default(config_class, name: str):
    return next(f.default for f in dataclasses.fields(config_class) if f.name == name)


def _check_type(name: str, value, hint) -> None:
    allowed = (
        typing.get_args(hint)
        if typing.get_origin(hint) in (typing.Union, types.UnionType)
        else (hint,)
    )
    allowed = tuple(typing.get_origin(a) or a for a in allowed)
    allowed = tuple(type(None) if a is None else a for a in allowed)
    if float in allowed and isinstance(value, int) and not isinstance(value, bool):
        return  # 1 is a fine value for a float parameter
    if isinstance(value, bool) and bool not in allowed:
        raise ParameterError(
            f"parameter {name}={value!r}: expected {_type_names(allowed)}, got bool"
        )
    if not isinstance(value, allowed):
        raise ParameterError(
            f"parameter {name}={value!r}: expected {_type_names(allowed)}, got {type(value).__name__}"
        )


def _type_names(types_: tuple) -> str:
    return " or ".join("None" if t is type(None) else t.__name__ for t in types_)


def require_path(name: str, value: str | None, what: str) -> Path:
    """A parameter that must name an existing file or folder."""
    if not value:
        raise ParameterError(f"parameter {name} is empty: it must name {what}")
    path = Path(value)
    if not path.exists():
        raise ParameterError(f"parameter {name}={value!r}: {what} not found at {path.resolve()}")
    return path


def require_gan_and_classifier_runs(config) -> None:
    """The GAN run must exist; the informativity run too, when one is given."""
    require_path("gan_run", config.gan_run, "the GAN run directory (from notebook 03)")
    if config.informativity_run:
        require_path(
            "informativity_run", config.informativity_run, "the classifiers' run directory"
        )


def write_step_outputs(report_dir: str | os.PathLike, step: str, outputs: dict) -> Path:
    """Record what a notebook produced (run dirs, metrics) for the pipeline's next step."""
    path = Path(report_dir) / f"{step}.outputs.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(outputs, indent=2, default=str))
    os.replace(temporary, path)
    return path


def save_figure(figure, name: str, figures_dir: str | os.PathLike = "figures") -> list[Path]:
    """Save a matplotlib figure as PNG and PDF under figures/ and return the paths."""
    folder = Path(figures_dir)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{name}.png", folder / f"{name}.pdf"]
    for path in paths:
        figure.savefig(path, bbox_inches="tight", dpi=150)
    return paths


# --- the parameters of each notebook -------------------------------------------------------


def _default_data(data: str) -> str:
    """'' means the shipped AV-Digits set."""
    if data:
        return data
    from s2ilib.datasets.avdigits import AVDIGITS_DIR

    return str(AVDIGITS_DIR)


def _check_recipe(name: str, value: str) -> None:
    from s2ilib.train.recipes import RECIPE_NAMES

    if value not in RECIPE_NAMES:
        raise ParameterError(
            f"parameter {name}={value!r}: expected one of {', '.join(RECIPE_NAMES)}"
        )


@dataclasses.dataclass(frozen=True)
class CommonParameters:
    """Parameters every notebook takes (the pipeline passes them all)."""

    data: str = ""  # data set folder; "" = the shipped AV-Digits (data/avdigits)
    preset: str = "demo"  # model size: "tiny" (tests), "demo" (2-core CPU), "paper", ...
    seed: int = 0
    device: str = "auto"  # "auto" = CUDA when present, else CPU
    smoke: bool = False  # a quick run with tiny budgets (tests)
    report_dir: str = "reports/interactive"  # where step outputs (run dirs, metrics) are recorded
    runs_root: str = "runs"  # where training run directories are created
    figures_dir: str = "figures"  # where paper-ready figures are saved

    def validate(self) -> None:
        if self.preset not in PRESET_NAMES:
            raise ParameterError(
                f"parameter preset={self.preset!r}: expected one of {', '.join(PRESET_NAMES)}"
            )
        require_path("data", _default_data(self.data), "the data set folder")

    @property
    def data_path(self) -> Path:
        return Path(_default_data(self.data))


@dataclasses.dataclass(frozen=True)
class DataExplorationParameters(CommonParameters):
    """01_data_exploration."""

    vegas_dir: str = (
        ""  # unpacked VEGAS spectrograms; "" = S2I_VEGAS_DIR or the cache (skipped when absent)
    )
    examples_per_class: int = 2  # example sounds shown per class


@dataclasses.dataclass(frozen=True)
class AutoencoderParameters(CommonParameters):
    """02_audio_autoencoder: train (or load) stage 1."""

    ae_run: str = ""  # an existing AE run directory to load instead of training; "" = train
    embedding_dim: int = 512  # D, the audio embedding width (paper: 128..2048)
    num_epochs: int = 36  # passes over the training sounds (demo on AV-Digits: ~4 min, 2 cores)
    batch_size: int = 64  # the authors' batch size
    optimizer: str = "adam"  # "sgd" (authors': lr 0.05, momentum 0.9) or "adam"
    lr: float = 1e-2  # base learning rate (Adam 1e-3 left the demo AE at the mean image for long)
    map_method: str = "pca"  # embedding map: "pca" or "tsne"
    recipe: str = "aligned"  # its alignment stage, if any, runs here ("paper": none)
    align_run: str = ""  # an existing alignment run to load instead of training; "" = train
    align_epochs: int = 0  # epochs of the alignment stage; 0 = the recipe's

    def validate(self) -> None:
        super().validate()
        _check_recipe("recipe", self.recipe)
        for name in ("ae_run", "align_run"):
            if getattr(self, name):
                require_path(name, getattr(self, name), "the run directory")
        if self.optimizer not in ("sgd", "adam"):
            raise ParameterError(
                f"parameter optimizer={self.optimizer!r}: expected 'sgd' or 'adam'"
            )
        if self.map_method not in ("pca", "tsne"):
            raise ParameterError(
                f"parameter map_method={self.map_method!r}: expected 'pca' or 'tsne'"
            )


@dataclasses.dataclass(frozen=True)
class GANParameters(CommonParameters):
    """03_gan_training: train (or load) stage 2 on the frozen encoder."""

    # empty: the runs notebook 2 recorded in report_dir
    FROM_EARLIER_STEPS = ("ae_run", "align_run")

    recipe: str = "aligned"  # the main run's recipe (s2ilib.train.recipes): "aligned" or "paper"
    compare_recipe: str = "paper"  # a second full-length run with this recipe; "" = none
    ae_run: str = ""  # the AE run whose encoder is frozen (required unless gan_run is given)
    align_run: str = ""  # the alignment run (recipes with an alignment stage); from notebook 2
    gan_run: str = ""  # an existing GAN run to load instead of training; "" = train
    loss: str = ""  # adversarial loss of the main run; "" = the recipe's
    compare_losses: str = ""  # comma-separated losses trained briefly for comparison; "" = none
    num_epochs: int = 40  # passes over the training sounds
    compare_epochs: int = 10  # epochs of each comparison run
    batch_size: int = 64
    pixel_weight: float = 10.0  # weight of the L1 pixel loss
    lr_generator: float = 2e-4
    lr_discriminator: float = 2e-4

    def validate(self) -> None:
        super().validate()
        if not (self.ae_run or self.gan_run):
            raise ParameterError(
                "parameter ae_run is empty: give the AE run (from 02) or a gan_run to load"
            )
        for name in ("ae_run", "align_run", "gan_run"):
            if getattr(self, name):
                require_path(name, getattr(self, name), "the run directory")
        from s2ilib.train.config import GAN_LOSS_NAMES

        _check_recipe("recipe", self.recipe)
        if self.compare_recipe:
            _check_recipe("compare_recipe", self.compare_recipe)
        for loss in [self.loss or "paper", *self.comparison_losses]:
            if loss not in GAN_LOSS_NAMES:
                raise ParameterError(f"loss {loss!r}: expected one of {', '.join(GAN_LOSS_NAMES)}")

    @property
    def comparison_losses(self) -> list[str]:
        return [name.strip() for name in self.compare_losses.split(",") if name.strip()]


@dataclasses.dataclass(frozen=True)
class EvaluationParameters(CommonParameters):
    """04_informativity_evaluation: classifiers, metrics table, baselines."""

    FROM_EARLIER_STEPS = ("gan_run",)

    gan_run: str = ""  # the GAN run to evaluate; empty: the one notebook 03 recorded
    informativity_run: str = ""  # trained classifiers to reuse; empty: train them here
    informativity_epochs: int = 20  # epochs of the classifiers' training
    compare_runs: str = ""  # comma-separated other GAN runs measured in the same report
    split: str = "test"  # the split evaluated (test: unseen voices)
    samples: int = 3  # generator draws per sound (test-time dropout)
    bootstrap: int = 1000  # bootstrap resamples of the 95% intervals

    def validate(self) -> None:
        super().validate()
        require_gan_and_classifier_runs(self)
        for run in self.comparison_runs:
            require_path("compare_runs", run, "a GAN run directory")
        if self.samples < 1:
            raise ParameterError(f"parameter samples={self.samples}: expected at least 1")

    @property
    def comparison_runs(self) -> list[str]:
        return [run.strip() for run in self.compare_runs.split(",") if run.strip()]


@dataclasses.dataclass(frozen=True)
class GalleryParameters(CommonParameters):
    """05_qualitative_gallery and 06_imagine: look at what a trained GAN imagines."""

    FROM_EARLIER_STEPS = ("gan_run", "informativity_run")

    gan_run: str = ""  # the GAN run; empty: the one notebook 03 recorded in report_dir
    informativity_run: str = ""  # ranks best/worst; empty: notebook 04's (none: no ranking)
    split: str = "test"  # sounds shown (test: unseen voices)
    samples: int = 4  # imagined images per sound (test-time dropout draws)
    cases: int = 6  # sounds in the best and in the worst row
    interpolation_steps: int = 8  # images between two sounds' embeddings
    audio_file: str = ""  # 06: a sound file of your own to imagine; empty: a test sound
    live_widgets: bool = True  # 06: build the live ipywidgets controls (off in headless runs)

    def validate(self) -> None:
        super().validate()
        require_gan_and_classifier_runs(self)
        if self.audio_file:
            require_path("audio_file", self.audio_file, "the sound file")
        for name in ("samples", "cases", "interpolation_steps"):
            if getattr(self, name) < 1:
                raise ParameterError(f"parameter {name}={getattr(self, name)}: expected at least 1")
