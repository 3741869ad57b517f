# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 6. Gallery: what does the model imagine?
#
# For sounds it has never heard (test voices), each row shows several imagined images
# (for the main job's `flow` run, each from its own starting noise; for a GAN run, dropout
# kept on at test time: the paper's source of variety) beside real images of the sound's
# class. Then the best and worst translations, ranked by the K-way classifier's
# confidence in the sound's class, and an interpolation: images along the straight line
# between two sounds' embeddings, which shows how smoothly the generator maps the
# embedding space.

# %% tags=["parameters"]
data = ""  # data set folder; empty: the shipped AV-Digits
gan_run = ""  # the GAN (or flow) run; empty: the one notebook 04 recorded
informativity_run = ""  # classifiers that rank best/worst; empty: the ones notebook 05 recorded (none: no ranking)
compare_runs = ""  # comma-separated other GAN (or flow) runs whose draws of the same sounds are shown beside; empty: none
split = "test"  # sounds shown (test: unseen voices)
samples = 4  # imagined images per sound
cases = 6  # sounds in the best and in the worst row
interpolation_steps = 8  # images between two sounds' embeddings
seed = 0
device = "auto"  # auto: CUDA when present, else CPU
report_dir = "reports/interactive"  # where this step records its outputs (from the repository root)
figures_dir = "figures"  # where figures are saved (PNG + PDF)

# %%
from s2ilib.notebook import GalleryParameters, load_parameters

config = load_parameters(GalleryParameters, globals())
config

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from s2ilib import gallery, viz
from s2ilib.datasets import open_dataset
from s2ilib.datasets.sounds import examples_per_class
from s2ilib.devices import resolve_device
from s2ilib.notebook import write_step_outputs
from s2ilib.viz import save_figure
from s2ilib.runs import TRANSLATOR_KINDS, load_run

device = resolve_device(config.device)
dataset = open_dataset(config.data_path)
run = load_run(config.gan_run, device=device, kind=TRANSLATOR_KINDS)
sounds = dataset.split(config.split)

# %% [markdown]
# ## One sound per class: imagined (left) and real (right)

# %%
picks = examples_per_class(sounds, 1, config.seed)
imagined = gallery.imagine_records(run, sounds, picks, config.samples, device, config.seed)
real = gallery.real_examples(dataset.image_pool(config.split), sounds.labels[picks], 2,
                             run.image_size, config.seed)
rows = np.concatenate([imagined, np.full_like(real[:, :1], 255), real], axis=1)
grid = viz.image_grid(rows.reshape(-1, *rows.shape[2:]), columns=rows.shape[1])
save_figure(viz.show_image(grid, f"{config.samples} imagined | real, one test sound per class", 2.0),
            "06_gallery", config.figures_dir)
plt.show()

# %% [markdown]
# ## The same sounds, drawn by each recipe
#
# The draws of one sound per class by the main run and by the runs notebook 04 trained
# beside it when asked for (`compare_runs`: the `aligned`, `paper` or `imagine` recipe;
# the main job trains the main run alone), with the same seed. The
# `flow` recipe's draws (and `imagine`'s, when trained) should differ in slant, width and
# stroke like real handwriting of one digit; the GANs' vary only through test-time dropout.

# %%
compared = {"main: " + run.run_dir.name: run} | {
    path.name: load_run(path, device=device, kind=TRANSLATOR_KINDS)
    for path in map(Path, config.comparison_runs)
}
if len(compared) > 1:
    by_run = [gallery.imagine_records(other, sounds, picks, config.samples, device, config.seed)
              for other in compared.values()]
    figure = viz.show_image_blocks(by_run, list(compared), dataset.classes, sounds.labels[picks])
    save_figure(figure, "06_draws_by_recipe", config.figures_dir)
    plt.show()

# %% [markdown]
# ## Best and worst translations
#
# One draw for every test sound, ranked by the K-way classifier's probability of the
# sound's class.

# %%
ranking = {}
if config.informativity_run:
    from s2ilib.informativity import load_informativity

    bank = load_informativity(config.informativity_run, device)
    every = np.arange(len(sounds))
    one_draw = gallery.imagine_records(run, sounds, every, 1, device, config.seed)[:, 0]
    confidence = gallery.own_class_confidence(bank, one_draw, sounds.labels)
    best, worst = gallery.best_and_worst(confidence, config.cases)
    for name, chosen in (("best", best), ("worst", worst)):
        titles = ", ".join(f"{dataset.classes[sounds.labels[i]]} {confidence[i]:.2f}" for i in chosen)
        figure = viz.show_image(viz.image_grid(one_draw[chosen], len(chosen)), f"{name}: {titles}", 2.0)
        save_figure(figure, f"06_{name}", config.figures_dir)
        plt.show()
    ranking = {"median_confidence": float(np.median(confidence))}
else:
    print("no informativity_run given: ranking skipped")

# %% [markdown]
# ## Interpolating between two sounds

# %%
first, second = picks[0], picks[min(1, len(picks) - 1)]
path = gallery.interpolate(run, sounds.spectrograms[first], sounds.spectrograms[second],
                           config.interpolation_steps, device)
title = f"{dataset.classes[sounds.labels[first]]} -> {dataset.classes[sounds.labels[second]]}"
save_figure(viz.show_image(viz.image_grid(path, len(path)), title, 2.0), "06_interpolation",
            config.figures_dir)
plt.show()

# %%
write_step_outputs(config.report_dir, "06_qualitative_gallery", {"ranking": ranking})
