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
# # 6. Imagine: your sound, the model's picture
#
# Pick a test sound (a voice the model never heard) or upload a recording of your own,
# listen to it, and see what the trained model imagines. Your file goes through exactly
# the training front end: mono, 16 kHz, its loudest second, a 128 x 100 log-mel image.
# The sliders set how many images are drawn and how strong the test-time dropout is
# (1.0 = as trained, 0 = one deterministic image).
#
# In JupyterLab the controls are live; run headless (papermill) the notebook shows the
# same view once, for the parameters below.

# %% tags=["parameters"]
data = ""  # data set folder; empty: the shipped AV-Digits
preset = "demo"
gan_run = ""  # the GAN run; empty: the one notebook 03 recorded in report_dir
audio_file = ""  # a sound file of your own to imagine; empty: a test sound
split = "test"
samples = 4  # images drawn per sound
live_widgets = True  # build the live controls; the pipeline turns them off (headless: static view only)
seed = 0
device = "auto"
smoke = False
report_dir = "reports/interactive"
figures_dir = "figures"

# %%
from s2ilib.notebook import GalleryParameters, load_parameters

config = load_parameters(GalleryParameters, globals())
config

# %%
import tempfile
from pathlib import Path

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Audio, display

from s2ilib import viz
from s2ilib.audio import load_audio
from s2ilib.datasets import open_dataset
from s2ilib.devices import resolve_device
from s2ilib.imagine import encode, generate, load_clips, set_dropout_scale
from s2ilib.notebook import save_figure, write_step_outputs
from s2ilib.train.rundir import load_run

device = resolve_device(config.device)
dataset = open_dataset(config.data_path)
run = load_run(config.gan_run, device=device)
sounds = dataset.split(config.split)


def sound_choices(count: int = 40) -> dict:
    """Up to `count` test sounds, a few of each class, as {description: index}."""
    picks = viz.examples_per_class(sounds, max(1, count // dataset.num_classes), config.seed)
    extra = sounds.extra
    return {f"{dataset.classes[sounds.labels[i]]}: " + (f"{extra['language'][i]} {extra['engine'][i]} {extra['voice'][i]}" if "voice" in extra else str(sounds.names[i])): int(i) for i in picks}


def listen(index: int | None, path: Path | None):
    """An audio player for a test sound (AV-Digits ships its clips) or a file."""
    if path is not None:
        return Audio(load_audio(path), rate=16000)
    if "file" in sounds.extra:
        from s2ilib.datasets.avdigits import audio_path

        return Audio(load_audio(audio_path(dataset.root, sounds.extra["file"][index])), rate=16000)
    return None


def imagine_view(spectrogram: np.ndarray, title: str, samples: int, dropout_scale: float):
    """The spectrogram and `samples` imagined images, as one figure."""
    set_dropout_scale(run.generator, dropout_scale)
    embeddings = encode(run.autoencoder.encoder, spectrogram[None], device)
    images = generate(run.generator, embeddings, device, samples=samples, seed=config.seed,
                      test_time_dropout=dropout_scale > 0)[0]
    set_dropout_scale(run.generator, 1.0)
    figure, axes = plt.subplots(1, samples + 1, figsize=(2.2 * (samples + 1), 2.4))
    axes[0].imshow(spectrogram, cmap="magma", vmin=0, vmax=255, aspect="auto")
    axes[0].set_title("log-mel (1 s)")
    for axis, image in zip(axes[1:], images, strict=True):
        axis.imshow(image)
    for axis in axes:
        axis.axis("off")
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def spectrogram_of(path: Path) -> np.ndarray:
    spectrograms, _, failures = load_clips([path])
    if failures:
        raise ValueError(failures[str(path)])
    return spectrograms[0]


# %% [markdown]
# ## The static view (the parameters above)

# %%
if config.audio_file:
    own = Path(config.audio_file)
    display(listen(None, own))
    figure = imagine_view(spectrogram_of(own), own.name, config.samples, 1.0)
else:
    first = next(iter(sound_choices().items()))
    display(listen(first[1], None))
    figure = imagine_view(np.asarray(sounds.spectrograms[first[1]]), first[0], config.samples, 1.0)
save_figure(figure, "06_imagine", config.figures_dir)
plt.show()

# %% [markdown]
# ## Live: pick a sound, or upload your own

# %%
if config.live_widgets:
    choice = widgets.Dropdown(options=sound_choices(), description="test sound")
    upload = widgets.FileUpload(accept="audio/*,.wav,.flac,.ogg", multiple=False, description="your file")
    samples_slider = widgets.IntSlider(value=config.samples, min=1, max=8, description="images")
    dropout_slider = widgets.FloatSlider(value=1.0, min=0.0, max=2.0, step=0.25, description="dropout x")
    output = widgets.Output()

    def refresh(_=None):
        """Redraw for the current controls: an uploaded file wins over the test-sound choice."""
        with output:
            output.clear_output(wait=True)
            if upload.value:
                item = upload.value[0]
                path = Path(tempfile.mkdtemp()) / item["name"]
                path.write_bytes(bytes(item["content"]))
                try:
                    spectrogram, title = spectrogram_of(path), item["name"]
                except ValueError as error:
                    print(f"cannot read {item['name']}: {error}")
                    return
                display(listen(None, path))
            else:
                spectrogram, title = np.asarray(sounds.spectrograms[choice.value]), choice.label
                display(listen(choice.value, None))
            imagine_view(spectrogram, title, samples_slider.value, dropout_slider.value)
            plt.show()

    for control in (choice, upload, samples_slider, dropout_slider):
        control.observe(refresh, names="value")
    display(widgets.VBox([widgets.HBox([choice, upload]), widgets.HBox([samples_slider, dropout_slider]), output]))
    refresh()
else:
    print("headless run: live controls skipped (open the notebook in JupyterLab to use them)")

# %%
write_step_outputs(config.report_dir, "06_imagine", {"figure": str(Path(config.figures_dir) / "06_imagine.png")})
