# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 4. Stage 2: the conditional GAN
#
# With the audio encoder frozen, a **deep densely connected generator** turns the
# embedding (D x 1 x 1) into an image through transposed-convolution transitions and
# DenseNet-style blocks, each layer BatchNorm + ReLU, tanh at the end. Dropout after the
# transitions stays on at test time: it is the paper's only source of variety.
# A **discriminator** sees an image together with the audio embedding (reshaped to
# (D/4) x 2 x 2 and concatenated to its last feature map) and outputs a tanh score.
#
# Losses (the authors' training-scheme figure): the discriminator regresses a real/fake
# score with an L1 loss (+1 real, -1 fake); the generator gets an adversarial loss plus an
# L1 pixel loss against the paired image. The arXiv abstract adds a **moving-average
# adversarial loss** against GAN instability, never defined in print. Our definition (see
# `s2ilib/train/losses.py`, `MovingAverageLoss`): exponential moving averages of the
# discriminator's scores on real and on fake pairs are kept, and the generator is trained
# to move its fake scores to the moving average of the real scores: a target that follows
# the discriminator instead of the fixed +1 that a saturated tanh never reaches.
# Hinge and non-saturating losses are the field's standard alternatives, and spectral
# normalisation of the discriminator's weights a standard guard against saturation.
#
# Two **recipes** (`s2ilib/train/recipes.py`) are trained here, in the same report.
# The main one, `flow` (beyond the paper), decodes the aligned embedding of notebook 03
# with a **flow-matching** network instead of a GAN: it learns to carry random noise to a
# handwritten image of what the sound says, so each draw of one sound is another hand.
# Each draw **recalls and redraws**: it starts three tenths of the way from noise to image,
# from the noise mixed with a real training image of the training sound nearest to this
# sound, and the flow draws the strokes anew from there (SDEdit from retrieval), with
# classifier-free guidance (a weight of 2 on the sound's say) keeping the draws on the
# sound's digit. Add recipes to `compare_recipe` to train them beside it, on the same
# data, seed and length: `aligned`, the most recognisable GAN this workbook found (the same
# aligned embedding and the non-saturating loss), whose draws of one sound are near copies;
# `paper`, the authors' method as faithfully as we know it; and `imagine` (the GAN with a
# conditional-VAE code), the GAN family's try at varied draws. Each adds about 3 minutes on
# 2 cores, so the main job trains the main run alone, to stay within 20 minutes
# (`bash workbook main --set compare_recipe=aligned` adds the GAN; `benchmarks/RESULTS.md`
# has the figures of such jobs). Notebook 05 measures all of them in one report.
#
# Class labels are never used: for AV-Digits a sound is paired with a random handwritten
# image of the same digit (redrawn every epoch), exactly as AV-MNIST pairs its modalities.
#
# `generator_preset = "paper-attention"` trains the authors' 2026 follow-up instead: the
# same dense generator with 18 convolutional-attention blocks after its 4x4 map (8 heads,
# d_model 320, cross-attention to the 512-d embedding; 68,692,009 parameters), on a paper
# AE run (96x96 images) and a GPU.

# %% tags=["parameters"]
data = ""  # data set folder; empty: the shipped AV-Digits
recipe = "flow"  # the main run's recipe: "flow", "aligned", "imagine" (beyond the paper) or "paper"
compare_recipe = ""  # comma-separated recipes also trained at full length, shown beside ("aligned": the GAN; "aligned,paper": + the authors'); empty: none
ae_run = ""  # the AE run (recipes without alignment); empty: the one notebook 02 recorded
align_run = ""  # the alignment run (recipe "aligned"); empty: the one notebook 03 recorded
gan_run = ""  # an existing GAN (or flow) run to load instead of training; empty: train
generator_preset = ""  # empty: the AE run's; "paper-attention": the authors' 2026 attention generator (GPU)
loss = ""  # adversarial loss of the main run (GAN recipes); empty: the recipe's
compare_losses = ""  # comma-separated losses trained briefly with the main recipe (GAN recipes); empty: none
num_epochs = 40  # passes over the training sounds (main run and recipe comparison)
compare_epochs = 10  # epochs of each loss comparison run
batch_size = 64
pixel_weight = 10.0  # weight of the L1 pixel loss
lr_generator = 2e-4  # Adam learning rate of the generator
lr_discriminator = 2e-4  # Adam learning rate of the discriminator
seed = 0
device = "auto"  # auto: CUDA when present, else CPU
smoke = False  # a few steps (tests)
report_dir = "reports/interactive"  # where this step records its outputs (from the repository root)
runs_root = "runs"  # where run directories are made
figures_dir = "figures"  # where figures are saved (PNG + PDF)

# %%
from s2ilib.notebook import GANParameters, load_parameters

config = load_parameters(GANParameters, globals())
config

# %%
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display

from s2ilib import viz
from s2ilib.datasets import open_dataset
from s2ilib.devices import resolve_device
from s2ilib.notebook import smoke_settings, write_step_outputs
from s2ilib.viz import save_figure
from s2ilib.runs import (has_discriminator, read_stats, read_stats_by, sample_grid_near, sample_grid_paths,
                         stall_report, stall_warnings)
from s2ilib.train.recipes import recipe as named_recipe
from s2ilib.train.recipes import train_loss_comparison, train_recipe_gans

device = resolve_device(config.device)
steps_per_epoch = len(open_dataset(config.data_path).split("train")) // config.batch_size
settings = config.gan_settings()  # shared by every GAN run of this notebook, on top of each recipe's own
if config.compare_losses and not config.smoke:  # sample grids exactly at the comparison runs' length
    settings["sample_every"] = max(1, steps_per_epoch * config.compare_epochs)

# %% [markdown]
# ## Train the recipes (or load the main run)
#
# The `flow` recipe trains a flow-matching decoder (`s2i train-flow`) on the aligned
# embedding of notebook 03; the `aligned` recipe conditions a GAN on the same embedding and
# trains it with the non-saturating loss (`loss` overrides it); the `paper` recipe keeps
# the plain autoencoder embedding and the authors' L1 score regression; the `imagine` recipe
# is `aligned` whose generator also takes a 16-number code, learnt as a conditional VAE-GAN
# (an image encoder gives each paired image its code, so the pixel loss asks for that very
# image instead of the class's mean; at test time the code is drawn at random: varied
# draws of one sound). All train on the same data, seed and length (the GAN's
# losses and learning rates do not apply to the flow), so that notebook 05 measures them in
# one report.
# A **stall detector** watches the discriminator: when its loss stays flat with real and
# fake pairs scored alike (with the paper's loss, any constant score gives exactly 1.000),
# the run logs a warning, since the generator then learns from the pixel loss alone.

# %%
if config.gan_run:
    recipe_runs = {config.recipe: config.gan_run}
else:
    own_loss = {config.recipe: {"loss": config.loss}} if config.loss else {}
    recipe_runs = train_recipe_gans([config.recipe, *config.comparison_recipes], config.ae_run, config.align_run,
                                    settings, config.runs_root, device, overrides=own_loss,
                                    flow_settings=smoke_settings("flow", config.smoke))
run_dir = recipe_runs[config.recipe]
print("GAN runs:", recipe_runs)
stats = read_stats(run_dir)
display(stats.tail(3))
if has_discriminator(run_dir):  # a flow run has no discriminator to stall
    print("stall warnings:", stall_warnings(run_dir) or "none")

# %% [markdown]
# ## Loss curves of the main run

# %%
losses = ["d_loss", "g_adversarial", "g_pixel", "val_pixel_loss", "flow_loss", "val_flow_loss"]
save_figure(viz.plot_curves(stats, losses, f"Training losses (recipe {config.recipe})"), "04_gan_losses",
            config.figures_dir)
plt.show()
if "real_score" in stats:  # a GAN (a flow run has no discriminator)
    save_figure(viz.plot_curves(stats, ["real_score", "fake_score"], "Discriminator scores (tanh)"),
                "04_gan_scores", config.figures_dir)
    plt.show()

# %% [markdown]
# ## Samples over training
#
# Each grid shows images generated for the same validation sounds (unseen voices), beside
# real images, at successive steps.

# %%
save_figure(viz.plot_sample_grids(sample_grid_paths(run_dir, 3), "Generated for validation sounds, over training"),
            "04_samples_over_training", config.figures_dir)
plt.show()

# %% [markdown]
# ## The recipes side by side
#
# Their discriminator losses and scores over training, their stall warnings and their
# last sample grids.

# %%
if len(recipe_runs) > 1:
    by_recipe = read_stats_by(recipe_runs, "recipe")
    for term in ("d_loss", "real_score", "fake_score", "val_pixel_loss"):  # GAN runs' terms
        save_figure(viz.plot_curves_by(by_recipe, term, "recipe", f"{term} by recipe"),
                    f"04_recipes_{term}", config.figures_dir)
        plt.show()
    display(stall_report(recipe_runs))  # the GAN runs only
    save_figure(viz.plot_sample_grids([sample_grid_paths(p, 1)[-1] for p in recipe_runs.values()],
                                      "real | two draws, end of training", titles=list(recipe_runs)),
                "04_recipes_samples", config.figures_dir)
    plt.show()

# %% [markdown]
# ## Adversarial losses compared (optional)
#
# Short runs of the main recipe (a GAN recipe: set `recipe = "aligned"`) from the same
# encoder and seed, one per loss in
# `compare_losses` (e.g. "paper,moving_average,non_saturating"), compared on their loss
# curves and their last sample grid. The moving-average loss is the workbook's reading of
# the one the arXiv abstract names; `s2ilib/train/losses.py` defines all four.

# %%
comparison_runs = {}
if config.comparison_losses and not config.gan_run:
    short = settings | {"num_epochs": config.compare_epochs}
    comparison_runs = train_loss_comparison(config.recipe, config.comparison_losses, config.ae_run,
                                            config.align_run, short, config.runs_root, device)
if comparison_runs:
    main_part = stats[stats["epoch"] < config.compare_epochs]  # the same training length
    main_loss = config.loss or named_recipe(config.recipe).gan["loss"]
    combined = pd.concat([main_part.assign(loss=main_loss), read_stats_by(comparison_runs, "loss")],
                         ignore_index=True)
    for term in ("d_loss", "g_adversarial", "fake_score"):
        save_figure(viz.plot_curves_by(combined, term, "loss", f"{term} by adversarial loss"),
                    f"04_compare_{term}", config.figures_dir)
        plt.show()
    last_grids = [sample_grid_near(run_dir, int(main_part["step"].max()))]
    last_grids += [sample_grid_paths(p, 1)[-1] for p in comparison_runs.values()]
    save_figure(viz.plot_sample_grids(last_grids, "real | two draws, after the same training length",
                                      titles=[main_loss, *comparison_runs]),
                "04_compare_samples", config.figures_dir)
    plt.show()

# %%
other_runs = [path for name, path in recipe_runs.items() if name != config.recipe]
write_step_outputs(config.report_dir, "04_gan_training", {
    "pass_on": {"gan_run": str(run_dir), "compare_runs": ",".join(other_runs + list(comparison_runs.values()))},
    "recipe_runs": recipe_runs,
    "comparison_runs": comparison_runs,
    "headline": {"gan_run": str(run_dir), "recipe": config.recipe,
                 "stall_warnings": {name: len(stall_warnings(path)) for name, path in recipe_runs.items()
                                    if has_discriminator(path)}},
})
