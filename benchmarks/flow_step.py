"""What one training step of the flow decoder costs on this CPU, and which of the fast path's
features would make it cheaper: the main job's flow step (recipe `flow`'s network at 32
pixels, grey, batch 64; the real `flow_matching_loss`, AdamW and the moving average) timed
in reference mode (fp32, eager: what the CPU trains in) and with each feature of the fast
path alone and together, in one process, on random tensors of the shapes training sees.

For each mode: ms per step (the median of `--repeats` runs of `--steps` steps), samples/s,
the FLOPs achieved per second and their share of this CPU's fp32 matmul rate (measured here),
and the speed against the first mode (reference by default). It answers why the main job's
minutes are in the training (issues 27, 28): how near the step already runs to the CPU's
peak. The timing, FLOP count and profile are `s2i bench train`'s (s2ilib.bench), the
features `s2ilib.train.fastpath`'s.

    .venv/bin/python benchmarks/flow_step.py --threads 2 --profile 5

About 3 minutes on 2 CPU cores (bf16 autocast alone takes most of it on a CPU without
native bf16: timed with `--slow-steps` steps).
"""

from __future__ import annotations

import argparse
import copy
import statistics
from dataclasses import replace

import torch

from s2ilib.bench import (
    count_step_flops,
    matmul_rates,
    profile_steps,
    profile_table,
    time_steps,
)
from s2ilib.models import build_models
from s2ilib.train import fastpath
from s2ilib.train.config import FlowTrainConfig, LoopConfig
from s2ilib.train.flow import flow_matching_loss, flow_network_config, update_average

MODES = {  # mode: fast-path features
    "reference": (),
    "channels_last": ("channels_last",),
    "fused_adam": ("fused_adam",),
    "channels_last+fused_adam": ("channels_last", "fused_adam"),
    "compile": ("compile",),
    "bf16": ("bf16",),
}
SLOW = {"bf16"}  # timed with --slow-steps: far slower on a CPU without native bf16
IMAGE_SIZE = 32  # the main job's (the demo preset's) image side; AV-Digits' images are grey
EMBEDDING_DIM = 512  # the main job's embedding width (a flow run takes its encoder's)


class FlowStep:
    """One training step of the flow as FlowTask runs it (its network built as FlowTask
    builds it, AdamW, the moving average), on random tensors, with some fast-path features;
    what s2ilib.bench's time_steps, count_step_flops and profile_steps take."""

    device = torch.device("cpu")

    def __init__(self, features, batch_size: int, seed: int = 0):
        torch.manual_seed(seed)
        train = replace(FlowTrainConfig(), embedding_dim=EMBEDDING_DIM)
        loop = LoopConfig(fast_path="on", fast_path_features=tuple(features))
        self.settings = fastpath.resolve_fast_path(loop, self.device)
        network = flow_network_config(train, IMAGE_SIZE, grey=True)
        self.flow = build_models({"flow": network}, ["flow"])["flow"].train()
        self.average = copy.deepcopy(self.flow).eval().requires_grad_(False)
        self.optimizer = torch.optim.AdamW(
            self.flow.parameters(), lr=train.lr,
            **fastpath.optimizer_options(self.settings, self.device),
        )  # fmt: skip
        self.batch_size = batch_size
        images = torch.rand(batch_size, 1, IMAGE_SIZE, IMAGE_SIZE) * 2 - 1
        if self.settings.channels_last:
            self.flow.to(memory_format=torch.channels_last)
        self.images = fastpath.to_memory_format(images, self.settings)
        self.embeddings = torch.randn(batch_size, train.embedding_dim)
        self.autocast = fastpath.autocast_context(self.settings, self.device)
        self.decoder = self.flow
        if self.settings.compile:  # the loss calls velocity(), not forward(): compile that
            self.decoder = copy.copy(self.flow)
            self.decoder.velocity = torch.compile(self.flow.velocity, dynamic=False)

    def step(self) -> dict:
        with self.autocast():
            loss = flow_matching_loss(self.decoder, self.images, self.embeddings, 0.15)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        update_average(self.average, self.flow, 0.999)
        return {"flow_loss": loss.detach()}


def seconds_a_step(features, batch_size: int, steps: int, repeats: int) -> float:
    """The median over `repeats` runs of `steps` timed steps (3 warm-up steps first)."""
    step = FlowStep(features, batch_size)
    runs = [time_steps(step, 3 if run == 0 else 0, steps)["step_ms"] for run in range(repeats)]
    return statistics.median(runs) / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=FlowTrainConfig.batch_size)
    parser.add_argument("--steps", type=int, default=15, help="timed steps a run")
    parser.add_argument("--slow-steps", type=int, default=2, help="timed steps a run of bf16")
    parser.add_argument("--repeats", type=int, default=3, help="runs a mode (the median)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--modes", nargs="+", choices=list(MODES), default=list(MODES))
    parser.add_argument(
        "--profile", type=int, default=0, help="also profile this many reference steps (top ops)"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    flops = count_step_flops(FlowStep((), args.batch_size)) * args.batch_size
    peak = matmul_rates(FlowStep.device)["fp32"]
    print(f"flow step: {flops / 1e9:.1f} GFLOP at batch {args.batch_size}; fp32 matmul "
          f"{peak / 1e9:.0f} GFLOP/s on {torch.get_num_threads()} threads\n")  # fmt: skip
    print("| mode | ms a step | samples/s | GFLOP/s | share of fp32 matmul | speed vs the first |")
    print("|---|---:|---:|---:|---:|---:|")
    first = None
    for mode in args.modes:
        steps = args.slow_steps if mode in SLOW else args.steps
        seconds = seconds_a_step(MODES[mode], args.batch_size, steps, args.repeats)
        first = first or seconds
        print(f"| {mode} | {1000 * seconds:.0f} | {args.batch_size / seconds:.0f} | "
              f"{flops / seconds / 1e9:.0f} | {flops / seconds / peak:.2f} | "
              f"x{first / seconds:.2f} |", flush=True)  # fmt: skip
    if args.profile:
        print_profile(profile_steps(FlowStep((), args.batch_size), args.profile, top=8))


def print_profile(profile: dict) -> None:
    """profile_steps' top ops (reference mode) as a table."""
    print(f"\nreference mode, {profile['ms_per_step']:.0f} ms a step profiled: the top ops\n")
    print(profile_table(profile))


if __name__ == "__main__":
    main()
