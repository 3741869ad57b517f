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
# # 1. Data exploration
#
# Sound-to-Imagination (Fanzeres & Nadeu) translates a **1-second sound** into an image of
# what made it. The model never sees class labels; they only serve to pair sounds with
# semantically coherent images and to evaluate. This notebook looks at the data the method
# learns from:
#
# * the default data set, **AV-Digits** (version 2): the words "zero".."nine" in 36
#   languages, spoken by real people (the Free Spoken Digit Dataset's English speakers) and by
#   every free voice of the Debian speech engines, paired *by class* with real handwritten
#   MNIST digits (as AV-MNIST does); validation and test voices, two human speakers and one
#   whole engine are never heard in training;
# * the **real VEGAS spectrograms** of the paper's five classes (when unpacked with `s2i vegas`).
#
# Every sound becomes a 128 x 100 log-mel spectrogram (128 mel bands, 100 frames of 10 ms),
# stored as an 8-bit grey image with low frequencies at the bottom and loud sounds bright,
# exactly like the published data set.

# %% tags=["parameters"]
data = ""  # data set folder; empty: the shipped AV-Digits (data/avdigits)
vegas_dir = ""  # unpacked VEGAS spectrograms; empty: S2I_VEGAS_DIR or cache/ (skipped when absent)
examples_per_class = 2  # example sounds shown per class
examples_to_hear = 6  # clips to listen to: half human recordings, half synthetic voices
seed = 0  # which examples are drawn
report_dir = "reports/interactive"  # where this step records its outputs (from the repository root)
figures_dir = "figures"  # where figures are saved (PNG + PDF)

# %%
from s2ilib.notebook import DataExplorationParameters, load_parameters

config = load_parameters(DataExplorationParameters, globals())
config

# %%
import matplotlib.pyplot as plt
from IPython.display import Audio, Markdown, display

from s2ilib import viz
from s2ilib.audio import SAMPLE_RATE, load_audio
from s2ilib.datasets import open_dataset, sounds, vegas
from s2ilib.notebook import write_step_outputs
from s2ilib.viz import save_figure

dataset = open_dataset(config.data_path)
print(f"{dataset.root}: {dataset.kind}, {dataset.num_classes} classes, pairing by {dataset.pairing}")

# %% [markdown]
# ## Classes, splits and balance

# %%
balance = viz.class_balance_table(dataset)
display(balance)
save_figure(viz.plot_class_balance(dataset), "01_class_balance", config.figures_dir)
plt.show()

# %% [markdown]
# ## Who speaks: people and engines, languages (AV-Digits)
#
# Splits are made **by voice**: every clip of one engine/voice/language set-up (for people:
# every recording of one speaker) lives in one split, and one engine is held out of training
# entirely, so the test measures translation of sounds from voices never heard. The
# evaluation reports these kinds of voice separately (notebook 5).

# %%
if dataset.kind == "avdigits":
    display(Markdown("**Sounds per kind of voice and split**"))
    display(viz.source_table(dataset, "kind"))
    speakers = sounds.speakers_by_split(dataset)
    display(Markdown("**Human speakers per split**: " + "; ".join(
        f"{split}: {', '.join(names) or 'none'}" for split, names in speakers.items())))
    display(Markdown("**Sounds per engine and split** (engines absent from train are never heard)"))
    display(viz.source_table(dataset, "engine"))
    save_figure(viz.plot_voice_sources(dataset), "01_voice_sources", config.figures_dir)
    plt.show()
else:
    print("no per-voice metadata in this data set")

# %% [markdown]
# ## Listen, look: sounds, their spectrograms and the images they pair with

# %%
figure = viz.plot_examples(dataset, "train", per_class=config.examples_per_class, seed=config.seed)
save_figure(figure, "01_examples", config.figures_dir)
plt.show()

# %% [markdown]
# Listen to a few: human recordings and synthetic voices in several languages.

# %%
if dataset.kind == "avdigits":
    from s2ilib.datasets.avdigits import audio_path

    train = dataset.split("train")
    for index in sounds.examples_by_voice_kind(train, config.examples_to_hear, config.seed):
        clip = audio_path(dataset.root, train.extra["file"][index])
        display(Markdown(f"`{clip.name}`: digit **{dataset.classes[train.labels[index]]}**, "
                         f"{train.extra['language'][index]}, {train.extra['engine'][index]} "
                         f"({train.extra['kind'][index]})"))
        display(Audio(load_audio(clip), rate=SAMPLE_RATE))

# %% [markdown]
# ## Mean spectrum per class
#
# Time-averaged grey level per mel band: what distinguishes the classes before any learning.

# %%
save_figure(viz.plot_mean_spectra(dataset.split("train"), dataset.classes),
            "01_mean_spectra", config.figures_dir)
plt.show()

# %% [markdown]
# ## The real VEGAS spectrograms
#
# The published 1-s log-mel JPEGs of the paper's five classes (s2i_data, CC BY 4.0,
# Fanzeres & Nadeu, built on VEGAS). Only the audio side was published in downloadable
# form. Unpack them once with `s2i vegas`; this section is skipped when they are absent.

# %%
vegas_root = vegas.find_vegas(config.vegas_dir or None)
vegas_summary = {}
if vegas_root is None:
    print("VEGAS spectrograms not found: run `s2i vegas` or set S2I_VEGAS_DIR (section skipped)")
else:
    vegas_data = open_dataset(vegas_root)
    display(viz.class_balance_table(vegas_data))
    save_figure(viz.plot_examples(vegas_data, "val", per_class=3, seed=config.seed),
                "01_vegas_examples", config.figures_dir)
    plt.show()
    save_figure(viz.plot_mean_spectra(vegas_data.split("val"), vegas_data.classes),
                "01_vegas_mean_spectra", config.figures_dir)
    plt.show()
    vegas_summary = {split: len(r) for split, r in vegas_data.sounds.items()}

# %%
write_step_outputs(config.report_dir, "01_data_exploration", {
    "headline": {"sounds_per_split": {s: len(r) for s, r in dataset.sounds.items()}},
    "vegas": vegas_summary,
})
