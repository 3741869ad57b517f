"""The supervised ceiling (s2ilib.probes.supervised_ceiling) and its benchmark script."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from s2ilib import models
from s2ilib.datasets import open_dataset
from s2ilib.probes import supervised_ceiling
from s2ilib.train.config import default_data_dir

ROOT = Path(__file__).resolve().parents[1]


def first_classes(records, count: int, language: str | None = None):
    """The records of classes 0..count-1, of one language if given (metadata kept in step)."""
    keep = records.labels < count
    if language is not None:
        keep &= np.asarray(records.extra["language"]) == language
    keep = np.flatnonzero(keep)
    return replace(
        records,
        names=records.names[keep],
        labels=records.labels[keep],
        spectrograms=records.spectrograms[keep],
        extra={key: np.asarray(value)[keep] for key, value in records.extra.items()},
    )


def test_supervised_ceiling_learns_and_leaves_the_encoder_alone():
    """Three digits, a fresh tiny encoder, 12 epochs: unseen voices well above chance.

    English only: AV-Digits 2 spreads its voices over 36 languages, too many for 12 epochs.
    """
    torch.manual_seed(0)
    encoder = models.AudioAutoencoder(models.preset("tiny", 64).autoencoder).encoder.eval()
    before = {key: value.clone() for key, value in encoder.state_dict().items()}
    data = open_dataset(default_data_dir())
    train = first_classes(data.split("train"), 3, "en")
    val = first_classes(data.split("val"), 3, "en")
    result = supervised_ceiling(
        encoder, train, val, epochs=12, batch_size=32, lr=1e-2, progress=False
    )
    assert result["chance"] < 0.4
    assert result["accuracy"] > 0.6, result
    assert set(result["breakdown"]) == {"engine", "language", "setup"}
    assert set(result["breakdown"]["engine"]) == set(np.asarray(val.extra["engine"]).tolist())
    for key, value in encoder.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_audio_ceiling_script_on_an_ae_run(tmp_path):
    from s2ilib.train.ae import train_autoencoder
    from s2ilib.train.config import AETrainConfig

    quick = {"num_steps": 2, "batch_size": 8, "sample_every": 10**6, "checkpoint_every": 10**6}
    run = train_autoencoder(
        AETrainConfig.from_dict({"preset": "tiny", "embedding_dim": 64, **quick}),
        runs_root=tmp_path, progress_bar=False,
    )  # fmt: skip
    out = tmp_path / "ceiling.json"
    command = [sys.executable, str(ROOT / "benchmarks" / "audio_ceiling.py"), "--run", str(run)]
    result = subprocess.run(
        [*command, "--epochs", "1", "--split", "val", "--json", str(out)],
        capture_output=True, text=True, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "val accuracy" in result.stdout and "per engine: espeak-ng" in result.stdout
    written = json.loads(out.read_text())
    assert 0.0 <= written["accuracy"] <= 1.0 and written["epochs"] == 1
    missing = subprocess.run(
        [*command[:-1], str(tmp_path / "nowhere")], capture_output=True, text=True, check=False
    )
    assert missing.returncode != 0 and "nowhere" in missing.stderr
