"""The pretrained speech front (s2ilib.models.speech): Google's speech_embedding rebuilt in
torch from openWakeWord's ONNX file, and read from the workbook's 8-bit spectrograms."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from s2ilib import audio
from s2ilib.datasets.avdigits import AVDIGITS_DIR
from s2ilib.errors import S2IError
from s2ilib.models.speech import PooledSpeech, SpeechEmbedding, SpeechFront, openwakeword_models

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


def test_the_speech_front_script_compares_it_with_a_runs_encoder(tiny_ae_run):
    """benchmarks/speech_front.py on the shipped set: both feature extractors, both
    read-outs, every kind of voice, and the throughput."""
    command = [sys.executable, str(REPO / "benchmarks" / "speech_front.py"), "--run",
               str(tiny_ae_run), "--splits", "val", "--per-class", "60", "--bootstrap", "10", "--threads", "1"]  # fmt: skip
    env = os.environ | {"PYTHONPATH": str(REPO)}
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = {line.split(" | ")[0][2:]: line.split(" | ")[1:] for line in result.stdout.splitlines()
            if line.startswith("| ") and not line.startswith("|---")}  # fmt: skip
    name = f"encoder of {tiny_ae_run.name}"
    assert {"speech front, linear probe", "speech front, nearest training sound",
            f"{name}, linear probe", f"{name}, nearest training sound"} <= set(rows)  # fmt: skip
    header = [line for line in result.stdout.splitlines() if line.startswith("| features")][0]
    assert "human speakers" in header
    human = float(rows["speech front, nearest training sound"][1].split()[0])
    assert human > 0.7  # FSDD's validation speaker, as measured in RESULTS.md (0.905)
    assert "clips/s" in result.stdout
