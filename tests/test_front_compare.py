"""benchmarks/front_compare.py's pieces that need no weights: the poolings, the CTranslate2
reader and the Whisper encoder's shapes on a tiny made-up model."""

from __future__ import annotations

import struct
import sys
import zipfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from front_compare import chunk_means, mean_max  # noqa: E402
from whisper_port import WhisperEncoder, model_bytes, read_ctranslate2  # noqa: E402

CT2_CODES = {np.dtype(np.float32): 0, np.dtype(np.int16): 2, np.dtype(np.float16): 4}


def test_the_poolings_shapes_and_order():
    frames = torch.arange(2 * 50 * 3, dtype=torch.float32).view(2, 50, 3)
    assert mean_max(frames).shape == (2, 6)
    chunks = chunk_means(frames)
    assert chunks.shape == (2, 15)
    # channel-major: channel 0's five chunks first, each the mean of 10 frames in order
    assert torch.allclose(chunks[0, :5], frames[0, :, 0].view(5, 10).mean(1))


def ct2_bytes(arrays: dict[str, np.ndarray], aliases: dict[str, str]) -> bytes:
    """A CTranslate2 model.bin (binary version 6) holding `arrays`."""

    def text(value: str) -> bytes:
        raw = value.encode() + b"\0"
        return struct.pack("<H", len(raw)) + raw

    out = struct.pack("<I", 6) + text("WhisperSpec") + struct.pack("<II", 3, len(arrays))
    for name, array in arrays.items():
        out += text(name) + struct.pack("<B", array.ndim)
        out += b"".join(struct.pack("<I", size) for size in array.shape)
        out += struct.pack("<BI", CT2_CODES[array.dtype], array.nbytes) + array.tobytes()
    out += struct.pack("<I", len(aliases))
    return out + b"".join(text(alias) + text(target) for alias, target in aliases.items())


def tiny_whisper(width: int = 8, layers: int = 2) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    shapes = {"conv1/weight": (width, 80, 3), "conv1/bias": (width,),
              "conv2/weight": (width, width, 3), "conv2/bias": (width,),
              "position_encodings/encodings": (60, width),
              "layer_norm/gamma": (width,), "layer_norm/beta": (width,)}  # fmt: skip
    per_layer = {"self_attention/layer_norm/gamma": (width,), "self_attention/layer_norm/beta": (width,),
                 "self_attention/linear_0/weight": (3 * width, width), "self_attention/linear_0/bias": (3 * width,),
                 "self_attention/linear_1/weight": (width, width), "self_attention/linear_1/bias": (width,),
                 "ffn/layer_norm/gamma": (width,), "ffn/layer_norm/beta": (width,),
                 "ffn/linear_0/weight": (4 * width, width), "ffn/linear_0/bias": (4 * width,),
                 "ffn/linear_1/weight": (width, 4 * width), "ffn/linear_1/bias": (width,)}  # fmt: skip
    for index in range(layers):
        shapes |= {f"layer_{index}/{name}": shape for name, shape in per_layer.items()}
    arrays = {f"encoder/{k}": rng.normal(size=s).astype(np.float16) for k, s in shapes.items()}
    return arrays | {"encoder/num_heads": np.array([2], np.int16)}


def test_the_reader_takes_a_model_split_in_two_wheels(tmp_path):
    arrays = tiny_whisper()
    data = ct2_bytes(arrays, {"decoder/embeddings": "encoder/conv1/bias"})
    for part, chunk in enumerate([data[:1000], data[1000:]], 1):
        with zipfile.ZipFile(tmp_path / f"pkg{part}.whl", "w") as wheel:
            wheel.writestr(f"pkg{part}/data/model.bin.part{part}", chunk)
    assert model_bytes([tmp_path / "pkg1.whl", tmp_path / "pkg2.whl"]) == data
    read = read_ctranslate2(data)
    assert np.array_equal(read["encoder/conv2/weight"], arrays["encoder/conv2/weight"])
    assert read["decoder/embeddings"] is read["encoder/conv1/bias"]


def test_the_encoder_gives_one_frame_per_20_ms_and_can_be_shortened():
    arrays = tiny_whisper()
    waves = torch.randn(3, 16000) * 0.1
    with torch.no_grad():
        full, first = WhisperEncoder(arrays)(waves), WhisperEncoder(arrays, layers=1)(waves)
    assert full.shape == first.shape == (3, 50, 8)
    assert not torch.allclose(full, first)
    assert isinstance(WhisperEncoder(arrays, layers=1).final_norm, torch.nn.Identity)
    assert isinstance(WhisperEncoder(arrays, layers=2).final_norm, torch.nn.LayerNorm)
