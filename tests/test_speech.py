"""The pretrained speech front (s2ilib.models.speech): Google's speech_embedding rebuilt in
torch from openWakeWord's ONNX file, and read from the workbook's 8-bit spectrograms."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from test_align import align_args
from test_train import AE_ARGS, kill_after_checkpoint, run_path, s2i, write_synthetic_set

from s2ilib import audio, models
from s2ilib.datasets.avdigits import AVDIGITS_DIR
from s2ilib.datasets.sounds import front_for
from s2ilib.errors import S2IError
from s2ilib.models.config import ConfigError
from s2ilib.models.speech import PooledSpeech, SpeechEmbedding, SpeechFront, openwakeword_models
from s2ilib.runs.rundir import read_config

REPO = Path(__file__).resolve().parents[1]
PAD = 4800  # 0.3 s of silence each side, as SpeechFront's default 30 frames


def _clips(count: int) -> tuple[np.ndarray, np.ndarray]:
    """`count` real AV-Digits clips as waves (N, 16000) and their int16 padded copies."""
    manifest = pd.read_csv(AVDIGITS_DIR / "manifest.csv")
    files = manifest.groupby("kind").head(count // 2).file.tolist()[:count]
    waves = np.stack([audio.fit_one_second(audio.load_audio(AVDIGITS_DIR / f)) for f in files])
    padded = np.pad(waves, ((0, 0), (PAD, PAD)))
    return waves, (np.clip(padded, -1, 1) * 32767).astype(np.int16)


def _openwakeword_features():
    from openwakeword.utils import AudioFeatures

    return AudioFeatures(inference_framework="onnx", ncpu=1)


def test_the_network_is_openwakewords_to_the_rounding(one_torch_thread):
    """On the network's own log-mel of real recordings, the torch layers give the ONNX
    model's embeddings (onnxruntime) to float rounding."""
    _, pcm = _clips(4)
    reference = _openwakeword_features()
    network = SpeechEmbedding()
    for clip in pcm:
        log_mel = np.asarray(reference._get_melspectrogram(clip), np.float32)
        expected = reference.embed_clips(clip[None], batch_size=1)[0]
        with torch.no_grad():
            got = network(torch.from_numpy(log_mel)[None])[0].numpy()
        assert got.shape == expected.shape == (11, 96)
        np.testing.assert_allclose(got, expected, atol=2e-4)


def test_the_front_reads_the_workbooks_spectrograms_as_the_network_hears_audio(one_torch_thread):
    """From the 8-bit images alone, the front's embeddings point where the network's own
    front end's do on the audio (cosine), far closer than other sounds' embeddings."""
    waves, pcm = _clips(12)
    theirs = _openwakeword_features().embed_clips(pcm, batch_size=12).reshape(12, -1)
    spectrograms = torch.from_numpy(audio.spectrogram_uint8(waves)).float()[:, None] / 127.5 - 1
    with torch.no_grad():
        mine = SpeechFront()(spectrograms).reshape(12, -1).numpy()
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    cosine = unit(mine) @ unit(theirs).T
    same, others = np.diag(cosine), cosine[~np.eye(12, dtype=bool)]
    assert same.mean() > 0.8, same
    assert same.mean() > others.mean() + 0.1, (same.mean(), others.mean())


def test_a_sounds_features_do_not_depend_on_its_batch(one_torch_thread):
    """Padding is the image's silence, not anything of the batch: alone = among others."""
    spectrograms = torch.rand(3, 1, 128, 100) * 2 - 1
    front = PooledSpeech(SpeechFront())
    with torch.no_grad():
        together = front(spectrograms)
        alone = front(spectrograms[1:2])
    torch.testing.assert_close(alone[0], together[1], atol=1e-4, rtol=1e-4)
    assert together.shape == (3, 192)


def test_without_openwakeword_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "openwakeword", None)  # import fails
    with pytest.raises(S2IError, match="pip install openwakeword==0.5.1"):
        openwakeword_models()


@pytest.mark.slow  # a benchmark script end to end: the slow set runs it
def test_the_speech_front_script_compares_it_with_a_runs_encoder(tiny_ae_run):
    """benchmarks/speech_front.py on the shipped set: both feature extractors, both
    read-outs, every kind of voice, and the throughput."""
    command = [sys.executable, str(REPO / "benchmarks" / "speech_front.py"), "--run",
               str(tiny_ae_run), "--splits", "val", "--per-class", "30", "--bootstrap", "10", "--threads", "1", "--audio"]  # fmt: skip
    env = os.environ | {"PYTHONPATH": str(REPO)}
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = {line.split(" | ")[0][2:]: line.split(" | ")[1:] for line in result.stdout.splitlines()
            if line.startswith("| ") and not line.startswith("|---")}  # fmt: skip
    name = f"encoder of {tiny_ae_run.name}"
    assert {"speech front, linear probe", "speech front, nearest training sound",
            f"{name}, linear probe", f"{name}, nearest training sound",
            "speech network on the audio files, nearest training sound"} <= set(rows)  # fmt: skip
    header = [line for line in result.stdout.splitlines() if line.startswith("| features")][0]
    assert "human speakers" in header
    human = float(rows["speech front, nearest training sound"][1].split()[0])
    assert human > 0.7  # FSDD's validation speaker, as measured in RESULTS.md (0.905)
    assert "clips/s" in result.stdout


def test_a_speech_encoder_takes_its_fronts_features_in_place_of_spectrograms(one_torch_thread):
    """The stages serve the frozen front's features once computed: the encoder must give
    the same embedding from them as from the spectrograms."""
    config = models.preset("tiny", 16).autoencoder
    encoder = models.AudioAutoencoder(replace(config, front="speech")).encoder.eval()
    spectrograms = torch.rand(4, 1, 128, 100) * 2 - 1
    with torch.no_grad():
        from_spectrograms = encoder(spectrograms)
        from_features = encoder(encoder.front_features(spectrograms))
    torch.testing.assert_close(from_features, from_spectrograms)
    assert from_spectrograms.shape == (4, 16)
    assert not any(name.startswith("front.") for name, _ in encoder.named_parameters())
    with pytest.raises(TypeError, match="conv front"):
        models.AudioAutoencoder(config).encoder.front_features(spectrograms)
    with pytest.raises(ConfigError, match="front 'mel'"):
        replace(config, front="mel")
    with pytest.raises(ConfigError, match="normalise_bands"):
        replace(config, front="speech", normalise_bands=True)


def test_the_automatic_front_is_whisper_for_avdigits_only(speech_workdir):
    assert front_for(AVDIGITS_DIR) == "whisper"
    assert front_for(speech_workdir / "data") == "conv"  # spec_image_bin records
    assert front_for(AVDIGITS_DIR, "conv") == "conv"


@pytest.fixture(scope="module")
def speech_workdir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("speech")
    write_synthetic_set(folder / "data")
    return folder


@pytest.fixture(scope="module")
def speech_ae_run(speech_workdir) -> Path:
    """`s2i train-ae --front speech` on the synthetic set (tiny preset)."""
    return run_path(s2i(*AE_ARGS, "--front", "speech", "--desc", "speech", cwd=speech_workdir))


# Loads a run and translates real sounds, in a process where openWakeWord (and onnx) can be
# made unimportable; writes the embeddings and reconstructions to an .npz file.
LOAD_AND_TRANSLATE = """
import sys
if sys.argv[3] == "without":
    sys.modules["openwakeword"] = None  # import fails
    sys.modules["onnx"] = None
import numpy as np
from s2ilib import audio
from s2ilib.errors import S2IError
from s2ilib.models import build_models
from s2ilib.runs import load_run
from s2ilib.translate import encode, reconstruct

run = load_run(sys.argv[1])
files = sys.argv[4:]
waves = np.stack([audio.fit_one_second(audio.load_audio(f)) for f in files])
spectrograms = audio.spectrogram_uint8(waves)
embeddings = encode(run.encoder, spectrograms, "cpu").numpy()
rebuilt = reconstruct(run.autoencoder, spectrograms, "cpu", test_time_dropout=False)
try:  # a NEW network needs the pretrained weights, hence the package
    build_models(run.config["models"], ["autoencoder"])
    refused = ""
except S2IError as error:
    refused = str(error)
np.savez(sys.argv[2], embeddings=embeddings, rebuilt=rebuilt, refused=refused)
"""


def test_a_speech_front_run_loads_and_translates_without_openwakeword(speech_ae_run, tmp_path):
    """The checkpoint carries the front's 42 tensors: a saved run loads from it alone, with
    openWakeWord unimportable, and translates sounds exactly as with the package."""
    state = torch.load(speech_ae_run / "checkpoints" / "last.pt", weights_only=False)
    front = [key for key in state["models"]["autoencoder"] if key.startswith("encoder.front.")]
    assert len(front) == 42
    manifest = pd.read_csv(AVDIGITS_DIR / "manifest.csv")
    files = [str(AVDIGITS_DIR / name) for name in manifest.file.head(3)]
    outputs = {}
    for mode in ("with", "without"):
        path = tmp_path / f"{mode}.npz"
        command = [sys.executable, "-c", LOAD_AND_TRANSLATE, str(speech_ae_run), str(path), mode]
        env = os.environ | {
            "PYTHONPATH": str(REPO),
            "OMP_NUM_THREADS": "1",
            "S2I_FRONT_CACHE": "off",
        }
        result = subprocess.run([*command, *files], env=env, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr[-2000:]
        outputs[mode] = np.load(path)
    assert str(outputs["with"]["refused"]) == ""
    assert "pip install openwakeword==0.5.1" in str(outputs["without"]["refused"])
    np.testing.assert_array_equal(outputs["with"]["embeddings"], outputs["without"]["embeddings"])
    np.testing.assert_array_equal(outputs["with"]["rebuilt"], outputs["without"]["rebuilt"])
    assert outputs["with"]["embeddings"].shape == (3, 64)
    assert np.unique(outputs["with"]["embeddings"].round(4), axis=0).shape[0] == 3


@pytest.mark.slow  # the speech front through train-ae/align/resume; its loading and cache tests stay in the gate
def test_speech_front_runs_train_align_and_resume_through_the_cli(speech_workdir, speech_ae_run):
    """`s2i train-ae --front speech`, then its alignment: the run configs say so, the
    augmentation is off, and a killed alignment resumes to the uninterrupted weights (its
    training set serves the front's features again after the resume)."""
    workdir, ae_run = speech_workdir, speech_ae_run
    assert read_config(ae_run)["models"]["autoencoder"]["front"] == "speech"
    quick = ("--checkpoint-every", 2, "--keep-checkpoints")
    full = run_path(s2i(*align_args(ae_run, steps=12), *quick, "--desc", "full", cwd=workdir))
    train = read_config(full)["train"]
    assert train["max_shift_frames"] == 0 and train["max_time_warp"] == 0.0
    killed = kill_after_checkpoint(
        (*align_args(ae_run, steps=12), *quick, "--desc", "killed"), workdir, 4, 12
    )
    assert run_path(s2i("train-align", "--resume", killed, cwd=workdir)) == killed
    first = torch.load(full / "checkpoints" / "last.pt", weights_only=False)["models"]
    second = torch.load(killed / "checkpoints" / "last.pt", weights_only=False)["models"]
    for key, value in first["autoencoder"].items():
        assert torch.equal(value, second["autoencoder"][key]), key
    ceiling = run_path(s2i("train-ceiling", "--data", "data", "--ae-run", full, "--steps", 4,
                           "--batch-size", 8, "--split", "val", cwd=workdir))  # fmt: skip
    assert read_config(ceiling)["train"]["reverb_probability"] == 0.0
    _augmentation_script_reads_every_way(full, workdir)


def _augmentation_script_reads_every_way(align_run, workdir):
    """benchmarks/speech_front_augmentation.py on that align run: every read-out, with and
    without augmented copies."""
    command = [sys.executable, str(REPO / "benchmarks" / "speech_front_augmentation.py"),
               "--align-run", str(align_run), "--data", "data", "--splits", "val", "--copies",
               "1", "--epochs", "1", "--threads", "1"]  # fmt: skip
    env = os.environ | {"PYTHONPATH": str(REPO)}
    result = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [line.split(" | ")[1:3] for line in result.stdout.splitlines()]
    assert len(rows) == 6
    assert {name for name, _ in rows} == {"sounds alone", "sounds + 1 augmented copies"}
    assert {read_out for _, read_out in rows} == {
        "nearest training sound", "linear probe", "emulated ceiling"}  # fmt: skip
