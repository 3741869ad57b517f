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
# # 1. The data: sounds, spectrograms and the images they pair with
#
# **The question of this chapter:** what does the translator learn from, and what does a
# second of sound look like to a network?
#
# Sound-to-Imagination (Fanzeres & Nadeu, 2021/2023) translates a **1-second sound** into
# an image of what made it: hear a dog, imagine a dog. The method is *unsupervised*: the
# networks never see a class label. Labels serve only to prepare the data (so that a sound
# and its image show the same thing) and to evaluate (is the imagined picture of the right
# thing?). Every later chapter starts from the two objects this one shows: a sound turned
# into a picture of its spectrum, and the image it is paired with.
#
# **Two data sets.** The paper's data set is a 5-class subset of **VEGAS** (videos of baby
# cries, dogs, rail transport, fireworks and flowing water), cut into 1-s segments; each
# segment gives one spectrogram and the video frame at its centre. Only the spectrograms
# were published in a form one can download, so the workbook's default is a data set one
# can ship and check: **AV-Digits** (version 2), modelled on AV-MNIST. Its sounds are the
# words "zero".."nine" in 36 languages, spoken by six real people (the Free Spoken Digit
# Dataset, English) and by every free voice of the Debian speech engines (espeak-ng,
# festival, flite, pico, open-jtalk, RHVoice). Its images are real handwritten MNIST digits,
# paired **by class**: any image of the digit k may go with any sound of the word k.
# Digits have one virtue for a study of translation: whether an imagined picture shows the
# right thing has an unambiguous answer.
#
# | | AV-Digits (this workbook's default) | VEGAS subset (the paper) |
# |---|---|---|
# | classes | 10 spoken digits | 5 sound sources |
# | sounds (segments) | the tables below | train 49,435, val 5,635, test 6,920 |
# | images | MNIST handwriting, paired by class | the video frame at the segment's centre (96 x 96 RGB) |
# | split by | voice: people by speaker, one engine held out | source video |
#
# **Splits by voice.** Every clip of one engine/voice/language set-up (for people: every
# recording of one speaker) lies in one split: three people in training, one in
# validation, two only in test; each language has two espeak-ng voices in training (two
# voices teach a language's words to unheard voices better than one voice said twice as
# often), one in validation and two only in test (at least 40 test sounds a language); and
# the pico engine is held out of training entirely. The test therefore measures translation of voices never
# heard, and notebook 05 reports each kind of voice and each language separately.

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
from IPython.display import HTML, Audio, Markdown, display

from s2ilib import viz
from s2ilib.audio import SAMPLE_RATE, load_audio
from s2ilib.datasets import open_dataset, sounds, vegas
from s2ilib.notebook import write_step_outputs
from s2ilib.viz import save_figure

dataset = open_dataset(config.data_path)
print(f"{dataset.root}: {dataset.kind}, {dataset.num_classes} classes, pairing by {dataset.pairing}")

# %% [markdown]
# ## From a waveform to an 8-bit log-mel image
#
# A network for images needs the sound as an image. Let $x[n]$ be the 1-s waveform sampled
# at $f_s = 16$ kHz, $w[n]$ a Hann window of $L = 400$ samples (25 ms), $H = 160$ samples
# (10 ms) the hop between frames and $N = 512$ the FFT size. The short-time Fourier
# transform of frame $t$ at frequency bin $k$ ($f_k = k f_s / N$, 257 bins of 31.25 Hz) is
#
# $$X[k, t] = \sum_{n=0}^{L-1} w[n]\, x[n + tH]\, e^{-2\pi i k n / N}, \qquad P[k, t] = c\, |X[k, t]|^2 ,$$
#
# $P$ its power, scaled by $c$ so that a full-scale sine reads 0 dB. A mel filterbank
# $F[m, k]$ (128 triangular bands, $m = 1..128$, evenly spaced on the mel scale: linear up
# to 1 kHz, logarithmic above, as the ear resolves pitch) sums the power into bands, and the
# result is taken in decibels:
#
# $$M[m, t] = \sum_k F[m, k]\, P[k, t], \qquad D[m, t] = 10 \log_{10} \max\big(M[m, t],\, 10^{-10}\big).$$
#
# Finally the decibels between a ceiling $D_{\max}$ and $D_{\max} - R$ (a range of $R$ dB)
# become grey levels, and the rows are flipped so that low frequencies are at the bottom:
#
# $$S[m, t] = \operatorname{clip}\!\Big(\operatorname{round}\big(255\, \tfrac{D[m, t] - D_{\max} + R}{R}\big),\, 0,\, 255\Big), \qquad \tilde S = S / 127.5 - 1 \in [-1, 1].$$
#
# One second gives 100 frames, so $S$ is a 128 x 100 grey image, loud is bright; the
# networks read it as $\tilde S$. The paper publishes the image size and orientation but
# not the sample rate, FFT size or the dB-to-byte mapping: the values below are the
# workbook's choice, fitted to the statistics of the published VEGAS images
# (`docs/audio_frontend.md`). This is the code that made every AV-Digits spectrogram:

# %%
import inspect

from s2ilib.audio import FrontEndConfig, LogMel, db_to_uint8

print(FrontEndConfig())  # f_s, L, H, N, the 128 bands, R = top_db, D_max = db_ceiling
print(inspect.getsource(LogMel.forward))
print(inspect.getsource(db_to_uint8))

# %% [markdown]
# ## Classes, splits and balance

# %%
balance = viz.class_balance_table(dataset)
display(balance)
save_figure(viz.plot_class_balance(dataset), "01_class_balance", config.figures_dir)
plt.show()

# %% [markdown]
# **What to look for.** Within a split every class has the same number of sounds, so
# chance is one in ten and no accuracy later needs reweighting; training is the largest
# split. A warning sign would be one short bar: a class the build failed to synthesise,
# whose per-class results later would rest on few sounds.
#
# ## Who speaks: people and engines, languages (AV-Digits)
#
# The tables count sounds by kind of voice (people or synthetic) and by engine, and name
# the people in each split.

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
# **What to look for.** Left: espeak-ng, with its many languages and voice variants, gives
# most sounds; `fsdd` (the recordings of people) has sounds in all three splits, but the
# list of speakers above names different people in each; pico has a test bar only (the
# held-out engine). Right: English has by far the most sounds (the people and most
# engines speak it), every other language a few dozen to a few hundred. A warning sign
# would be one person's name in two splits: the test would then hear a voice it trained on.
#
# ## Listen, look: sounds, their spectrograms and the images they pair with

# %%
figure = viz.plot_examples(dataset, "train", per_class=config.examples_per_class, seed=config.seed)
save_figure(figure, "01_examples", config.figures_dir)
plt.show()

# %% [markdown]
# **What to look for.** Each row is one digit: a spectrogram, the image it was paired
# with, then a second example. A word fills only part of the second (black is silence) and
# lies anywhere in it, so a network has to recognise it wherever it starts. Vowels show as
# stacks of bright horizontal lines near the bottom (the harmonics of the voice's pitch);
# consonants such as the "s" of six and seven or the "f" of four and five show, where
# visible, as fainter diffuse energy higher up. The image is *an* MNIST image of the digit,
# not *the* image of this sound: with class pairing any image of the class would do. A
# warning sign would be a spectrogram that is all black or one saturated block (a failed
# synthesis, or a dB mapping that clips).
#
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
# ## One voice per engine and language
#
# Every pair of speech engine and language in AV-Digits, all splits together, with one
# clip each: a random clip of the pair, so a random voice of it saying a random digit
# (`seed`; `s2ilib/datasets/sounds.py`, `clips_per_engine_and_language`). Rows are
# languages, columns engines (`fsdd`: the recorded people); an empty cell is an engine
# with no voice of that language. Under each player: the voice, the word it was given to
# say, and its digit. The players hold the clips' own Ogg Vorbis files, a few kB each, embedded
# in the notebook (the line above the table gives the total); a browser that cannot play
# Ogg shows players that stay silent.

# %%
if dataset.kind == "avdigits":
    picks = sounds.clips_per_engine_and_language(dataset, seed=config.seed)
    grid = viz.listening_grid(dataset, picks)
    print(f"{len(picks)} clips (engine, language), {len(grid) / 1e3:.0f} kB with the audio embedded")
    display(HTML(grid))

# %% [markdown]
# **What to listen for.** Along a row, one language from every engine that speaks it:
# voices that differ in pitch, speed and how natural they sound (espeak-ng makes its voices
# by formant synthesis, the other engines build theirs from recordings of people, and
# `fsdd` is people). Down a column, one engine through its languages: the word for a digit
# changes with the language while the engine's timbre stays. To hear the digit, the encoder
# therefore has to learn several words for each digit and set the voice aside; a language
# with few voices in training gives it few examples of its words (notebook 05 reports
# informativity and the supervised ceiling per language). The `pico` column is the engine
# held out of training, heard only in the test split. A warning sign would be a clip that
# is silent, cut off, or another word than the one written under it: a failed synthesis
# that the build's word check let through.

# %% [markdown]
# ## Mean spectrum per class
#
# Time-averaged grey level per mel band, $\bar S_c[m] = \operatorname{mean}_{i \in c,\, t} S_i[m, t]$
# over the training sounds $i$ of class $c$: what tells the classes apart before any learning.

# %%
save_figure(viz.plot_mean_spectra(dataset.split("train"), dataset.classes),
            "01_mean_spectra", config.figures_dir)
plt.show()

# %% [markdown]
# **What to look for.** All ten curves have nearly the same shape: a peak in the lowest
# bands (band 7 is centred near 190 Hz, where voices' pitch and first harmonics lie), then a
# fall; band 43 is about 1 kHz and band 100 about 4 kHz. The digits differ mainly in level
# (a word with a short voiced part, such as "six", sits lower), because the same voices say
# every digit. So the class is not in the average spectrum but in its pattern over time:
# which sounds follow which. A network that only measured the spectrum's average would do
# little better than chance. A warning sign would be one class's curve far from the
# others in shape: a class spoken by different voices than the rest, which a network
# could learn instead of the word.
#
# ## The real VEGAS spectrograms
#
# The published 1-s log-mel JPEGs of the paper's five classes (s2i_data, CC BY 4.0,
# Fanzeres & Nadeu, built on VEGAS). Only the audio side was published in downloadable
# form. Unpack them once with `s2i vegas`; this section is skipped when they are absent.
# They show what the paper's translator heard, and how far AV-Digits is from it.

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

# %% [markdown]
# **What to look for** (when the VEGAS section ran). In the examples, a baby's cry shows
# the same stacked harmonics as a voice, a dog's bark is a short burst, fireworks are
# vertical lines (bangs: every frequency at one instant) and rail transport and flowing
# water are broadband noise that fills the second. Unlike a spoken digit, most of these
# sounds fill the whole segment. In the mean spectra the classes differ in level and shape
# far more than the digits do, and above the lowest bands they lie well above the AV-Digits
# curves (a spoken word is mostly silence); all five fall to black in the top few bands, an
# upper frequency edge of the published front end that the paper does not state. The class
# balance table counts the spectrograms found, per split.
#
# ## Try it
#
# 1. Set `seed = 1` and `examples_per_class = 4`: other examples are drawn. The voices
#    change, the pattern per digit (where the harmonics lie, where the consonants are)
#    should stay recognisable.
# 2. Set `examples_to_hear = 12`: more clips, half people and half synthetic voices. Listen
#    for what the spectrogram keeps (the word, the voice) and loses (nothing below the
#    black floor, $R$ dB under the ceiling).
# 3. Change $R$: for one of the clips above, show
#    `db_to_uint8(log_mel(load_audio(clip)), FrontEndConfig(top_db=80.0))` with
#    `plt.imshow` (`from s2ilib.audio import log_mel`). With an 80 dB range instead of the
#    default, quiet background noise is no longer black and the whole image is brighter.
# 4. Point `vegas_dir` at unpacked VEGAS spectrograms (`s2i vegas`) if the section was
#    skipped, and compare the two mean-spectrum figures.
# 5. With `seed = 1` the grid of one voice per engine and language draws another clip for
#    each pair (another digit, often another voice); its cells stay the same, since every
#    pair of engine and language has clips.

# %%
write_step_outputs(config.report_dir, "01_data_exploration", {
    "headline": {"sounds_per_split": {s: len(r) for s, r in dataset.sounds.items()}},
    "vegas": vegas_summary,
})
