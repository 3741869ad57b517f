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
# # 4. Stage 2: two decoders, the paper's GAN and a flow
#
# **The question.** Notebooks 02 and 03 gave every sound an embedding $s$ (the frozen audio
# encoder's output, aligned with the images in notebook 03). This chapter trains the part
# that *imagines*: a decoder that turns $s$ into an image $x$ of what the sound says. The main
# job trains two decoders on the same aligned embedding, data, seed and length, and notebook
# 05 scores them in one report:
#
# - the paper's **conditional GAN** (recipe `aligned`, `compare_recipe = "aligned"`): the
#   authors' deep densely connected generator $G$ and their conditional discriminator $D$,
#   trained with the standard non-saturating loss;
# - a **flow-matching decoder** (recipe `flow`, the main run; beyond the paper): a small
#   U-Net $v_\theta$ that learns to carry random noise to an image of the sound's digit.
#
# The GAN learns by a game: $G$ draws, $D$ learns to tell drawn images from real ones, and
# $G$ follows $D$'s gradient, while an L1 pixel loss ties each drawing to the image paired
# with its sound. The flow has no opponent: at every point between noise and image it
# regresses a velocity that is known exactly. After this chapter you should be able to say
# what each one minimises, and why the flow needs no discriminator.
#
# Class labels are never used: for AV-Digits a sound is paired with a random handwritten
# image of the same digit (redrawn every epoch), exactly as AV-MNIST pairs its modalities.
#
# ## The conditional GAN
#
# **The networks** (`s2ilib/models/generator.py`, `discriminator.py`; their sizes are
# printed below). The generator takes $s$ as a $d \times 1 \times 1$ map ($d$ the embedding
# width) and grows it into an image through transposed-convolution transitions and
# DenseNet-style blocks (each layer of a block sees the concatenated outputs of all the
# layers before it), every layer BatchNorm + ReLU, tanh at the end. It takes no noise:
# dropout after the transitions stays on at test time and is the paper's only source of
# variety. The discriminator convolves an image down to a $2 \times 2$ map, concatenates $s$
# reshaped to $(d/4) \times 2 \times 2$, and ends in a $2 \times 2$ convolution, BatchNorm
# and tanh: one score $D(x, s) \in [-1, 1]$, $+1$ meaning "a real image with its sound" and
# $-1$ "a drawn one".
#
# **The paper's objective.** Symbols: $x$ a real image paired with the sound (pixels in
# $[-1, 1]$), $s$ the sound's embedding, $G(s)$ the generator's image, $D(\cdot, s)$ the
# discriminator's score, $\mathbb{E}$ the mean over a batch of (sound, image) pairs and
# $\lVert \cdot \rVert_1$ the mean absolute difference over pixels. From the authors'
# training-scheme figure: the discriminator *regresses* its score to $+1$ for real pairs and
# to $-1$ for drawn ones with an L1 loss,
#
# $$\mathcal{L}_D = \tfrac{1}{2}\Big(\mathbb{E}\,\big|D(x, s) - 1\big| + \mathbb{E}\,\big|D(G(s), s) + 1\big|\Big),$$
#
# and the generator minimises an adversarial term plus $\lambda$ times an L1 pixel loss
# against the paired image,
#
# $$\mathcal{L}_G = \mathcal{L}_\text{adv} + \lambda\,\mathbb{E}\,\big\lVert G(s) - x \big\rVert_1, \qquad \mathcal{L}_\text{adv}^\text{paper} = \mathbb{E}\,\big|D(G(s), s) - 1\big|,$$
#
# with $\lambda$ = `pixel_weight` = 10 (the authors did not publish their weights; the
# adversarial term's weight is 1).
#
# **The non-saturating loss** (Goodfellow et al. 2014), which the `aligned` recipe uses with
# the same networks and the same pixel loss. Read the tanh score as a probability of "real",
# $p(x, s) = \tfrac{1}{2}\big(1 + D(x, s)\big)$ (the sigmoid of twice the pre-tanh logit);
# the loss is binary cross-entropy:
#
# $$\mathcal{L}_D^\text{NS} = -\mathbb{E}\log p(x, s) - \mathbb{E}\log\big(1 - p(G(s), s)\big), \qquad \mathcal{L}_\text{adv}^\text{NS} = -\mathbb{E}\log p(G(s), s).$$
#
# Why: when $D$ confidently rejects a drawing, its tanh sits near $-1$, where the slope of
# tanh vanishes, so the paper's $|D - 1|$ passes almost no gradient to $G$; $-\log p$ grows
# without bound as $p \to 0$, and its gradient with respect to the pre-tanh logit is largest
# there (it does not saturate). On AV-Digits it gave the most recognisable images of the
# four losses tried (`s2ilib/train/recipes.py`, `benchmarks/RESULTS.md`).
#
# **The moving-average loss.** The arXiv abstract adds a "moving-average adversarial loss"
# against GAN instability, never defined in print. The workbook's definition
# (`MovingAverageLoss` in `s2ilib/train/losses.py`): after every discriminator step the batch
# means of its scores update two exponential moving averages,
#
# $$m_\text{real} \leftarrow \beta\, m_\text{real} + (1 - \beta)\,\mathbb{E}\,D(x, s), \qquad m_\text{fake} \leftarrow \beta\, m_\text{fake} + (1 - \beta)\,\mathbb{E}\,D(G(s), s),$$
#
# with $\beta$ = `ma_decay` = 0.99 (the first update sets them to the batch means), and the
# generator pulls its scores to where $D$ has lately put real pairs, instead of to the fixed
# $+1$ that a saturated tanh never reaches:
#
# $$\mathcal{L}_\text{adv}^\text{MA} = \mathbb{E}\,\big|D(G(s), s) - m_\text{real}\big|.$$
#
# $D$ keeps the paper's loss (with `ma_discriminator_margin` > 0 its targets follow the
# averages too). The last section of this notebook trains it beside the others on request.
#
# **What the pixel loss does to the drawings.** Each sound is paired with a *random* image of
# its digit, so the image minimising $\mathbb{E}\lVert G(s) - x \rVert_1$ is the pixel-wise
# median of all the images the sound may be paired with: a blurred template of the digit.
# With $\lambda = 10$ this term dominates, and dropout moves the result only a little: the
# GAN's draws of one sound come out nearly identical.
#
# ## The flow-matching decoder
#
# **The path** (flow matching, Lipman et al. 2023; rectified flow, Liu et al. 2023). Take a
# noise image $x_0 \sim \mathcal{N}(0, I)$ and a real image $x_1$ paired with the sound, and
# join them by a straight line. At flow time $t \in [0, 1]$ ($t = 0$ noise, $t = 1$ image)
# the point is
#
# $$x_t = (1 - t)\,x_0 + t\,x_1,$$
#
# which moves with the constant velocity $x_1 - x_0$ (`s2ilib/train/flow.py`). The network
# $v_\theta(x_t, t, s)$, a U-Net whose blocks are scaled and shifted by a vector made of $s$
# and $t$ (`s2ilib/models/flow.py`), is trained to predict that velocity:
#
# $$\mathcal{L}_\text{flow} = \mathbb{E}_{x_0,\, x_1,\, t,\, \xi}\;\big\lVert v_\theta\big(x_t, t, c_\xi(s)\big) - (x_1 - x_0)\big\rVert_2^2,$$
#
# the mean squared error over pixels, with $t = \sigma(n)$ for $n \sim \mathcal{N}(0, 1)$ (a
# logit-normal time: most of the training in the middle of the path, where it is hardest;
# Esser et al. 2024) and $c_\xi(s)$ equal to $s$, or, with probability `condition_dropout` =
# 0.15, to a learnt "no sound" vector $\varnothing$. Images are drawn with an exponential
# moving average of the trained weights (`ema_decay` = 0.999).
#
# **The sampler.** An image is the end of the path that the learnt velocity traces from
# noise: Euler's method with $N$ = `sample_steps` = 10 steps of size $1/N$,
#
# $$x_{(k+1)/N} = x_{k/N} + \tfrac{1}{N}\,\tilde v\big(x_{k/N}, \tfrac{k}{N}, s\big),$$
#
# clipped to $[-1, 1]$ at the end. **Classifier-free guidance** (Ho & Salimans 2022) uses the
# "no sound" velocity to push each step further toward what the sound says:
#
# $$\tilde v(x, t, s) = v_\theta(x, t, \varnothing) + w\,\big(v_\theta(x, t, s) - v_\theta(x, t, \varnothing)\big),$$
#
# with $w$ = `guidance` = 2 ($w = 1$ is plain conditional sampling).
#
# **Recall and redraw.** The recipe does not start from pure noise. It finds the training
# sound $j$ nearest to the sound, takes one real image $\hat x$ paired with it (chosen by
# the draw's own noise), and starts at $t_0$ = `recall_from` = 0.3 from the point where the
# straight line from the noise to $\hat x$ passes,
#
# $$x_{t_0} = (1 - t_0)\,x_0 + t_0\,\hat x,$$
#
# then takes the Euler steps $k = t_0 N, \dots, N - 1$ (SDEdit, Meng et al. 2022, started
# from retrieval): the layout of a real image is recalled and its strokes are drawn anew.
# "Nearest" is the cosine of the embeddings $s$ and, when the encoder has a frozen
# pretrained front (speech or whisper), also the cosine of the front's own pooled features
# $f$ of the sound, standardised over the training sounds:
#
# $$j = \arg\max_i\;(1 - \lambda)\cos(s, s_i) + \lambda\cos(f, f_i).$$
#
# Why: the layers trained after the front learn the training voices, and forget some of
# what the front tells apart in voices they never heard; the front's features keep it. The
# weight $\lambda$ = `recall_front_weight` is chosen on the validation split when the flow
# is trained (the recall's class accuracy at $\lambda = 0, 0.1, \dots, 1$; the run's
# `recall.json`, printed below); $\lambda = 0$ is the embedding alone. The decoder itself is
# still conditioned on the embedding $s$ alone.
#
# **Why the flow needs no discriminator.** A GAN needs $D$ because "looks like a real image
# of this digit" has no formula: $D$ learns one while $G$ chases it, a moving target, which
# is why GAN training can oscillate or stall. Flow matching writes its target down: for every
# pair and every $t$ the velocity to regress is $x_1 - x_0$, known exactly. The loss is an
# ordinary regression, one network and one optimiser, and it falls smoothly (the loss curve
# below). The regression's best answer at $x_t$ is the *average* velocity over all the
# (noise, image) pairs whose lines pass there, $\mathbb{E}[x_1 - x_0 \mid x_t, s]$, and
# following that field carries the whole noise distribution to the whole distribution of the
# sound's images (Lipman et al. 2023), not to their average: another noise $x_0$ ends at
# another image. So the flow's draws of one sound vary like handwriting, where the GAN's pixel
# loss pulls them to one template. (For the same reason the loss never reaches 0: given $x_t$
# and $s$, the target still depends on which noise and which image the point came from.)
#
# ## The recipes
#
# `s2ilib/train/recipes.py` names the settings. The main run is `flow`; `compare_recipe`
# trains more recipes beside it on the same data, seed and length (the default, `aligned`:
# the paper's networks and the non-saturating loss on the aligned embedding). `aligned,paper`
# adds `paper`, the authors' method as faithfully as we know it (the plain autoencoder
# embedding and their L1 score regression); `imagine` is the GAN family's try at varied draws
# (a conditional-VAE code beside the embedding). Each GAN adds about 3 minutes on 2 cores;
# `compare_recipe = ""` trains the main run alone. `benchmarks/RESULTS.md` has the figures of
# the jobs measured.
#
# `generator_preset = "paper-attention"` trains the authors' 2026 follow-up instead: the
# same dense generator with 18 convolutional-attention blocks after its 4x4 map (8 heads,
# d_model 320, cross-attention to the 512-d embedding; 68,692,009 parameters), on a paper
# AE run (96x96 images) and a GPU.

# %% tags=["parameters"]
data = ""  # data set folder; empty: the shipped AV-Digits
recipe = "flow"  # the main run's recipe: "flow", "aligned", "imagine" (beyond the paper) or "paper"
compare_recipe = "aligned"  # comma-separated recipes also trained at full length, shown beside ("aligned": the paper's GAN; "aligned,paper": + the authors' recipe as published); empty: none
ae_run = ""  # the AE run (recipes without alignment); empty: the one notebook 02 recorded
align_run = ""  # the alignment run (recipe "aligned"); empty: the one notebook 03 recorded
decoder_run = ""  # an existing decoder run (GAN or flow) to load instead of training; empty: train
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
from s2ilib.notebook import DecoderParameters, load_parameters

config = load_parameters(DecoderParameters, globals())
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
from s2ilib.train.recipes import train_loss_comparison, train_recipe_decoders

device = resolve_device(config.device)
steps_per_epoch = len(open_dataset(config.data_path).split("train")) // config.batch_size
settings = config.decoder_settings()  # shared by every decoder run of this notebook, on top of each recipe's own
if config.compare_losses and not config.smoke:  # sample grids exactly at the comparison runs' length
    settings["sample_every"] = max(1, steps_per_epoch * config.compare_epochs)

# %% [markdown]
# ## Train the decoders (or load the main run)
#
# `train_recipe_decoders` trains one run per recipe: `s2i train-flow` for `flow`, `s2i train-gan`
# for the GAN recipes, all on the embedding of notebook 03 with the same data, seed and
# number of epochs (the GAN's learning rates and pixel weight do not apply to the flow). The
# runs are named `runs/NNNNN-flow-recipe-flow`, `runs/NNNNN-gan-recipe-aligned`, ...
#
# A **stall detector** watches every GAN's discriminator: when its loss stays flat while it
# scores real and drawn pairs alike (with the paper's loss any constant score gives exactly
# 1.000), the run logs a warning, since the generator then learns from the pixel loss alone.
# A flow has no discriminator, so there is nothing to watch and nothing is printed for it.

# %%
if config.decoder_run:
    recipe_runs = {config.recipe: config.decoder_run}
else:
    own_loss = {config.recipe: {"loss": config.loss}} if config.loss else {}
    recipe_runs = train_recipe_decoders([config.recipe, *config.comparison_recipes], config.ae_run, config.align_run,
                                        settings, config.runs_root, device, overrides=own_loss,
                                        flow_settings=smoke_settings("flow", config.smoke))
run_dir = recipe_runs[config.recipe]
print("decoder runs:", recipe_runs)
stats = read_stats(run_dir)
display(stats.tail(3))
if has_discriminator(run_dir):  # a flow run has no discriminator to stall
    print("stall warnings:", stall_warnings(run_dir) or "none")

# %% [markdown]
# ## The networks
#
# Every network the recipes trained and its number of parameters, read from the runs
# themselves; then `s2i summary` (`s2ilib/models/summary.py`) for the preset these runs
# used and for the paper's full-size networks (96x96 images, embedding width 512): shapes,
# and the cost of one image's forward and forward + backward pass. The summary's
# `autoencoder` row is the paper's convolutional encoder; with the pretrained speech input
# network (notebook 02) the encoder is another network, and the decoders see only its embedding.
# The summary's `flow` row is the flow decoder at its default widths and the preset's image
# size, one evaluation of its velocity field: a training step runs it once, drawing an image
# `sample_steps` times (twice a step under guidance), where the generator draws in one pass.

# %%
from s2ilib.models.summary import format_summary, summarize
from s2ilib.runs import TRANSLATOR_KINDS, load_run

trained = {name: load_run(path, kind=TRANSLATOR_KINDS) for name, path in recipe_runs.items()}
network_rows = [
    {"recipe": name, "network": part, "parameters": sum(p.numel() for p in module.parameters()),
     "image side": run.image_size}
    for name, run in trained.items()
    for part, module in ({"flow decoder": run.generator} if run.kind == "flow"
                         else {"generator": run.generator, "discriminator": run.discriminator}).items()
]
display(pd.DataFrame(network_rows))
main_train = trained[config.recipe].config["train"]
for preset_name, width in dict.fromkeys([(main_train["preset"], main_train["embedding_dim"]), ("paper", 512)]):
    print(format_summary(summarize(preset_name, width)), end="\n\n")

# %% [markdown]
# ## One training step of each decoder
#
# The code below is the code that ran (`inspect.getsource`). A GAN step (`gan_step` in
# `s2ilib/train/steps.py`) draws $G(s)$ once, updates the discriminator on the real pairs
# and the *detached* drawn ones (so that $\mathcal{L}_D$ does not train $G$), then the
# generator on $\mathcal{L}_G$ = `adversarial_weight` $\times$ `loss.generator_loss` +
# `pixel_weight` $\times$ L1, with $D$'s weights frozen for that backward pass. Real and
# drawn pairs are scored in one forward (`score_pairs`): $D$ ends in BatchNorm, which would
# normalise a batch of only real or only drawn pairs to the same mean. The `aligned` recipe
# has no code encoder, so the lines about codes and their KL do nothing there. The
# non-saturating loss's two functions follow.

# %%
import inspect

from s2ilib.train.losses import NonSaturatingLoss
from s2ilib.train.steps import gan_step, score_pairs, update_discriminator, update_generator

for code in (gan_step, score_pairs, update_discriminator, update_generator, NonSaturatingLoss):
    print(inspect.getsource(code))

# %% [markdown]
# A flow step (`FlowTask.optimize_parameters` in `s2ilib/train/flow.py`) is one regression
# step: $\mathcal{L}_\text{flow}$ on the batch (`flow_matching_loss`: the noise, the
# logit-normal times, the "no sound" vector on a random share of the pairs, the point on
# the straight path and its target velocity), backward, an AdamW step (the gradient
# clipped when `grad_clip` is set), then the moving average of the weights that draws the
# images. `FlowDecoder.forward` (`s2ilib/models/flow.py`) is the sampler: recall, then the
# guided Euler steps.

# %%
from s2ilib.models.flow import FlowDecoder
from s2ilib.train.flow import FlowTask, flow_matching_loss

for code in (flow_matching_loss, FlowTask.optimize_parameters, FlowDecoder.forward):
    print(inspect.getsource(code))

# %% [markdown]
# ## Loss curves of the main run

# %%
losses = ["d_loss", "g_adversarial", "g_pixel", "val_pixel_loss", "flow_loss", "val_flow_loss"]
save_figure(viz.plot_curves(stats, losses, f"Training losses (recipe {config.recipe})"), "04_decoder_losses",
            config.figures_dir)
plt.show()
if "real_score" in stats:  # a GAN (a flow run has no discriminator)
    save_figure(viz.plot_curves(stats, ["real_score", "fake_score"], "Discriminator scores (tanh)"),
                "04_gan_scores", config.figures_dir)
    plt.show()

# %% [markdown]
# **What to look for.** For the flow (the main run): its training loss `flow_loss` and the
# validation loss `val_flow_loss` (the averaged weights on validation voices, with fixed noise
# and times; first computed at the first sample grid) fall steeply over the first few hundred
# steps, then level off together, well above zero. The floor is the part of the target
# velocity that $x_t$ and $s$ cannot tell (see "Why the flow needs no discriminator"). The two
# curves staying together means the decoder does as well on unheard voices' embeddings as on
# the training sounds'. Warning signs: the validation curve turning up while the training
# curve falls (overfitting), spikes, or a curve still falling steeply at the last step (raise
# `num_epochs`). With `recipe = "aligned"` this plot shows the GAN's terms instead (`d_loss`,
# `g_adversarial`, `g_pixel`, `val_pixel_loss`), and a second plot its discriminator's
# scores: read them as in "The decoders side by side" below.

# %% [markdown]
# ## Samples over training
#
# Each grid shows the same validation sounds (voices never heard in training) at one step.
# Top row: a real image of each sound's digit (the sound's pairing); the two rows under it:
# two draws of the main run's decoder for that sound (a flow: two starting noises; a GAN: two
# dropout masks).

# %%
save_figure(viz.plot_sample_grids(sample_grid_paths(run_dir, 3), "Generated for validation sounds, over training"),
            "04_samples_over_training", config.figures_dir)
plt.show()

# %% [markdown]
# **What to look for.** In the figure the draws read as digits from the first grid on; later
# grids sharpen the strokes more than they change which digit is drawn. Compare each column
# with its top row: where a draw shows another digit than the real image, the decoder drew
# what the embedding says, and the sound was misheard (notebook 03 measured how often the
# embedding finds the right digit). The flow's two draws of one sound differ in slant, width
# and stroke, as two people's handwriting would. Warning signs: grids still noisy at the end,
# every sound drawn as the same digit (the decoder ignores $s$), or, for a flow, two draws
# that are the same picture.

# %% [markdown]
# ## What the flow recalls by
#
# A flow whose encoder has a frozen front chose its recall's front weight $\lambda$ on the
# validation split when it was trained: for each $\lambda$, the share of validation sounds
# (class-balanced) whose recalled training sound says the same digit. The big dot is the
# chosen weight. Look at the two ends: at $\lambda = 0$ (the embedding alone, as before) and
# at $\lambda = 1$ (the front alone); where the curve peaks between them, each knows voices
# the other does not. A flow on the paper's conv encoder has no front, and nothing is shown.

# %%
from s2ilib.runs import read_recall_choice

recall_choice = read_recall_choice(recipe_runs["flow"]) if "flow" in recipe_runs else None
if recall_choice is not None:
    save_figure(viz.plot_recall_choice(recall_choice), "04_recall_choice", config.figures_dir)
    plt.show()

# %% [markdown]
# ## The decoders side by side
#
# First the GAN runs' training curves, one line per recipe: `d_loss` ($\mathcal{L}_D$), the
# mean scores `real_score` $= \mathbb{E}\,D(x, s)$ and `fake_score` $= \mathbb{E}\,D(G(s), s)$,
# and `val_pixel_loss` (the L1 pixel loss on the validation pairs). A flow has none of these
# terms (no discriminator, no pixel loss): its curves are the loss plot above. Then each GAN's
# stall warnings, and the last sample grid of every run, in the layout of the grids above.

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
# **What to look for.** In the GAN's curves the discriminator slowly wins: `real_score` climbs
# toward $+1$ and `fake_score` falls toward $-1$ while `d_loss` falls, and yet the generator
# keeps drawing the sound's digit, because the pixel loss carries most of its training. A gap
# that opens gradually is the healthy sign. Warning signs: a stall (`d_loss` flat and the two
# scores equal: the detector's warnings above), or scores that reach $\pm 1$ within a few
# hundred steps ($D$ saturated: with the paper's loss the generator's adversarial gradient is
# then gone). `val_pixel_loss` falls but stays far from 0: the paired image is a random one of
# the digit, which no drawing can match pixel for pixel.
#
# In the sample grids, compare the two decoders column by column. The GAN's two draws of one
# sound are near copies of each other (one template per sound, thick strokes on a grey
# background); the flow's differ like two hands writing the digit, on the black background of
# the real images. Where both decoders draw the same wrong digit for a sound, the error is the
# embedding's, not the decoder's. Notebook 05 measures these differences (draw diversity,
# Frechet distance, recall and coverage); in the jobs recorded in `benchmarks/RESULTS.md` the
# GAN's draws of one sound varied several times less than the flow's, and the flow's images
# were the closer to real ones.

# %% [markdown]
# ## Adversarial losses compared (optional)
#
# Short runs of the main recipe, one per loss in `compare_losses` (e.g.
# "paper,moving_average,non_saturating"; a GAN recipe: set `recipe = "aligned"`), from the
# same encoder and seed, compared with the main run cut to the same length, on their loss
# curves and their last sample grid. Each loss's equations are at the top of this notebook;
# `s2ilib/train/losses.py` defines all four (`hinge` too). What to look for in `fake_score`:
# where it sits near $-1$ under the paper's loss, the generator's adversarial gradient is near
# zero (the slope of tanh), which the non-saturating loss avoids; under the moving-average
# loss the generator's target is $D$'s recent real score instead of $+1$. By default
# (`compare_losses = ""`) nothing is trained here.

# %%
comparison_runs = {}
if config.comparison_losses and not config.decoder_run:
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
write_step_outputs(config.report_dir, "04_decoders", {
    "pass_on": {"decoder_run": str(run_dir), "compare_runs": ",".join(other_runs + list(comparison_runs.values()))},
    "recipe_runs": recipe_runs,
    "comparison_runs": comparison_runs,
    "headline": {"decoder_run": str(run_dir), "recipe": config.recipe,
                 "stall_warnings": {name: len(stall_warnings(path)) for name, path in recipe_runs.items()
                                    if has_discriminator(path)}},
})

# %% [markdown]
# ## Try it
#
# 1. **The weight of the pixel loss.** With `recipe = "aligned"`, set `pixel_weight = 0.0`:
#    only the conditional discriminator ties a drawing to its sound. Watch whether the draws
#    keep the sound's digit and whether the stall detector fires. With `pixel_weight = 100.0`
#    the template pull is stronger: expect the draws of one sound to be even more alike.
# 2. **The paper's loss against the standard one.** `recipe = "aligned"`,
#    `compare_losses = "paper,moving_average,non_saturating"` (`compare_epochs = 10`): the last
#    section plots `fake_score` and `d_loss` per loss. Look for a loss whose drawings are scored
#    near $-1$ throughout (a saturated tanh) and for stall warnings.
# 3. **Guidance and recall.** Sample a trained flow without them: in a cell,
#    `decoder = load_run(run_dir).generator` then
#    `s2ilib.models.flow.set_sampling(decoder, guidance=1.0, recall_from=0.0)` and draw with
#    `decoder(embeddings)`; or train one with `s2i train-flow --recipe flow --ae-run <the
#    align run> --guidance 1 --recall-from 0` and give it to notebook 05 as `compare_runs`.
#    Expect the draws to vary more and to show the sound's digit less often
#    (`benchmarks/RESULTS.md`, "Recall and redraw"). To recall by the embedding alone, keep
#    the recall and set `recall_front_weight=0.0` instead
#    (`benchmarks/recall_front.py --run <the flow run> --informativity <its run>` scores
#    both on the test split).
# 4. **Training length.** `num_epochs = 10`: does the flow's loss curve still fall at the end,
#    and how do the last sample grids of both decoders compare with the full-length ones?
