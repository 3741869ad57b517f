"""The torch Datasets, the catalog and the VEGAS unpacking step."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from s2ilib.datasets import DataSet, open_dataset, vegas
from s2ilib.datasets.torch_data import (
    PairedDataset,
    SpectrogramDataset,
    from_unit_range,
    resize_images,
    select_indices,
    to_unit_range,
)
from s2ilib.errors import S2IError
from s2ilib.formats import RecordSet


def _records(num=40, num_classes=4, with_images=False, seed=0) -> RecordSet:
    rng = np.random.default_rng(seed)
    labels = np.arange(num) % num_classes
    spectrograms = rng.integers(0, 256, (num, 128, 100), dtype=np.uint8)
    spectrograms[:, 0, 0] = np.arange(num)  # record id, to check which record came back
    images = None
    if with_images:
        images = rng.integers(0, 256, (num, 96, 96, 3), dtype=np.uint8)
        images[:, 0, 0, 0] = np.arange(num)
    names = np.array([f"r{i}" for i in range(num)])
    return RecordSet("test", "train", (), names, labels.astype(np.int64), spectrograms, images)


def _image_pool(labels) -> RecordSet:
    labels = np.asarray(labels, np.int64)
    images = np.zeros((len(labels), 28, 28, 1), np.uint8)
    images[:, :, :, 0] = (labels * 20)[:, None, None]  # grey level encodes the class
    names = np.array([f"img{i}" for i in range(len(labels))])
    return RecordSet("test", "train", (), names, labels, None, images)


def test_unit_range_round_trip():
    pixels = torch.arange(256, dtype=torch.uint8)
    scaled = to_unit_range(pixels)
    assert scaled.min() == -1 and scaled.max() == 1
    assert torch.equal(from_unit_range(scaled), pixels)


def test_select_indices_filters_classes_and_limits_each():
    labels = np.repeat(np.arange(5), 30)
    chosen = select_indices(labels, classes=[1, 3], limit_per_class=7, seed=3)
    assert np.bincount(labels[chosen], minlength=5).tolist() == [0, 7, 0, 7, 0]
    assert np.array_equal(chosen, np.sort(chosen))
    assert np.array_equal(chosen, select_indices(labels, [1, 3], 7, seed=3))
    assert not np.array_equal(chosen, select_indices(labels, [1, 3], 7, seed=4))
    assert len(select_indices(labels, limit_per_class=100)) == 150


def test_spectrogram_dataset_scales_and_batches():
    records = _records()
    dataset = SpectrogramDataset(records, classes=[0, 2])
    assert len(dataset) == 20
    spectrograms, labels = dataset.__getitems__([3, 0, 5])
    assert spectrograms.shape == (3, 1, 128, 100) and spectrograms.dtype == torch.float32
    assert spectrograms.min() >= -1 and spectrograms.max() <= 1
    record_ids = from_unit_range(spectrograms[:, 0, 0, 0]).tolist()
    assert record_ids == dataset.indices[[3, 0, 5]].tolist()
    assert set(labels.tolist()) <= {0, 2}
    single, label = dataset[1]
    assert single.shape == (1, 128, 100)
    assert int(label) == int(records.labels[dataset.indices[1]])


def test_memory_mapped_store_matches_in_memory(monkeypatch):
    from s2ilib.datasets import torch_data

    records = _records()
    in_memory = SpectrogramDataset(records)
    monkeypatch.setattr(torch_data, "IN_MEMORY_LIMIT_BYTES", 0)
    streamed = SpectrogramDataset(records)
    assert not streamed.spectrograms.in_memory
    positions = [9, 2, 30, 2]
    assert torch.equal(in_memory.__getitems__(positions)[0], streamed.__getitems__(positions)[0])


def test_the_engine_loads_whole_batches_once_each():
    from s2ilib.train.config import LoopConfig
    from s2ilib.train.engine import dataset_batches

    config = LoopConfig(batch_size=16, seed=1)
    batches = list(dataset_batches(SpectrogramDataset(_records(num=50)), config, 0, 0))
    assert [len(b[1]) for b in batches] == [16, 16, 16]  # the partial batch is dropped
    seen = torch.cat([from_unit_range(b[0][:, 0, 0, 0]) for b in batches])
    assert len(set(seen.tolist())) == 48
    later = list(dataset_batches(SpectrogramDataset(_records(num=50)), config, 0, 1))
    assert all(torch.equal(a[0], b[0]) for a, b in zip(batches[1:], later, strict=True))


def test_resize_images_grey_to_rgb():
    grey = torch.full((2, 28, 28, 1), 255, dtype=torch.uint8)
    out = resize_images(grey, 32)
    assert out.shape == (2, 3, 32, 32)
    assert torch.allclose(out, torch.ones_like(out))


def test_class_pairing_matches_labels_and_redraws_per_epoch():
    sounds = _records(num=60, num_classes=3)
    pool = _image_pool(np.repeat(np.arange(3), 25))
    data = DataSet(Path("."), "test", ["a", "b", "c"], {"train": sounds}, {"train": pool}, "class")
    dataset = PairedDataset(data, "train", image_size=28, seed=5)
    spectrograms, images, labels = dataset.__getitems__(np.arange(60))
    grey = from_unit_range(images[:, 0, 0, 0]).long()
    assert torch.equal(grey, labels * 20)
    first = dataset.image_positions.copy()
    dataset.set_epoch(1)
    assert not np.array_equal(first, dataset.image_positions)
    dataset.set_epoch(0)
    assert np.array_equal(first, dataset.image_positions)


def test_record_pairing_keeps_each_sound_with_its_frame():
    records = _records(num=20, with_images=True)
    data = DataSet(Path("."), "test", list("abcd"), {"train": records}, {}, "record")
    dataset = PairedDataset(data, "train", image_size=96, classes=[1])
    spectrograms, images, _ = dataset.__getitems__([0, 2, 4])
    spectrogram_ids = from_unit_range(spectrograms[:, 0, 0, 0])
    image_ids = from_unit_range(images[:, 0, 0, 0])
    assert torch.equal(spectrogram_ids, image_ids)


def test_paired_set_serves_sound_features_in_place_of_spectrograms():
    records = _records(num=20, with_images=True)
    data = DataSet(Path("."), "test", list("abcd"), {"train": records}, {}, "record")
    dataset = PairedDataset(data, "train", image_size=32)
    _, images, labels = dataset.__getitems__([3, 1])
    features = torch.arange(20.0)[:, None].expand(20, 5)
    dataset.use_sound_features(features)
    served, same_images, same_labels = dataset.__getitems__([3, 1])
    assert torch.equal(served, features[[3, 1]]) and torch.equal(same_labels, labels)
    assert torch.equal(same_images, images)
    dataset.use_sound_features(None)
    assert dataset.__getitems__([3])[0].shape == (1, 1, 128, 100)
    with pytest.raises(S2IError, match="19 rows for 20 sounds of the train split"):
        dataset.use_sound_features(features[:19])


def test_missing_split_and_missing_images_are_clear_errors():
    data = DataSet(Path("x"), "test", ["a"], {"train": _records()}, {}, "none")
    with pytest.raises(S2IError, match="no 'test' split"):
        data.split("test")
    with pytest.raises(S2IError, match="sounds only"):
        PairedDataset(data, "train", image_size=32)


def _write_fake_vegas_tar(path: Path, split: str, count: int) -> None:
    with tarfile.open(path, "w") as archive:
        for i in range(count):
            payload = b"\xff\xd8 not really a jpeg"
            info = tarfile.TarInfo(f"{split}/c001_s{i:05d}_w000.jpg")
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))


def test_unpack_vegas_verifies_counts(tmp_path, monkeypatch):
    _write_fake_vegas_tar(tmp_path / "val.tar", "val", 12)
    monkeypatch.setitem(vegas.EXPECTED_COUNTS, "val", 12)
    out = tmp_path / "out"
    assert vegas.unpack_vegas(tmp_path, out, ("val",)) == {"val": 12}
    assert sorted(p.name for p in (out / "val").iterdir())[0] == "c001_s00000_w000.jpg"
    assert vegas.find_vegas(out) == out
    monkeypatch.setitem(vegas.EXPECTED_COUNTS, "val", 13)
    with pytest.raises(S2IError, match="val: 12 files, expected 13"):
        vegas.verify_vegas(out, ("val",))


def test_unpack_vegas_missing_tar_says_where(tmp_path):
    with pytest.raises(S2IError, match="val.tar: not found"):
        vegas.unpack_vegas(tmp_path, tmp_path / "out", ("val",))
    with pytest.raises(S2IError, match="s2i vegas"):
        vegas.require_vegas(tmp_path / "nothing")


def test_open_dataset_missing_path():
    with pytest.raises(S2IError, match="no such file"):
        open_dataset("/nonexistent/s2i/data")


def test_inspect_reports_avdigits_like_any_set():
    import json
    import subprocess
    import sys

    from s2ilib.datasets.avdigits import AVDIGITS_DIR

    result = subprocess.run(
        [sys.executable, "-m", "s2ilib", "inspect", str(AVDIGITS_DIR), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    summary = json.loads(result.stdout)
    assert summary["layout"] == "avdigits" and summary["pairing"] == "class"
    assert set(summary["splits"]) == {"train", "val", "test"}
    assert summary["image_pool"]["total_records"] > 0
    assert len(summary["language"]["train"]) >= 6
    assert summary["splits"]["train"]["arrays"]["spectrograms"]["shape"][1:] == [128, 100]


def test_paired_dataset_over_shipped_avdigits():
    from s2ilib.datasets.avdigits import AVDIGITS_DIR

    data = open_dataset(AVDIGITS_DIR)
    dataset = PairedDataset(data, "test", image_size=32, limit_per_class=3)
    spectrograms, images, labels = dataset.__getitems__(np.arange(len(dataset)))
    assert spectrograms.shape == (30, 1, 128, 100) and images.shape == (30, 3, 32, 32)
    assert torch.equal(torch.bincount(labels), torch.full((10,), 3))
