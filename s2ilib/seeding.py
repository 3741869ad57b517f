"""Random streams: seeding, saving and restoring every generator, and derived generators.

Training is reproducible because every random draw comes from a stream that is either
seeded from the config's seed (weights, dropout masks, augmentation: the global torch,
numpy and Python generators, saved in every checkpoint) or derived from (seed, epoch) alone
(the data order of each epoch), so that a resumed run replays what an uninterrupted one did.
"""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA), numpy and Python's random."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def rng_state() -> dict:
    """Current state of every random generator the training draws from."""
    state = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore the generators saved by `rng_state` (CUDA only when saved and present)."""
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def derived_seed(*keys: int) -> int:
    """A 32-bit seed drawn from the integers `keys` alone (numpy's SeedSequence)."""
    return int(np.random.SeedSequence(list(keys)).generate_state(1)[0])


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """A torch generator seeded by (seed, epoch) alone."""
    return torch.Generator().manual_seed(derived_seed(seed, epoch))


def rng_devices(device: torch.device) -> list:
    """Devices whose RNG torch.random.fork_rng must save (none besides the CPU on CPU)."""
    return [device] if torch.device(device).type == "cuda" else []
