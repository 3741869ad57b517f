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
# # 2. Stage 1: the audio autoencoder
#
# **The question of this chapter:** can a network squeeze one second of sound into $D$
# numbers, from the sounds alone (no labels, no images), so that a second network can
# rebuild the spectrogram from them? And is what those numbers keep what an image of the
# sound's source needs?
#
# **The idea.** The paper's first stage is an autoencoder. An *encoder* maps the 128 x 100
# log-mel spectrogram of notebook 01 to an embedding of $D$ numbers; a *decoder* maps the
# embedding back to a spectrogram; both are trained so that the output matches the input.
# Since the embedding is much smaller than the spectrogram (512 numbers against 12,800
# pixels), the encoder must keep what matters most for rebuilding the sound. The paper's
# second stage (notebook 04) then freezes the encoder and trains a generator to draw an
# image from its embedding: the embedding is all the generator ever hears.
#
# **The objective.** Let $S_i \in [-1, 1]^{F \times T}$ be the $i$-th spectrogram of a
# batch of $B$ ($F = 128$ mel bands, $T = 100$ frames), $e_\theta$ the encoder with weights
# $\theta$, $s_i = e_\theta(S_i) \in [-1, 1]^D$ the sound's embedding (a tanh keeps it in
# range) and $g_\phi$ the decoder with weights $\phi$. The autoencoder minimises the mean
# squared error of the reconstruction $\hat S_i = g_\phi(s_i)$:
#
# $$\mathcal{L}_{\mathrm{AE}}(\theta, \phi) = \frac{1}{B\,F\,T} \sum_{i=1}^{B} \sum_{f=1}^{F} \sum_{t=1}^{T} \big(\hat S_{i}[f, t] - S_{i}[f, t]\big)^2 .$$
#
# An MSE of $m$ in these units is a root-mean-square error of $127.5\sqrt{m}$ grey levels.
# Squared error rewards the average of what is uncertain: where the decoder cannot tell
# exactly where a harmonic lies, a blur across the possible places costs least. Expect
# blurred reconstructions.
#
# **Two encoders.** The decoder is always the paper's (13 transposed convolutions, from
# $D \times 1 \times 1$ back to $1 \times 128 \times 100$, BatchNorm, ReLU and Dropout2d,
# tanh at the output). The encoder has two choices of *input network*, the part that reads
# the spectrogram before the bottleneck (the parameter `front`):
#
# * `"conv"`, **the paper's**: 13 convolutions (each conv, BatchNorm, ReLU; no padding;
#   kernels (7,5) stride 2, (5,3) stride 2, three (5,3), eight (3,3)), from
#   $1 \times 128 \times 100$ through $61 \times 48$, $29 \times 23$, ... to
#   $D \times 1 \times 1$, the last with tanh. All of it learns from AV-Digits' sounds.
# * `"speech"` (**beyond the paper**, an option): Google's speech_embedding, pretrained for
#   keyword spotting on a great deal of speech (weights from the openWakeWord package,
#   rebuilt in torch), stays **frozen**. It gives 96 numbers for every 775-ms window, every
#   80 ms; their mean and maximum over time make $h(S_i) \in \mathbb{R}^{192}$, and one
#   trained layer maps them to the embedding,
#
# $$s_i = \tanh\big(\mathrm{BN}(W h(S_i) + b)\big), \qquad W \in \mathbb{R}^{D \times 192},$$
#
#   with BN a batch normalisation. Only $W$, $b$, BN and the decoder learn.
# * `"whisper"` (**beyond the paper**; the main job's, and what `"auto"` picks for
#   AV-Digits): OpenAI's Whisper-base encoder, pretrained for speech recognition on 680,000
#   hours in about 100 languages, frozen; its 50 frames of one second, mean and maximum,
#   make $h(S_i) \in \mathbb{R}^{1024}$, and the same trained layer follows
#   ($W \in \mathbb{R}^{D \times 1024}$). AV-Digits has three real people and one or two
#   voices in most of its 36 languages to learn from; the pretrained network has heard
#   many (`benchmarks/RESULTS.md`, "Speech fronts by voice and by language").
#
# **What a frozen front reads** (the parameter `front_input`). The paper's encoder reads the
# 8-bit spectrogram image, and so can the pretrained fronts (re-binned to their own bands).
# But the image keeps only the top 50 dB of each clip, in 256 grey levels: what lies below
# is black. A pretrained network listens to all of the clip, so where the data set ships
# its clips (AV-Digits does) it reads the clip $u$ itself, through its own front end;
# Whisper's is
#
# $$X = \tfrac14\Big(\max\big(\log_{10} M |\mathrm{STFT}(u)|^2,\ \max(\cdot) - 8\big) + 4\Big),$$
#
# with $M$ its 80 mel bands, 25-ms windows every 10 ms, and the $\max(\cdot) - 8$ keeping
# the clip's top 80 dB. The spectrogram image stays what the decoder rebuilds
# ($\mathcal{L}_{\mathrm{AE}}$ above) and what the conv encoder reads. `"auto"` reads the
# clips where the front is frozen and the data set ships them. From the clips the whisper
# front imagines the right digit far more often than from the images, most for the voices
# and languages AV-Digits has least of (`benchmarks/RESULTS.md`, "Features from the
# audio").
#
# **The paper's numbers beside ours.** The paper publishes the architecture and training
# settings, not a reconstruction error or a probe of the embedding; this notebook's
# settings are its parameters cell (the demo preset is narrower than the paper's so that it
# trains on a 2-core CPU: `s2i summary --preset paper` shows the paper's sizes).
#
# | | the paper (`docs/METHOD.md`) | this notebook |
# |---|---|---|
# | encoder | 13 convolutions, 80 to 512 channels, on the spectrogram | `front`: the whisper front on the clips for AV-Digits, else the conv encoder (demo widths) |
# | embedding width $D$ | 128 to 2048, default 512 | `embedding_dim` |
# | optimiser | SGD, lr 0.05, momentum 0.9, batch 64 | `optimizer`, `lr`, `batch_size` |
# | training length | 1,000 to 2,000 epochs | `num_epochs` |
# | dropout at test time | on | on (the reconstructions below) |
# | reconstruction error | not published | the loss curves below |
# | finding | a wider bottleneck reconstructs better but translates less informatively | (try it, below) |
#
# Here we train it (or load a finished run), show the network and its update step, look at
# the loss curves and reconstructions, map the embeddings in 2-D, and ask how much digit
# information they carry with a linear probe. Notebook 03 then aligns this encoder with the
# images (beyond the paper).

# %% tags=["parameters"]
data = ""  # data set folder; empty: the shipped AV-Digits
preset = "demo"  # "tiny" (tests), "demo" (2-core CPU, minutes), "paper" (the authors' networks)
ae_run = ""  # an existing AE run directory to load instead of training; empty: train
embedding_dim = 512  # D, the audio embedding width (paper: 128..2048)
front = "auto"  # "whisper": Whisper-base's encoder, frozen; "speech": a pretrained speech front, frozen; "conv": the paper's encoder; "auto": whisper for AV-Digits
front_input = "auto"  # what a frozen front reads: "audio" (the data set's clips), "spectrogram" (the 8-bit images); "auto": the audio where the data set ships it
num_epochs = 36  # passes over the training sounds (its time: benchmarks/RESULTS.md, the main job)
batch_size = 64  # the authors' batch size
optimizer = "adam"  # "sgd" (the authors': lr 0.05, momentum 0.9) or "adam"
lr = 1e-2  # base learning rate (Adam 1e-3 left the demo AE near the mean image for long)
map_method = "pca"  # embedding map: "pca" or "tsne"
seed = 0
device = "auto"  # "auto": CUDA when present, else CPU
smoke = False  # a few steps on a few sounds (tests)
report_dir = "reports/interactive"  # where this step records its outputs (from the repository root)
runs_root = "runs"  # where run directories are made
figures_dir = "figures"  # where figures are saved (PNG + PDF)

# %%
from s2ilib.notebook import AutoencoderParameters, load_parameters

config = load_parameters(AutoencoderParameters, globals())
config

# %%
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import display

from s2ilib import probes, viz
from s2ilib.datasets import open_dataset
from s2ilib.datasets.sounds import clips_of, examples_per_class
from s2ilib.devices import resolve_device
from s2ilib.notebook import smoke_settings, write_step_outputs
from s2ilib.viz import save_figure
from s2ilib.runs import load_run, read_stats
from s2ilib.train.registry import train_autoencoder
from s2ilib.translate import example_inputs, reconstruct

device = resolve_device(config.device)
dataset = open_dataset(config.data_path)

# %% [markdown]
# ## Train (or load)
#
# Every run gets its own directory under `runs/` with its configuration, environment,
# log, `stats.jsonl`, TensorBoard events, sample grids and resumable checkpoints
# (`s2i train-ae --resume RUN` continues a killed run).

# %%
training = config.training_config()  # an AETrainConfig of the parameters (s2ilib/notebook.py)
run_dir = config.ae_run or train_autoencoder(training, runs_root=config.runs_root, device=device)
print("AE run:", run_dir)
run = load_run(run_dir, device=device)

# %% [markdown]
# ## The network and its update step
#
# The network that was trained, one row per layer (or block of layers, or frozen network),
# run on two test sounds as its encoder reads them (their clips, with the whisper front on
# AV-Digits; else their spectrograms): its output shape per sound, its parameters (what
# training learns) and its frozen weights. Then the code of one training step, as it ran:
# `ae_step` computes $\mathcal{L}_{\mathrm{AE}}$ with `reconstruction_loss` and takes one
# optimiser step (with a frozen front, the training loop serves its features $h(S_i)$,
# computed once, as `inputs`; the spectrograms stay the targets).

# %%
import inspect

from s2ilib.models.summary import format_layer_table, layer_table
from s2ilib.train.losses import reconstruction_loss
from s2ilib.train.steps import ae_step

example = example_inputs(run.autoencoder, dataset.split("test"), [0, 1])  # what the encoder reads
print(format_layer_table(layer_table(run.autoencoder, example.to(device))))
print(inspect.getsource(ae_step))
print(inspect.getsource(reconstruction_loss))

# %% [markdown]
# ## Loss curves

# %%
stats = read_stats(run_dir)
loss_columns = [c for c in stats.columns if "loss" in c]
save_figure(viz.plot_curves(stats, loss_columns, "Autoencoder: reconstruction loss (MSE)"),
            "02_ae_loss", config.figures_dir)
plt.show()

# %% [markdown]
# `loss` is $\mathcal{L}_{\mathrm{AE}}$ on training batches (logged every few dozen steps,
# dropout on); `val_loss` the same error on a fixed set of validation sounds, voices never
# heard in training, measured less often (so its line has few points).
#
# **What to look for.** The training loss falls fast and then flattens; the validation
# loss lies above it, and the gap says how much worse voices never heard are rebuilt. In
# the run shown the validation loss barely falls after its first measurement while the
# training loss keeps falling: what the decoder still learns is mostly particular to the
# training voices. Warning signs: a validation loss that climbs while the training loss
# falls (memorising the training voices: train shorter), and a training loss stuck at its
# start (the decoder outputs the mean spectrogram whatever the embedding: try another `lr`).
#
# ## Reconstructions of unseen voices (dropout on at test time, as the paper)

# %%
test = dataset.split("test")
picks = examples_per_class(test, 1, config.seed)[:10]
originals = np.asarray(test.spectrograms[picks])
reconstructed = reconstruct(run.autoencoder, originals, device, audio=clips_of(test, picks))
shown_mse = float(np.mean(((originals.astype(np.float32) - reconstructed) / 127.5) ** 2))  # in [-1, 1] units
save_figure(viz.plot_reconstructions(originals, reconstructed, [dataset.classes[i] for i in test.labels[picks]]),
            "02_ae_reconstructions", config.figures_dir)
plt.show()

# %% [markdown]
# **What to look for.** Top: one test sound per digit, from voices never heard; bottom:
# its reconstruction. The reconstructions are blurred blobs in the right place: they keep
# when the word is, how long and how loud, and its rough shape in the low bands; they lose
# the harmonics (the fine horizontal lines) and most high-frequency detail. That is the
# squared error at work (see the objective). Since dropout stays on, rerunning this cell
# draws slightly different blobs. A warning sign would be ten identical blobs: the decoder
# would be ignoring the embedding.
#
# ## The embedding space: a linear probe and a 2-D map
#
# Does the embedding tell which digit was said? The **linear probe** answers with a
# logistic regression, $p(y = k \mid s) = \operatorname{softmax}_k(A s + c)$, on the
# standardised embeddings $s$ of the training sounds (here, and only here, with their digit
# labels $y$: the probe measures, it trains nothing the translator uses), scored on the
# test sounds of voices never heard. The same probe on the raw spectrogram pixels (4 x 4
# average-pooled) is the baseline, and `chance` is the share of the largest class. The
# **map** projects the test embeddings to two dimensions by PCA (the two directions in
# which they vary most; `map_method = "tsne"` keeps neighbourhoods instead) and colours
# each sound by its digit.

# %%
limit = smoke_settings("probe", config.smoke).get("max_per_split", 5000)
comparison = probes.compare_probes(run.encoder, dataset.split("train"), test, device, max_per_split=limit,
                                   seed=config.seed)
display(comparison)
features = probes.embedding_features(run.encoder, test, device=device)
coordinates = probes.embedding_map(features, config.map_method, config.seed)
save_figure(viz.plot_embedding_map(coordinates, test.labels, dataset.classes,
                                   f"Test embeddings ({config.map_method.upper()}), coloured by class"),
            "02_embedding_map", config.figures_dir)
plt.show()

# %% [markdown]
# **What to look for, and what it means.** The map shows **no digit clusters**: the
# colours are mixed over one round cloud, with at most a faint drift of one colour or two
# towards a side. This is not a bug. The autoencoder is trained to *reconstruct the
# sound*, not to *say the digit*: the directions in which its embeddings vary most are
# what matters most for the squared error (when the word lies in the second, how long and
# loud it is, the voice), and the digit is a small part of that. The probe table above
# reads the digit from all $D$ coordinates at once, so it can find digit information that
# the 2-D map does not show; compare its `embedding` row with `pixels` and `chance`. What
# neither shows is an embedding *organised* by digit, and the generator of notebook 04
# draws from this embedding alone: if sounds of one digit lie scattered among sounds of
# the others, the generator has to untangle digit from voice on its own, from the images.
# **That is why notebook 03 exists**: it trains the encoder to place a sound near the
# images it goes with, and its map is the one to compare with this one. A warning sign
# here would be a probe at `chance`: the embedding would have lost even what the pixels
# hold.
#
# ## Try it
#
# 1. Set `front = "conv"`: the paper's encoder, trained on AV-Digits' sounds alone. The
#    decoder is the same, so the reconstructions should look much alike; compare the
#    probe's `embedding` row on unseen voices, and later notebook 05's results for people.
# 2. Set `embedding_dim = 128` (or 2048), the paper's bottleneck range. The paper found a
#    wider bottleneck reconstructs better but translates less informatively: watch the
#    validation loss here and the informativity in notebook 05.
# 3. Set `map_method = "tsne"`. t-SNE keeps neighbours together, so islands appear: check
#    whether an island is of one colour (a digit) or of many (then it groups something
#    else, such as one voice or one length of word).
# 4. Set `optimizer = "sgd"` and `lr = 0.05`, the authors' optimiser: compare the loss
#    curve with the default's over the same `num_epochs` (the authors trained for over a
#    thousand epochs).

# %%
write_step_outputs(config.report_dir, "02_audio_autoencoder", {
    "pass_on": {"ae_run": str(run_dir)},
    "headline": {"ae_probe_embedding": comparison["embedding"], "ae_probe_pixels": comparison["pixels"],
                 "ae_test_mse_shown": shown_mse},
})
