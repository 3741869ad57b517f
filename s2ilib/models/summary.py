"""Size and cost of a preset's networks: parameters, shapes, FLOPs (`s2i summary`)."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from s2ilib.models import build_networks, count_parameters, preset

FLOP_BATCH = 2  # BatchNorm in train mode needs more than one sample; FLOPs are per sample


def _example_inputs(name: str, presets, batch: int, device) -> dict[str, torch.Tensor]:
    """Inputs of network `name`, keyed by argument name, values in [-1, 1] as in training."""
    ae, gen, disc = presets.autoencoder, presets.generator, presets.discriminator
    cls = presets.classifier
    shapes = {
        "autoencoder": {"spectrograms": (1, *ae.input_size)},
        "generator": {"embeddings": (gen.embedding_dim,)},
        "discriminator": {"images": (disc.image_channels, disc.image_size, disc.image_size)},
        "classifier": {"images": (cls.image_channels, cls.image_size, cls.image_size)},
    }[name]
    if name == "generator" and gen.noise_dim:
        shapes["noise"] = (gen.noise_dim,)
    if name == "discriminator" and disc.conditioned:
        shapes["embeddings"] = (disc.embedding_dim,)
    return {key: torch.rand(batch, *shape, device=device) * 2 - 1 for key, shape in shapes.items()}


def _outputs(name: str, result) -> dict[str, torch.Tensor]:
    if name == "autoencoder":
        return {"reconstruction": result[0], "embedding": result[1]}
    key = {"generator": "images", "discriminator": "scores", "classifier": "log_probs"}[name]
    return {key: result}


def _count_flops(network: nn.Module, inputs: dict[str, torch.Tensor]) -> tuple[int, int, dict]:
    """(forward FLOPs, forward+backward FLOPs, outputs) for the whole batch.

    Inputs do not require gradients (as for the frozen encoder's embeddings), so backward
    counts weight gradients and the gradients between layers only.
    """
    network.train()
    with FlopCounterMode(display=False) as counter:
        result = network(**inputs)
    forward = counter.get_total_flops()
    with FlopCounterMode(display=False) as counter:
        result = network(**inputs)
        first = result[0] if isinstance(result, tuple) else result
        first.float().sum().backward()
    return forward, counter.get_total_flops(), result


def summarize_network(name: str, network: nn.Module, presets, batch: int = FLOP_BATCH) -> dict:
    """Parameters, per-sample shapes and per-sample FLOPs of one network."""
    device = next(network.parameters()).device
    inputs = _example_inputs(name, presets, batch, device)
    forward, forward_backward, result = _count_flops(network, inputs)
    outputs = _outputs(name, result)
    return {
        "parameters": count_parameters(network),
        "input_shapes": {key: list(value.shape[1:]) for key, value in inputs.items()},
        "output_shapes": {key: list(value.shape[1:]) for key, value in outputs.items()},
        "forward_flops": forward // batch,
        "forward_backward_flops": forward_backward // batch,
    }


def summarize(preset_name: str, embedding_dim: int = 512) -> dict:
    """Summary of every network of a preset (parameters, shapes, FLOPs per sample).

    Networks are built on the meta device, so even the paper preset costs no memory or
    compute: FlopCounterMode counts convolutions and matrix products (2 FLOPs per
    multiply-add) from shapes alone; BatchNorm, activations and dropout are not counted.
    """
    presets = preset(preset_name, embedding_dim)
    with torch.device("meta"):
        networks = build_networks(presets)
    return {
        "preset": preset_name,
        "embedding_dim": embedding_dim,
        "flop_batch": FLOP_BATCH,
        "networks": {
            name: summarize_network(name, network, presets) for name, network in networks.items()
        },
    }


def format_summary(summary: dict) -> str:
    """A fixed-width table of `summarize`'s result."""
    header = f"{'network':<14}{'parameters':>13}{'GFLOP fwd':>11}{'GFLOP f+b':>11}  input -> output"
    lines = [f"preset {summary['preset']}, embedding_dim {summary['embedding_dim']}", header]
    for name, info in summary["networks"].items():
        shapes_in = ", ".join(
            f"{k} {'x'.join(map(str, v))}" for k, v in info["input_shapes"].items()
        )
        shapes_out = ", ".join(
            f"{k} {'x'.join(map(str, v)) or 'scalar'}" for k, v in info["output_shapes"].items()
        )
        lines.append(
            f"{name:<14}{info['parameters']:>13,}{info['forward_flops'] / 1e9:>11.3f}"
            f"{info['forward_backward_flops'] / 1e9:>11.3f}  {shapes_in} -> {shapes_out}"
        )
    lines.append("FLOPs per sample (conv and matmul only; 2 per multiply-add).")
    return "\n".join(lines)
