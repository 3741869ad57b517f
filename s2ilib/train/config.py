"""Training configurations: frozen dataclasses whose every field is a documented knob.

`LoopConfig` holds what every training shares (data, length, schedule, logging,
checkpoints); `StageConfig` adds what the method's stages share (preset, embedding width,
sampling); `AETrainConfig` (stage 1), `AlignTrainConfig` (the alignment stage),
`GANTrainConfig` (stage 2), `CeilingTrainConfig` (the supervised ceiling) and
`InformativityTrainConfig` (the evaluation's classifiers) are the tasks' configs. `from_dict`
rejects unknown keys and wrong types with a message naming the key, so a typo in a notebook
parameters cell, a JSON file or `--set` fails at once instead of being silently ignored.
Torch-free.
"""

from __future__ import annotations

import ast
import json
import types
import typing
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import ClassVar

from s2ilib.errors import S2IError
from s2ilib.models import PRESET_NAMES  # torch-free
from s2ilib.models.config import (
    AUDIO_FRONTS,
    COUNT,
    DECAY,
    DROPOUT,
    FRONT_INPUTS,
    GUIDANCE,
    NON_NEGATIVE,
    NON_NEGATIVE_COUNT,
    POSITIVE,
    SAMPLE_STEPS,
    SHARE,
    TIME,
    Bounds,
    number_problem,
)
from s2ilib.models.config import AutoencoderConfig as _NETWORK
from s2ilib.models.config import FlowConfig as _FLOW

OPTIMIZERS = ("sgd", "adam")
LR_SCHEDULES = ("constant", "cosine", "linear")  # multiplier of the base lr as steps go by
INITIALISATIONS = ("default", "dcgan")  # PyTorch's own, or models.init_weights (N(0, 0.02))
GAN_LOSS_NAMES = ("paper", "moving_average", "hinge", "non_saturating")  # losses.GAN_LOSSES
# Training fast-path features (s2ilib.train.fastpath), all used by fast_path "on".
FAST_PATH_FEATURES = ("bf16", "channels_last", "compile", "fused_adam", "resident_data")


class TrainConfigError(S2IError, ValueError):
    """A training configuration key that does not exist or has a value of the wrong type."""


# Every seed numpy's SeedSequence (no negative keys) and torch.manual_seed accept alike.
SEED = Bounds(0, 2**32 - 1, integer=True)
BATCH = Bounds(2, integer=True, why="BatchNorm needs at least 2")


def default_data_dir() -> str:
    """The AV-Digits folder shipped with the workbook (data/avdigits in the repository)."""
    try:
        from s2ilib.datasets.avdigits import AVDIGITS_DIR

        return str(AVDIGITS_DIR)
    except ImportError:  # the module may be absent in a partial checkout
        return str(Path(__file__).resolve().parents[2] / "data" / "avdigits")


@dataclass(frozen=True)
class LoopConfig:
    """Fields every training shares: data, length, schedule, logging and checkpoints."""

    data: str = ""  # data set folder (anything s2ilib.datasets.open_dataset opens); "" = AV-Digits
    limit_per_class: int | None = None  # at most this many items per class and split (quick runs)
    seed: int = 0  # seeds weights, data order (per epoch), class pairing and dropout masks
    batch_size: int = 64  # the authors' AE batch size
    num_epochs: int = 100  # passes over the training split (ignored when num_steps is set)
    num_steps: int | None = None  # total optimiser steps; overrides num_epochs when set
    lr_schedule: str = "constant"  # "constant", "cosine" (to 0) or "linear" (to 0)
    warmup_steps: int = 0  # linear warm-up from 0 to the base lr over this many steps
    weight_decay: float = 0.0  # L2 penalty of the optimisers
    grad_clip: float | None = None  # clip each network's gradient norm to this; None = no clip
    log_every: int = 50  # steps between stats lines (losses are synced to the host only then)
    sample_every: int = 500  # steps between sample grids and validation losses
    checkpoint_every: int = 500  # steps between writes of checkpoints/last.pt
    keep_checkpoints: bool = False  # also keep checkpoints/step_XXXXXXX.pt at every write
    num_workers: int = 0  # DataLoader worker processes (0: batches are cheap in-RAM slices)
    # torchrun only (s2ilib.distributed): BatchNorm statistics over the whole global batch
    # (SyncBatchNorm, CUDA/NCCL only) instead of each rank's slice (the default).
    sync_batchnorm: bool = False
    fast_path: str = "auto"  # "auto" (on for CUDA, off on CPU), "on", "off" (reference mode)
    fast_path_features: tuple[str, ...] = FAST_PATH_FEATURES  # what the fast path turns on

    # Every numeric field's finite range, by class (a subclass's entry replaces its
    # parent's); checked first, by every caller alike (CLI, notebooks, the main job).
    NUMBERS: ClassVar[dict[str, Bounds]] = {
        "limit_per_class": COUNT,
        "seed": SEED,
        "batch_size": BATCH,
        "num_epochs": COUNT,
        "num_steps": COUNT,
        "warmup_steps": NON_NEGATIVE_COUNT,
        "weight_decay": NON_NEGATIVE,
        "grad_clip": POSITIVE,
        "log_every": COUNT,
        "sample_every": COUNT,
        "checkpoint_every": COUNT,
        "num_workers": NON_NEGATIVE_COUNT,
    }

    def __post_init__(self):
        _check_numbers(self)
        _check_choice(self, "lr_schedule", LR_SCHEDULES)
        _check_choice(self, "fast_path", ("auto", "on", "off"))
        for feature in self.fast_path_features:
            if feature not in FAST_PATH_FEATURES:
                raise TrainConfigError(
                    f"fast_path_features: unknown {feature!r} (expected some of "
                    f"{', '.join(FAST_PATH_FEATURES)})"
                )

    @classmethod
    def from_dict(cls, values: dict):
        """A config from a plain dict (JSON), checking every key and type."""
        return cls(**_checked(cls, values))

    def updated(self, values: dict):
        """A copy with `values` (checked like from_dict) replacing fields."""
        return replace(self, **_checked(type(self), values))

    def as_dict(self) -> dict:
        """JSON-ready dict of every field (tuples become lists)."""
        return json.loads(json.dumps(asdict(self)))


@dataclass(frozen=True)
class StageConfig(LoopConfig):
    """Fields of the method's stages (autoencoder, alignment, GAN, supervised ceiling)."""

    preset: str = "demo"  # model preset: "paper", "demo" or "tiny" (s2ilib.models.preset)
    embedding_dim: int = 512  # audio embedding width D (the paper: 128..2048, default 512)
    classes: tuple[int, ...] | None = None  # train on these 0-based classes only; None = all
    init: str = "default"  # weight initialisation: "default" (PyTorch) or "dcgan"
    num_samples: int = 8  # validation sounds shown in each sample grid
    val_samples: int = 256  # validation sounds the validation loss is computed on
    test_time_dropout: bool = True  # keep dropout on when sampling, as the paper does

    NUMBERS: ClassVar[dict[str, Bounds]] = {
        "embedding_dim": COUNT,
        "classes": NON_NEGATIVE_COUNT,
        "num_samples": COUNT,
        "val_samples": COUNT,
    }

    def __post_init__(self):
        super().__post_init__()
        if self.preset is not None:  # None (later stages): resolved from the earlier run
            _check_choice(self, "preset", PRESET_NAMES)
        _check_choice(self, "init", INITIALISATIONS)


@dataclass(frozen=True)
class AETrainConfig(StageConfig):
    """Stage 1: the audio autoencoder on spectrograms alone, MSE reconstruction loss.

    Defaults are the authors' script: SGD, lr 0.05, momentum 0.9, batch 64.
    """

    optimizer: str = "sgd"  # "sgd" (the authors') or "adam"
    lr: float = 0.05  # base learning rate
    momentum: float = 0.9  # SGD momentum
    betas: tuple[float, float] = (0.9, 0.999)  # Adam betas (when optimizer = "adam")
    # The encoder's input network (models.config.AUDIO_FRONTS): "conv", the paper's convs, or
    # "speech", Google's pretrained speech_embedding, frozen, and a trained projection
    # (s2ilib.models.speech; the main job's, for voices it never heard: RESULTS.md), or
    # "whisper", Whisper-base's encoder, frozen, and the same projection (models.whisper).
    front: str = "conv"
    # What a frozen front reads (models.config.FRONT_INPUTS): "spectrogram" (the 8-bit
    # images), "audio" (the clips, for data sets that ship them), or "auto": the audio where
    # the front is frozen and the data set ships it, else the spectrograms
    # (train.common.front_input_for; what the images' floor costs: RESULTS.md, "Speech
    # fronts by voice and by language")
    front_input: str = "auto"

    NUMBERS: ClassVar[dict[str, Bounds]] = {"lr": POSITIVE, "momentum": DECAY, "betas": DECAY}

    def __post_init__(self):
        super().__post_init__()
        _check_choice(self, "optimizer", OPTIMIZERS)
        _check_choice(self, "front", AUDIO_FRONTS)
        _check_choice(self, "front_input", ("auto", *FRONT_INPUTS))


# Stage 1 has two sets of defaults, on purpose: AETrainConfig's are the authors' script
# (what `s2i train-ae` trains: the paper), and the main job (notebook 02, `s2i pipeline`)
# trains the demo preset within a CPU's budget with Adam instead (at 1e-3 Adam left the
# demo AE near the mean image for long; its length: RESULTS.md, the main job). Notebook
# 02's defaults read this table; `s2i train-ae` given these options trains the same run.
AE_MAIN_JOB = types.MappingProxyType({"optimizer": "adam", "lr": 1e-2, "num_epochs": 36})


@dataclass(frozen=True)
class GANTrainConfig(StageConfig):
    """Stage 2: dense generator + conditional discriminator on the frozen audio encoder.

    The encoder (and its embedding width) comes from the autoencoder run `ae_run`. The
    generator's total loss is adversarial_weight * adversarial + pixel_weight * L1 pixel loss
    against the paired image, whatever the adversarial loss (see s2ilib.train.losses).
    """

    ae_run: str = ""  # run directory of a finished `s2i train-ae` (required)
    preset: str | None = None  # generator/discriminator preset; None = the AE run's preset
    embedding_dim: int | None = None  # None = the AE run's; must match it when given
    init: str = "dcgan"  # DCGAN initialisation for the GAN (the AE keeps PyTorch's default)
    loss: str = "paper"  # adversarial loss: "paper", "moving_average", "hinge", "non_saturating"
    adversarial_weight: float = 1.0  # weight of the adversarial term of the generator loss
    pixel_weight: float = 10.0  # weight of the L1 pixel loss against the paired image
    ma_decay: float = 0.99  # moving_average loss: decay of the moving averages of the scores
    ma_discriminator_margin: float = 0.0  # moving_average: > 0 also smooths D's targets
    hinge_margin: float = 0.5  # hinge loss: margin on the tanh score (< 1, see losses.py)
    spectral_norm: bool = False  # spectral normalisation of the discriminator's convs
    # z-score the frozen embedding per coordinate (statistics of the training sounds, stored
    # in the GAN run's encoder) before the generator and discriminator see it; the default
    # is the network's (models.AutoencoderConfig), its one home
    standardise_embedding: bool = _NETWORK.standardise_embedding
    # Imagination (beyond the paper; recipe "imagine"): a Gaussian code of this many numbers
    # enters the generator beside the embedding (0 = the paper's generator: no code).
    noise_dim: int = 0
    # The conditional VAE-GAN (BicycleGAN's cVAE-GAN, Zhu et al. 2017): a small image
    # encoder gives each paired image a code, and the generator redraws that very image
    # from the sound and the code. The code then tells which image of the class it was
    # (slant, width, stroke), so the pixel loss no longer pulls every draw to the class
    # mean; at test time the code is drawn from N(0, I). Needs noise_dim > 0.
    code_encoder: bool = False
    kl_weight: float = 0.01  # code_encoder: weight of the codes' KL divergence to N(0, I)
    # code_encoder: > 0 adds BicycleGAN's other branch (cLR-GAN): the second half of each
    # batch gets codes drawn from N(0, I), as at test time, with no pixel loss (there is no
    # image to copy); the discriminator judges those images too, and the code encoder must
    # read each drawn code back from its image (L1 x latent_weight, training the generator
    # only, as in BicycleGAN, where it is 0.5). Without it the drawn codes of test time are
    # never judged in training. Measured on AV-Digits at 0.5 it cost informativity and
    # realism (RESULTS.md, "Imagination: recipe `imagine`"), so no recipe uses it.
    latent_weight: float = 0.0
    # Discriminator-stall detector (s2ilib.train.stall): warn when, over this many stats
    # lines in a row, d_loss moved less than stall_tolerance and the mean real and fake
    # scores differed by less than stall_gap: D then scores every pair alike (0 = off).
    stall_window: int = 5
    stall_tolerance: float = 0.005
    stall_gap: float = 0.05
    lr_generator: float = 2e-4  # Adam learning rate of the generator
    lr_discriminator: float = 2e-4  # Adam learning rate of the discriminator
    betas: tuple[float, float] = (0.5, 0.999)  # Adam betas of both networks (DCGAN's)

    NUMBERS: ClassVar[dict[str, Bounds]] = {
        "adversarial_weight": NON_NEGATIVE,
        "pixel_weight": NON_NEGATIVE,
        "ma_decay": DECAY,
        # the scores are in [-1, 1]: a margin of 2 already asks for the extremes at once
        "ma_discriminator_margin": Bounds(0.0, 2.0),
        "hinge_margin": Bounds(0.0, 1.0, low_open=True, why="the score is a tanh"),
        "noise_dim": NON_NEGATIVE_COUNT,
        "kl_weight": NON_NEGATIVE,
        "latent_weight": NON_NEGATIVE,
        "stall_window": NON_NEGATIVE_COUNT,
        "stall_tolerance": NON_NEGATIVE,
        "stall_gap": NON_NEGATIVE,
        "lr_generator": POSITIVE,
        "lr_discriminator": POSITIVE,
        "betas": DECAY,
    }

    def __post_init__(self):
        super().__post_init__()
        _check_choice(self, "loss", GAN_LOSS_NAMES)
        if self.code_encoder and not self.noise_dim:
            raise TrainConfigError("code_encoder needs noise_dim > 0 (the size of the code)")
        if self.latent_weight and not self.code_encoder:
            raise TrainConfigError("latent_weight > 0 needs code_encoder (it reads the codes back)")


@dataclass(frozen=True)
class FlowTrainConfig(StageConfig):
    """Recipe `flow` (beyond the paper): a flow-matching decoder on the frozen audio encoder.

    The decoder (s2ilib.models.flow) learns the velocity that carries Gaussian noise to the
    paired image along a straight line, given the sound's embedding; with probability
    `condition_dropout` the embedding is replaced by a learnt "no sound" vector, which
    classifier-free guidance needs at sampling time. Weights used for images: an
    exponential moving average of the trained ones (`ema_decay`).
    """

    ae_run: str = ""  # run directory of an autoencoder or alignment run (required)
    preset: str | None = None  # only for the image side (image_size None); None = the AE run's
    embedding_dim: int | None = None  # None = the AE run's; must match it when given
    num_epochs: int = 40
    lr_schedule: str = "cosine"
    warmup_steps: int = 100  # Adam's first steps with a large lr shake the untrained U-Net
    lr: float = 1e-3  # AdamW learning rate
    betas: tuple[float, float] = (0.9, 0.999)  # AdamW betas
    ema_decay: float = 0.999  # the sampling weights' moving average (warmed up: (1+n)/(10+n))
    condition_dropout: float = 0.15  # share of training pairs shown the "no sound" vector
    standardise_embedding: bool = _NETWORK.standardise_embedding  # as GANTrainConfig's
    # The network (s2ilib.models.FlowConfig, whose defaults these read and where each is
    # documented): image side (None: the preset generator's), channels modelled ("auto": 1
    # when the data set's images are grey, else 3), patch folding, U-Net widths, width of
    # the condition vector.
    image_size: int | None = None
    image_channels: str = "auto"
    patch: int = _FLOW.patch
    channels: tuple[int, ...] = _FLOW.channels
    condition_dim: int = _FLOW.condition_dim
    # Sampling, stored in the network's config (FlowConfig; change later with
    # s2ilib.models.flow.set_sampling). Two differ from the network's neutral defaults (no
    # guidance, no recall): recall and redraw from t = 0.3 (a recalled training image mixed
    # 3:7 with the noise) and guidance x2 from there on, chosen on AV-Digits' validation
    # split (RESULTS.md, "Recall and redraw"). From pure noise (recall_from 0) the best
    # setting was x5 for 0.1 <= t < 0.5 ("Guidance in an interval").
    sample_steps: int = _FLOW.sample_steps
    solver: str = _FLOW.solver
    guidance: float = 2.0
    guidance_from: float = _FLOW.guidance_from
    guidance_until: float = _FLOW.guidance_until
    recall_from: float = 0.3
    # Recall the class the k nearest training sounds vote for; the nearest sound alone (1):
    # validation did not favour a vote (RESULTS.md, "What the embedding knows").
    recall_neighbours: int = _FLOW.recall_neighbours
    # The weight of the frozen front's features beside the embedding in the recall; None:
    # chosen on the validation split when the recall memory is built
    # (train.flow.choose_front_weight), 0 for an encoder without a frozen front.
    recall_front_weight: float | None = _FLOW.recall_front_weight

    # The network's own fields are checked again by models.FlowConfig (the same Bounds).
    NUMBERS: ClassVar[dict[str, Bounds]] = {
        "lr": POSITIVE,
        "betas": DECAY,
        "ema_decay": DECAY,
        "condition_dropout": DROPOUT,  # 1: the decoder would never see a sound
        "image_size": COUNT,
        "patch": COUNT,
        "channels": COUNT,
        "condition_dim": COUNT,
        "sample_steps": SAMPLE_STEPS,
        "guidance": GUIDANCE,
        "guidance_from": TIME,
        "guidance_until": TIME,
        "recall_from": Bounds(0.0, 1.0, high_open=True),
        "recall_neighbours": COUNT,
        "recall_front_weight": Bounds(0.0, 1.0),
    }

    def __post_init__(self):
        super().__post_init__()
        _check_choice(self, "image_channels", ("auto", "1", "3"))
        if self.guidance != 1.0 and self.condition_dropout == 0.0:
            raise TrainConfigError(
                f"guidance {self.guidance} needs condition_dropout > 0 (the unconditional "
                "velocity is learnt from the pairs shown no sound)"
            )


AUGMENT_FIELDS = (
    "max_shift_frames",
    "max_gain_db",
    "max_masked_bands",
    "max_masked_frames",
    "max_frequency_warp",
    "max_time_warp",
    "reverb_probability",
    "noise_probability",
    "clip_probability",
    "band_limit_probability",
)


@dataclass(frozen=True)
class AugmentedStageConfig(StageConfig):
    """A stage that trains on augmented sounds (s2ilib.train.augment); 0 turns one off.

    Masks are off by default: on AV-Digits they lowered the unseen-voice probe against
    warps, shift and gain alone (benchmarks/RESULTS.md, "Beyond the paper").
    """

    max_shift_frames: int = 10  # time shift of up to this many 10-ms frames either way
    max_gain_db: float = 6.0  # level change of up to this many dB
    max_masked_bands: int = 0  # one masked band of up to this many mel bins (SpecAugment: 16)
    max_masked_frames: int = 0  # one masked span of up to this many frames (SpecAugment: 10)
    max_frequency_warp: float = 0.15  # mel axis stretched/squeezed by up to 1 + this (VTLP)
    max_time_warp: float = 0.15  # time axis stretched/squeezed by up to 1 + this
    # A simulated recording chain (s2ilib.train.augment): the share of training sounds
    # that get a room's reverberation, background noise, a saturating input stage, a
    # telephone/laptop band limit (0 = off).
    reverb_probability: float = 0.0
    noise_probability: float = 0.0
    clip_probability: float = 0.0
    band_limit_probability: float = 0.0

    NUMBERS: ClassVar[dict[str, Bounds]] = {
        "max_shift_frames": NON_NEGATIVE_COUNT,
        "max_gain_db": NON_NEGATIVE,
        "max_masked_bands": NON_NEGATIVE_COUNT,
        "max_masked_frames": NON_NEGATIVE_COUNT,
        "max_frequency_warp": NON_NEGATIVE,
        "max_time_warp": NON_NEGATIVE,
        "reverb_probability": SHARE,
        "noise_probability": SHARE,
        "clip_probability": SHARE,
        "band_limit_probability": SHARE,
    }


ALIGN_MODES = ("finetune", "head")
ALIGN_POSITIVES = ("pair", "pairing")


@dataclass(frozen=True)
class AlignTrainConfig(AugmentedStageConfig):
    """Audio-visual alignment (between stage 1 and 2): a contrastive (CLIP-style) objective
    between audio embeddings and image embeddings of the training pairs.

    Only the pairing is used, as for the GAN: a sound and the image it is paired with are
    a positive, every other image of the batch a negative. The audio side is the AE run's
    encoder plus an alignment head (models.AlignmentHead); the image side a small CNN
    (models.ImageEncoder) trained from scratch alongside.
    """

    ae_run: str = ""  # run directory of a finished `s2i train-ae` (required)
    preset: str | None = None  # None = the AE run's preset (sets the image size)
    embedding_dim: int | None = None  # None = the AE run's; must match it when given
    # "finetune": the encoder's conv layers learn too (at encoder_lr); "head": the encoder
    # stays frozen (eval mode) and only the head and the image tower learn.
    mode: str = "finetune"
    # Which images of a batch count as a sound's positives. "pair": only the image it was
    # drawn with (CLIP); every other image is a negative, even one the data set would pair
    # with the sound as well. "pairing": every image of the batch the data set pairs it with
    # (class pairing, AV-Digits: every image of its class; record pairing, VEGAS: its own
    # frame only, the same as "pair").
    positives: str = "pair"
    lr: float = 1e-3  # Adam learning rate of the head and the image tower
    encoder_lr: float = 1e-3  # Adam learning rate of the encoder's conv layers (finetune)
    betas: tuple[float, float] = (0.9, 0.999)  # Adam betas
    temperature: float = 0.07  # initial softmax temperature of the similarity logits (CLIP's)
    learn_temperature: bool = True  # learn log(1/temperature) too, clamped to 1/T <= 100
    image_channels: tuple[int, ...] = (32, 64, 128)  # widths of the image tower's convs
    batch_size: int = 128  # more negatives per batch than the AE's 64
    num_epochs: int = 60
    lr_schedule: str = "cosine"  # to 0 over the run (untested against constant at 60 epochs)
    normalise_bands: bool = False  # the encoder subtracts each band's clip mean (models.config)

    NUMBERS: ClassVar[dict[str, Bounds]] = {
        "lr": POSITIVE,
        "encoder_lr": POSITIVE,
        "betas": DECAY,
        "temperature": POSITIVE,
        "image_channels": COUNT,
    }

    def __post_init__(self):
        super().__post_init__()
        _check_choice(self, "mode", ALIGN_MODES)
        _check_choice(self, "positives", ALIGN_POSITIVES)


@dataclass(frozen=True)
class CeilingTrainConfig(AugmentedStageConfig):
    """The supervised ceiling (beyond the paper): how well a data set's test sounds can be
    recognised at all. A copy of an earlier run's audio encoder plus a linear layer is
    trained as a classifier WITH the labels the translator never sees (cross-entropy, the
    alignment stage's augmentation), then scored on `split`; it bounds what any recipe can
    reach on those sounds (s2ilib.train.ceiling)."""

    ae_run: str = ""  # an AE or align run whose encoder is the starting point (required)
    preset: str | None = None  # None = the earlier run's
    embedding_dim: int | None = None  # None = the earlier run's
    split: str = "test"  # the split scored
    lr: float = 1e-3  # Adam learning rate
    betas: tuple[float, float] = (0.9, 0.999)  # Adam betas
    batch_size: int = 128
    num_epochs: int = 60
    lr_schedule: str = "cosine"

    NUMBERS: ClassVar[dict[str, Bounds]] = {"lr": POSITIVE, "betas": DECAY}


@dataclass(frozen=True)
class InformativityTrainConfig(LoopConfig):
    """The informativity classifiers (s2ilib.train.informativity): one binary CNN per class
    and one K-way CNN, trained on the data set's REAL images; see that module."""

    image_size: int = 32  # side of the images the classifiers see (= the generator's)
    num_epochs: int = 20  # at most this many epochs (early stopping: `patience`)
    batch_size: int = 32  # images per binary classifier per step (half positives)
    kway_batch_size: int = 64  # images per step of the K-way classifier
    lr: float = 2e-3  # Adam learning rate of every classifier
    betas: tuple[float, float] = (0.9, 0.999)  # Adam betas
    degraded_fraction: float = 0.5  # share of each batch's negatives that are degraded images
    patience: int = 4  # stop after this many epochs without any val improvement
    eval_batch_size: int = 512  # images per forward pass when scoring val/test
    checkpoint_every: int = 10**6  # checkpoints at every epoch's end (model selection) suffice
    sample_every: int = 10**6  # no sample grids: images are not generated here

    NUMBERS: ClassVar[dict[str, Bounds]] = {
        "image_size": COUNT,
        "batch_size": Bounds(4, integer=True, why="half positives, BatchNorm needs 2"),
        "kway_batch_size": BATCH,
        "lr": POSITIVE,
        "betas": DECAY,
        "degraded_fraction": SHARE,
        "patience": COUNT,
        "eval_batch_size": COUNT,
    }


def _check_choice(config, name: str, choices: tuple) -> None:
    value = getattr(config, name)
    if value not in choices:
        raise TrainConfigError(
            f"{type(config).__name__}.{name} = {value!r}: expected one of {', '.join(choices)}"
        )


def _check_numbers(config) -> None:
    """TrainConfigError for the first number that the NUMBERS of `config`'s class and of
    its parents refuse (NaN and infinities included)."""
    rules = {}
    for cls in reversed(type(config).__mro__):
        rules |= cls.__dict__.get("NUMBERS", {})
    problem = number_problem(config, rules, prefix=f"{type(config).__name__}.")
    if problem is not None:
        raise TrainConfigError(problem)


def _checked(cls, values: dict) -> dict:
    """`values` with every key a field of `cls` and every value converted to its type."""
    if not isinstance(values, dict):
        raise TrainConfigError(f"{cls.__name__}: expected a dict of settings, got {values!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    out = {}
    for key, value in values.items():
        if key not in known:
            raise TrainConfigError(
                f"{cls.__name__}: unknown key {key!r} (known keys: {', '.join(sorted(known))})"
            )
        out[key] = _convert(value, hints[key], f"{cls.__name__}.{key}")
    return out


def _convert(value, hint, where: str):
    """`value` as type `hint` (int -> float, list -> tuple allowed), or TrainConfigError."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is not type(None):
                try:
                    return _convert(value, arg, where)
                except TrainConfigError:
                    pass
        raise TrainConfigError(f"{where} = {value!r}: expected {_type_name(hint)}")
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise TrainConfigError(f"{where} = {value!r}: expected {_type_name(hint)}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(v, args[0], where) for v in value)
        if len(value) != len(args):
            raise TrainConfigError(f"{where} = {value!r}: expected {len(args)} values")
        return tuple(_convert(v, a, where) for v, a in zip(value, args, strict=True))
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, hint) and not (hint is int and isinstance(value, bool)):
        return value
    raise TrainConfigError(f"{where} = {value!r}: expected {_type_name(hint)}")


def _type_name(hint) -> str:
    return str(hint).replace("typing.", "").replace("<class '", "").replace("'>", "")


def parse_assignments(assignments: list[str]) -> dict:
    """`--set key=value` strings -> dict; values are JSON when they parse (1e-3, [0.5, 0.9],
    null, true), else Python literals ('text', True, None), else plain strings."""
    values = {}
    for assignment in assignments:
        key, sep, text = assignment.partition("=")
        if not sep or not key.strip():
            raise TrainConfigError(f"--set {assignment!r}: expected key=value")
        values[key.strip()] = _parse_value(text)
    return values


def _parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text  # a bare word is a string


def load_config_file(path) -> dict:
    """The settings dict of a JSON config file (a run's config.json: its "train" section)."""
    path = Path(path)
    try:
        values = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise TrainConfigError(f"{path}: cannot read a JSON config ({error})") from error
    if isinstance(values, dict) and "train" in values and "kind" in values:
        return values["train"]
    return values
