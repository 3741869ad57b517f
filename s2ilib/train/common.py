"""Helpers the training tasks share: where the data and earlier runs are, the fixed
validation sounds every sample grid shows, repeatable sampling, and sample-grid files."""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import torch

from s2ilib.errors import S2IError
from s2ilib.models.config import FROZEN_FRONTS
from s2ilib.runs.checkpoint import latest_checkpoint
from s2ilib.runs.rundir import read_config
from s2ilib.seeding import rng_devices
from s2ilib.train.config import AUGMENT_FIELDS, default_data_dir
from s2ilib.translate import sampling_mode


def resolve_data(path) -> str:
    """Absolute data path ('' = the AV-Digits folder), with a clear error if it is missing."""
    resolved = Path(path or default_data_dir()).expanduser().resolve()
    if not resolved.exists():
        raise S2IError(f"{resolved}: no such data set folder (give --data)")
    return str(resolved)


def resolve_earlier_run(config, kinds: tuple[str, ...]) -> tuple:
    """A later stage's config resolved from the run it builds on (`config.ae_run`): that
    run's path, preset and embedding width, and the data path ("" = AV-Digits). Returns (config, the run's autoencoder config dict, its checkpoint)."""
    if not config.ae_run:
        raise S2IError("no autoencoder run given (--ae-run RUN_DIR of a finished train-ae)")
    run_dir = Path(config.ae_run).expanduser().resolve()
    document = read_config(run_dir)
    if document.get("kind") not in kinds:
        raise S2IError(f"{run_dir}: a {document.get('kind')!r} run (expected {' or '.join(kinds)})")
    checkpoint = latest_checkpoint(run_dir)
    if checkpoint is None:
        raise S2IError(f"{run_dir}: the run has no checkpoint yet")
    ae_models = document["models"]["autoencoder"]
    embedding_dim = int(ae_models["embedding_dim"])
    if config.embedding_dim not in (None, embedding_dim):
        raise S2IError(
            f"embedding_dim {config.embedding_dim} differs from the AE run's {embedding_dim} "
            f"({run_dir})"
        )
    config = config.updated(
        {
            "ae_run": str(run_dir),
            "preset": config.preset or document["train"]["preset"],
            "embedding_dim": embedding_dim,
            "data": resolve_data(config.data),
        }
    )
    return config, ae_models, checkpoint


def frozen_encoder_run_config(config, ae_models: dict, ae_checkpoint, networks: dict) -> dict:
    """What config.json holds besides the training config for a stage on an earlier run's
    frozen encoder (GAN, flow): data, the earlier run and checkpoint, and the networks'
    configs (the autoencoder's, with the stage's standardisation, then `networks`)."""
    autoencoder = ae_models | {"standardise_embedding": config.standardise_embedding}
    return {
        "data": config.data,
        "ae_run": config.ae_run,
        "ae_checkpoint": str(ae_checkpoint),
        "models": {"autoencoder": autoencoder, **networks},
    }


def load_autoencoder_weights(autoencoder, checkpoint, allowed_missing, device) -> None:
    """An earlier run's autoencoder weights into `autoencoder` (strict but for the keys
    `allowed_missing(key)` accepts: parts the later stage adds, such as the alignment head)."""
    from s2ilib.runs.checkpoint import load_checkpoint

    state = load_checkpoint(checkpoint, map_location=device)
    missing, unexpected = autoencoder.load_state_dict(state["models"]["autoencoder"], strict=False)
    if unexpected or any(not allowed_missing(key) for key in missing):
        raise S2IError(
            f"{checkpoint}: autoencoder weights do not fit "
            f"(missing {missing}, unexpected {unexpected})"
        )


@torch.no_grad()
def sound_features(sounds, compute, batch_size: int, device, positions=None) -> torch.Tensor:
    """(N, ...) `compute`d from each batch of a SpectrogramDataset's spectrograms (all, in
    its order, or those at `positions`): a frozen encoder's embeddings, a frozen front's
    features."""
    positions = np.arange(len(sounds)) if positions is None else np.asarray(positions, np.int64)
    batches = (
        sounds.__getitems__(positions[start : start + batch_size])[0]
        for start in range(0, len(positions), batch_size)
    )
    return torch.cat([compute(batch.to(device)) for batch in batches])


FRONT_BATCH = 256  # sounds per forward pass when the frozen speech front's features are computed


def frozen_front_features(encoder, sounds, device, positions=None, batch_size: int = FRONT_BATCH):
    """The frozen front's pooled features (N, F) of a SpectrogramDataset's sounds (all, or
    those at `positions`), from their spectrograms or their audio as the encoder reads them
    (a speech- or whisper-front encoder: they never change, so a stage computes them once),
    or None (the conv input network)."""
    if encoder.front is None:
        return None
    if encoder.front_input == "audio":  # by the clips' names from the cache, else decoded
        from s2ilib.translate import clip_features

        positions = np.arange(len(sounds)) if positions is None else positions
        return clip_features(encoder, sounds.clips(positions), batch_size).to(device)
    return sound_features(sounds, encoder.front_features, batch_size, device, positions)


def encoder_inputs(encoder, sounds, positions, device) -> torch.Tensor:
    """What the encoder reads of the sounds at `positions` of a SpectrogramDataset: the
    frozen front's features (from the audio or the spectrograms), else the spectrograms."""
    features = frozen_front_features(encoder, sounds, device, positions)
    if features is not None:
        return features
    return sounds.__getitems__(np.asarray(positions, np.int64))[0].to(device)


def without_augmentation_for_frozen_front(config, ae_models: dict):
    """`config` with every augmentation off when the encoder reads through a frozen front (models
    config "front": "speech" or "whisper"): such a stage trains on the front's features of the sounds as
    they are, computed once (the speech front is slow on a CPU: computed in every step it would
    add many minutes to each stage; augmented copies computed once did not help people's
    voices: RESULTS.md, "A pretrained speech front")."""
    if ae_models.get("front", "conv") == "conv":
        return config
    return config.updated({name: 0 for name in AUGMENT_FIELDS})


def front_input_for(data_root, front: str, front_input: str = "auto") -> str:
    """What the encoder's input network `front` reads of the sounds of `data_root`
    (models.config.FRONT_INPUTS): `front_input` itself unless it is "auto"; then "audio"
    for a frozen front on a data set that ships its clips (AV-Digits: Whisper heard from the
    audio recognises far more than from the 8-bit images, RESULTS.md "Speech fronts by
    voice and by language"), else "spectrogram". "audio" where it cannot be is refused."""
    from s2ilib.datasets.avdigits import is_avdigits

    has_audio = is_avdigits(data_root)
    if front_input == "auto":
        return "audio" if front in FROZEN_FRONTS and has_audio else "spectrogram"
    if front_input == "audio" and not has_audio:
        raise S2IError(
            f"front_input 'audio': {data_root} ships no audio clips (an AV-Digits-layout "
            "folder does); use front_input 'spectrogram'"
        )
    return front_input


def validation_split(data) -> str:
    """'val' when the data set has it, else 'train' (samples then show training sounds)."""
    return "val" if "val" in data.sounds else "train"


def spread_over_classes(labels: np.ndarray, count: int, seed: int) -> np.ndarray:
    """`count` positions drawn at random but cycling through the classes (one of each class
    first, then a second of each, ...), so a small sample grid shows every class."""
    labels = np.asarray(labels)
    order = np.random.default_rng(seed).permutation(len(labels))
    shuffled = labels[order]
    rank = np.zeros(len(labels), np.int64)
    for label in np.unique(shuffled):
        members = shuffled == label
        rank[members] = np.arange(members.sum())
    return order[np.lexsort((shuffled, rank))][:count]


def fixed_validation_sounds(data, config, device) -> torch.Tensor:
    """`val_samples` validation spectrograms (1, 128, 100), spread over the classes."""
    sounds, positions = fixed_validation_set(data, config)
    return sounds.__getitems__(positions)[0].to(device)


def fixed_validation_inputs(encoder, data, config, device) -> torch.Tensor:
    """What `encoder` reads of the fixed validation sounds (`fixed_validation_sounds`, the
    same sounds in the same order): encoder_inputs."""
    return encoder_inputs(encoder, *fixed_validation_set(data, config), device)


def fixed_validation_set(data, config):
    """The validation SpectrogramDataset and the `val_samples` positions of it shown (the
    fixed validation sounds)."""
    from s2ilib.datasets.torch_data import SpectrogramDataset

    sounds = SpectrogramDataset(
        data.split(validation_split(data)), config.classes, seed=config.seed
    )
    return sounds, spread_over_classes(sounds.labels.numpy(), config.val_samples, config.seed)


def fixed_validation_pairs(data, config, image_size: int, device) -> tuple:
    """`val_samples` validation (spectrogram, image, label) pairs spread over the classes,
    with the class pairing of epoch 0, on `device`."""
    from s2ilib.datasets.torch_data import PairedDataset

    pairs = PairedDataset(
        data, validation_split(data), image_size, config.classes, seed=config.seed
    )
    positions = spread_over_classes(pairs.sounds.labels.numpy(), config.val_samples, config.seed)
    return tuple(part.to(device) for part in pairs.__getitems__(positions))


@contextlib.contextmanager
def repeatable_sampling(module, seed: int, test_time_dropout: bool, device):
    """Sampling mode with the same dropout masks at every evaluation; the caller's RNG
    streams are untouched (forked), and the module is back in training mode after."""
    with torch.random.fork_rng(devices=rng_devices(device)):
        torch.manual_seed(seed)
        sampling_mode(module, test_time_dropout)
        yield
    module.train()


def save_sample_grid(shown: torch.Tensor, columns: int, path: Path) -> torch.Tensor:
    """Images in [-1, 1] as one grid PNG of `columns` columns; returns the grid in [0, 1]."""
    # Imported here: torchvision's package import loads its models and torch._dynamo, about
    # a second of every `s2i` process's start that only a grid needs (benchmarks/startup.py).
    from torchvision.utils import make_grid, save_image

    grid = make_grid(shown.float().cpu() * 0.5 + 0.5, nrow=columns, padding=2, pad_value=1.0)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(grid, path)
    return grid
