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
# # 6. Gallery: what does the model imagine?
#
# Notebook 05 counts how often an imagined image shows its sound's digit. This chapter looks
# at the images themselves, for sounds of voices the model never heard (the test split): what
# does each decoder draw, how much do its draws of one sound differ, what do its best and
# worst translations look like, and what does it draw between two sounds?
#
# A translator is two networks. The audio encoder $E$ maps a sound's log-mel spectrogram $a$
# to its embedding $s = E(a)$ (notebooks 02-03); a decoder draws an image $\hat x$ from $s$.
# The main job trains two decoders on the same embedding (notebook 04): the flow-matching
# decoder (recipe `flow`, the main run, `decoder_run` here) and the paper's dense-generator GAN
# (recipe `aligned`, notebook 04's `compare_recipe`, handed to this notebook as
# `compare_runs`). Both are asked for several draws of each sound, and they get their
# variety from different places.
#
# **The GAN** has no noise input (the authors' final setting): its variety is the paper's
# dropout kept on at test time. Draw $k$ is
#
# $$\hat x^{(k)} = G\big(s;\, m^{(k)}\big),$$
#
# with $m^{(k)}$ the $k$-th set of dropout masks. Its pixel loss pulls every output toward
# the median image of the sound's class (notebook 04), and the masks move it only a little:
# expect near copies.
#
# **The flow** draws by integrating its velocity field from its own noise
# $x_0^{(k)} \sim \mathcal{N}(0, I)$, started by *recall and redraw* (notebook 04):
#
# $$x^{(k)}_{t_0} = (1 - t_0)\,x^{(k)}_0 + t_0\,\hat x_{r}, \qquad x^{(k)}_{t + 1/N} = x^{(k)}_t + \tfrac{1}{N}\,\tilde v\big(x^{(k)}_t, t, s\big), \quad t = t_0, t_0 + \tfrac{1}{N}, \dots, 1 - \tfrac{1}{N},$$
#
# where $r = \arg\max_j\, (1 - \lambda_f) \cos(s, s_j) + \lambda_f \cos(f, f_j)$ is the
# training sound nearest to $s$ (by the embedding and, on a frozen front, by the front's
# features $f$, with the weight $\lambda_f$ the validation split chose), $\hat x_r$ one of
# the real images it is paired with (picked by the draw's noise), $t$ the flow time,
# $t_0$ = `recall_from`, $N$ = `sample_steps` and $\tilde v$ the velocity guided with weight
# $w$ = `guidance`. Another noise gives another starting point and another hand: expect draws
# that differ like the handwriting of different people.
#
# Every draw is keyed (`s2ilib/translate.py`): draw $k$ of a sound depends on the sound, $k$
# and `seed` alone, so a sound gets the same images here, in notebook 07, in `s2i imagine` and
# in the evaluation.
#
# No published number goes with a gallery: the paper's one number, the informativity of its
# VEGAS translations, stands beside ours in notebook 05.

# %% tags=["parameters"]
data = ""  # data set folder; empty: the shipped AV-Digits
decoder_run = ""  # the decoder run (GAN or flow); empty: the one notebook 04 recorded
informativity_run = ""  # classifiers that rank best/worst; empty: the ones notebook 05 recorded (none: no ranking)
compare_runs = ""  # comma-separated other decoder runs whose draws of the same sounds are shown beside; empty: none
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
from s2ilib.datasets.sounds import clips_of, examples_per_class
from s2ilib.devices import resolve_device
from s2ilib.notebook import write_step_outputs
from s2ilib.viz import save_figure
from s2ilib.runs import TRANSLATOR_KINDS, load_run

device = resolve_device(config.device)
dataset = open_dataset(config.data_path)
run = load_run(config.decoder_run, device=device, kind=TRANSLATOR_KINDS)
sounds = dataset.split(config.split)

# %% [markdown]
# ## One sound per class: imagined (left) and real (right)
#
# One random test sound of each class, in class order (zero at the top): the main run's
# `samples` draws, then two real images of the sound's class. They are random images of the
# class, not the sound's own pair: AV-Digits pairs a sound with its class, not with one image.

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
# **What to look for.** A good row draws the digit of the real images on its right every
# time, in different hands: slant, width, stroke and open or closed loops change from draw to
# draw as they do between the two real images. Three warning signs: a row whose draws all
# show one *other* digit (the sound was heard as that digit; notebook 05's confusion matrix
# counts these for every test sound), a row of shapeless blobs (the decoder cannot settle on
# a digit), and a row of identical draws (the variety is gone).

# %% [markdown]
# ## The same sounds, drawn by each decoder
#
# The same sounds and seed, drawn by the main run (left) and by each run in `compare_runs`.
# The main job passes on the runs notebook 04 trained beside the main one (`compare_recipe`,
# by default the `aligned` GAN); opened by hand, give their run directories in
# `compare_runs` (the main job's are in `reports/main/summary.json`). Without any, this
# figure is skipped.

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
# **What to look for.** First the spread within a row. The flow's draws should differ like
# different people's writing of one digit; the GAN's are near copies, thick and smooth,
# apart by a few pixels, because its pixel loss pulls every draw to one template and dropout
# moves it only a little. Then compare one row across the panels. Where both decoders draw
# the same wrong digit, the encoder placed the sound among another digit's training sounds,
# and no decoder can undo that; where only one panel is wrong, that decoder is to blame. A
# warning sign: the flow's draws as alike as the GAN's (the noise no longer matters: a
# guidance weight far above the trained one, or recall started so late, $t_0$ near 1, that
# every draw is its recalled image).

# %% [markdown]
# ## Best and worst translations
#
# One draw (draw 1, the first) of the main run for every test sound, scored by the K-way
# classifier of notebook 05 (trained on real images only) as the probability it gives the
# sound's class $c(a)$,
#
# $$q(a) = p_K\big(c(a) \mid \hat x^{(1)}(a)\big),$$
#
# then the `cases` draws with the highest $q$ (best) and the lowest (worst), each titled with
# its sound's class and $q$. Without an `informativity_run` there is no ranking.
#
# Notebook 05 has already drawn and scored every test sound: its `evaluation/per_sound.csv`
# holds $q$ of each sound's draw 1 (column `own_probability_1`). Since draws are keyed, its
# draw 1 is the draw 1 here; so when that evaluation scored this very run, with these
# classifiers, sounds and `seed`, $q$ is read from it and only the `cases` sounds of each row
# are drawn again. Otherwise every sound is drawn and scored here, the same way (the printed
# line says which).

# %%
ranking = {}
if config.informativity_run:
    from s2ilib.informativity import load_informativity

    bank = load_informativity(config.informativity_run, device)
    confidence, source = gallery.own_class_confidence(run, bank, dataset, config.split, device,
                                                      config.seed, config.evaluation_dir)
    print("q:", source)
    best, worst = gallery.best_and_worst(confidence, config.cases)
    for name, chosen in (("best", best), ("worst", worst)):
        one_draw = gallery.imagine_records(run, sounds, chosen, 1, device, config.seed)[:, 0]
        titles = ", ".join(f"{dataset.classes[sounds.labels[i]]} {confidence[i]:.2f}" for i in chosen)
        figure = viz.show_image(viz.image_grid(one_draw, len(chosen)), f"{name}: {titles}", 2.0)
        save_figure(figure, f"06_{name}", config.figures_dir)
        plt.show()
    ranking = {"median_confidence": float(np.median(confidence))}
    print(f"median q over the {len(sounds)} {config.split} sounds: {ranking['median_confidence']:.2f}")
else:
    print("no informativity_run given: ranking skipped")

# %% [markdown]
# **What to look for.** The best row should be ordinary, clean digits of the classes its
# title names: a check that the classifier and the ranking work. In the worst row, tell two
# failures apart by the title. A well-drawn digit of another class (a "seven" sound drawn as
# a clear 6) is a sound heard as the wrong digit: the encoder's error, which the decoder
# draws faithfully. A shapeless or broken figure is the decoder's own failure. The printed
# median says how sure the classifier is for a typical sound; a best row with low $q$ would
# be a warning sign that the classifier cannot read these drawings at all (its accuracy on
# real images is in notebook 05).

# %% [markdown]
# ## Interpolating between two sounds
#
# Between the embeddings $s_A$ and $s_B$ of two test sounds (the first two of the gallery:
# classes zero and one on AV-Digits), the straight line
#
# $$s_\lambda = (1 - \lambda)\,s_A + \lambda\,s_B, \qquad \lambda = 0, \tfrac{1}{L - 1}, \dots, 1,$$
#
# with $L$ = `interpolation_steps`, is drawn image by image from one and the same start: the
# noise $x_0$ of the first sound's first draw, dropout off. Only $s_\lambda$ changes along a
# row. Each decoder gets a row; the flow gets two, since recall decides what it draws here:
#
# - **recall off** ($t_0 = 0$ for this figure only: `gallery.interpolate(..., recall=False)`,
#   the run's own setting is restored after): every image starts from the pure noise $x_0$;
# - **recall on** (the run's sampling, the one notebook 05 measures): every image starts from
#   $x_0$ mixed with $\hat x_r$, an image of the training sound $r$ nearest to $s_\lambda$
#   (and to the front features on the same line between the two sounds').
#
# A GAN has no recall: it gets one row.

# %%
first, second = picks[0], picks[min(1, len(picks) - 1)]
interpolations = gallery.interpolation_rows(compared, sounds.spectrograms[first], sounds.spectrograms[second],
                                            config.interpolation_steps, device, config.seed,
                                            clips_of(sounds, [first, second]))
title = f"{dataset.classes[sounds.labels[first]]} -> {dataset.classes[sounds.labels[second]]}"
save_figure(viz.show_image_rows(interpolations, title, 2.0), "06_interpolation", config.figures_dir)
plt.show()

# %% [markdown]
# **What to look for.** The ends are the two sounds ($\lambda = 0$ and $1$), both drawn from
# the first sound's noise, so the last image need not match the gallery's draws of the
# second sound.
#
# - *Recall off*: only $s_\lambda$ moves, so the row shows how the flow reads the embedding
#   between the two sounds. Look for where along the row the digit turns into the other and
#   whether the images in between are shapes of neither digit: a point between two digits'
#   sounds need not be the sound of any digit.
# - *Recall on*: as long as the nearest training sound $r$ is of the first class, every image
#   is redrawn from the same recalled image (AV-Digits pairs a sound with every image of its
#   class, and the draw's noise, the same along the row, picks the same one of them); at the
#   $\lambda$ where $r$ becomes a sound of the second class, the starting image, and with it
#   the drawn digit, switches at once. That jump is the recall, not a break in the flow: it
#   shows where the nearest training sound changes class, and nothing between.
# - *GAN*: dropout is off, so the row is the generator's deterministic map of the line:
#   a gradual morph or a sudden switch.
# - *Both ends, every row*: when the image at $\lambda = 1$ is another digit than the
#   second sound's in every row, the encoder misheard that sound (its embedding lies among
#   another digit's training sounds), and the line crosses a third digit's region on the
#   way: no decoder draws what the embedding does not say. The title names the sounds' true
#   classes; compare it with the last column.
#
# A warning sign: a recall-off row with no recognisable digit even at its ends, where
# $s_\lambda$ is a real test sound: the flow would then draw digits only from the images it
# recalls.

# %%
write_step_outputs(config.report_dir, "06_qualitative_gallery", {"ranking": ranking})

# %% [markdown]
# ## Try it
#
# 1. **More draws.** `samples = 8`: the flow's rows keep changing hands from draw to draw;
#    the GAN's stay near copies however many you ask for.
# 2. **A finer interpolation.** `interpolation_steps = 16`: the recall-on row's jump now
#    falls between two closer values of $\lambda$, and the recall-off row shows its change of
#    digit in finer steps. Does the jump come at the same $\lambda$ as the recall-off row's
#    change?
# 3. **Other sounds.** `seed = 1` picks another test sound of each class (and other draws):
#    do the same digits fail as with `seed = 0` (sounds of that digit are hard) or other ones
#    (one unlucky sound)?
# 4. **The authors' recipe.** Run notebook 04 with `compare_recipe = "aligned,paper"` (or pass
#    a `paper` run in `compare_runs`): a third panel and interpolation row, the paper's GAN on
#    the plain autoencoder embedding. Expect more rows of wrong digits: that embedding barely
#    separates the digits (notebook 02's map).
