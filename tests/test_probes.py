"""The supervised ceiling (s2ilib.train.ceiling) and its benchmark script."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from s2ilib.datasets import open_dataset
from s2ilib.train.config import default_data_dir

ROOT = Path(__file__).resolve().parents[1]


def test_supervised_ceiling_learns_and_leaves_the_encoder_alone(tmp_path):
    """Three digits, a barely trained tiny encoder, 12 epochs: unseen voices well above chance.

    English only: AV-Digits 2 spreads its voices over 36 languages, too many for 12 epochs."""
    from s2ilib.datasets.avdigits import subset_avdigits
    from s2ilib.runs import load_checkpoint
    from s2ilib.train.ceiling import read_ceiling
    from s2ilib.train.config import AETrainConfig, CeilingTrainConfig
    from s2ilib.train.registry import train_autoencoder, train_ceiling

    quick = {"num_steps": 2, "batch_size": 8, "sample_every": 10**6, "checkpoint_every": 10**6}
    ae = train_autoencoder(
        AETrainConfig.from_dict({"preset": "tiny", "embedding_dim": 64, **quick}),
        runs_root=tmp_path, progress_bar=False,
    )  # fmt: skip
    before = load_checkpoint(ae / "checkpoints" / "last.pt")["models"]["autoencoder"]
    english = subset_avdigits(default_data_dir(), tmp_path / "english", languages=["en"])
    config = CeilingTrainConfig(
        ae_run=str(ae), data=str(english), classes=(0, 1, 2), split="val",
        num_epochs=12, batch_size=32, lr=1e-2,
    )  # fmt: skip
    result = read_ceiling(train_ceiling(config, runs_root=tmp_path, progress_bar=False))
    assert result["chance"] < 0.4
    low, high = result["ci"]
    assert low > result["chance"] + 0.1, result  # well above chance, not by luck
    assert set(result["breakdown"]) == {"voice_group", "engine", "language", "setup", "sex"}
    assert low <= result["accuracy"] <= high
    groups = result["breakdown"]["voice_group"]
    assert set(groups) <= {"human speakers", "unseen synthetic voices", "held-out engine"}
    val = open_dataset(english).split("val")
    engines = np.asarray(val.extra["engine"])[np.asarray(val.labels) < 3]
    assert set(result["breakdown"]["engine"]) == set(engines.tolist())
    after = load_checkpoint(ae / "checkpoints" / "last.pt")["models"]["autoencoder"]
    for key, value in after.items():
        assert torch.equal(value, before[key]), key


@pytest.mark.slow  # a benchmark script end to end: the slow set runs it
def test_audio_ceiling_script_on_an_ae_run(tmp_path):
    from s2ilib.train.config import AETrainConfig
    from s2ilib.train.registry import train_autoencoder

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


@pytest.mark.slow  # 40 s: kept out of the gate (run with -m slow)
def test_augment_ablation_script_probes_each_variant_per_voice_group(tmp_path):
    from s2ilib.train.config import AETrainConfig
    from s2ilib.train.registry import train_autoencoder

    quick = {"num_steps": 2, "batch_size": 8, "sample_every": 10**6, "checkpoint_every": 10**6}
    run = train_autoencoder(
        AETrainConfig.from_dict({"preset": "tiny", "embedding_dim": 16, **quick}),
        runs_root=tmp_path, progress_bar=False,
    )  # fmt: skip
    out = tmp_path / "ablation.json"
    script = ROOT / "benchmarks" / "augment_ablation.py"
    result = subprocess.run(
        [sys.executable, str(script), "--ae-run", str(run), "--epochs", "1", "--threads", "1",
         "--variant", "base=", "--variant", "noise=noise_probability:0.5", "--json", str(out),
         "--runs-root", str(tmp_path / "runs")],
        capture_output=True, text=True, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "| base |" in result.stdout and "| noise |" in result.stdout
    written = json.loads(out.read_text())
    assert [r["variant"] for r in written] == ["base", "noise"]
    assert written[1]["settings"] == {"noise_probability": 0.5}
    assert "held-out engine" in written[0]["embedding_by_group"]
