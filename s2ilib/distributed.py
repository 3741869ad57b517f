"""Multi-process training under torchrun: one process per device, DistributedDataParallel.

`torchrun --nproc_per_node=N -m s2ilib train-ae ...` starts N copies of the command with
RANK, WORLD_SIZE and LOCAL_RANK in their environment. `session` joins them into a process
group (NCCL when the device is CUDA, each process on cuda:LOCAL_RANK; gloo on the CPU).
The rules the training follows under it:

- `batch_size` is the global batch: every rank builds the same index arrays (same seed,
  same epoch order as one process) and keeps its contiguous 1/W slice (`rank_slice`).
- Gradients are averaged by DDP; the learning rate is the config's (the global batch did
  not change, so nothing is rescaled). Logged losses are means over the ranks, reduced
  only at log time (`all_reduce_mean`).
- Rank 0 alone writes the run directory; the others learn its path by broadcast
  (`share_from_main`) and wait at a barrier after each checkpoint.
- BatchNorm normalises over each rank's slice unless `sync_batchnorm` (CUDA only).
- Rank 0 keeps the random stream of a single process; rank r > 0 draws its dropout masks
  from a stream seeded by (seed, r) (`seed_rank`), so the shards do not share masks.
- A loss over the whole global batch (the alignment's contrastive loss) gathers every
  rank's embeddings with `all_gather_with_grad`.

Without torchrun (no WORLD_SIZE, or WORLD_SIZE=1) every helper here is a no-op, and a run
is exactly what it was before this module existed.
"""

from __future__ import annotations

import contextlib
import os

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from s2ilib.devices import resolve_device
from s2ilib.errors import S2IError
from s2ilib.seeding import derived_seed, seed_everything


def launched_by_torchrun() -> bool:
    """True when the environment asks for more than one process (torchrun's WORLD_SIZE)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def launch_rank() -> int:
    """This process's rank as torchrun set it (0 without torchrun); valid before and after
    the process group exists."""
    return int(os.environ.get("RANK", "0")) if launched_by_torchrun() else 0


def is_distributed() -> bool:
    """True inside a process group of more than one rank."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    """Number of ranks (1 without a process group)."""
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    """This process's rank (0 without a process group)."""
    return dist.get_rank() if is_distributed() else 0


def is_main() -> bool:
    """True on rank 0, the only rank that writes files."""
    return rank() == 0


def rank_device(name=None) -> torch.device:
    """The device of this rank: cuda:LOCAL_RANK when `name` resolves to CUDA, else the CPU."""
    device = resolve_device(name)
    if device.type == "cpu":
        return device
    if device.type != "cuda":
        raise S2IError(f"--device {name!r}: torchrun training runs on cuda (NCCL) or cpu (gloo)")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.index not in (None, local_rank):
        raise S2IError(
            f"--device {name!r}: under torchrun each process uses cuda:LOCAL_RANK "
            f"(here cuda:{local_rank}); pass --device cuda or auto"
        )
    if local_rank >= torch.cuda.device_count():
        raise S2IError(
            f"LOCAL_RANK {local_rank} but {torch.cuda.device_count()} CUDA device(s): "
            "--nproc_per_node must not exceed the GPUs of a node"
        )
    return torch.device("cuda", local_rank)


@contextlib.contextmanager
def session(device=None):
    """Yield this process's device; inside torchrun, within a process group made for it.

    A process group that already exists (made by the caller) is used and left alone; one
    made here (from torchrun's RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT) is destroyed
    on the way out.
    """
    if dist.is_available() and dist.is_initialized():
        yield rank_device(device) if is_distributed() else resolve_device(device)
        return
    if not launched_by_torchrun():
        yield resolve_device(device)
        return
    device = rank_device(device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
        dist.init_process_group("nccl", device_id=device)
    else:
        dist.init_process_group("gloo")
    try:
        yield device
    finally:
        dist.destroy_process_group()


def backend() -> str | None:
    """'nccl' or 'gloo' inside a process group, else None."""
    return dist.get_backend() if is_distributed() else None


def per_rank_batch(batch_size: int) -> int:
    """Each rank's share of the global batch; S2IError unless it splits evenly into shares
    of at least 2 (BatchNorm needs two samples)."""
    ranks = world_size()
    if batch_size % ranks:
        raise S2IError(
            f"batch_size {batch_size} is not a multiple of the world size {ranks}: "
            "each rank takes an equal slice of the global batch"
        )
    if batch_size // ranks < 2:
        raise S2IError(
            f"batch_size {batch_size} over {ranks} ranks leaves {batch_size // ranks} per "
            "rank: BatchNorm needs at least 2"
        )
    return batch_size // ranks


def check_settings(batch_size: int, sync_batchnorm: bool, device: torch.device) -> None:
    """S2IError for settings this world cannot train with, before any file is written."""
    per_rank_batch(batch_size)
    if sync_batchnorm and is_distributed() and device.type != "cuda":
        raise S2IError(_SYNC_BATCHNORM_ON_CPU)


_SYNC_BATCHNORM_ON_CPU = (
    "sync_batchnorm needs CUDA (NCCL): SyncBatchNorm does not run on the CPU; set "
    "sync_batchnorm false (each rank then normalises over its own slice of the batch)"
)


def rank_slice(batch_indices: np.ndarray) -> np.ndarray:
    """This rank's contiguous 1/W slice of a global batch's index array."""
    share = len(batch_indices) // world_size()
    return batch_indices[rank() * share : (rank() + 1) * share]


def all_reduce_mean(values: torch.Tensor) -> torch.Tensor:
    """The mean of `values` over the ranks (a new tensor; `values` itself without a group)."""
    if not is_distributed():
        return values
    total = values.detach().clone()
    dist.all_reduce(total)
    return total / world_size()


def barrier() -> None:
    """Wait for every rank (nothing to wait for alone)."""
    if not is_distributed():
        return
    if backend() == "nccl":
        dist.barrier(device_ids=[torch.cuda.current_device()])
    else:
        dist.barrier()


def share_from_main(make):
    """`make()` on rank 0, its result broadcast to every rank.

    An S2IError raised by `make` on rank 0 is raised on every rank, so the others stop with
    the same message instead of waiting for a result that will never come.
    """
    if not is_distributed():
        return make()
    message = [None, None]  # (result, error text)
    if is_main():
        try:
            message[0] = make()
        except S2IError as error:
            message[1] = str(error)
    dist.broadcast_object_list(message, src=0)
    if message[1] is not None:
        raise S2IError(message[1])
    return message[0]


def gather_to_main(value) -> list | None:
    """Every rank's `value`, in rank order, on rank 0 (None on the others)."""
    if not is_distributed():
        return [value]
    gathered = [None] * world_size() if is_main() else None
    dist.gather_object(value, gathered, dst=0)
    return gathered


def rank_seed(seed: int, rank_index: int, step: int = 0) -> int:
    """The seed of rank `rank_index`'s random stream (from `step` on, when resumed on a
    different world size)."""
    return derived_seed(seed, rank_index, step)


def seed_rank(seed: int, step: int = 0) -> None:
    """Ranks > 0: reseed torch, numpy and Python from (seed, rank, step); rank 0 keeps the
    stream of a single process."""
    if rank() > 0:
        seed_everything(rank_seed(seed, rank(), step))


def all_gather_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """Every rank's `tensor` concatenated in rank order (dim 0), differentiable: the backward
    sends each rank the sum of the gradients all ranks computed for its slice. Alone: itself.

    A loss that needs the whole global batch (the contrastive loss's negatives) is then the
    same on every rank; DDP's average of the gradients gives the one-process gradient.
    """
    if not is_distributed():
        return tensor
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(tensor.contiguous()))


class FreezableDDP(DistributedDataParallel):
    """DistributedDataParallel that calls the bare module while its parameters are frozen.

    The GAN's generator step scores fakes through the discriminator with requires_grad off:
    no gradient of D is produced, so there is nothing to reduce. The bare call keeps DDP's
    reducer out of a backward that fires none of its hooks (torch 2.11 tolerates that, but
    DDP's contract is one reduction per grad-mode forward) and skips the buffer broadcast
    DDP would do first; the BatchNorm outputs are the same (training mode uses batch
    statistics, not the buffers).
    """

    def forward(self, *inputs, **kwargs):
        if not any(p.requires_grad for p in self.module.parameters()):
            return self.module(*inputs, **kwargs)
        return super().forward(*inputs, **kwargs)


def wrap(module: torch.nn.Module, device: torch.device, sync_batchnorm: bool = False):
    """`module` for training steps: DDP-wrapped inside a process group, else itself.

    The bare module stays the one to save, load and evaluate (rank 0 evaluates alone, and
    a DDP forward would wait for the other ranks). With `sync_batchnorm` its BatchNorm
    layers become SyncBatchNorm (same parameters and buffers, so checkpoints are alike).
    """
    if not is_distributed():
        return module
    if sync_batchnorm:
        if device.type != "cuda":
            raise S2IError(_SYNC_BATCHNORM_ON_CPU)
        torch.nn.SyncBatchNorm.convert_sync_batchnorm(module)
    return data_parallel(module, [device.index] if device.type == "cuda" else None)


def data_parallel(module: torch.nn.Module, device_ids=None) -> FreezableDDP:
    """`module` in a FreezableDDP of the current process group. Non-persistent buffers (a
    frozen pretrained front's weights, loaded alike on every rank) are left out of DDP's
    broadcast: it would otherwise send Whisper's 20M numbers before every forward."""
    DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(
        module, non_persistent_buffers(module)
    )
    return FreezableDDP(module, device_ids=device_ids)


def non_persistent_buffers(module: torch.nn.Module) -> list[str]:
    """Qualified names of `module`'s buffers that are not saved (register_buffer(...,
    persistent=False)): what every rank builds itself, never trained or synchronised."""
    return [
        f"{prefix}.{name}" if prefix else name
        for prefix, child in module.named_modules()
        for name in sorted(child._non_persistent_buffers_set)
    ]


def bare(module: torch.nn.Module) -> torch.nn.Module:
    """The module inside a DDP wrapper (itself when not wrapped). A second forward in the
    same step goes through it: a second DDP forward would broadcast the BatchNorm buffers
    again, in place, under the graph of the first (autograd refuses that); the parameters
    are shared, so their gradients still meet DDP's reduction hooks once, summed."""
    return module.module if isinstance(module, DistributedDataParallel) else module


def wrap_networks(
    networks: dict, names, device: torch.device, sync_batchnorm: bool = False
) -> dict:
    """`networks` with the trainable ones among them (`names`) wrapped by `wrap`; a frozen
    one (the GAN's encoder) stays bare: DDP refuses modules without trainable parameters."""
    return {
        name: wrap(network, device, sync_batchnorm) if name in names else network
        for name, network in networks.items()
    }


def describe(batch_size: int) -> dict:
    """World size, backend and batch shares, for environment.json."""
    return {
        "world_size": world_size(),
        "backend": backend(),
        "per_rank_batch": per_rank_batch(batch_size),
        "global_batch": batch_size,
    }
