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
# # 7. Imagine: your sound, the model's picture
#
# Pick a test sound (a voice the model never heard) or upload a recording of your own,
# listen to it, and see what the trained model imagines. Your file goes through exactly
# the training front end: mono, 16 kHz, one second, a 128 x 100 log-mel image. For a model
# trained on AV-Digits that second is prepared as its clips were made: the spoken word is
# trimmed of silence, set to the training level and centred (a quiet microphone would
# otherwise show the model a darker word than any it has heard).
# The sliders set how many images are drawn and how they are drawn: for a flow run (the
# main job's), the guidance weight (its trained 2 first; 1 = plain draws, more varied and
# less often the sound's digit; higher = the digit more surely, drawn more heavily); for a
# GAN run, the strength of the test-time dropout (1.0 = as trained, 0 = one deterministic
# image).
#
# In JupyterLab the controls are live (an uploaded file is shown until you pick a test
# sound again); run headless (papermill) the notebook shows the same view once, for the
# parameters below.

# %% tags=["parameters"]
data = ""  # data set folder; empty: the shipped AV-Digits
gan_run = ""  # the GAN (or flow) run; empty: the one notebook 04 recorded (or the main job's)
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
from s2ilib.audio import SAMPLE_RATE, load_audio
from s2ilib.datasets import open_dataset
from s2ilib.datasets.sounds import clip_mode_for
from s2ilib.devices import resolve_device
from s2ilib.errors import AudioError
from s2ilib.notebook import write_step_outputs
from s2ilib.viz import save_figure
from s2ilib.runs import TRANSLATOR_KINDS, load_run

device = resolve_device(config.device)
dataset = open_dataset(config.data_path)
run = load_run(config.gan_run, device=device, kind=TRANSLATOR_KINDS)
knob = gallery.sampling_knob(run)  # the slider's setting: a flow's guidance, a GAN's dropout
sounds = dataset.split(config.split)
clip_mode = clip_mode_for(dataset.root)  # your recording is prepared as the training clips were


def show(spectrogram, title: str, samples: int, setting: float, wave=None):
    """Play the sound (when there is one) and plot what the model imagines for it."""
    if wave is not None:
        display(Audio(wave, rate=SAMPLE_RATE))
    images = gallery.imagine_spectrogram(run, spectrogram, samples, setting, device, config.seed)
    return viz.plot_imagined(spectrogram, images, title)


choices = gallery.sound_choices(sounds, dataset.classes, 40, config.seed)


# %% [markdown]
# ## The static view (the parameters above)

# %%
if config.audio_file:
    own = Path(config.audio_file)
    figure = show(gallery.file_spectrogram(own, clip_mode), own.name, config.samples, knob["value"],
                  load_audio(own))
else:
    title, index = next(iter(choices.items()))
    figure = show(sounds.spectrograms[index], title, config.samples, knob["value"],
                  gallery.clip_wave(dataset.root, sounds, index))
save_figure(figure, "07_imagine", config.figures_dir)
plt.show()

# %% [markdown]
# ## Live: pick a sound, or upload your own

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
