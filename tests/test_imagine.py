"""Using a trained model: `s2i imagine` on real sound files, `s2i embed` on a data set."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from PIL import Image

from s2ilib.datasets.avdigits import AVDIGITS_DIR
from s2ilib.formats import open_records
from s2ilib.imagine import set_dropout_scale, unique_stems
from s2ilib.train.ae import train_autoencoder
from s2ilib.train.config import AETrainConfig, GANTrainConfig
from s2ilib.train.gan import train_gan

REPO = Path(__file__).resolve().parents[1]
QUICK = {
    "num_steps": 2,
    "batch_size": 8,
    "limit_per_class": 2,
    "log_every": 1,
    "sample_every": 2,
    "checkpoint_every": 2,
    "val_samples": 8,
    "num_samples": 2,
}


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory) -> Path:
    """A tiny AE + GAN trained for two steps each on AV-Digits (class pairing)."""
    runs = tmp_path_factory.mktemp("runs")
    common = {"data": str(AVDIGITS_DIR), "preset": "tiny", **QUICK}
    ae = train_autoencoder(
        AETrainConfig.from_dict({**common, "embedding_dim": 16}),
        runs_root=runs,
        device="cpu",
        progress_bar=False,
    )
    return train_gan(
        GANTrainConfig.from_dict({**common, "ae_run": str(ae)}),
        runs_root=runs,
        device="cpu",
        progress_bar=False,
    )


def _sounds(folder: Path) -> list[Path]:
    """A 0.5-s tone (wav, 16 kHz), a 3-s stereo chirp (flac, 48 kHz), noise (ogg, 8 kHz)."""
    folder.mkdir()
    t_short, t_long = np.arange(8000) / 16000, np.arange(3 * 48000) / 48000
    chirp = np.sin(2 * np.pi * (200 + 600 * t_long) * t_long)
    files = {
        "tone.wav": (0.5 * np.sin(2 * np.pi * 440 * t_short), 16000),
        "chirp.flac": (np.stack([chirp, 0.3 * chirp], axis=1) * 0.5, 48000),
        "noise.ogg": (np.random.default_rng(0).normal(0, 0.1, 8000), 8000),
    }
    for name, (wave, rate) in files.items():
        soundfile.write(folder / name, wave, rate)
    (folder / "broken.wav").write_bytes(b"RIFF\x00\x00 definitely not audio")
    return [folder / name for name in (*files, "broken.wav")]


def _s2i(*args):
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "s2ilib", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
    )


def test_imagine_writes_one_png_per_readable_file_and_reports_the_bad_one(gan_run, tmp_path):
    sounds = _sounds(tmp_path / "sounds")
    result = _s2i(
        "imagine",
        *sounds,
        "--run",
        gan_run,
        "--out",
        tmp_path / "out",
        "--samples",
        3,
        "--device",
        "cpu",
    )
    assert result.returncode == 0, result.stderr
    assert "broken.wav" in result.stderr and "skipped" in result.stderr
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == ["chirp.png", "noise.png", "tone.png"]
    image = np.asarray(Image.open(tmp_path / "out" / "tone.png"))
    side = image.shape[0]
    assert image.shape == (side, 3 * side, 3)  # three dropout draws side by side


def test_imagine_fails_when_no_file_is_readable(gan_run, tmp_path):
    broken = tmp_path / "only.ogg"
    broken.write_text("not audio")
    result = _s2i("imagine", broken, "--run", gan_run, "--out", tmp_path / "out")
    assert result.returncode == 2
    assert "only.ogg" in result.stderr


def test_imagine_needs_a_gan_run(gan_run, tmp_path):
    import json

    ae_run = json.loads((gan_run / "config.json").read_text())["ae_run"]
    result = _s2i("imagine", _sounds(tmp_path / "s")[0], "--run", ae_run, "--out", tmp_path / "o")
    assert result.returncode == 2 and "not a GAN run" in result.stderr


def test_embed_writes_npz_and_the_published_bin_layout(gan_run, tmp_path):
    result = _s2i(
        "embed",
        AVDIGITS_DIR,
        "--run",
        gan_run,
        "--out",
        tmp_path / "emb",
        "--splits",
        "val",
        "test",
        "--device",
        "cpu",
    )
    assert result.returncode == 0, result.stderr
    clips = json.loads((AVDIGITS_DIR / "build_info.json").read_text())["summary"]["clips"]
    arrays = np.load(tmp_path / "emb" / "embeddings.npz")
    num_sounds = clips["val"] + clips["test"]
    assert arrays["embeddings"].shape == (num_sounds, 16)
    assert arrays["embeddings"].dtype == np.float32
    assert np.abs(arrays["embeddings"]).max() <= 1.0  # tanh embedding
    records = open_records(tmp_path / "emb" / "embeddings_16_to_images")
    assert {s: len(r) for s, r in records.items()} == {"val": clips["val"], "test": clips["test"]}
    test = records["test"]
    num_test = clips["test"]
    assert test.images.shape == (num_test, 96, 96, 3) and test.embeddings.shape == (num_test, 16)
    assert np.array_equal(test.labels, arrays["labels"][arrays["splits"] == "test"])
    assert np.allclose(test.embeddings[:], arrays["embeddings"][arrays["splits"] == "test"])


def test_dropout_scale_is_relative_to_the_trained_rate():
    layer = torch.nn.Sequential(torch.nn.Dropout2d(0.2), torch.nn.Dropout(0.5))
    set_dropout_scale(layer, 2.0)
    set_dropout_scale(layer, 2.0)
    assert [m.p for m in layer] == [0.4, 0.95]
    set_dropout_scale(layer, 1.0)
    assert [m.p for m in layer] == [0.2, 0.5]


def test_unique_stems_disambiguates_repeated_names():
    paths = [Path("a/x.wav"), Path("b/x.flac"), Path("c/y.ogg")]
    assert unique_stems(paths) == ["a_x", "b_x", "y"]
