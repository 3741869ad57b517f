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
# # 7. Imagine: your sound, the model's picture
#
# What does the trained translator imagine for one sound: a test voice it never heard, or a
# recording of your own? This chapter runs the whole path of the workbook on one sound, and
# lets you listen to the sound and turn the one sampling setting that matters.
#
# **The path.** Your file is read exactly as the training sounds were
# (`s2ilib/audio.py`): mono, resampled to 16 kHz, and cut to one second. For a model trained
# on AV-Digits that second is made as its clips were made: the spoken word is trimmed of
# silence, set to the training level and centred (a quiet microphone would otherwise show the
# model a darker word than any it has heard). The second $u$ becomes a log-mel image $a$ of
# 128 mel bands by 100 frames (25-ms windows every 10 ms):
#
# $$a_{f\tau} = \operatorname{byte}\Big(10 \log_{10} \sum_k M_{fk}\,\big|U_{k\tau}\big|^2\Big),$$
#
# where $U_{k\tau}$ is frequency bin $k$ of frame $\tau$ of the short-time Fourier transform
# of $u$, $M$ the mel filter bank (row $f$ one band), and byte maps -50..-5 dB onto 0..255
# (loud is bright; the lowest band is the bottom row). The encoder gives the embedding
# $s = E(a)$, and the decoder draws images from $s$ (notebook 06 gives both decoders'
# sampling in full).
#
# **The slider** sets how the images are drawn, for this call only (the run's own setting is
# restored after):
#
# - a flow run (the main job's): the guidance weight $w$ in
#   $$\tilde v(x, t, s) = v_\theta(x, t, \varnothing) + w\,\big(v_\theta(x, t, s) - v_\theta(x, t, \varnothing)\big),$$
#   with $x$ the image being drawn, $t$ the flow time and $\varnothing$ the learnt "no sound";
#   the trained $w$ = 2 comes first; $w = 1$ gives plain conditional draws, more varied and
#   less often the sound's digit; a higher $w$ gives the digit more surely, drawn more heavily;
# - a GAN run: the strength $\alpha$ of the test-time dropout, every rate $p$ becoming
#   $\min(0.95, \alpha p)$: 1.0 as trained, 0 one deterministic image.
#
# In JupyterLab the controls are live (an uploaded file is shown until you pick a test
# sound again); run headless (papermill) the notebook shows the same view once, for the
# parameters below.

# %% tags=["parameters"]
data = ""  # data set folder; empty: the shipped AV-Digits
decoder_run = ""  # the decoder run (GAN or flow); empty: the one notebook 04 recorded (or the main job's)
audio_file = ""  # a sound file of your own to imagine; empty: a test sound
split = "test"  # where the test sounds of the menu come from
samples = 4  # images drawn per sound
live_widgets = True  # build the live controls; the pipeline turns them off (headless: static view only)
seed = 0
device = "auto"  # auto: CUDA when present, else CPU
report_dir = "reports/interactive"  # where this step records its outputs (from the repository root)
figures_dir = "figures"  # where figures are saved (PNG + PDF)

# %%
from s2ilib.notebook import ImagineParameters, load_parameters

config = load_parameters(ImagineParameters, globals())
config

# %%
from pathlib import Path

import ipywidgets as widgets
import matplotlib.pyplot as plt
from IPython.display import Audio, display

from s2ilib import gallery, viz
from s2ilib.audio import SAMPLE_RATE
from s2ilib.datasets import open_dataset
from s2ilib.datasets.sounds import clip_mode_for
from s2ilib.devices import resolve_device
from s2ilib.errors import AudioError
from s2ilib.notebook import write_step_outputs
from s2ilib.viz import save_figure
from s2ilib.runs import TRANSLATOR_KINDS, load_run

device = resolve_device(config.device)
dataset = open_dataset(config.data_path)
run = load_run(config.decoder_run, device=device, kind=TRANSLATOR_KINDS)
knob = gallery.sampling_knob(run)  # the slider's setting: a flow's guidance, a GAN's dropout
sounds = dataset.split(config.split)
clip_mode = clip_mode_for(dataset.root)  # your recording is prepared as the training clips were


def show(spectrogram, title: str, samples: int, setting: float, wave=None):
    """Play the second the model hears (when there is one) and plot what it imagines for it."""
    if wave is not None:
        display(Audio(wave, rate=SAMPLE_RATE))
    images = gallery.imagine_spectrogram(run, spectrogram, samples, setting, device, config.seed, wave)
    return viz.plot_imagined(spectrogram, images, title)


choices = gallery.sound_choices(sounds, dataset.classes, 40, config.seed)


# %% [markdown]
# ## The static view (the parameters above)
#
# Without an `audio_file`, the first test sound of the menu (titled by its class, then its
# language, speech engine and voice); with one, your file.

# %%
if config.audio_file:
    own = Path(config.audio_file)
    spectrogram, clip = gallery.file_clip(own, clip_mode)
    figure = show(spectrogram, own.name, config.samples, knob["value"], clip)
else:
    title, index = next(iter(choices.items()))
    figure = show(sounds.spectrograms[index], title, config.samples, knob["value"],
                  gallery.clip_wave(dataset.root, sounds, index))
save_figure(figure, "07_imagine", config.figures_dir)
plt.show()

# %% [markdown]
# **What to look for.** On the left is the one second the model hears. The word should be a
# bright patch near the middle (the clip is centred on it), its voiced part a stack of
# harmonics rising from the bottom rows, the rest dark. Then the draws: do they show the
# digit the title names, and, for a flow run, in different hands? Warning signs in the
# spectrogram: a mostly dark image (too quiet, or no word found), a word cut off at an edge
# (longer than a second: only one second is kept), or bright bands across the whole second
# (background noise or music). The draws then show whatever the model made of that, not of
# your word.

# %% [markdown]
# ## Live: pick a sound, or upload your own
#
# **Your own voice.** Record one digit word, "zero" to "nine", one word per file (WAV,
# FLAC, Ogg or MP3, any sample rate), in a quiet room. Then either
#
# - in JupyterLab, *Run All*, then press **your file** below and choose the recording: you
#   can play it back (the whole file, at 16 kHz), and the spectrogram of the second the
#   model hears appears beside the draws; choosing a test sound in the menu returns to the
#   test sounds;
# - or set `audio_file = "my_digits/seven.wav"` in the parameters (the static view above, and
#   `figures/07_imagine.png`, show it);
# - or, for many files at once, `s2i imagine --run <the main run> my_digits/*.wav --out
#   imagined/`, and `s2i evaluate` with a `file,label` CSV to count how often your digits
#   are imagined right (the README, "Your own voice or data").
#
# The training voices say the digits in many languages (notebook 01), and its real people
# in English. Compare your spectrogram with a test sound's of the same digit: a darker or
# noisier image than theirs is the first thing to fix.

# %%
if config.live_widgets:
    choice = widgets.Dropdown(options=choices, description="test sound")
    upload = widgets.FileUpload(accept="audio/*,.wav,.flac,.ogg", multiple=False, description="your file")
    samples_slider = widgets.IntSlider(value=config.samples, min=1, max=8, description="images")
    setting_slider = widgets.FloatSlider(**knob)
    output = widgets.Output()

    def refresh(_=None):
        """Redraw for the current controls: an uploaded file wins over the test-sound choice."""
        with output:
            output.clear_output(wait=True)
            if upload.value:
                item = upload.value[0]
                try:
                    spectrogram, wave = gallery.read_upload(item["name"], bytes(item["content"]), clip_mode)
                except AudioError as error:
                    print(f"cannot read {item['name']}: {error}")
                    return
                figure = show(spectrogram, item["name"], samples_slider.value, setting_slider.value, wave)
            else:
                figure = show(sounds.spectrograms[choice.value], choice.label, samples_slider.value,
                              setting_slider.value, gallery.clip_wave(dataset.root, sounds, choice.value))
            # Displayed here, not by plt.show(): widget messages handled in another kernel
            # thread (JupyterLab's subshells) run the inline backend's flush, which can close
            # pyplot's figures while this one is drawn; it would then never be shown.
            display(figure)
            plt.close(figure)

    def choose(_=None):
        """A test sound chosen: it replaces an uploaded file (clearing the upload redraws)."""
        if upload.value:
            upload.value = ()
        else:
            refresh()

    choice.observe(choose, names="value")
    for control in (upload, samples_slider, setting_slider):
        control.observe(refresh, names="value")
    display(widgets.VBox([widgets.HBox([choice, upload]), widgets.HBox([samples_slider, setting_slider]), output]))
    refresh()
else:
    print("headless run: live controls skipped (open the notebook in JupyterLab to use them)")

# %%
write_step_outputs(config.report_dir, "07_imagine", {"figure": str(Path(config.figures_dir) / "07_imagine.png")})

# %% [markdown]
# ## Try it
#
# 1. **Guidance.** On a flow run, set the slider to 1 and then to 6 for the same sound: at 1
#    the draws vary more and show another digit more often; at 6 they show the sound's digit
#    more surely, with heavier, more alike strokes.
# 2. **How many hands.** Set **images** to 8: for the flow no two draws should be the same
#    image. Load the `aligned` GAN instead (`decoder_run` = its run directory, from the main job's
#    `reports/main/summary.json`): its slider is the dropout strength, and at 0 all eight
#    images are one.
# 3. **A word that is not a digit.** Upload a recording of "hello", or of a digit in another
#    language: the model has only digits to draw, so it draws the digit whose training sounds
#    your word's embedding is nearest to. Which one, and is it the same on every draw?
# 4. **Level and length.** Record the same digit whispered, shouted and drawn out over two
#    seconds: watch the spectrogram first (the front end sets the level, keeps one second)
#    and then whether the draws still show your digit.
