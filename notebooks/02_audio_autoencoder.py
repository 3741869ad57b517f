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
# # 2. Stage 1: the audio autoencoder
#
# The first stage learns to compress a 128 x 100 log-mel spectrogram into a D-dimensional
# embedding **from sounds alone** (no labels, no images): an encoder of 13 convolutions
# (the last with tanh, so the embedding lies in [-1, 1]) and a mirrored decoder of
# transposed convolutions, trained to reconstruct the input under a mean-squared error.
# The authors trained it with SGD (lr 0.05, momentum 0.9, batch 64) and keep dropout on at
# test time. Their results report a trade-off: a wider bottleneck reconstructs better but
# translates less informatively.
#
# **The front (beyond the paper).** With `front = "speech"` (the main job's: `"auto"` picks it
# for AV-Digits, and the paper's `"conv"` for other data) the
# encoder's convolutions are replaced by a front that has already heard a great deal of
# speech: Google's speech_embedding (pretrained for keyword spotting, weights from the
# openWakeWord package), frozen, read from the same spectrograms, followed by one trained
# layer to the embedding. AV-Digits has three real people to learn from; the pretrained
# front brings the many it was trained on, and unseen people's recordings go from about
# three in five to more than nine in ten imagined as the right digit
# (`benchmarks/RESULTS.md`, "A pretrained speech front"). `front = "conv"` is the paper's
# encoder, learnt here from the sounds alone.
#
# Here we train it (or load a finished run), look at the loss curves and reconstructions,
# map the embeddings in 2-D, and ask how much class information they carry: a linear
# probe trained on the embeddings of training voices and scored on unseen voices, against
# the same probe on raw spectrogram pixels. Notebook 03 then aligns this encoder with the
# images (beyond the paper).

# %% tags=["parameters"]
data = ""  # data set folder; empty: the shipped AV-Digits
preset = "demo"  # "tiny" (tests), "demo" (2-core CPU, minutes), "paper" (the authors' networks)
ae_run = ""  # an existing AE run directory to load instead of training; empty: train
embedding_dim = 512  # D, the audio embedding width (paper: 128..2048)
front = "auto"  # "speech": a pretrained speech front, frozen; "conv": the paper's encoder; "auto": speech for AV-Digits
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
from s2ilib.datasets.sounds import examples_per_class
from s2ilib.devices import resolve_device
from s2ilib.notebook import smoke_settings, write_step_outputs
from s2ilib.viz import save_figure
from s2ilib.runs import load_run, read_stats
from s2ilib.train.registry import train_autoencoder
from s2ilib.translate import reconstruct

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
# ## Loss curves

# %%
stats = read_stats(run_dir)
loss_columns = [c for c in stats.columns if "loss" in c]
save_figure(viz.plot_curves(stats, loss_columns, "Autoencoder: reconstruction loss (MSE)"),
            "02_ae_loss", config.figures_dir)
plt.show()

# %% [markdown]
# ## Reconstructions of unseen voices (dropout on at test time, as the paper)

# %%
test = dataset.split("test")
picks = examples_per_class(test, 1, config.seed)[:10]
originals = np.asarray(test.spectrograms[picks])
reconstructed = reconstruct(run.autoencoder, originals, device)
shown_mse = float(np.mean(((originals.astype(np.float32) - reconstructed) / 127.5) ** 2))  # in [-1, 1] units
save_figure(viz.plot_reconstructions(originals, reconstructed, [dataset.classes[i] for i in test.labels[picks]]),
            "02_ae_reconstructions", config.figures_dir)
plt.show()

# %% [markdown]
# ## The embedding space: a 2-D map and a linear probe

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

# %%
write_step_outputs(config.report_dir, "02_audio_autoencoder", {
    "pass_on": {"ae_run": str(run_dir)},
    "headline": {"ae_probe_embedding": comparison["embedding"], "ae_probe_pixels": comparison["pixels"],
                 "ae_test_mse_shown": shown_mse},
})
