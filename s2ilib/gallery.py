"""Qualitative views of a trained translator: galleries, best/worst cases, interpolations.

All batched: sounds are encoded together, their K draws (a flow's starting noises, a GAN's
dropout masks) generated together.
"""

from __future__ import annotations

import contextlib
import csv
import json
from pathlib import Path

import numpy as np
import torch

from s2ilib.datasets.sounds import clips_of, examples_per_class
from s2ilib.datasets.torch_data import from_unit_range, resize_images
from s2ilib.evaluate import keyed_draws, score_images
from s2ilib.formats import RecordSet
from s2ilib.models.flow import set_sampling
from s2ilib.report import PER_SOUND_FILE
from s2ilib.translate import (
    generate,
    set_dropout_scale,
    sound_conditions,
    sound_keys,
    translate,
)


def imagine_records(
    run, records: RecordSet, indices, samples: int, device, seed: int = 0
) -> np.ndarray:
    """uint8 (N, samples, S, S, 3): `samples` draws for each chosen sound."""
    spectrograms = np.asarray(records.spectrograms[np.asarray(indices)])
    audio = clips_of(records, indices)
    return translate(run, spectrograms, device, samples, seed, audio=audio)


def real_examples(
    pool: RecordSet, labels, count: int, image_size: int, seed: int = 0
) -> np.ndarray:
    """uint8 (N, count, S, S, 3): `count` random real images of each label's class."""
    rng = np.random.default_rng(seed)
    picks = np.stack([rng.choice(np.flatnonzero(pool.labels == label), count) for label in labels])
    images = resize_images(torch.as_tensor(pool.images[picks.ravel()]), image_size)
    images = from_unit_range(images).permute(0, 2, 3, 1).numpy()
    return images.reshape(len(labels), count, *images.shape[1:])


@torch.no_grad()
def own_class_confidence(run, bank, data, split: str, device, seed: int = 0, evaluation_dir=None):
    """(q, where q came from): q (N,) the K-way classifier's probability of the sound's class
    for draw 1 of every sound of `split` (ranks translations from best to worst).

    evaluation_dir: a folder where write_report wrote an evaluation (notebook 05's
    `evaluation/`). When it scored the same decoder run and step, classifiers, sounds and
    seed, q is read from its per-sound table (draws are keyed: its draw 1 is this one);
    otherwise every sound is drawn here once and scored as the evaluation scores it.
    """
    sounds = data.split(split)
    recorded = recorded_confidence(evaluation_dir, run, bank, data, split, seed)
    if recorded is not None:
        # named from the report folder in: the pipeline stages a report under another name
        source = f"{Path(evaluation_dir).name}/{PER_SOUND_FILE} (the evaluation of this run)"
        return recorded, source
    probabilities = score_images(bank, keyed_draws(run, sounds, device, seed)(0))["probabilities"]
    run.generator.eval()
    return probabilities[np.arange(len(sounds)), sounds.labels], "every sound drawn once here"


def recorded_confidence(evaluation_dir, run, bank, data, split: str, seed: int):
    """q of draw 1 from an evaluation's per_sound.csv, or None unless that evaluation scored
    the same run (and step), classifiers, data set, split (every sound, in order) and seed
    (an unreadable one is None too: the table only saves drawing the sounds again)."""
    folder = Path(evaluation_dir) if evaluation_dir else None
    if folder is None or not all((folder / f).is_file() for f in ("metrics.json", PER_SOUND_FILE)):
        return None
    try:
        return _recorded_confidence(folder, run, bank, data, split, seed)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _recorded_confidence(folder: Path, run, bank, data, split: str, seed: int):
    header = json.loads((folder / "metrics.json").read_text())
    same_paths = all(
        header.get(key) and Path(header[key]).resolve() == Path(path).resolve()
        for key, path in (("decoder_run", run.run_dir), ("informativity_run", bank.run_dir),
                          ("data", data.root))
    )  # fmt: skip
    same_settings = (header.get("decoder_step"), header.get("split"), header.get("seed")) == (
        getattr(run, "step", None),
        split,
        seed,
    )
    if not (same_paths and same_settings) or any(header.get("filters", {}).values()):
        return None
    with open(folder / PER_SOUND_FILE, newline="", encoding="utf-8") as handle:
        table = list(csv.DictReader(handle))
    names = np.asarray(data.split(split).names).astype(str).tolist()
    if [row["name"] for row in table] != names:
        return None
    return np.asarray([float(row["own_probability_1"]) for row in table], np.float32)


def best_and_worst(confidence: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the `count` most and least confident translations."""
    order = np.argsort(confidence, kind="stable")
    return order[::-1][:count], order[:count]


def recalls(run) -> bool:
    """Whether a run's draws start from a recalled training image (a flow run with
    FlowConfig.recall_from > 0); a GAN run has no recall."""
    return run.kind == "flow" and run.generator.config.recall_from > 0


@contextlib.contextmanager
def flow_sampling(run, **settings):
    """Within the context a flow run's decoder samples with `settings` (FlowConfig's
    sampling fields, as s2ilib.models.flow.set_sampling); the run's own settings are back
    after it, whatever happened inside."""
    if run.kind != "flow":
        raise ValueError(f"{run.run_dir}: a {run.kind!r} run has no flow sampling to change")
    trained = run.generator.config
    set_sampling(run.generator, **settings)
    try:
        yield run
    finally:
        run.generator.config = trained


@torch.no_grad()
def interpolate(
    run,
    spectrogram_a,
    spectrogram_b,
    steps: int,
    device,
    seed: int = 0,
    recall: bool = True,
    audio=None,
) -> np.ndarray:
    """uint8 (steps, S, S, 3): images along the straight line between two sounds' embeddings.

    Only the embedding changes along the row: dropout is off (eval mode), and every image
    starts from the first sound's code (a flow's starting noise, the `imagine` GAN's code).
    recall: False draws a recalling flow run from that noise alone (recall_from 0, for this
    call only), so the row follows the embedding; with recall each image starts from an
    image of the training sound nearest its embedding, so the row jumps where that sound's
    class changes. A GAN run has no recall: both give the same row. audio: the two sounds'
    clips (2, samples), for an encoder that reads them.
    """
    if not recall and recalls(run):
        with flow_sampling(run, recall_from=0.0):
            return interpolate(run, spectrogram_a, spectrogram_b, steps, device, seed, True, audio)
    pair = np.stack([np.asarray(spectrogram_a), np.asarray(spectrogram_b)])
    weights = torch.linspace(0, 1, steps).unsqueeze(1)
    (start, end), front = sound_conditions(run, pair, device, audio)
    path = (1 - weights) * start + weights * end
    front = None if front is None else (1 - weights) * front[0] + weights * front[1]
    keys = sound_keys(pair[:1]).expand(steps)
    images = generate(
        run.generator, path, device, 1, seed, test_time_dropout=False, keys=keys, front=front
    )
    return images[:, 0]


def interpolation_rows(
    runs: dict, spectrogram_a, spectrogram_b, steps: int, device, seed: int = 0, audio=None
) -> dict[str, np.ndarray]:
    """{label: uint8 (steps, S, S, 3)}: each run's interpolation between two sounds (runs:
    {name: run}); a recalling flow run's twice, recall off then on, a GAN run's once.
    audio: the two sounds' clips (2, samples), for encoders that read them."""
    rows = {}
    for name, run in runs.items():
        ways = (("recall off", False), ("recall on", True)) if recalls(run) else ((None, True),)
        for way, recall in ways:
            label = f"{name}\n{way}" if way else name
            rows[label] = interpolate(
                run, spectrogram_a, spectrogram_b, steps, device, seed, recall, audio
            )
    return rows


def sound_choices(sounds: RecordSet, classes: list[str], count: int = 40, seed: int = 0) -> dict:
    """Up to `count` sounds, a few of each class, as {description: index} (for a menu)."""
    picks = examples_per_class(sounds, max(1, count // len(classes)), seed)
    extra = sounds.extra

    def describe(i):
        if "voice" in extra:
            return f"{extra['language'][i]} {extra['engine'][i]} {extra['voice'][i]}"
        return str(sounds.names[i])

    return {f"{classes[sounds.labels[i]]}: {describe(i)}": int(i) for i in picks}


def clip_wave(root, sounds: RecordSet, index: int):
    """The listenable wave of a sound (AV-Digits ships its clips), else None."""
    if "file" not in sounds.extra:
        return None
    from s2ilib.audio import load_audio
    from s2ilib.datasets.avdigits import audio_path

    return load_audio(audio_path(root, sounds.extra["file"][index]))


def file_spectrogram(path, mode: str = "loudest") -> np.ndarray:
    """A sound file's (128, 100) uint8 spectrogram through the training front end (`mode`:
    s2ilib.audio.CLIP_MODES); see file_clip."""
    return file_clip(path, mode)[0]


def file_clip(path, mode: str = "loudest") -> tuple[np.ndarray, np.ndarray]:
    """A sound file's (128, 100) uint8 spectrogram and the 1-s clip (float32, 16 kHz) it was
    made from (`mode`: s2ilib.audio.CLIP_MODES): the second a model hears, which an encoder
    that reads the audio reads; an AudioError when unreadable, an AudioWarning when silent
    or far too short."""
    import warnings

    from s2ilib.audio import AudioWarning, load_clips
    from s2ilib.errors import AudioError

    clips = load_clips([path], mode=mode)
    if clips.failures:
        raise AudioError(clips.failures[str(path)])
    for note in clips.notes.values():
        warnings.warn(f"{Path(path).name}: {note}", AudioWarning, stacklevel=2)
    return clips.spectrograms[0], clips.waves[0]


def read_upload(name: str, content: bytes, mode: str = "loudest") -> tuple[np.ndarray, np.ndarray]:
    """An uploaded sound file's bytes -> (its spectrogram, the 1-s clip it was made from:
    file_clip); an AudioError naming the upload (not the temporary copy) when it is not a
    sound."""
    import tempfile

    from s2ilib.errors import AudioError

    with tempfile.TemporaryDirectory(prefix="s2i-upload-") as folder:
        path = Path(folder) / Path(name).name
        path.write_bytes(content)
        try:
            return file_clip(path, mode)
        except AudioError as error:
            raise AudioError(str(error).replace(str(path), name)) from None


def sampling_knob(run) -> dict:
    """The one sampling setting notebook 07's slider turns, as ipywidgets.FloatSlider
    arguments: a flow run's guidance weight (its trained setting first; 1 = plain
    conditional draws, higher = more the sound's digit, less varied), a GAN run's dropout
    scale (1 = as trained, 0 = one deterministic image)."""
    if run.kind == "flow":
        return {"description": "guidance", "value": run.generator.config.guidance,
                "min": 1.0, "max": 8.0, "step": 0.5}  # fmt: skip
    return {"description": "dropout x", "value": 1.0, "min": 0.0, "max": 2.0, "step": 0.25}


def imagine_spectrogram(
    run, spectrogram, samples: int, knob: float, device, seed: int = 0, wave=None
):
    """uint8 (samples, S, S, 3) for one spectrogram (and its clip, `wave`, for an encoder that
    reads it), with the sampling setting of `sampling_knob` at `knob` (a flow's guidance
    weight, a GAN's dropout scale); the run's own setting is restored after."""
    spectrograms = np.asarray(spectrogram)[None]
    audio = None if wave is None else np.asarray(wave, np.float32)[None]
    if run.kind == "flow":
        with flow_sampling(run, guidance=float(knob)):
            return translate(run, spectrograms, device, samples, seed, audio=audio)[0]
    set_dropout_scale(run.generator, knob)
    try:
        return translate(
            run, spectrograms, device, samples, seed, audio=audio, test_time_dropout=knob > 0
        )[0]
    finally:
        set_dropout_scale(run.generator, 1.0)
