"""Stage 1: train the audio autoencoder on spectrograms alone (`s2i train-ae`)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch
from torchvision.utils import make_grid, save_image

from s2ilib import distributed
from s2ilib.errors import S2IError
from s2ilib.train import fastpath
from s2ilib.train.config import AETrainConfig, default_data_dir
from s2ilib.train.loop import (
    rng_devices,
    spread_over_classes,
    start_run,
    validation_split,
)
from s2ilib.train.losses import reconstruction_loss
from s2ilib.train.rundir import build_models
from s2ilib.train.steps import ae_step


def make_optimizer(
    parameters, config, fast=fastpath.REFERENCE, device="cpu"
) -> torch.optim.Optimizer:
    """SGD with momentum (the authors') or Adam (fused on the fast path), as the config says."""
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            parameters, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
        )
    return fastpath.make_adam(
        parameters, fast, device, lr=config.lr, betas=config.betas, weight_decay=config.weight_decay
    )


def sampling_mode(module, test_time_dropout: bool):
    """Eval mode, with dropout left on when `test_time_dropout` (the paper's practice)."""
    from s2ilib.models import enable_test_time_dropout

    return enable_test_time_dropout(module) if test_time_dropout else module.eval()


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
    grid = make_grid(shown.float().cpu() * 0.5 + 0.5, nrow=columns, padding=2, pad_value=1.0)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(grid, path)
    return grid


def fixed_validation_sounds(data, config, device) -> torch.Tensor:
    """`val_samples` validation spectrograms (1, 128, 100), spread over the classes."""
    from s2ilib.datasets.torch_data import SpectrogramDataset

    sounds = SpectrogramDataset(
        data.split(validation_split(data)), config.classes, seed=config.seed
    )
    positions = spread_over_classes(sounds.labels.numpy(), config.val_samples, config.seed)
    return sounds.__getitems__(positions)[0].to(device)


def fixed_validation_pairs(data, config, image_size: int, device) -> tuple:
    """`val_samples` validation (spectrogram, image, label) pairs spread over the classes,
    with the class pairing of epoch 0, on `device`."""
    from s2ilib.datasets.torch_data import PairedDataset

    pairs = PairedDataset(
        data, validation_split(data), image_size, config.classes, seed=config.seed
    )
    positions = spread_over_classes(pairs.sounds.labels.numpy(), config.val_samples, config.seed)
    return tuple(part.to(device) for part in pairs.__getitems__(positions))


class AETask:
    """The autoencoder, its optimiser and data, as the shared loop drives them."""

    kind = "ae"
    config_class = AETrainConfig
    torchrun_ready = True  # trains under torchrun: networks wrapped by distributed.wrap

    def __init__(self, config: AETrainConfig, document: dict, data, device):
        from s2ilib.datasets.torch_data import SpectrogramDataset
        from s2ilib.models import init_weights

        self.config, self.device = config, device
        self.autoencoder = build_models(document["models"], ["autoencoder"])["autoencoder"]
        if config.init == "dcgan":
            self.autoencoder.apply(init_weights)
        self.autoencoder.to(device).train()
        self.fast = fastpath.resolve_fast_path(config, device)
        self.optimizer = make_optimizer(self.autoencoder.parameters(), config, self.fast, device)
        self.optimizers = {"autoencoder": (self.optimizer, config.lr)}
        self.train_set = SpectrogramDataset(
            data.split("train"), config.classes, config.limit_per_class, config.seed
        )
        self.step_networks, self.autocast = fastpath.prepare_task(
            self.fast, {"autoencoder": self.autoencoder}, self.train_set, device
        )
        self.step_networks = distributed.wrap_networks(  # DDP under torchrun
            self.step_networks, ["autoencoder"], device, config.sync_batchnorm
        )
        self.val_sounds = fixed_validation_sounds(data, config, device)

    def initialize(self) -> None:
        """A new run: the seeded initialisation is all there is to do."""

    def train_step(self, batch) -> dict:
        spectrograms = fastpath.to_memory_format(
            batch[0].to(self.device, non_blocking=True), self.fast
        )
        return ae_step(
            self.step_networks["autoencoder"],
            self.optimizer,
            spectrograms,
            self.config.grad_clip,
            self.autocast,
        )

    @torch.no_grad()
    def evaluate(self, step: int, samples_path: Path):
        """Validation MSE and a grid of inputs (top row) over reconstructions (bottom row)."""
        config = self.config
        with repeatable_sampling(
            self.autoencoder, config.seed, config.test_time_dropout, self.device
        ):
            chunks = self.val_sounds.split(config.batch_size)
            reconstruction = torch.cat([self.autoencoder(chunk)[0] for chunk in chunks])
        val_loss = reconstruction_loss(reconstruction, self.val_sounds).item()
        count = min(config.num_samples, len(self.val_sounds))
        shown = torch.cat([self.val_sounds[:count], reconstruction[:count]])
        return {"val_loss": val_loss}, save_sample_grid(shown, count, samples_path)

    def state_dict(self) -> dict:
        return {
            "kind": self.kind,
            "models": {"autoencoder": self.autoencoder.state_dict()},
            "optimizers": {"autoencoder": self.optimizer.state_dict()},
            "loss_state": {},
        }

    def load_state_dict(self, state: dict) -> None:
        self.autoencoder.load_state_dict(state["models"]["autoencoder"])
        self.optimizer.load_state_dict(state["optimizers"]["autoencoder"])


def resolve_data(path) -> str:
    """Absolute data path ('' = the AV-Digits folder), with a clear error if it is missing."""
    resolved = Path(path or default_data_dir()).expanduser().resolve()
    if not resolved.exists():
        raise S2IError(f"{resolved}: no such data set folder (give --data)")
    return str(resolved)


def train_autoencoder(
    config: AETrainConfig,
    runs_root="runs",
    desc: str | None = None,
    run_dir=None,
    device=None,
    progress_bar: bool = True,
) -> Path:
    """Train stage 1 in a new run directory; returns its path."""
    from s2ilib.models import preset

    config = config.updated({"data": resolve_data(config.data)})
    presets = preset(config.preset, config.embedding_dim)
    run_config = {"data": config.data, "models": {"autoencoder": presets.as_dict()["autoencoder"]}}
    desc = desc or f"{Path(config.data).name}-{config.preset}-d{config.embedding_dim}"
    return start_run(AETask, config, run_config, runs_root, desc, run_dir, device, progress_bar)
