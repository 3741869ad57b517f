"""A pretrained speech front: Google's speech_embedding, read from the workbook's spectrograms.

Google's speech_embedding (Lin et al. 2020, "Training keyword spotters with limited and
synthesized speech data", arXiv 2002.01322) is a small convolutional network trained on a
large corpus of speech to embed 775 ms of 32-band log-mel into 96 numbers that keyword
spotters separate with little data, synthetic speech included. openWakeWord (PyPI
`openwakeword`, version 0.5.1 ships the network as ONNX) re-implemented it; this module
rebuilds the same layers in torch and copies their weights from that file, so a run's
checkpoint carries them and translating needs no ONNX runtime.

The network wants its own log-mel (25-ms Hann window, 10-ms hop, 32 bands from 62 Hz to
3.8 kHz, 10 log10 of the power of int16-scaled samples). The workbook's spectrograms are
128-band dB images (s2ilib.audio), so `SpeechFront` re-bins them: every FFT bin's power is
estimated from the bands that cover it, then summed by the network's own band weights. Both
front ends use the same window and hop, so the re-binned bands match the network's to within
what 8-bit quantisation and the image's -50 dB floor lose (measured in docs/audio_frontend.md).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from s2ilib.audio import FrontEndConfig, LogMel, uint8_to_db
from s2ilib.errors import S2IError
from s2ilib.models.front_cache import shared_cache

OPENWAKEWORD_VERSION = "0.5.1"  # the last release whose wheel ships the ONNX files
MODEL_FILES = ("melspectrogram.onnx", "embedding_model.onnx")
PAD_FRAMES = 30  # frames of silence SpeechFront puts on each side of a clip: 0.3 s
SPEECH_BANDS = 32
FEATURE_DIM = 96
SPEECH_FEATURES = 2 * FEATURE_DIM  # PooledSpeech: the mean and the max over windows
# int16 samples and the un-normalised window: the network's power is ours (dB re full scale,
# s2ilib.audio.LogMel) times (32768 * sum(window) / 2)^2, sum(window) = 200 for Hann 400.
POWER_OFFSET_DB = 20.0 * np.log10(32768.0 * 100.0)
BLACK = -1.0 + 0.5 / 127.5  # an image value at or below this is a black (0) pixel
INT16_SCALE = 32767.0  # the network's own front end hears int16 samples
TOP_DB = 80.0  # ... and keeps the top 80 dB of its log-mel
LEAK, FLOOR = 0.2, -0.4  # every layer: LeakyReLU(0.2), then max(x, -0.4)


def openwakeword_models() -> Path:
    """The folder of openWakeWord's ONNX files, or an error that says how to get them."""
    try:
        import openwakeword
    except ImportError as error:
        raise S2IError(
            "the speech front needs the openWakeWord package for its pretrained weights: "
            f"pip install openwakeword=={OPENWAKEWORD_VERSION}"
        ) from error
    folder = Path(openwakeword.__file__).parent / "resources" / "models"
    missing = [name for name in MODEL_FILES if not (folder / name).is_file()]
    if missing:
        raise S2IError(
            f"{folder} lacks {', '.join(missing)}: openWakeWord releases after "
            f"{OPENWAKEWORD_VERSION} download them at run time; pip install "
            f"openwakeword=={OPENWAKEWORD_VERSION}"
        )
    return folder


def _onnx_arrays(path: Path) -> tuple[list, dict[str, np.ndarray]]:
    """The nodes and the initialisers (name -> array) of an ONNX file."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    arrays = {item.name: numpy_helper.to_array(item) for item in model.graph.initializer}
    return list(model.graph.node), arrays


def _conv_layers(nodes, arrays) -> list[tuple[np.ndarray, np.ndarray | None, bool, tuple | None]]:
    """(weight, bias, pads the mel axis, max-pools after) for each Conv of the embedding
    graph, in order; the pools are 2x2 or 1x2 (mel only), told apart by their kernel."""
    layers, pools = [], {}
    for node in nodes:
        if node.op_type == "Conv":
            bias = arrays[node.input[2]] if len(node.input) > 2 else None
            pads = [a for a in node.attribute if a.name == "pads"]
            layers.append([arrays[node.input[1]], bias, bool(pads and pads[0].ints[1]), None])
        elif node.op_type == "MaxPool":
            kernel = [a for a in node.attribute if a.name == "kernel_shape"][0].ints
            pools[len(layers) - 1] = tuple(kernel)
    for index, kernel in pools.items():
        layers[index][3] = kernel
    return [tuple(layer) for layer in layers]


class SpeechEmbedding(nn.Module):
    """Log-mel (B, T, 32) in the network's scale -> embeddings (B, (T - 76) // 8 + 1, 96).

    The network is convolutional in time with a stride of 8 frames, so one pass over a long
    log-mel gives the embeddings of every 76-frame window that starts on a multiple of 8:
    the same numbers as sliding it, 9x cheaper. Weights are buffers: frozen, checkpointed.
    """

    def __init__(self, load_pretrained: bool = True):
        super().__init__()
        shapes = _LAYER_SHAPES
        self.pools = [pool for _, _, pool in shapes]
        self.pads_mel = [pad for _, pad, _ in shapes]
        for index, (shape, _, _) in enumerate(shapes):
            self.register_buffer(f"weight{index}", torch.zeros(shape))
            self.register_buffer(f"bias{index}", torch.zeros(shape[0]))
        if load_pretrained:
            self.load_openwakeword()

    @torch.no_grad()
    def load_openwakeword(self) -> None:
        """Copy the weights from openWakeWord's embedding_model.onnx."""
        nodes, arrays = _onnx_arrays(openwakeword_models() / "embedding_model.onnx")
        layers = _conv_layers(nodes, arrays)
        found = [(tuple(weight.shape), pads, pool) for weight, _, pads, pool in layers]
        if found != _LAYER_SHAPES:
            raise S2IError("openWakeWord's embedding_model.onnx has other layers than expected")
        for index, (weight, bias, _, _) in enumerate(layers):
            getattr(self, f"weight{index}").copy_(torch.from_numpy(np.array(weight)))
            if bias is not None:
                getattr(self, f"bias{index}").copy_(torch.from_numpy(np.array(bias)))

    def forward(self, log_mel: torch.Tensor) -> torch.Tensor:
        x = log_mel[:, None]  # (B, 1, T, 32): time is height, as the network was trained
        last = len(self.pools) - 1
        for index, (pool, pad) in enumerate(zip(self.pools, self.pads_mel, strict=True)):
            if pad:
                x = F.pad(x, (1, 1))
            x = F.conv2d(x, getattr(self, f"weight{index}"), getattr(self, f"bias{index}"))
            if index < last:  # the last layer is linear
                x = torch.clamp_min(F.leaky_relu(x, LEAK), FLOOR)
            if pool is not None:
                x = F.max_pool2d(x, pool)
        return x[..., 0].transpose(1, 2)  # (B, windows, 96)


# (weight shape, pads the mel axis, pool after) of the 20 layers, as in embedding_model.onnx.
def _layer_shapes() -> list[tuple[tuple[int, ...], bool, tuple[int, int] | None]]:
    widths = [(1, 24), (24, 24), (24, 24), (24, 48), (48, 48), (48, 48), (48, 48), (48, 72)]
    widths += [(72, 72)] * 3 + [(72, 96)] + [(96, 96)] * 8
    shapes = []
    for index, (cin, cout) in enumerate(widths):
        pads_mel = index == 0 or index % 2 == 1 and index < len(widths) - 1
        kernel = (3, 3) if index == 0 else ((1, 3) if pads_mel else (3, 1))
        pool = {2: (2, 2), 6: (1, 2), 10: (2, 2), 14: (1, 2), 18: (2, 2)}.get(index)
        shapes.append(((cout, cin, *kernel), pads_mel, pool))
    return shapes


_LAYER_SHAPES = _layer_shapes()


class SpeechFront(nn.Module):
    """Workbook spectrograms (B, 1, 128, frames) in [-1, 1] -> speech embeddings (B, W, 96).

    `pad_frames` frames of silence go on each side before the network: a word centred in
    one second then falls inside several whole 775-ms windows (W = (frames + 2 pad - 76)
    // 8 + 1; 11 for 1 s and the default 30).
    """

    def __init__(
        self,
        front_end: FrontEndConfig | None = None,
        pad_frames: int = PAD_FRAMES,
        black_db: float = 20.0,
        load_pretrained: bool = True,
    ):
        super().__init__()
        self.front_end = front_end = front_end or FrontEndConfig()
        self.pad_frames = pad_frames
        self.black_db = black_db
        self.embedding = SpeechEmbedding(load_pretrained)
        bands = LogMel(front_end).filterbank  # (bins, 128), low band first
        # A bin's power is the weighted mean of the bands that cover it.
        cover = bands / bands.sum(1, keepdim=True).clamp_min(1e-12)
        self.register_buffer("rebin", cover.T @ self._speech_bands(load_pretrained))
        # Silence is the image's floor in every band, whatever else is in the batch.
        floor = torch.full((1, 1, bands.shape[1], 1), -1.0)
        self.register_buffer("silence", self._speech_db(floor)[0, 0])

    @staticmethod
    def _speech_bands(load_pretrained: bool) -> torch.Tensor:
        """The network's band weights (257 bins, 32 bands) from melspectrogram.onnx."""
        if not load_pretrained:
            return torch.zeros(257, SPEECH_BANDS)
        _, arrays = _onnx_arrays(openwakeword_models() / "melspectrogram.onnx")
        return torch.from_numpy(np.array(arrays["1.melW"]))

    def _speech_db(self, spectrograms: torch.Tensor) -> torch.Tensor:
        """(B, 1, 128, T) in [-1, 1] -> (B, T, 32): the network's bands in its dB."""
        image = spectrograms[:, 0].flip(-2)  # (B, 128, T), low band first
        db = uint8_to_db((image + 1.0) * 127.5, self.front_end)
        # Black pixels are anything below the floor: read them far below it.
        db = torch.where(image <= BLACK, db - self.black_db, db)
        power = torch.pow(10.0, db / 10.0).transpose(1, 2)  # (B, T, 128)
        return 10.0 * torch.log10((power @ self.rebin).clamp_min(1e-12)) + POWER_OFFSET_DB

    def log_mel(self, spectrograms: torch.Tensor) -> torch.Tensor:
        """(B, 1, 128, T) in [-1, 1] -> (B, T + 2 pad, 32), the network's scaled log-mel."""
        speech_db = self._speech_db(spectrograms)
        pad = self.silence.expand(len(speech_db), self.pad_frames, SPEECH_BANDS)
        speech_db = torch.cat([pad, speech_db, pad], 1)
        return speech_db / 10.0 + 2.0  # openWakeWord's scaling of the network's input

    def audio_log_mel(self, waves: torch.Tensor) -> torch.Tensor:
        """(B, samples) at 16 kHz -> (B, frames + 2 pad, 32) through the network's own front
        end, openWakeWord's melspectrogram.onnx (an STFT as two convolutions, its 32 band
        weights, 10 log10 with the clip's top 80 dB kept, then x / 10 + 2), with the same
        silence each side as `log_mel`."""
        real, imag, bands = (w.to(waves.device) for w in _onnx_front_end())
        padding = self.pad_frames * self.front_end.hop_length
        samples = F.pad(waves, (padding, padding))[:, None] * INT16_SCALE
        hop = self.front_end.hop_length
        real, imag = (F.conv1d(samples, weight, stride=hop) for weight in (real, imag))
        power = (real**2 + imag**2).transpose(1, 2) @ bands  # (B, frames, 32)
        db = 10.0 * torch.log10(power.clamp_min(1e-10))
        db = torch.maximum(db, db.amax(dim=(1, 2), keepdim=True) - TOP_DB)
        return db / 10.0 + 2.0

    def forward(self, sounds: torch.Tensor) -> torch.Tensor:
        """Spectrograms (B, 1, 128, T) or waves (B, samples) -> windows (B, W, 96)."""
        if sounds.dim() == 2:
            return self.embedding(self.audio_log_mel(sounds))
        return self.embedding(self.log_mel(sounds))


@functools.lru_cache(maxsize=1)
def _onnx_front_end() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """melspectrogram.onnx's STFT (real and imaginary kernels) and band weights, read once
    (never a checkpoint's: `SpeechFront(load_pretrained=False)` still reads audio right)."""
    _, arrays = _onnx_arrays(openwakeword_models() / "melspectrogram.onnx")
    names = ("0.stft.conv_real.weight", "0.stft.conv_imag.weight", "1.melW")
    return tuple(torch.from_numpy(np.array(arrays[name])) for name in names)


class PooledSpeech(nn.Module):
    """Workbook spectrograms, or waves -> (B, 192): a SpeechFront's windows, mean and max
    over time (a word lies in some windows; the mean says which sounds, the max how
    clearly)."""

    def __init__(self, front: SpeechFront):
        super().__init__()
        self.front = front

    def forward(self, spectrograms: torch.Tensor) -> torch.Tensor:
        """Features of sounds seen before come from the disk cache (models.front_cache)."""
        cache = shared_cache()
        if cache is None or spectrograms.requires_grad:
            return self.pool(spectrograms)
        return cache.features(self, spectrograms, self.pool)

    def pool(self, spectrograms: torch.Tensor) -> torch.Tensor:
        """The features computed: the speech front's windows, their mean and max."""
        windows = self.front(spectrograms)
        return torch.cat([windows.mean(1), windows.amax(1)], 1)
