"""Named recipes: which stages run after the autoencoder, and with which settings.

`paper` is the authors' method as faithfully as we know it: the GAN conditions on the
frozen autoencoder embedding; the discriminator regresses a tanh score with L1; the
generator adds an L1 pixel loss x10. `aligned` is the paper's dense-generator GAN on an
encoder first aligned with the images by a contrastive objective (s2ilib.train.align), with
the standard non-saturating loss; the main job trains it beside the main run. On AV-Digits
the alignment is what matters, the choice of adversarial loss much less (benchmarks/
RESULTS.md, "Beyond the paper: audio-visual alignment, GAN losses"). `imagine` (issue 15, beyond
the paper) is `aligned` whose generator also takes a 16-number code: BicycleGAN's
conditional VAE-GAN (GANTrainConfig.code_encoder), chosen among the candidates of
benchmarks/recipe_search.md (noise alone, no pixel loss, projection discriminators, min-of-K
and energy pixel losses) as the one that kept the class while its draws varied. `flow` (issue
15's third family) keeps `aligned`'s alignment and replaces the GAN by a flow-matching
decoder with classifier-free guidance (s2ilib.train.flow), the main run: how it compares
with the GANs and with retrieval is measured in RESULTS.md ("Imagination: a flow-matching
decoder", "The main job on each front").

A recipe holds settings only; the configs' own defaults fill in the rest, and settings
given explicitly (notebook parameters, --config, named options, --set) override it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

from s2ilib.errors import S2IError


@dataclass(frozen=True)
class Recipe:
    """Settings of the stages after the autoencoder."""

    name: str
    summary: str  # one line for tables and logs
    align: dict | None  # AlignTrainConfig settings; None: no alignment (GAN on the AE run)
    gan: dict = field(default_factory=dict)  # GANTrainConfig settings
    decoder: str = "gan"  # what draws the images: "gan" (train-gan) or "flow" (train-flow)
    flow: dict = field(default_factory=dict)  # FlowTrainConfig settings (decoder "flow")


# Each recipe states only what it changes from the configs' defaults (AlignTrainConfig,
# GANTrainConfig, FlowTrainConfig in s2ilib.train.config), the one home of every setting:
# e.g. the pixel loss x10 and the alignment's augmentation are those defaults.
RECIPES = {
    "paper": Recipe(
        name="paper",
        summary="frozen AE embedding; L1-regressed tanh score; L1 pixel loss x10",
        align=None,
        gan={},  # GANTrainConfig's defaults are the paper's: loss "paper", pixel loss x10
    ),
    "aligned": Recipe(
        name="aligned",
        summary="contrastive audio-image alignment of the encoder; non-saturating GAN loss",
        align={
            # A room's reverberation on half the sounds: the one part of the simulated
            # recording chain that helped held-out people, in two seeds (RESULTS.md,
            # "Recording-chain augmentation").
            "reverb_probability": 0.5,
        },
        gan={"loss": "non_saturating"},
    ),
}
RECIPES["imagine"] = Recipe(
    name="imagine",
    summary="aligned + a conditional VAE-GAN code: varied draws of one sound",
    align=RECIPES["aligned"].align,  # the same alignment stage (one align run serves both)
    # KL weight 0.05, not BicycleGAN's 0.01: at 0.01 the code took enough nats to carry the
    # digit, so a sound's draws showed other digits; at 0.05 the digit stays with the sound
    # and the draws still vary (RESULTS.md, "Imagination: recipe `imagine`").
    gan={**RECIPES["aligned"].gan, "noise_dim": 16, "code_encoder": True, "kl_weight": 0.05},
)
RECIPES["flow"] = Recipe(
    name="flow",
    summary="aligned + a flow-matching decoder with classifier-free guidance",
    align=RECIPES["aligned"].align,
    decoder="flow",  # FlowTrainConfig's defaults are this recipe's settings
)
RECIPE_NAMES = tuple(RECIPES)


def recipe(name: str) -> Recipe:
    """The recipe called `name` (RECIPE_NAMES: 'paper', 'aligned', 'imagine', 'flow')."""
    if name not in RECIPES:
        raise S2IError(f"unknown recipe {name!r} (expected one of {', '.join(RECIPE_NAMES)})")
    return RECIPES[name]


def align_settings(name: str) -> dict:
    """The alignment settings of recipe `name`; an error when it has no alignment stage."""
    settings = recipe(name).align
    if settings is None:
        raise S2IError(f"recipe {name!r} has no alignment stage (train the GAN on the AE run)")
    return dict(settings)


def align_config(name: str, ae_run, settings: dict | None = None):
    """Recipe `name`'s alignment config on the AE run `ae_run`, with `settings` (any
    AlignTrainConfig fields) overriding the recipe's; None when the recipe has no alignment."""
    from s2ilib.train.config import AlignTrainConfig

    if recipe(name).align is None:
        return None
    return AlignTrainConfig.from_dict(
        {**align_settings(name), "ae_run": str(ae_run), **(settings or {})}
    )


def gan_config(name: str, ae_run, align_run, settings: dict | None = None):
    """Recipe `name`'s GAN config, with `settings` (any GANTrainConfig fields) overriding the
    recipe's. It builds on `align_run` when the recipe has an alignment stage, else on
    `ae_run`; an error names the missing one."""
    from s2ilib.train.config import GANTrainConfig

    if recipe(name).decoder != "gan":
        raise S2IError(f"recipe {name!r} trains a {recipe(name).decoder} decoder, not a GAN")
    return GANTrainConfig.from_dict(
        {**recipe(name).gan, "ae_run": encoder_run_of(name, ae_run, align_run),
         **(settings or {})}
    )  # fmt: skip


def encoder_run_of(name: str, ae_run, align_run) -> str:
    """The run recipe `name`'s decoder builds on: `align_run` when the recipe has an
    alignment stage, else `ae_run`; an error names the missing one."""
    aligned = recipe(name).align is not None
    encoder_run = align_run if aligned else ae_run
    if not encoder_run:
        needed = "an alignment run (train-align)" if aligned else "an autoencoder run (train-ae)"
        raise S2IError(f"recipe {name!r} needs {needed}")
    return str(encoder_run)


def flow_config(name: str, ae_run, align_run, settings: dict | None = None):
    """Recipe `name`'s flow-decoder config (a recipe with decoder "flow"), with the
    `settings` FlowTrainConfig has (the shared data, length, seed, ...) overriding the
    recipe's; settings of the GAN alone (its losses, learning rates) do not apply."""
    from dataclasses import fields

    from s2ilib.train.config import FlowTrainConfig

    names = {item.name for item in fields(FlowTrainConfig)}
    own = {key: value for key, value in (settings or {}).items() if key in names}
    return FlowTrainConfig.from_dict(
        {**recipe(name).flow, "ae_run": encoder_run_of(name, ae_run, align_run), **own}
    )


def recipe_configs(
    names,
    ae_run,
    align_run,
    settings: dict | None = None,
    overrides: dict | None = None,
    flow_settings: dict | None = None,
) -> dict:
    """{recipe: its decoder's config (GAN or flow)} for the recipes of `names` ("" and repeats skipped),
    in order, with the shared `settings` (any GANTrainConfig fields: data, length, seed,
    ...) on top of each recipe's own, then `flow_settings` for flow recipes (e.g. the
    notebooks' smoke budget of the decoder), then `overrides[name]` (e.g. another loss)."""
    configs = {}
    for name in dict.fromkeys(name for name in names if name):
        flow = recipe(name).decoder == "flow"
        own = {**(settings or {}), **((flow_settings or {}) if flow else {}),
               **(overrides or {}).get(name, {})}  # fmt: skip
        build = flow_config if flow else gan_config
        configs[name] = build(name, ae_run, align_run, own)
    return configs


def train_recipe_decoders(names, ae_run, align_run, settings: dict | None = None,
                          runs_root="runs", device=None, overrides: dict | None = None,
                          flow_settings: dict | None = None) -> dict[str, str]:  # fmt: skip
    """One decoder run (a GAN or a flow) per recipe of `names`, each with its config of
    `recipe_configs` (same arguments); returns {recipe: run directory}. Runs are named
    runs/NNNNN-gan-recipe-<name> (a flow recipe: runs/NNNNN-flow-recipe-<name>)."""
    from s2ilib.train.registry import train_flow, train_gan

    configs = recipe_configs(names, ae_run, align_run, settings, overrides, flow_settings)
    runs = {}
    for name, config in configs.items():
        train = train_flow if recipe(name).decoder == "flow" else train_gan
        runs[name] = str(train(config, runs_root, f"recipe-{name}", device=device))
    return runs


def train_recipe_gans(*args, **kwargs) -> dict[str, str]:
    """Deprecated (one release): the old name of `train_recipe_decoders`, which it calls."""
    warnings.warn(
        "train_recipe_gans is now train_recipe_decoders (it trains flows too); the old name "
        "goes after this release",
        DeprecationWarning,
        stacklevel=2,
    )
    return train_recipe_decoders(*args, **kwargs)


def train_loss_comparison(name: str, losses, ae_run, align_run, settings: dict | None = None,
                          runs_root="runs", device=None) -> dict[str, str]:  # fmt: skip
    """Recipe `name` once per adversarial loss of `losses`, with `settings` (usually a
    shorter length); returns {loss: run directory} (runs/NNNNN-gan-compare-<loss>)."""
    from s2ilib.train.registry import train_gan

    runs = {}
    for loss in losses:
        config = gan_config(name, ae_run, align_run, {**(settings or {}), "loss": loss})
        runs[loss] = str(train_gan(config, runs_root, f"compare-{loss}", device=device))
    return runs
