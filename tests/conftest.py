"""Shared fixtures: synthetic records in the published shapes, and the real VEGAS JPEGs."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import numpy as np
import pytest

from s2ilib import formats

REPO_ROOT = Path(__file__).resolve().parents[1]
# The published VEGAS spectrogram tars live next to the repository (never inside it).
VEGAS_TARS = Path(
    os.environ.get("S2I_VEGAS_TARS", REPO_ROOT.parent / "shared/data/vegas_spectrograms")
)
VEGAS_SUBSET = 300  # val.tar members extracted for the tests, spread over the whole archive


def smooth_records(count: int, seed: int = 0, embedding_dim: int = 128) -> dict:
    """Records with smooth, spectrogram-like content (JPEG keeps it close) and valid names."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:128, 0:100]
    centres = rng.uniform([10, 10], [118, 90], size=(count, 2))
    widths = rng.uniform(8, 25, size=count)
    blobs = np.exp(
        -((rows - centres[:, 0, None, None]) ** 2 + (cols - centres[:, 1, None, None]) ** 2)
        / (2 * widths[:, None, None] ** 2)
    )
    spectrograms = (20 + 0.5 * rows[None] + 150 * blobs).clip(0, 255).astype(np.uint8)
    y, x = np.mgrid[0:96, 0:96]
    tint = rng.uniform(0, 1, size=(count, 1, 1, 3))
    images = (255 * tint * ((x + y)[None, :, :, None] / 190)).astype(np.uint8)
    classes = np.arange(count) * 5 // count  # in name order, as a JPEG tree lists them
    names = np.array(
        [formats.format_name(int(c), 100 + i // 10, i % 10) for i, c in enumerate(classes)]
    )
    embeddings = rng.uniform(-1, 1, size=(count, embedding_dim)).astype(np.float32)
    return {
        "names": names,
        "labels": classes.astype(np.int64),
        "spectrograms": spectrograms,
        "images": images,
        "embeddings": embeddings,
    }


def write_raw_spec_image_bin(path, labels, spectrograms, images) -> Path:
    """A spec_image_bin file built byte by byte (label, spectrogram, image), not by s2ilib."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as file:
        for label, spectrogram, image in zip(labels, spectrograms, images, strict=True):
            assert len(label) == formats.LABEL_BYTES, label
            file.write(label + spectrogram.tobytes() + image.tobytes())
    return path


def separated_labels(classes) -> list[bytes]:
    """11-byte labels spelled like 004_17722_0: class, then _source_window, per record."""
    return [f"{int(c) + 1:03d}_{17700 + i // 10}_{i % 10}".encode() for i, c in enumerate(classes)]


@pytest.fixture
def records() -> dict:
    """23 smooth synthetic records (odd count: exercises partial files and chunks)."""
    return smooth_records(23)


@pytest.fixture
def make_records():
    """The smooth_records factory: make_records(count, seed=0, embedding_dim=128)."""
    return smooth_records


@pytest.fixture(scope="session")
def vegas_val_dir(tmp_path_factory) -> Path:
    """A folder of real VEGAS spectrogram JPEGs: $S2I_VEGAS_DIR, or a subset of val.tar."""
    given = os.environ.get("S2I_VEGAS_DIR")
    if given:
        folder = Path(given)
        return folder / "val" if (folder / "val").is_dir() else folder
    tar_path = VEGAS_TARS / "val.tar"
    if not tar_path.is_file():
        pytest.skip(
            f"real VEGAS spectrograms absent: no {tar_path} (set S2I_VEGAS_DIR or S2I_VEGAS_TARS)"
        )
    out = tmp_path_factory.mktemp("vegas")
    with tarfile.open(tar_path) as archive:
        members = [m for m in archive.getmembers() if m.isfile() and m.name.endswith(".jpg")]
        step = max(1, len(members) // VEGAS_SUBSET)
        archive.extractall(out, members=members[::step][:VEGAS_SUBSET], filter="data")
    return out / "val"


@pytest.fixture
def one_torch_thread():
    """One torch thread in-process: tiny networks gain nothing from more, and a busy CPU
    loses; the previous count is restored after the test."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# Training settings that make a usable run in seconds (two steps of the tiny preset).
QUICK_TRAINING = {
    "num_steps": 2,
    "batch_size": 8,
    "limit_per_class": 2,
    "log_every": 1,
    "sample_every": 2,
    "checkpoint_every": 2,
    "val_samples": 8,
    "num_samples": 2,
}


@pytest.fixture(scope="session")
def tiny_ae_run(tmp_path_factory) -> Path:
    """A tiny AE trained for two steps on AV-Digits, the encoder of the tiny decoders."""
    from s2ilib.datasets.avdigits import AVDIGITS_DIR
    from s2ilib.train.config import AETrainConfig
    from s2ilib.train.registry import train_autoencoder

    config = {"data": str(AVDIGITS_DIR), "preset": "tiny", "embedding_dim": 16, **QUICK_TRAINING}
    return train_autoencoder(
        AETrainConfig.from_dict(config),
        runs_root=tmp_path_factory.mktemp("runs"),
        device="cpu",
        progress_bar=False,
    )


@pytest.fixture(scope="session")
def tiny_gan_run(tiny_ae_run) -> Path:
    """A tiny GAN trained for two steps on AV-Digits (class pairing) on the tiny AE, shared
    by the tests that only need some trained run to load."""
    from s2ilib.train.config import GANTrainConfig
    from s2ilib.train.registry import train_gan

    config = {"data": _data_of(tiny_ae_run), "ae_run": str(tiny_ae_run), **QUICK_TRAINING}
    return train_gan(
        GANTrainConfig.from_dict(config | {"preset": "tiny"}),
        runs_root=tiny_ae_run.parent,
        device="cpu",
        progress_bar=False,
    )


@pytest.fixture(scope="session")
def tiny_flow_run(tiny_ae_run) -> Path:
    """A small flow decoder trained for two steps on the tiny AE (recipe flow's sampling)."""
    from s2ilib.train.config import FlowTrainConfig
    from s2ilib.train.registry import train_flow

    config = {"data": _data_of(tiny_ae_run), "ae_run": str(tiny_ae_run), **QUICK_TRAINING}
    return train_flow(
        FlowTrainConfig.from_dict(config | {"channels": [8, 16], "condition_dim": 16}),
        runs_root=tiny_ae_run.parent,
        device="cpu",
        progress_bar=False,
    )


@pytest.fixture(scope="session")
def tiny_informativity_run(tmp_path_factory) -> Path:
    """Informativity classifiers trained for one short epoch on AV-Digits' images."""
    from s2ilib.datasets.avdigits import AVDIGITS_DIR
    from s2ilib.train.config import InformativityTrainConfig
    from s2ilib.train.registry import train_informativity

    config = InformativityTrainConfig(
        data=str(AVDIGITS_DIR), image_size=16, num_epochs=1, limit_per_class=8, patience=1
    )
    return train_informativity(
        config, runs_root=tmp_path_factory.mktemp("runs"), device="cpu", progress_bar=False
    )


def _data_of(run: Path) -> str:
    from s2ilib.runs.rundir import read_config

    return read_config(run)["train"]["data"]
