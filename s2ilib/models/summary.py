"""Size and cost of a preset's networks: parameters, shapes, FLOPs (`s2i summary`).

Beside the preset's four networks, the flow-matching decoder (recipe `flow`, the main run)
at FlowConfig's defaults and the preset's image size: its row is one evaluation of its
velocity field, what a training step runs once and drawing an image `sample_steps` times
(twice a step under guidance)."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from s2ilib.models import FlowConfig, build_networks, count_parameters, preset
from s2ilib.models.flow import FlowDecoder

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
        "flow": {
            "images": (FlowConfig.image_channels, gen.image_size, gen.image_size),
            "times": (),
            "embeddings": (gen.embedding_dim,),
        },
    }[name]
    if name == "generator" and gen.noise_dim:
        shapes["noise"] = (gen.noise_dim,)
    if name == "discriminator" and disc.conditioned:
        shapes["embeddings"] = (disc.embedding_dim,)
    return {key: torch.rand(batch, *shape, device=device) * 2 - 1 for key, shape in shapes.items()}


def _outputs(name: str, result) -> dict[str, torch.Tensor]:
    if name == "autoencoder":
        return {"reconstruction": result[0], "embedding": result[1]}
    key = {"generator": "images", "discriminator": "scores", "classifier": "log_probs",
           "flow": "velocity"}[name]  # fmt: skip
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


class FlowVelocity(nn.Module):
    """The flow decoder's velocity field as the module called (a summary row is one call)."""

    def __init__(self, flow: FlowDecoder):
        super().__init__()
        self.flow = flow

    def forward(self, images, times, embeddings):
        return self.flow.velocity(images, times, embeddings)


def flow_network(presets) -> FlowVelocity:
    """The flow decoder at FlowConfig's defaults and the preset's image size and embedding."""
    generator = presets.generator
    config = FlowConfig(embedding_dim=generator.embedding_dim, image_size=generator.image_size)
    return FlowVelocity(FlowDecoder(config))


def summarize(preset_name: str, embedding_dim: int = 512) -> dict:
    """Summary of every network of a preset and of the flow decoder (parameters, shapes,
    FLOPs per sample).

    Networks are built on the meta device, so even the paper preset costs no memory or
    compute: FlopCounterMode counts convolutions and matrix products (2 FLOPs per
    multiply-add) from shapes alone; BatchNorm, activations and dropout are not counted.
    """
    presets = preset(preset_name, embedding_dim)
    with torch.device("meta"):
        networks = build_networks(presets) | {"flow": flow_network(presets)}
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
            f"{k} {'x'.join(map(str, v)) or 'scalar'}" for k, v in info["input_shapes"].items()
        )
        shapes_out = ", ".join(
            f"{k} {'x'.join(map(str, v)) or 'scalar'}" for k, v in info["output_shapes"].items()
        )
        lines.append(
            f"{name:<14}{info['parameters']:>13,}{info['forward_flops'] / 1e9:>11.3f}"
            f"{info['forward_backward_flops'] / 1e9:>11.3f}  {shapes_in} -> {shapes_out}"
        )
    lines.append(
        "FLOPs per sample (conv and matmul only; 2 per multiply-add). flow: one evaluation"
    )
    lines.append("of its velocity field; drawing an image takes sample_steps of them (two a step")
    lines.append("under guidance).")
    return "\n".join(lines)


def _is_row(module: nn.Module) -> bool:
    """A module shown as one row: a layer, a block of layers, or a frozen network (weights
    held as buffers, no parameters)."""
    children = list(module.children())
    if not children or all(not any(child.children()) for child in children):
        return True
    return not any(True for _ in module.parameters()) and _frozen_numbers(module) > 0


def _frozen_numbers(module: nn.Module) -> int:
    """Weights held as buffers (a frozen network's), BatchNorm statistics aside."""
    frozen = 0
    for layer in module.modules():
        if not isinstance(layer, nn.modules.batchnorm._NormBase):
            frozen += sum(b.numel() for b in layer.buffers(recurse=False) if b.is_floating_point())
    return frozen


def _describe(module: nn.Module) -> str:
    """A layer's kind, with a convolution's kernel and stride and a dropout's rate; a block
    of layers as its layers' kinds."""
    if isinstance(module, nn.Sequential):
        return " ".join(_describe(child) for child in module)
    name = type(module).__name__
    if isinstance(module, nn.modules.conv._ConvNd):
        stride = "" if set(module.stride) == {1} else f" s{module.stride[0]}"
        return f"{name}({'x'.join(map(str, module.kernel_size))}{stride})"
    if isinstance(module, nn.modules.dropout._DropoutNd):
        return f"{name}({module.p:g})"
    return name


def _rows(module: nn.Module, prefix: str = ""):
    for name, child in module.named_children():
        path = f"{prefix}{name}"
        if _is_row(child):
            yield path, child
        else:
            yield from _rows(child, f"{path}.")


@torch.no_grad()
def layer_table(network: nn.Module, *inputs: torch.Tensor) -> list[dict]:
    """One row per layer (or block, or frozen network) of `network` as it runs on `inputs`:
    its name, type, output shape per sample, parameters (what training learns, even in a
    loaded run whose parameters no longer require gradients) and frozen weights (buffers).

    The network runs once in eval mode (BatchNorm statistics untouched); every module's
    mode is restored after.
    """
    rows, hooks = {}, []
    for path, module in _rows(network):
        rows[path] = {
            "layer": path,
            "type": _describe(module),
            "output": "",
            "parameters": sum(p.numel() for p in module.parameters()),
            "frozen": _frozen_numbers(module),
        }

        def record(_module, _args, output, row=rows[path]):
            first = output[0] if isinstance(output, tuple) else output
            row["output"] = "x".join(map(str, first.shape[1:]))

        hooks.append(module.register_forward_hook(record))
    modes = {module: module.training for module in network.modules()}
    try:
        network.eval()(*inputs)
    finally:
        for hook in hooks:
            hook.remove()
        for module, training in modes.items():
            module.train(training)
    return [row for row in rows.values() if row["output"]]


def format_layer_table(rows: list[dict]) -> str:
    """A fixed-width table of `layer_table`'s rows, with the totals."""
    width = max(len(row["layer"]) for row in rows) + 2
    kind = max(len(row["type"]) for row in rows) + 2
    lines = [f"{'layer':<{width}}{'type':<{kind}}{'output':<14}{'parameters':>12}{'frozen':>12}"]
    for row in rows:
        lines.append(
            f"{row['layer']:<{width}}{row['type']:<{kind}}{row['output']:<14}"
            f"{row['parameters']:>12,}{row['frozen']:>12,}"
        )
    learnt, frozen = (sum(row[key] for row in rows) for key in ("parameters", "frozen"))
    lines.append(f"{'total':<{width + kind + 14}}{learnt:>12,}{frozen:>12,}")
    return "\n".join(lines)
