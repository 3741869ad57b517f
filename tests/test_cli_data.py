"""`s2i inspect / export / convert / bench loader` as real processes on real files."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import separated_labels, write_raw_spec_image_bin

from s2ilib import formats

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def s2i(*args, cwd=None) -> subprocess.CompletedProcess:
    """Run `python -m s2ilib ARGS` and return the finished process (output captured)."""
    env = {**os.environ, "PYTHONPATH": REPO_ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run(
        [sys.executable, "-m", "s2ilib", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
    )


@pytest.fixture
def spec_image_set(tmp_path, records):
    """A published-style spec_image_bin folder: train (2 files) and test."""
    folder = tmp_path / "batches/audio_visual/spectrograms_to_images"
    n, s, i = records["names"], records["spectrograms"], records["images"]
    formats.write_spec_image_bin(folder / "data_batch_001.bin", n[:10], s[:10], i[:10])
    formats.write_spec_image_bin(folder / "data_batch_002.bin", n[10:18], s[10:18], i[10:18])
    formats.write_spec_image_bin(folder / "test_batch_001.bin", n[18:], s[18:], i[18:])
    return folder


def test_inspect_json(spec_image_set):
    result = s2i("inspect", spec_image_set, "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["layout"] == "spec_image_bin" and summary["total_records"] == 23
    assert {k: v["count"] for k, v in summary["splits"].items()} == {"train": 18, "test": 5}
    assert summary["splits"]["train"]["arrays"]["images"]["shape"] == [18, 96, 96, 3]


def test_inspect_text(spec_image_set):
    result = s2i("inspect", spec_image_set)
    assert result.returncode == 0, result.stderr
    assert "spec_image_bin, 23 records" in result.stdout and "train: 18 records" in result.stdout


def test_inspect_corrupt_file_exits_2_naming_file_and_record(spec_image_set):
    bad = spec_image_set / "test_batch_001.bin"
    with open(bad, "r+b") as file:
        file.truncate(bad.stat().st_size - 7)
    result = s2i("inspect", spec_image_set)
    assert result.returncode == 2
    assert (
        str(bad) in result.stderr
        and "record 4" in result.stderr
        and "40452 trailing bytes" in result.stderr
    )
    assert "4 whole records" in result.stderr and "Traceback" not in result.stderr


def test_inspect_bad_label_exits_2(tmp_path, records):
    path = formats.write_audio_bin(
        tmp_path / "data_batch_001.bin", records["labels"], records["spectrograms"]
    )
    assert s2i("inspect", path, "--layout", "audio_bin").returncode == 0
    bad = tmp_path / "x" / "data_batch_001.bin"
    bad.parent.mkdir()
    formats.write_spec_image_bin(
        bad, records["names"][:3], records["spectrograms"][:3], records["images"][:3]
    )
    with open(bad, "r+b") as file:
        file.seek(2 * 40459 + 2)  # the class part: the id after it may be spelled any way
        file.write(b"?")
    result = s2i("inspect", bad, "--layout", "spec_image_bin")
    assert result.returncode == 2 and "record 2" in result.stderr and str(bad) in result.stderr


def test_export_npz(spec_image_set, tmp_path, records):
    out = tmp_path / "out" / "test.npz"
    result = s2i("export", spec_image_set, out, "--split", "test")
    assert result.returncode == 0, result.stderr
    with np.load(out) as data:
        assert set(data.files) == {"names", "labels", "splits", "spectrograms", "images"}
        np.testing.assert_array_equal(data["names"], records["names"][18:])
        np.testing.assert_array_equal(data["images"], records["images"][18:])
        assert set(data["splits"]) == {"test"}


def test_convert_then_inspect(spec_image_set, tmp_path, records):
    dst = tmp_path / "audio"
    result = s2i("convert", spec_image_set, dst, "--to", "audio_bin", "--records-per-file", "4")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in dst.iterdir()) == [
        "data_batch_001.bin",
        "data_batch_002.bin",
        "data_batch_003.bin",
        "data_batch_004.bin",
        "data_batch_005.bin",
        "test_batch_001.bin",
        "test_batch_002.bin",
    ]
    train = formats.open_records(dst)["train"]
    np.testing.assert_array_equal(train.spectrograms[:], records["spectrograms"][:18])
    again = s2i("convert", spec_image_set, dst, "--to", "audio_bin")
    assert again.returncode == 2 and "not empty" in again.stderr


@pytest.mark.slow  # the separator spelling is one more label format; inspect/convert on the others stay in the gate
def test_inspect_and_convert_separator_spelled_labels(tmp_path, records):
    """Labels spelled like 004_17722_0: read, summarised, converted; an unnamable id refused."""
    folder = tmp_path / "batches/audio_visual/spectrograms_to_images"
    labels = separated_labels(records["labels"])
    path = write_raw_spec_image_bin(
        folder / "data_batch_001.bin", labels, records["spectrograms"], records["images"]
    )
    result = s2i("inspect", folder)
    assert result.returncode == 0, result.stderr
    assert "spec_image_bin, 23 records" in result.stdout
    assert "label ids by spelling: SSSSSWWW 0, _S_W 23, as written 0" in result.stdout
    summary = json.loads(s2i("inspect", folder, "--json").stdout)
    assert summary["splits"]["train"]["class_counts"] == {"0": 5, "1": 5, "2": 4, "3": 5, "4": 4}

    copy = tmp_path / "copy"
    result = s2i("convert", folder, copy, "--to", "spec_image_bin")
    assert result.returncode == 0, result.stderr
    assert (copy / "data_batch_001.bin").read_bytes() == path.read_bytes()
    tree = tmp_path / "tree"
    result = s2i("convert", folder, tree, "--to", "jpeg_tree")
    assert result.returncode == 0, result.stderr
    train = formats.open_records(tree)["train"]
    parsed = [(int(c), 17700 + i // 10, i % 10) for i, c in enumerate(records["labels"])]
    assert train.names.tolist() == [formats.format_name(*p) for p in parsed]
    assert np.abs(train.images[:].astype(int) - records["images"]).mean() < 1.5  # JPEG: lossy

    with open(path, "r+b") as file:
        file.seek(7 * 40459 + 3)
        file.write(b"clip-07+")  # an id in no known spelling: kept in .bin, no JPEG file name
    result = s2i("convert", folder, tmp_path / "refused", "--to", "jpeg_tree")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{path}, record 7: record name '002clip-07+'" in result.stderr
    assert not (tmp_path / "refused").exists()


def test_help_documents_every_option():
    for command in ("inspect", "export", "convert"):
        text = s2i(command, "--help").stdout
        assert (
            "--layout" in text and "--embedding-dim" in text and "D of embedding_image_bin" in text
        )


def test_bench_loader_smoke(tmp_path):
    out = tmp_path / "bench.json"
    result = s2i(
        "bench",
        "loader",
        "--size-mb",
        "2",
        "--rss-size-mb",
        "8",
        "--prefix-mb",
        "0.1",
        "--batch-size",
        "16",
        "--json-out",
        out,
        "--workdir",
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert {"page_cache", "spec_image_bin", "audio_bin", "rss", "targets"} <= set(report)
    for layout in ("spec_image_bin", "audio_bin"):
        entry = report[layout]
        assert (
            entry["authors_bytewise"]["records_per_s"] > 0
            and entry["memmap"]["epoch1"]["mb_per_s"] > 0
        )
        assert entry["memmap"]["records"] == int(2 * 2**20) // entry["record_bytes"]
        assert entry["speedup_epoch1"] > 1
    assert report["rss"]["large"]["records"] > report["rss"]["small"]["records"] > 0
    assert set(report["targets"]) == {
        "speedup_at_least_1000x",
        "at_least_1_gb_per_s",
        "rss_independent_of_size",
    }
    assert result.stdout.strip().splitlines()[-1].startswith("loader: memmap")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("s2i-bench-")]  # cleaned up
