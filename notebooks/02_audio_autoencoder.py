# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
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
# Here we train it (or load a finished run), look at the loss curves and reconstructions,
# map the embeddings in 2-D, and ask how much class information they carry: a linear
# probe trained on the embeddings of training voices and scored on unseen voices, against
# the same probe on raw spectrogram pixels.

# %% tags=["parameters"]
data = ""  # data set folder; empty: the shipped AV-Digits
preset = "demo"  # "tiny" (tests), "demo" (2-core CPU, minutes), "paper" (the authors' networks)
ae_run = ""  # an existing AE run directory to load instead of training; empty: train
embedding_dim = 512  # D, the audio embedding width (paper: 128..2048)
num_epochs = 36  # passes over the training sounds (demo AV-Digits: about 3.5 min on 2 cores)
batch_size = 64  # the authors' batch size
optimizer = "adam"  # "sgd" (the authors': lr 0.05, momentum 0.9) or "adam"
lr = 1e-2  # base learning rate (Adam 1e-3 left the demo AE near the mean image for long)
map_method = "pca"  # embedding map: "pca" or "tsne"
recipe = "aligned"  # "aligned": the alignment stage below runs; "paper": it is skipped
align_run = ""  # an existing alignment run to load instead of training; empty: train
align_epochs = 0  # epochs of the alignment stage; 0: the recipe's
seed = 0
device = "auto"  # "auto": CUDA when present, else CPU
smoke = False  # a few steps on a few sounds (tests)
report_dir = "reports/interactive"
runs_root = "runs"
figures_dir = "figures"

# %%
from s2ilib.notebook import AutoencoderParameters, load_parameters

config = load_parameters(AutoencoderParameters, globals())
config

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import display

from s2ilib import probes, viz
from s2ilib.datasets import open_dataset
from s2ilib.datasets.torch_data import from_unit_range, to_unit_range
from s2ilib.devices import resolve_device
from s2ilib.models import enable_test_time_dropout
from s2ilib.notebook import save_figure, write_step_outputs
from s2ilib.train.ae import train_autoencoder
from s2ilib.train.config import AETrainConfig
from s2ilib.train.rundir import load_run

device = resolve_device(config.device)
dataset = open_dataset(config.data_path)

# %% [markdown]
# ## Train (or load)
#
# Every run gets its own directory under `runs/` with its configuration, environment,
# log, `stats.jsonl`, TensorBoard events, sample grids and resumable checkpoints
# (`s2i train-ae --resume RUN` continues a killed run).

# %%
training = {
    "data": str(config.data_path), "preset": config.preset, "embedding_dim": config.embedding_dim,
    "num_epochs": config.num_epochs, "batch_size": config.batch_size, "optimizer": config.optimizer,
    "lr": config.lr, "seed": config.seed,
}
if config.smoke:  # seconds, not minutes: a handful of steps on a few sounds per class
    training.update(num_steps=6, limit_per_class=4, batch_size=8, log_every=2, sample_every=3,
                    checkpoint_every=3, val_samples=16)
if config.ae_run:
    run_dir = config.ae_run
else:
    run_dir = train_autoencoder(AETrainConfig.from_dict(training), runs_root=config.runs_root,
                                device=device)
print("AE run:", run_dir)
run = load_run(run_dir, device=device)

# %% [markdown]
# ## Loss curves

# %%
stats = viz.read_stats(run_dir)
loss_columns = [c for c in stats.columns if "loss" in c]
save_figure(viz.plot_curves(stats, loss_columns, "Autoencoder: reconstruction loss (MSE)"),
            "02_ae_loss", config.figures_dir)
plt.show()

# %% [markdown]
# ## Reconstructions of unseen voices (dropout on at test time, as the paper)

# %%
test = dataset.split("test")
picks = viz.examples_per_class(test, 1, config.seed)[:10]
originals = np.asarray(test.spectrograms[picks])
with torch.no_grad():
    enable_test_time_dropout(run.autoencoder)
    reconstruction, _ = run.autoencoder(to_unit_range(torch.as_tensor(originals).to(device)).unsqueeze(1))
    run.autoencoder.eval()
reconstructed = from_unit_range(reconstruction[:, 0].cpu()).numpy()
shown_mse = float(np.mean(((originals.astype(np.float32) - reconstructed) / 127.5) ** 2))  # in [-1, 1] units
save_figure(viz.plot_reconstructions(originals, reconstructed, [dataset.classes[i] for i in test.labels[picks]]),
            "02_ae_reconstructions", config.figures_dir)
plt.show()

# %% [markdown]
# ## The embedding space: a 2-D map and a linear probe

# %%
encoder = run.autoencoder.encoder
limit = 200 if config.smoke else 5000
comparison = probes.compare_probes(encoder, dataset.split("train"), test, device, max_per_split=limit,
                                   seed=config.seed)
display(comparison)
features = probes.embedding_features(encoder, test, device=device)
coordinates = probes.embedding_map(features, config.map_method, config.seed)
save_figure(viz.plot_embedding_map(coordinates, test.labels, dataset.classes,
                                   f"Test embeddings ({config.map_method.upper()}), coloured by class"),
            "02_embedding_map", config.figures_dir)
plt.show()

# %% [markdown]
# ## Beyond the paper: aligning the embedding with the images
#
# Reconstruction alone does not ask the embedding to tell apart what the images show, and
# the GAN can be no more informative than its input. The alignment stage
# (`s2ilib/train/align.py`, `s2i train-align`) fine-tunes the encoder, with a small head on
# top, under a contrastive (CLIP-style) objective: in each batch, a sound's embedding must
# be more similar to the embedding of the image it is paired with than to every other
# image, and vice versa; a small CNN embeds the images and learns alongside. Only the
# pairing is used, as for the GAN, never the labels. Training sounds are shifted in time,
# changed in level and partly masked (SpecAugment) so that voices are not memorised.
# The `paper` recipe skips this stage.

# %%
from s2ilib.train.align import train_align
from s2ilib.train.recipes import align_config

settings = {"data": str(config.data_path), "seed": config.seed}
if config.align_epochs:
    settings["num_epochs"] = config.align_epochs
if config.smoke:
    settings.update(num_steps=4, limit_per_class=4, batch_size=8, log_every=2, sample_every=2,
                    checkpoint_every=2, val_samples=16, image_channels=[8, 16])
alignment = align_config(config.recipe, run_dir, settings)
align_dir = config.align_run or None
if alignment is not None and not align_dir:
    align_dir = train_align(alignment, runs_root=config.runs_root, device=device)
print("alignment run:", align_dir or f"none (recipe {config.recipe!r} has no alignment stage)")

# %%
aligned_comparison = None
if align_dir:
    align_stats = viz.read_stats(align_dir)
    save_figure(viz.plot_curves(align_stats, ["loss", "val_loss"], "Alignment: contrastive loss"),
                "02_align_loss", config.figures_dir)
    plt.show()
    save_figure(viz.plot_curves(align_stats, ["val_class_top1", "val_pair_top1"],
                                "Validation: is a sound's most similar image of its class?"),
                "02_align_retrieval", config.figures_dir)
    plt.show()
    aligned = load_run(align_dir, device=device)
    aligned_comparison = probes.compare_probes(aligned.autoencoder.encoder, dataset.split("train"), test,
                                               device, max_per_split=limit, seed=config.seed)
    display({"probe on unseen voices": {"autoencoder embedding": comparison["embedding"],
                                        "aligned embedding": aligned_comparison["embedding"],
                                        "spectrogram pixels": comparison["pixels"],
                                        "chance": comparison["chance"]}})
    aligned_features = probes.embedding_features(aligned.autoencoder.encoder, test, device=device)
    aligned_map = probes.embedding_map(aligned_features, config.map_method, config.seed)
    save_figure(viz.plot_embedding_map(aligned_map, test.labels, dataset.classes,
                                       f"Aligned test embeddings ({config.map_method.upper()})"),
                "02_aligned_embedding_map", config.figures_dir)
    plt.show()
    save_figure(viz.plot_sample_grids(viz.sample_grid_paths(align_dir, 1),
                                      "Paired image (top) and the most similar validation image (bottom)"),
                "02_align_retrieval_examples", config.figures_dir)
    plt.show()

# %%
headline = {"ae_probe_embedding": comparison["embedding"], "ae_probe_pixels": comparison["pixels"],
            "ae_test_mse_shown": shown_mse}
if aligned_comparison:
    headline["aligned_probe_embedding"] = aligned_comparison["embedding"]
write_step_outputs(config.report_dir, "02_audio_autoencoder", {
    "pass_on": {"ae_run": str(run_dir), "align_run": str(align_dir or "")},
    "headline": headline,
})
