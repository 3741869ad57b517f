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
# # 3. Beyond the paper: aligning the sound's embedding with the images
#
# **The question of this chapter:** notebook 02's embedding is not organised by what the
# images show (its map has no digit clusters). Can we organise it so, without labels,
# using only which sound goes with which image?
#
# **The idea.** The generator can be no more informative than the embedding it draws from.
# The alignment stage (`s2ilib/train/align.py`, `s2i train-align`) trains the audio
# encoder, with a small head on top, together with a small image encoder, so that a sound's
# embedding lies close to the embedding of the image it is paired with and far from the
# other images of the batch (the contrastive objective of CLIP, Radford et al. 2021). Only
# the pairing is used, as for the GAN. With a frozen front of notebook 02 (the whisper
# front, by default) that input network stays frozen (and its features of the clips are
# computed once, so the sounds are not augmented); the projection after it, the head, the
# image encoder and the temperature learn. With the paper's conv input network the whole
# encoder learns, on sounds warped in frequency and time, shifted and changed in level.
#
# **The objective.** In a batch of $B$ pairs, let $a_i$ be the embedding of sound $i$ (the
# encoder $e_\theta$ and the head), $v_j$ the embedding of image $x_j$ by the image encoder
# $q_\psi$, and $\hat a_i = a_i / \lVert a_i \rVert$, $\hat v_j = v_j / \lVert v_j \rVert$
# their unit vectors. Their cosine similarity, divided by a temperature $\tau$ (learnt,
# starting at CLIP's 0.07, with $1/\tau \le 100$), is the logit
#
# $$\ell_{ij} = \frac{\hat a_i^\top \hat v_j}{\tau} .$$
#
# Each sound must pick its own image out of the batch, and each image its own sound: the
# symmetric InfoNCE loss is the mean of two cross-entropies,
#
# $$\mathcal{L}_{a \to v} = -\frac{1}{B} \sum_{i=1}^{B} \log \frac{e^{\ell_{ii}}}{\sum_{j=1}^{B} e^{\ell_{ij}}}, \qquad \mathcal{L}_{v \to a} = -\frac{1}{B} \sum_{j=1}^{B} \log \frac{e^{\ell_{jj}}}{\sum_{i=1}^{B} e^{\ell_{ij}}}, \qquad \mathcal{L} = \tfrac{1}{2}\big(\mathcal{L}_{a \to v} + \mathcal{L}_{v \to a}\big).$$
#
# **The batch is the set of negatives**: every other image $j \neq i$ of the batch pushes
# $a_i$ away, so a larger batch gives more negatives (`batch_size`; under torchrun the
# whole global batch). At chance every logit is equal and $\mathcal{L} = \log B$.
#
# **Class pairing.** AV-Digits pairs by class, and the image drawn for a sound is redrawn
# every epoch: a sound cannot know *which* image of its digit it was drawn with. With the
# default positives (`positives = "pair"`, the recipes' setting) the other images of its
# class in the batch count as negatives, so even a perfect model cannot go below about the
# log of the number of same-class images in the batch, near $\log(B/K)$ for $K$ balanced
# classes. The option `positives = "pairing"` instead counts as positives $P_i$ every image
# of the batch the data set pairs with sound $i$ (with class pairing: every image of its
# class) and averages over them (the multi-positive loss of SupCon, Khosla et al. 2020):
#
# $$\mathcal{L}_{a \to v} = -\frac{1}{B} \sum_{i=1}^{B} \frac{1}{|P_i|} \sum_{p \in P_i} \log \frac{e^{\ell_{ip}}}{\sum_{j=1}^{B} e^{\ell_{ij}}} ,$$
#
# and likewise from the images' side; its floor is the mean of $\log |P_i|$, not 0.
#
# **The paper's numbers beside ours.** The paper has no alignment stage, so there is
# nothing of its own to compare here; its one headline, informativity above 14% on VEGAS,
# is compared in notebook 05. This stage underlies the workbook's headline result: recipes
# `flow` (the main run) and `aligned` decode this one alignment run (`flow`'s alignment
# settings are `aligned`'s); the `paper` recipe skips it, and this notebook then only
# records that there is nothing to align.

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
# ## The networks and the update step
#
# The aligned audio encoder (the AE's encoder, then the head `head.layers`: Linear, ReLU,
# Linear, whose output is scaled to unit length times $\sqrt{D}$) and the image encoder
# (stride-2 convolutions, a mean over the image, one linear layer to $D$), one row per
# layer as each runs; then the code of one training step and of its loss, as they ran.

# %%
if align_dir:
    import inspect

    import torch

    from s2ilib.models.summary import format_layer_table, layer_table
    from s2ilib.train.losses import contrastive_loss
    from s2ilib.train.steps import align_step
    from s2ilib.translate import example_inputs

    aligned = load_run(align_dir, device=device)
    sounds = example_inputs(aligned.encoder, dataset.split("test"), [0, 1])  # what the encoder reads
    print("audio encoder\n" + format_layer_table(layer_table(aligned.encoder, sounds.to(device))))
    tower = aligned.image_encoder.config
    images = torch.zeros(2, tower.image_channels, tower.image_size, tower.image_size, device=device)
    print("\nimage encoder\n" + format_layer_table(layer_table(aligned.image_encoder, images)))
    print(inspect.getsource(align_step))
    print(inspect.getsource(contrastive_loss))

# %% [markdown]
# ## Loss and retrieval over training
#
# On the fixed validation pairs (unseen voices): the contrastive loss, and how often a
# sound's most similar validation image is its own pair, or of its own class. The
# validation loss is computed over all the validation pairs at once (256 by default,
# `val_samples`), not over a batch, so its chance level $\log 256$ and its floor are higher
# than the training loss's: compare each curve with itself, not the two heights.

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
# **What to look for.** The loss figure: the training loss falls from near $\log B$ and
# flattens as it nears its floor (about $\log(B/K)$ with the default positives, see the
# objective); the validation loss moves little, staying closer to its chance level: on
# voices never heard the similarities are far less confident. The retrieval figure is the
# measurement that matters. `val_class_top1`, how often a sound's most similar validation
# image shows its digit, lies far above the chance of one in ten. `val_pair_top1`, how
# often it is the very image the sound was paired with, stays low, near one over the
# number of validation images per class: any image of the digit is as good a match, so
# this curve cannot rise much, and that is expected. Both curves start at the first
# validation (not at step 0), so the rise before it is not drawn. Warning signs: a class
# curve near 0.1 (no alignment), or a pair curve far above one over the images per class
# (the model would be matching handwriting details the sound cannot carry).
#
# The grid shows the first validation grid of the run (its step is in the title): the
# paired images (top) and, under each, the validation image most similar to that sound
# (bottom). A bottom image of the same digit as the top one is a success, whatever the
# handwriting.
#
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

# %% [markdown]
# **What to look for.** In the table, the aligned embedding's probe should lie above the
# autoencoder's (both above the spectrogram pixels and chance): the alignment made the
# digit easier to read from the embedding, with no label in its loss. In the map, compare
# with notebook 02's round, mixed cloud: sounds of one digit now gather in their own region,
# and several digits take a side of the cloud of their own, while others overlap in the
# middle. PCA shows only the two directions of largest variance of a $D$-dimensional
# embedding and ten classes cannot all separate in two dimensions, so overlap in the map is
# not overlap in the embedding: the probe is the measurement. Warning signs: a map as mixed
# as notebook 02's (the alignment did not take), or ten tight dots (the embedding keeps
# only the digit, and nothing is left to vary one sound's image from another's).
#
# ## Try it
#
# 1. Set `align_epochs = 10` (the recipe's is 60): the training loss stops further from
#    its floor, and the retrieval curve and the probe gain should be smaller.
# 2. Set `recipe = "paper"`: no alignment stage; this notebook records nothing to align
#    and notebook 04 trains the paper's GAN on notebook 02's embedding. Expect notebook
#    05's informativity to fall well below the aligned recipes' (`benchmarks/RESULTS.md`).
# 3. Set `map_method = "tsne"`: do the islands hold one digit each?
# 4. Train with the class-pairing positives from the command line,
#    `s2i train-align --ae-run RUN --recipe aligned --set positives=pairing`, and pass the
#    new run as `align_run`: same-class images stop being negatives, so the training loss
#    floor becomes the mean of $\log |P_i|$; compare the retrieval curves and the probe.

# %%
headline = {"aligned_probe_embedding": aligned_comparison["embedding"]} if aligned_comparison else {}
write_step_outputs(config.report_dir, "03_alignment", {
    "pass_on": {"align_run": str(align_dir or "")},
    "headline": headline,
})
