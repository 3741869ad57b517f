"""`s2i bench train` and `s2i bench imagine` as real processes, tiny preset, few steps.

(`s2i bench loader` is tested in test_cli_data.py.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def s2i_bench(*args, cwd) -> subprocess.CompletedProcess:
    env = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "s2ilib", "bench", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def positive_numbers(tree) -> list[float]:
    """Every number in a JSON tree (booleans left out)."""
    if isinstance(tree, dict):
        return [n for value in tree.values() for n in positive_numbers(value)]
    if isinstance(tree, list):
        return [n for value in tree for n in positive_numbers(value)]
    if isinstance(tree, int | float) and not isinstance(tree, bool):
        return [tree]
    return []


@pytest.mark.slow  # a benchmark script end to end: the slow set runs it
def test_bench_train_reports_both_modes_and_mfu(tmp_path):
    out = tmp_path / "train.json"
    result = s2i_bench(
        "train", "--preset", "tiny", "--device", "cpu", "--batch-size", 4, "--steps", 2,
        "--warmup", 1, "--embedding-dim", 64, "--json-out", out, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert report["preset"] == "tiny" and report["batch_size"] == 4
    assert report["fast_path"] == ["bf16", "channels_last", "fused_adam"]
    assert set(report["matmul_tflops"]) == {"bf16", "fp32"}
    for kind in ("ae", "gan"):
        entry = report[kind]
        assert entry["gflop_per_sample"] > 0 and entry["speedup"] > 0
        for mode in ("reference", "fast"):
            timing = entry[mode]
            assert {"samples_per_s", "step_ms", "mfu_vs_bf16", "mfu_vs_fp32"} <= set(timing)
            assert timing["samples_per_s"] > 0 and 0 < timing["mfu_vs_fp32"] < 1
    # The GAN step runs the discriminator on real and fake pairs twice: more than G + D.
    flops = report["network_gflop_per_sample_fwd_bwd"]
    assert all(value > 0 for value in flops.values())
    assert report["gan"]["gflop_per_sample"] > flops["generator"] + flops["discriminator"]
    lines = result.stdout.strip().splitlines()
    assert lines[-1].startswith("train (tiny, batch 4") and "samples/s" in lines[-1]
    rates = report["matmul_tflops"]
    assert report["peak_matmul"] == max(rates, key=rates.get)
    assert f"% of {report['peak_matmul']} matmul" in lines[-1]
    assert json.loads("\n".join(lines[:-1])) == report


def test_bench_imagine_times_file_to_png(tmp_path):
    out = tmp_path / "imagine.json"
    result = s2i_bench(
        "imagine", "--preset", "tiny", "--batch", 3, "--repeats", 1, "--embedding-dim", 64,
        "--workdir", tmp_path, "--json-out", out, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert report["preset"] == "tiny" and report["batch"] == 3
    assert {"read_and_log_mel", "encode", "generate", "write_png"} <= set(report["stages_ms"])
    numbers = positive_numbers(
        {k: report[k] for k in ("first_call_ms", "clip_ms", "clips_per_s", "stages_ms")}
    )
    assert numbers and all(value > 0 for value in numbers)
    assert isinstance(report["meets_target"], bool)
    assert result.stdout.strip().splitlines()[-1].startswith("imagine (tiny")
    assert not list(tmp_path.glob("s2i-bench-*"))  # the temporary run and clips are gone


def test_bench_imagine_times_a_trained_flow_run(tiny_flow_run, tiny_ae_run, tmp_path):
    """--run times the decoder a user trained (the main job's is a flow), not a random GAN;
    an autoencoder run is refused before any work."""
    out = tmp_path / "imagine.json"
    before = {path: path.stat().st_mtime_ns for path in tiny_flow_run.rglob("*")}
    result = s2i_bench(
        "imagine", "--run", tiny_flow_run, "--batch", 2, "--repeats", 1, "--precision", "fp32",
        "--workdir", tmp_path, "--json-out", out, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert report["run"] == str(tiny_flow_run) and report["preset"].startswith("flow run ")
    assert report["embedding_dim"] == 16 and report["clips_per_s"] > 0  # the tiny AE's width
    assert all(value > 0 for value in report["stages_ms"].values())
    assert {path: path.stat().st_mtime_ns for path in tiny_flow_run.rglob("*")} == before

    refused = tmp_path / "refused.json"
    result = s2i_bench("imagine", "--run", tiny_ae_run, "--json-out", refused, cwd=tmp_path)
    assert result.returncode == 2 and "not a 'gan' or 'flow' run" in result.stderr
    assert not refused.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("train", "--preset", "huge"), "unknown preset 'huge'"),
        (("train", "--features", "fp8"), "unknown 'fp8'"),
        (("train", "--batch-size", 1), "--batch-size must be >= 2"),
    ],
)
def test_bench_train_rejects_bad_settings(tmp_path, args, message):
    result = s2i_bench(*args, "--device", "cpu", cwd=tmp_path)
    assert result.returncode == 2 and message in result.stderr


def test_read_into_reused_buffers_matches_slicing(tmp_path):
    """The loader bench's reader: batches copied into reused buffers, across file borders."""
    import numpy as np

    from s2ilib import bench, formats

    bench.generate_bin_set(tmp_path, "spec_image_bin", 0.3, records_per_file=3)  # 7 records
    records = formats.open_records(tmp_path, splits="train")["train"]
    assert len(records.spectrograms.parts) == 3
    buffer = np.full((5, 96, 96, 3), 7, np.uint8)
    for start in range(len(records) - 4):
        out = records.images.read_into(start, buffer)
        assert out is buffer and np.array_equal(buffer, records.images[start : start + 5])
    labels = formats.read_into(records.labels, 2, np.empty(4, np.int64))
    assert np.array_equal(labels, records.labels[2:6])
    with pytest.raises(IndexError, match="rows 6..11 out of range for 7 records"):
        records.images.read_into(6, buffer)
    with pytest.raises(ValueError, match="does not hold rows"):
        records.spectrograms.read_into(0, buffer)
