"""Notebook support: validated parameters, the runs earlier steps made, step outputs.

Each notebook has one cell tagged `parameters` holding literals only. papermill injects
overrides after it and merely warns on unknown names, so the cell after it calls
`load_parameters(StepParameters, globals())`: every user variable defined so far becomes a
field of a frozen dataclass, and an unknown name, a wrong type or a missing path fails
right there with a message naming the parameter. (A test checks that every literal of a
parameters cell equals its dataclass default.)

Paths in parameters resolve against the repository root, whatever the kernel's working
directory (JupyterLab starts kernels in notebooks/). An empty run parameter means the run
an earlier step recorded in this report folder; opened interactively (report_dir left at
its default, reports/interactive), then also the newest run recorded by a report under
reports/ (the main job's), then the newest run of that kind in runs/. One printed line
says which run was taken and from where.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import types
import typing
from pathlib import Path

from s2ilib.errors import S2IError
from s2ilib.models import PRESET_NAMES  # torch-free
from s2ilib.train.config import AE_MAIN_JOB, FlowTrainConfig, GANTrainConfig  # torch-free

REPO_ROOT = Path(__file__).resolve().parents[1]
REPORTS_ROOT = REPO_ROOT / "reports"
# Names IPython defines in every namespace; they are not parameters.
_IPYTHON_NAMES = {"In", "Out", "get_ipython", "exit", "quit", "open"}
# The kinds of run each run parameter names (for the newest-run fallback in runs/).
RUN_KINDS = {
    "ae_run": ("ae",),
    "align_run": ("align",),
    "decoder_run": ("gan", "flow"),  # a translator: a GAN's generator or a flow's decoder
    "informativity_run": ("informativity",),
}
# Names changed in this release (old -> new), still read for one release: a parameter
# given under its old name (`--set gan_run=...`, papermill, an old report's pass_on), and
# the step an old report's files and summary name.
RENAMED_PARAMETERS = {"gan_run": "decoder_run"}
RENAMED_STEPS = {"04_gan_training": "04_decoders"}
# Quick budgets of every stage when a notebook runs with smoke=True (tests): seconds each.
SMOKE = {
    "ae": {"num_steps": 6, "limit_per_class": 4, "batch_size": 8, "log_every": 2,
           "sample_every": 3, "checkpoint_every": 3, "val_samples": 16},
    "align": {"num_steps": 4, "limit_per_class": 4, "batch_size": 8, "log_every": 2,
              "sample_every": 2, "checkpoint_every": 2, "val_samples": 16,
              "image_channels": [8, 16]},
    "gan": {"num_steps": 4, "limit_per_class": 4, "batch_size": 8, "log_every": 2,
            "sample_every": 2, "checkpoint_every": 2, "val_samples": 16},
    # on top of "gan" for a flow recipe: a narrow U-Net and two ODE steps, so that notebook
    # 05 draws the whole test split in seconds
    "flow": {"channels": [16, 32, 32], "condition_dim": 32, "sample_steps": 2},
    "informativity": {"num_epochs": 1, "limit_per_class": 20},
    "ceiling": {"num_steps": 4, "limit_per_class": 4, "batch_size": 8, "log_every": 2,
                "checkpoint_every": 2},
    # nn_limit_per_class: the retrieval baseline searches 10 training sounds a class, not all
    "evaluate": {"bootstrap": 100, "nn_limit_per_class": 10},
    "probe": {"max_per_split": 100},
}  # fmt: skip


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
    values = _typed(config_class, user_variables(namespace))
    values = resolve_paths(config_class, values)
    values |= runs_from_earlier_steps(config_class, values)
    config = config_class(**values)
    config.validate()
    return config


def check_parameters(config_class, values: dict, pending=frozenset()):
    """`values` checked as the notebook's config cell checks them (names, types, allowed
    values and ranges, paths, the training configs made of them), without running anything:
    the pipeline's check before its first step. `pending` names the run parameters an
    earlier step of the job will make: not checked as paths yet."""
    values = resolve_paths(config_class, _typed(config_class, values))
    config = config_class(**values)
    config.validate(frozenset(pending))
    return config


def renamed_parameters(values: dict, warn: bool = True) -> dict:
    """`values` with every parameter given under its old name (RENAMED_PARAMETERS) under
    its new one; `warn`: one DeprecationWarning line on stderr per old name given."""
    renamed = dict(values)
    for old, new in RENAMED_PARAMETERS.items():
        if old not in renamed:
            continue
        value = renamed.pop(old)
        if warn:
            print(
                f"DeprecationWarning: parameter {old} is now {new}; {old} is read as {new} "
                "in this release only",
                file=sys.stderr,
            )
        if value and renamed.get(new) and renamed[new] != value:
            raise ParameterError(
                f"parameters {old}={value!r} and {new}={renamed[new]!r} differ: give {new} only"
            )
        if value or new not in renamed:
            renamed[new] = value
    return renamed


def _typed(config_class, values: dict) -> dict:
    """`values`, each the name of a field of `config_class` with a value of its type
    (parameters under their old names taken as the new ones, with a warning)."""
    values = renamed_parameters(values)
    fields = [f.name for f in dataclasses.fields(config_class)]
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ParameterError(
            f"unknown parameter(s) {', '.join(unknown)}; this notebook takes: {', '.join(fields)}"
        )
    hints = typing.get_type_hints(config_class)
    for name, value in values.items():
        check_type(name, value, hints[name])
    return dict(values)


def resolve_paths(config_class, values: dict) -> dict:
    """`values` with every path parameter (config_class.PATHS) absolute: relative paths are
    taken from the repository root, "" stays "" (the default it stands for)."""
    resolved = dict(values)
    for name in config_class.PATHS:
        value = resolved.get(name, _field_default(config_class, name))
        if isinstance(value, str) and value:
            resolved[name] = ",".join(str(repo_path(part)) for part in value.split(","))
    return resolved


def repo_path(value: str) -> Path:
    """A path parameter: absolute as given, relative from the repository root."""
    path = Path(value.strip()).expanduser()
    return path if path.is_absolute() else REPO_ROOT / path


def runs_from_earlier_steps(config_class, values: dict) -> dict:
    """Empty run parameters filled with the runs earlier notebooks made (see the module
    docstring for where they are looked for); each found one is printed."""
    found = {}
    if not config_class.FROM_EARLIER_STEPS:
        return found
    default_report = repo_path(_field_default(config_class, "report_dir"))
    report_dir = Path(values.get("report_dir") or default_report)
    interactive = report_dir == default_report
    for name in config_class.FROM_EARLIER_STEPS:
        if values.get(name):
            continue
        where = recorded_run(name, report_dir, interactive)
        if where is None and interactive:
            where = newest_run(name, values)
        if where:
            found[name], source = where
            print(f"{name} = {found[name]!r} (from {source})")
    return found


def recorded_run(name: str, report_dir: Path, everywhere: bool) -> tuple[str, Path] | None:
    """(run, outputs file) of the newest step output that passes `name` on: this report
    folder first, then (`everywhere`) every report folder under reports/, newest first."""
    for folder in (report_dir, REPORTS_ROOT) if everywhere else (report_dir,):
        pattern = "*.outputs.json" if folder == report_dir else "*/*.outputs.json"
        outputs = sorted(folder.glob(pattern), key=lambda p: p.stat().st_mtime, reverse=True)
        for path in outputs:
            passed = renamed_parameters(json.loads(path.read_text()).get("pass_on", {}), False)
            produced = passed.get(name)
            if produced and Path(produced).exists():
                return produced, path
    return None


def newest_run(name: str, values: dict) -> tuple[str, Path] | None:
    """(run, runs root) of the newest run of the parameter's kinds that has a checkpoint
    (run folders are numbered in order of creation, whatever their kind)."""
    kinds = RUN_KINDS.get(name)
    runs_root = repo_path(values.get("runs_root") or "runs")
    if kinds is None or not runs_root.is_dir():
        return None
    found = (runs_root.glob(f"*-{kind}-*/checkpoints/last.pt") for kind in kinds)
    candidates = sorted((path for paths in found for path in paths), reverse=True)
    return (str(candidates[0].parents[1]), runs_root) if candidates else None


def _field_default(config_class, name: str):
    return next(f.default for f in dataclasses.fields(config_class) if f.name == name)


def check_type(name: str, value, hint) -> None:
    """A ParameterError unless `value` is of the parameter's type `hint`."""
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


def require_choice(name: str, value, choices) -> None:
    """A parameter that must be one of `choices`."""
    if value not in choices:
        expected = ", ".join(map(repr, choices))
        raise ParameterError(f"parameter {name}={value!r}: expected one of {expected}")


def require_at_least(config, names, minimum: int) -> None:
    """Parameters of `config` that must be at least `minimum`."""
    for name in names:
        if getattr(config, name) < minimum:
            raise ParameterError(
                f"parameter {name}={getattr(config, name)!r}: expected at least {minimum}"
            )


def write_step_outputs(report_dir: str | os.PathLike, step: str, outputs: dict) -> Path:
    """Record what a notebook produced (run dirs, metrics) for the pipeline's next step,
    and how many sounds the speech front computed or took from its cache in this step."""
    from s2ilib.atomic import write_json

    cache = sys.modules.get("s2ilib.models.front_cache")  # loaded only where a front ran
    activity = cache.activity() if cache else None
    outputs = outputs | ({"speech_front_cache": activity} if activity else {})
    return write_json(Path(report_dir) / f"{step}.outputs.json", outputs, default=str)


def smoke_settings(stage: str, smoke: bool) -> dict:
    """The quick budget of `stage` (SMOKE) when `smoke`, else nothing."""
    return dict(SMOKE[stage]) if smoke else {}


# --- the parameters of each notebook -------------------------------------------------------


def _default_data(data: str) -> str:
    """'' means the shipped AV-Digits set."""
    if data:
        return data
    from s2ilib.datasets.avdigits import AVDIGITS_DIR

    return str(AVDIGITS_DIR)


# What a run parameter holds, in the pipeline's check, while an earlier step is still to
# make that run: the configs built of it need a name, and no path can be checked yet.
PENDING_RUN = "(the run an earlier step makes)"


def _run_or_pending(config, name: str, pending) -> str:
    return getattr(config, name) or (PENDING_RUN if name in pending else "")


def _require_run(config, name: str, what: str, pending) -> None:
    """A run parameter that must name a run, unless an earlier step is still to make it."""
    if not (name in pending and not getattr(config, name)):
        require_path(name, getattr(config, name), what)


def _check_runs(config, names) -> None:
    """Optional run parameters: each one given must exist."""
    for name in names:
        if getattr(config, name):
            require_path(name, getattr(config, name), "the run directory")


def _training_configs(config, build):
    """build(): the training configs a notebook makes of its parameters, whose checks
    (s2ilib.train.config) are the rules of those parameters' ranges; a failing check is
    reported as a ParameterError with the notebook's own parameters that differ from
    their defaults (the pipeline's common ones and paths left out)."""
    try:
        return build()
    except S2IError as error:
        common = {f.name for f in dataclasses.fields(TrainingParameters)} | {"preset"}
        changed = [
            f"{f.name}={getattr(config, f.name)!r}"
            for f in dataclasses.fields(config)
            if f.name not in common | set(config.PATHS) and getattr(config, f.name) != f.default
        ]
        given = f"parameter(s) {', '.join(changed)}: " if changed else ""
        raise ParameterError(f"{given}{error}") from None


@dataclasses.dataclass(frozen=True)
class StepParameters:
    """What every notebook takes: its data, where it records and saves."""

    PATHS = ("data", "report_dir", "figures_dir")  # resolved from the repository root
    FROM_EARLIER_STEPS = ()  # run parameters that default to what an earlier step made

    data: str = ""  # data set folder; "" = the shipped AV-Digits (data/avdigits)
    seed: int = 0
    report_dir: str = "reports/interactive"  # where step outputs (run dirs, metrics) are recorded
    figures_dir: str = "figures"  # where paper-ready figures are saved

    def validate(self, pending=frozenset()) -> None:
        """Every parameter checked; `pending`: run parameters an earlier step will make."""
        require_path("data", _default_data(self.data), "the data set folder")

    @property
    def data_path(self) -> Path:
        return Path(_default_data(self.data))

    @property
    def evaluation_dir(self) -> Path:
        """Where notebook 05 writes its evaluation (metrics, per_sound.csv) and notebook 06
        reads the per-sound scores back."""
        return Path(self.report_dir) / "evaluation"


@dataclasses.dataclass(frozen=True)
class ComputeParameters(StepParameters):
    """A notebook that runs networks."""

    device: str = "auto"  # "auto" = CUDA when present, else CPU


@dataclasses.dataclass(frozen=True)
class TrainingParameters(ComputeParameters):
    """A notebook that trains runs."""

    PATHS = StepParameters.PATHS + ("runs_root",)

    smoke: bool = False  # a quick run with tiny budgets (tests)
    runs_root: str = "runs"  # where training run directories are created


@dataclasses.dataclass(frozen=True)
class DataExplorationParameters(StepParameters):
    """01_data_exploration."""

    PATHS = StepParameters.PATHS + ("vegas_dir",)

    vegas_dir: str = ""  # unpacked VEGAS spectrograms; "" = S2I_VEGAS_DIR or the cache
    examples_per_class: int = 2  # example sounds shown per class
    examples_to_hear: int = 6  # clips to listen to: half human recordings, half synthetic

    def validate(self, pending=frozenset()) -> None:
        super().validate(pending)
        require_at_least(self, ("examples_per_class",), 1)
        require_at_least(self, ("examples_to_hear",), 0)


@dataclasses.dataclass(frozen=True)
class AutoencoderParameters(TrainingParameters):
    """02_audio_autoencoder: train (or load) stage 1."""

    PATHS = TrainingParameters.PATHS + ("ae_run",)

    preset: str = "demo"  # model size: "tiny" (tests), "demo" (2-core CPU), "paper"
    ae_run: str = ""  # an existing AE run directory to load instead of training; "" = train
    embedding_dim: int = 512  # D, the audio embedding width (paper: 128..2048)
    # The encoder's input network (docs/ARCHITECTURE.md, "Words"): "speech" (Google's
    # pretrained speech_embedding, frozen, and a trained projection: it hears unseen people
    # far better, RESULTS.md "A pretrained speech front"), "conv" (the paper's conv layers,
    # trained here from the sounds alone), "whisper" (Whisper-base's encoder, frozen, and a
    # trained projection; the main job's, reading the clips), or "auto": whisper for
    # AV-Digits, conv for other data
    # (datasets.sounds.front_for)
    front: str = "auto"
    # What a frozen front reads: "spectrogram" (the 8-bit images), "audio" (the data set's
    # clips), or "auto": the audio where the front is frozen and the data set ships it
    # (train.common.front_input_for)
    front_input: str = "auto"
    # The main job's stage-1 settings (train.config.AE_MAIN_JOB, which says why they are
    # not `s2i train-ae`'s, the authors')
    num_epochs: int = AE_MAIN_JOB["num_epochs"]  # passes over the training sounds
    batch_size: int = 64  # the authors' batch size
    optimizer: str = AE_MAIN_JOB["optimizer"]  # "sgd" (authors': lr 0.05, momentum 0.9), "adam"
    lr: float = AE_MAIN_JOB["lr"]  # base learning rate (Adam 1e-3 left the demo AE grey long)
    map_method: str = "pca"  # embedding map: "pca" or "tsne"

    def validate(self, pending=frozenset()) -> None:
        super().validate(pending)
        require_choice("preset", self.preset, PRESET_NAMES)
        require_choice("front", self.front, ("auto", "conv", "speech", "whisper"))
        require_choice("front_input", self.front_input, ("auto", "spectrogram", "audio"))
        _check_runs(self, ("ae_run",))
        require_choice("optimizer", self.optimizer, ("sgd", "adam"))
        require_choice("map_method", self.map_method, ("pca", "tsne"))
        if not self.ae_run:
            _training_configs(self, self.training_config)

    def training_config(self):
        """The AETrainConfig this notebook trains with."""
        from s2ilib.datasets.sounds import front_for
        from s2ilib.train.config import AETrainConfig

        return AETrainConfig.from_dict({
            "data": str(self.data_path), "preset": self.preset,
            "embedding_dim": self.embedding_dim, "front": front_for(self.data_path, self.front),
            "front_input": self.front_input,
            "num_epochs": self.num_epochs, "batch_size": self.batch_size,
            "optimizer": self.optimizer, "lr": self.lr, "seed": self.seed,
            **smoke_settings("ae", self.smoke),
        })  # fmt: skip


@dataclasses.dataclass(frozen=True)
class AlignmentParameters(TrainingParameters):
    """03_alignment: the recipe's alignment stage on the AE run (or load a finished one)."""

    PATHS = TrainingParameters.PATHS + ("ae_run", "align_run")
    FROM_EARLIER_STEPS = ("ae_run",)

    recipe: str = "aligned"  # the recipe whose alignment stage runs ("paper": none)
    ae_run: str = ""  # the AE run to align; empty: the one notebook 02 recorded
    align_run: str = ""  # an existing alignment run to load instead of training; "" = train
    align_epochs: int = 0  # epochs of the alignment stage; 0 = the recipe's
    map_method: str = "pca"  # embedding map: "pca" or "tsne"

    def validate(self, pending=frozenset()) -> None:
        from s2ilib.train.recipes import RECIPE_NAMES

        super().validate(pending)
        require_choice("recipe", self.recipe, RECIPE_NAMES)
        _require_run(self, "ae_run", "the AE run directory (from notebook 02)", pending)
        _check_runs(self, ("align_run",))
        require_choice("map_method", self.map_method, ("pca", "tsne"))
        require_at_least(self, ("align_epochs",), 0)
        if not self.align_run:
            _training_configs(self, lambda: self.alignment_config(pending))

    def alignment_config(self, pending=frozenset()):
        """The AlignTrainConfig this notebook trains with (None: the recipe has no alignment)."""
        from s2ilib.train.recipes import align_config

        settings = {"data": str(self.data_path), "seed": self.seed,
                    **smoke_settings("align", self.smoke)}  # fmt: skip
        if self.align_epochs:
            settings["num_epochs"] = self.align_epochs
        return align_config(self.recipe, _run_or_pending(self, "ae_run", pending), settings)


@dataclasses.dataclass(frozen=True)
class DecoderParameters(TrainingParameters):
    """04_decoders: train (or load) stage 2, the decoders (GAN, flow) on the frozen encoder."""

    PATHS = TrainingParameters.PATHS + ("ae_run", "align_run", "decoder_run")
    FROM_EARLIER_STEPS = ("ae_run", "align_run")
    GAN_ONLY = ("pixel_weight", "lr_generator", "lr_discriminator")  # no flow has them

    recipe: str = "flow"  # the main run's recipe (s2ilib.train.recipes)
    # comma-separated recipes also trained at full length, beside the main one ("" = none):
    # "aligned" is the paper's dense generator and its GAN, which the main job always shows
    # beside the flow; "aligned,paper" adds the authors' recipe as published
    compare_recipe: str = "aligned"
    ae_run: str = ""  # the AE run (recipes without alignment); empty: notebook 02's
    align_run: str = ""  # the alignment run (recipes with alignment); empty: notebook 03's
    decoder_run: str = (
        ""  # an existing decoder run (GAN or flow) to load instead of training; "" = train
    )
    # generator/discriminator preset; "" = the AE run's; "paper-attention": the authors'
    # 2026 convolutional-attention generator (69M parameters: a GPU's work)
    generator_preset: str = ""
    loss: str = ""  # adversarial loss of the main run (a GAN recipe); "" = the recipe's
    # comma-separated losses trained briefly with the main recipe (a GAN recipe); "" = none
    compare_losses: str = ""
    # passes over the training sounds: the main run's (the flow's) length, for the GANs too
    num_epochs: int = FlowTrainConfig.num_epochs
    compare_epochs: int = 10  # epochs of each comparison run
    batch_size: int = 64
    # The GAN runs' own settings (a flow decoder has none of them; GANTrainConfig's
    # defaults, their one home)
    pixel_weight: float = GANTrainConfig.pixel_weight  # weight of the L1 pixel loss
    lr_generator: float = GANTrainConfig.lr_generator
    lr_discriminator: float = GANTrainConfig.lr_discriminator

    def validate(self, pending=frozenset()) -> None:
        from s2ilib.train.config import GAN_LOSS_NAMES
        from s2ilib.train.recipes import RECIPE_NAMES, recipe

        super().validate(pending)
        if not (self.ae_run or self.decoder_run or "ae_run" in pending):
            raise ParameterError(
                "parameter ae_run is empty: give the AE run (from 02) or a decoder_run to load"
            )
        _check_runs(self, ("ae_run", "align_run", "decoder_run"))
        require_choice("recipe", self.recipe, RECIPE_NAMES)
        for name in self.comparison_recipes:
            require_choice("compare_recipe", name, RECIPE_NAMES)
        if self.generator_preset:
            require_choice("generator_preset", self.generator_preset, PRESET_NAMES)
        for loss in [self.loss or "paper", *self.comparison_losses]:
            require_choice("loss", loss, GAN_LOSS_NAMES)
        if (self.loss or self.comparison_losses) and recipe(self.recipe).decoder == "flow":
            raise ParameterError(
                f"parameters loss={self.loss!r}, compare_losses={self.compare_losses!r}: "
                f"adversarial losses belong to GAN recipes, and recipe {self.recipe!r} trains "
                "a flow-matching decoder (set recipe='aligned' to compare losses)"
            )
        self._refuse_gan_settings_without_gan()
        if not self.decoder_run:
            _training_configs(self, lambda: self.training_configs(pending))

    def _refuse_gan_settings_without_gan(self) -> None:
        """A GAN-only parameter changed while every recipe of the job trains a flow would
        be silently ignored: refuse it."""
        from s2ilib.train.recipes import recipe

        names = [self.recipe, *self.comparison_recipes]
        if any(recipe(name).decoder == "gan" for name in names):
            return
        for name in self.GAN_ONLY:
            value = getattr(self, name)
            if value != getattr(GANTrainConfig, name):
                raise ParameterError(
                    f"parameter {name}={value!r} applies to GAN runs only, and recipe "
                    f"{self.recipe!r} with compare_recipe={self.compare_recipe!r} trains "
                    "flow-matching decoders alone: add a GAN recipe (compare_recipe="
                    f"'aligned') or leave {name} at its default"
                )

    def decoder_settings(self) -> dict:
        """What every decoder run of this notebook shares, on top of each recipe's own."""
        return {
            "data": str(self.data_path), "num_epochs": self.num_epochs,
            "batch_size": self.batch_size, "seed": self.seed, "pixel_weight": self.pixel_weight,
            "lr_generator": self.lr_generator, "lr_discriminator": self.lr_discriminator,
            **({"preset": self.generator_preset} if self.generator_preset else {}),
            **smoke_settings("gan", self.smoke),
        }  # fmt: skip

    def training_configs(self, pending=frozenset()) -> list:
        """The configs of every run this notebook trains: its recipes' and the short
        runs of the adversarial-loss comparison."""
        from s2ilib.train.recipes import gan_config, recipe_configs

        ae_run = _run_or_pending(self, "ae_run", pending)
        align_run = _run_or_pending(self, "align_run", pending)
        own_loss = {self.recipe: {"loss": self.loss}} if self.loss else {}
        configs = recipe_configs(
            [self.recipe, *self.comparison_recipes], ae_run, align_run, self.decoder_settings(),
            overrides=own_loss, flow_settings=smoke_settings("flow", self.smoke),
        )  # fmt: skip
        short = self.decoder_settings() | {"num_epochs": self.compare_epochs}
        losses = [gan_config(self.recipe, ae_run, align_run, short | {"loss": loss})
                  for loss in self.comparison_losses]  # fmt: skip
        return [*configs.values(), *losses]

    @property
    def comparison_recipes(self) -> list[str]:
        return [name.strip() for name in self.compare_recipe.split(",") if name.strip()]

    @property
    def comparison_losses(self) -> list[str]:
        return [name.strip() for name in self.compare_losses.split(",") if name.strip()]


GANParameters = DecoderParameters  # deprecated (one release): the old name


@dataclasses.dataclass(frozen=True)
class EvaluationParameters(TrainingParameters):
    """05_informativity_evaluation: classifiers, metrics table, baselines."""

    PATHS = TrainingParameters.PATHS + (
        "decoder_run", "informativity_run", "compare_runs", "ceiling_run",
    )  # fmt: skip
    FROM_EARLIER_STEPS = ("decoder_run",)

    decoder_run: str = ""  # the decoder run (GAN or flow) to evaluate; empty: notebook 04's
    informativity_run: str = ""  # trained classifiers to reuse; empty: train them here
    informativity_epochs: int = 20  # epochs of the classifiers' training
    compare_runs: str = ""  # comma-separated other decoder runs measured in the same report
    ceiling_run: str = ""  # a supervised-ceiling run of this split to reuse; "" = train one
    ceiling_epochs: int = 60  # epochs of the supervised ceiling (0: none)
    split: str = "test"  # the split evaluated (test: unseen voices)
    samples: int = 3  # draws per sound (a flow's starting noise, a GAN's test-time dropout)
    bootstrap: int = 1000  # bootstrap resamples of the 95% intervals

    def validate(self, pending=frozenset()) -> None:
        from s2ilib.formats import SPLITS

        super().validate(pending)
        _require_run(self, "decoder_run", "the decoder run directory (from notebook 04)", pending)
        _check_runs(self, ("informativity_run", "ceiling_run"))
        if "compare_runs" not in pending:
            for run in self.comparison_runs:
                require_path("compare_runs", run, "a decoder run directory")
        require_choice("split", self.split, SPLITS)
        require_at_least(self, ("samples", "bootstrap"), 1)
        require_at_least(self, ("ceiling_epochs",), 0)
        if not self.informativity_run:
            _training_configs(self, self.informativity_config)
        if not self.ceiling_run and self.ceiling_epochs:
            _training_configs(self, lambda: self.ceiling_config(PENDING_RUN, {}))

    def informativity_config(self, image_size: int = 32):
        """The InformativityTrainConfig of the classifiers, for images of `image_size`."""
        from s2ilib.train.config import InformativityTrainConfig

        return InformativityTrainConfig.from_dict({
            "data": str(self.data_path), "image_size": image_size,
            "num_epochs": self.informativity_epochs, "seed": self.seed,
            **smoke_settings("informativity", self.smoke),
        })  # fmt: skip

    def ceiling_config(self, ae_run: str, augmentation: dict):
        """The CeilingTrainConfig of the supervised ceiling on the encoder of `ae_run`,
        with that encoder's own `augmentation` (train.augment.augmentation_of_run)."""
        from s2ilib.train.config import CeilingTrainConfig

        return CeilingTrainConfig.from_dict({
            **augmentation, "ae_run": str(ae_run), "data": str(self.data_path),
            "split": self.split, "num_epochs": self.ceiling_epochs, "seed": self.seed,
            **smoke_settings("ceiling", self.smoke),
        })  # fmt: skip

    @property
    def comparison_runs(self) -> list[str]:
        return [run.strip() for run in self.compare_runs.split(",") if run.strip()]


@dataclasses.dataclass(frozen=True)
class GalleryParameters(ComputeParameters):
    """06_qualitative_gallery: look at what a trained decoder (GAN or flow) imagines."""

    PATHS = ComputeParameters.PATHS + ("decoder_run", "informativity_run", "compare_runs")
    FROM_EARLIER_STEPS = ("decoder_run", "informativity_run")

    decoder_run: str = ""  # the decoder run (GAN or flow); empty: the one notebook 04 recorded
    informativity_run: str = ""  # ranks best/worst; empty: notebook 05's (none: no ranking)
    compare_runs: str = ""  # comma-separated other decoder runs whose draws are shown beside
    split: str = "test"  # sounds shown (test: unseen voices)
    samples: int = 4  # imagined images per sound (draws: a flow's noises, a GAN's dropout masks)
    cases: int = 6  # sounds in the best and in the worst row
    interpolation_steps: int = 8  # images between two sounds' embeddings

    def validate(self, pending=frozenset()) -> None:
        from s2ilib.formats import SPLITS

        super().validate(pending)
        _require_run(self, "decoder_run", "the decoder run directory (from notebook 04)", pending)
        _check_runs(self, ("informativity_run",))
        if "compare_runs" not in pending:
            for run in self.comparison_runs:
                require_path("compare_runs", run, "a decoder run directory")
        require_choice("split", self.split, SPLITS)
        require_at_least(self, ("samples", "cases", "interpolation_steps"), 1)

    @property
    def comparison_runs(self) -> list[str]:
        return [run.strip() for run in self.compare_runs.split(",") if run.strip()]


@dataclasses.dataclass(frozen=True)
class ImagineParameters(ComputeParameters):
    """07_imagine: a sound of your own (or a test sound) and what the model imagines."""

    PATHS = ComputeParameters.PATHS + ("decoder_run", "audio_file")
    FROM_EARLIER_STEPS = ("decoder_run",)

    decoder_run: str = ""  # the decoder run (GAN or flow); empty: the one notebook 04 recorded
    audio_file: str = ""  # a sound file of your own to imagine; empty: a test sound
    split: str = "test"  # where the test sounds of the menu come from
    samples: int = 4  # images drawn per sound
    live_widgets: bool = True  # build the live controls (the pipeline: off, static view only)

    def validate(self, pending=frozenset()) -> None:
        from s2ilib.formats import SPLITS

        super().validate(pending)
        _require_run(self, "decoder_run", "the decoder run directory (from notebook 04)", pending)
        if self.audio_file:
            require_path("audio_file", self.audio_file, "the sound file")
        require_choice("split", self.split, SPLITS)
        require_at_least(self, ("samples",), 1)
