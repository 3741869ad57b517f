"""The training fast path: bf16 autocast, channels_last, torch.compile, fused Adam and the
training set resident on the GPU; reference mode (`fast_path = "off"`) is what the authors ran.

`LoopConfig.fast_path` picks the mode: "auto" (the default) turns the fast path on for CUDA
and leaves the CPU in reference mode (fp32, eager), "on" forces it on any device, "off" is
reference mode (fp32, eager, fp32 contiguous tensors, the data set on the host).
`LoopConfig.fast_path_features` says which features "on" (or "auto" on CUDA) uses, so each
can be switched and tested alone, on the CPU too (bf16 autocast and channels_last work
there; torch.compile needs a C++ compiler; fused Adam runs on CPU since torch 2.4; the
resident data set only makes sense on an accelerator and is a no-op on the CPU).

Compiled networks are wrapped in `EagerFallback`: the first forward that fails to compile
logs one warning and the network runs eagerly from then on. The step functions take
`autocast_context(settings, device)` and keep every loss in fp32.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

import torch
from torch import nn

from s2ilib.train.config import FAST_PATH_FEATURES, TrainConfigError

LOGGER = logging.getLogger(__name__)
# The uint8 training set may take at most this share of free GPU memory.
RESIDENT_DATA_FRACTION = 0.5


@dataclass(frozen=True)
class FastPath:
    """Which fast-path features a run uses on its device (all False = reference mode)."""

    bf16: bool = False  # forwards under bf16 autocast (losses and optimiser state stay fp32)
    channels_last: bool = False  # networks and image batches in NHWC memory format
    compile: bool = False  # torch.compile each step network, eager fallback on failure
    fused_adam: bool = False  # Adam(fused=True): one kernel per parameter group
    resident_data: bool = False  # uint8 training set held on the GPU, scaled per batch there

    @property
    def enabled(self) -> list[str]:
        """Names of the features turned on."""
        return [name for name in FAST_PATH_FEATURES if getattr(self, name)]


REFERENCE = FastPath()


def resolve_fast_path(config, device) -> FastPath:
    """The features a LoopConfig's `fast_path` / `fast_path_features` give on `device`."""
    device = torch.device(device)
    mode, features = config.fast_path, set(config.fast_path_features)
    unknown = features - set(FAST_PATH_FEATURES)
    if mode not in ("auto", "on", "off") or unknown:
        raise TrainConfigError(
            f"fast_path {mode!r} with features {sorted(features)}: expected auto, on or off "
            f"and features among {', '.join(FAST_PATH_FEATURES)}"
        )
    if mode == "off" or (mode == "auto" and device.type != "cuda"):
        return REFERENCE
    # A resident set needs an accelerator, and DataLoader workers cannot share CUDA tensors.
    resident = "resident_data" in features and device.type == "cuda" and not config.num_workers
    return FastPath(
        bf16="bf16" in features,
        channels_last="channels_last" in features,
        compile="compile" in features,
        fused_adam="fused_adam" in features,
        resident_data=resident,
    )


def configure_backends(settings: FastPath, device) -> None:
    """Process-wide CUDA settings of the fast path: cuDNN autotuning and TF32 matmuls."""
    if settings.enabled and torch.device(device).type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def autocast_context(settings: FastPath, device):
    """A factory of forward contexts: bf16 autocast on the fast path, else a no-op."""
    device_type = torch.device(device).type
    if not settings.bf16:
        return contextlib.nullcontext
    return lambda: torch.autocast(device_type, dtype=torch.bfloat16)


def to_memory_format(batch: torch.Tensor, settings: FastPath) -> torch.Tensor:
    """A 4-D batch in channels_last when the fast path uses it, else unchanged."""
    if settings.channels_last and batch.dim() == 4:
        return batch.contiguous(memory_format=torch.channels_last)
    return batch


class EagerFallback(nn.Module):
    """A network whose forward runs compiled, falling back to eager for good (one warning)
    when compiling fails. Parameters, buffers and train/eval mode are the eager network's."""

    def __init__(self, network: nn.Module, name: str, compiled):
        super().__init__()
        self.network, self.name = network, name
        self.__dict__["compiled"] = compiled  # not a submodule: its parameters are network's
        self.failed: str | None = None

    def forward(self, *args, **kwargs):
        if self.failed is None:
            try:
                return self.compiled(*args, **kwargs)
            except Exception as error:  # any compiler failure means: run eagerly
                self.failed = _root_cause(error)
                LOGGER.warning(
                    "torch.compile of the %s failed, running it eagerly (%s)",
                    self.name,
                    self.failed,
                )
        return self.network(*args, **kwargs)


def _root_cause(error: BaseException) -> str:
    """The innermost cause of a (compiler) exception, as one short line."""
    # dynamo wraps a backend's error in BackendCompilerFailed(inner_exception=...)
    inner = error.__cause__ or getattr(error, "inner_exception", None)
    while inner is not None and inner is not error:
        error, inner = inner, inner.__cause__ or getattr(inner, "inner_exception", None)
    lines = str(error).strip().splitlines() or [""]
    return f"{type(error).__name__}: {lines[0][:200]}"


def compile_network(network: nn.Module, name: str, backend="inductor") -> EagerFallback:
    """`network` compiled with `backend` (a name or a dynamo backend callable), behind an
    eager fallback."""
    return EagerFallback(network, name, torch.compile(network, backend=backend, dynamic=False))


def prepare_networks(
    networks: dict[str, nn.Module], settings: FastPath, device, backend="inductor"
) -> dict[str, nn.Module]:
    """The networks as the step functions should call them: converted to channels_last in
    place, and compiled (behind EagerFallback) when the fast path says so.

    The originals keep their parameters (optimisers, checkpoints and sampling use them).
    """
    prepared = {}
    for name, network in networks.items():
        if settings.channels_last:
            network.to(memory_format=torch.channels_last)
        prepared[name] = compile_network(network, name, backend) if settings.compile else network
    return prepared


def optimizer_options(settings: FastPath, device) -> dict:
    """Extra keyword arguments of torch.optim.Adam: fused=True where the fast path uses it."""
    device_type = torch.device(device).type
    if settings.fused_adam and device_type in ("cuda", "cpu", "xpu", "mps"):
        return {"fused": True}
    return {}


def make_adam(parameters, settings: FastPath, device, **options) -> torch.optim.Adam:
    """Adam with the fast path's options (fused) added to `options` (lr, betas, ...)."""
    return torch.optim.Adam(parameters, **options, **optimizer_options(settings, device))


def fits_on_device(nbytes: int, device, fraction: float = RESIDENT_DATA_FRACTION) -> bool:
    """True when `nbytes` take at most `fraction` of the device's free memory (CUDA only)."""
    device = torch.device(device)
    if device.type != "cuda":
        return False
    free, _ = torch.cuda.mem_get_info(device)
    return nbytes <= fraction * free


def make_resident(dataset, settings: FastPath, device) -> bool:
    """Move a training set's uint8 arrays to `device` when the fast path asks for it and
    they fit; returns whether it moved (the set then yields device batches)."""
    if not settings.resident_data or not hasattr(dataset, "to_device"):
        return False
    if not fits_on_device(dataset.nbytes(), device):
        LOGGER.warning(
            "training set of %.1f GB kept on the host: more than %d%% of free GPU memory",
            dataset.nbytes() / 1e9,
            RESIDENT_DATA_FRACTION * 100,
        )
        return False
    dataset.to_device(device)
    return True


def prepare_task(settings: FastPath, networks: dict[str, nn.Module], train_set, device):
    """Everything a task sets up for the fast path: backend flags, the step networks
    (channels_last, compiled), the resident training set; returns (step networks, autocast
    factory) for the step functions."""
    configure_backends(settings, device)
    make_resident(train_set, settings, device)
    return prepare_networks(networks, settings, device), autocast_context(settings, device)


def describe(settings: FastPath) -> str:
    """One line for the run log: the features on, or reference mode."""
    if not settings.enabled:
        return "reference mode (fp32, eager, host data)"
    return "fast path: " + ", ".join(settings.enabled)
