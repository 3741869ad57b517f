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
# # 3. Beyond the paper: aligning the audio embedding with the images
#
# Reconstruction alone does not ask the embedding to tell apart what the images show, and
# the GAN can be no more informative than its input: on AV-Digits a linear probe reads the
# digit from the autoencoder's embedding barely better than from raw spectrogram pixels
# (notebook 02). The alignment stage (`s2ilib/train/align.py`, `s2i train-align`)
# fine-tunes the encoder, with a small head on top, under a contrastive (CLIP-style)
# objective: in each batch, a sound's embedding must be more similar to the embedding of
# the image it is paired with than to every other image, and vice versa; a small CNN
# embeds the images and learns alongside. Only the pairing is used, as for the GAN, never
# the labels. Training sounds are warped in frequency and time, shifted and changed in
# level, so that voices are not memorised.
#
# This stage underlies the workbook's headline result: recipes `flow` (the main run) and
# `aligned` decode this one alignment run (`flow`'s alignment settings are `aligned`'s); the
# `paper` recipe skips it, and this notebook then only records that there is nothing to align.

# %% tags=["parameters"]
data = ""  # data set folder; empty: the shipped AV-Digits
recipe = "aligned"  # the recipe whose alignment stage runs ("flow": the same); "paper": none
ae_run = ""  # the AE run to align; empty: the one notebook 02 recorded
align_run = ""  # an existing alignment run to load instead of training; empty: train
align_epochs = 0  # epochs of the alignment stage; 0: the recipe's
map_method = "pca"  # embedding map: "pca" or "tsne"
seed = 0
device = "auto"  # "auto": CUDA when present, else CPU
smoke = False  # a few steps on a few sounds (tests)
report_dir = "reports/interactive"  # where this step records its outputs (from the repository root)
runs_root = "runs"  # where run directories are made
figures_dir = "figures"  # where figures are saved (PNG + PDF)

# %%
from s2ilib.notebook import AlignmentParameters, load_parameters

config = load_parameters(AlignmentParameters, globals())
config

# %%
import matplotlib.pyplot as plt
from IPython.display import display

from s2ilib import probes, viz
from s2ilib.datasets import open_dataset
from s2ilib.devices import resolve_device
from s2ilib.notebook import smoke_settings, write_step_outputs
from s2ilib.viz import save_figure
from s2ilib.runs import load_run, read_stats, sample_grid_paths
from s2ilib.train.registry import train_align

device = resolve_device(config.device)
dataset = open_dataset(config.data_path)

# %% [markdown]
# ## Train (or load)
#
# The recipe's settings (`s2ilib/train/recipes.py`), on the AE run of notebook 02.

# %%
alignment = config.alignment_config()  # the recipe's AlignTrainConfig with the parameters
align_dir = config.align_run or None
if alignment is not None and not align_dir:
    align_dir = train_align(alignment, runs_root=config.runs_root, device=device)
print("alignment run:", align_dir or f"none (recipe {config.recipe!r} has no alignment stage)")

# %% [markdown]
# ## Loss and retrieval over training
#
# On the fixed validation pairs (unseen voices): the contrastive loss, and how often a
# sound's most similar validation image is its own pair, or of its own class.

# %%
if align_dir:
    align_stats = read_stats(align_dir)
    save_figure(viz.plot_curves(align_stats, ["loss", "val_loss"], "Alignment: contrastive loss"),
                "03_align_loss", config.figures_dir)
    plt.show()
    save_figure(viz.plot_curves(align_stats, ["val_class_top1", "val_pair_top1"],
                                "Validation: is a sound's most similar image of its class?"),
                "03_align_retrieval", config.figures_dir)
    plt.show()
    save_figure(viz.plot_sample_grids(sample_grid_paths(align_dir, 1),
                                      "Paired image (top) and the most similar validation image (bottom)"),
                "03_align_retrieval_examples", config.figures_dir)
    plt.show()

# %% [markdown]
# ## The probe before and after
#
# The same linear probe as in notebook 02, trained on the embeddings of training voices and
# scored on unseen voices, on the autoencoder's embedding and on the aligned one.

# %%
aligned_comparison = None
if align_dir:
    test, train = dataset.split("test"), dataset.split("train")
    limit = smoke_settings("probe", config.smoke).get("max_per_split", 5000)
    before = probes.compare_probes(load_run(config.ae_run, device).encoder, train, test, device,
                                   max_per_split=limit, seed=config.seed)
    aligned = load_run(align_dir, device=device)
    aligned_comparison = probes.compare_probes(aligned.encoder, train, test, device,
                                               max_per_split=limit, seed=config.seed)
    display({"probe on unseen voices": {"autoencoder embedding": before["embedding"],
                                        "aligned embedding": aligned_comparison["embedding"],
                                        "spectrogram pixels": before["pixels"],
                                        "chance": before["chance"]}})
    aligned_features = probes.embedding_features(aligned.encoder, test, device=device)
    aligned_map = probes.embedding_map(aligned_features, config.map_method, config.seed)
    save_figure(viz.plot_embedding_map(aligned_map, test.labels, dataset.classes,
                                       f"Aligned test embeddings ({config.map_method.upper()})"),
                "03_aligned_embedding_map", config.figures_dir)
    plt.show()

# %%
headline = {"aligned_probe_embedding": aligned_comparison["embedding"]} if aligned_comparison else {}
write_step_outputs(config.report_dir, "03_alignment", {
    "pass_on": {"align_run": str(align_dir or "")},
    "headline": headline,
})
