"""What one training step of the flow decoder costs on this CPU, and which of the fast path's
features would make it cheaper: the main job's flow step (recipe `flow`'s network at 32
pixels, grey, batch 64; the real `flow_matching_loss`, AdamW and the moving average) timed
in reference mode (fp32, eager: what the CPU trains in) and with each feature of the fast
path alone and together, in one process, on random tensors of the shapes training sees.

For each mode: ms per step (the median of `--repeats` runs of `--steps` steps), samples/s,
the FLOPs achieved per second and their share of this CPU's fp32 matmul rate (measured here),
and the speed against the first mode (reference by default). It answers why the main job's minutes are in the
training (issues 27, 28): how near the step already runs to the CPU's peak.

    .venv/bin/python benchmarks/flow_step.py --threads 2 --profile 5

About 3 minutes on 2 CPU cores (bf16 autocast alone takes most of it on a CPU without
native bf16: timed with `--slow-steps` steps).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from s2ilib.bench import measure_matmul_rate
from s2ilib.models import FlowConfig
from s2ilib.models.flow import FlowDecoder
from s2ilib.train.config import FlowTrainConfig
from s2ilib.train.flow import flow_matching_loss, update_average

MODES = {  # mode: fast-path features
    "reference": (),
    "channels_last": ("channels_last",),
    "fused_adam": ("fused_adam",),
    "channels_last + fused_adam": ("channels_last", "fused_adam"),
    "compile": ("compile",),
    "bf16": ("bf16",),
}
SLOW = {"bf16"}  # timed with --slow-steps: far slower on a CPU without native bf16


class FlowStep:
    """One training step of the flow as FlowTask runs it, with some fast-path features."""

    def __init__(self, features, batch_size: int, seed: int = 0):
        torch.manual_seed(seed)
        train = FlowTrainConfig()
        config = FlowConfig(
            image_size=32, image_channels=1, patch=train.patch, channels=train.channels,
            condition_dim=train.condition_dim,
        )  # fmt: skip
        self.flow = FlowDecoder(config)
        self.average = copy.deepcopy(self.flow).eval().requires_grad_(False)
        fused = {"fused": True} if "fused_adam" in features else {}
        self.optimizer = torch.optim.AdamW(self.flow.parameters(), lr=train.lr, **fused)
        self.images = torch.rand(batch_size, 1, 32, 32) * 2 - 1
        self.embeddings = torch.randn(batch_size, config.embedding_dim)
        self.decoder = self.flow
        if "channels_last" in features:
            self.flow.to(memory_format=torch.channels_last)
            self.images = self.images.contiguous(memory_format=torch.channels_last)
        if "compile" in features:  # the velocity field compiled, as fastpath compiles networks
            self.decoder = copy.copy(self.flow)
            self.decoder.velocity = torch.compile(self.flow.velocity, dynamic=False)
        self.bf16 = "bf16" in features

    def __call__(self) -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            loss = flow_matching_loss(self.decoder, self.images, self.embeddings, 0.15)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        update_average(self.average, self.flow, 0.999)


def step_flops(batch_size: int) -> float:
    """FLOPs of one step's forward and backward (convolutions and matrix products)."""
    step = FlowStep((), batch_size)
    with FlopCounterMode(display=False) as counter:
        flow_matching_loss(step.flow, step.images, step.embeddings, 0.15).backward()
    return counter.get_total_flops()


def time_mode(features, batch_size: int, steps: int, repeats: int) -> float:
    """Median seconds per step over `repeats` runs of `steps` steps, after 3 warm-up steps."""
    step = FlowStep(features, batch_size)
    for _ in range(3):
        step()
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        runs.append((time.perf_counter() - start) / steps)
    return statistics.median(runs)


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
    flops = step_flops(args.batch_size)
    peak = measure_matmul_rate(torch.device("cpu"), torch.float32)
    print(f"flow step: {flops / 1e9:.1f} GFLOP at batch {args.batch_size}; fp32 matmul "
          f"{peak / 1e9:.0f} GFLOP/s on {torch.get_num_threads()} threads\n")  # fmt: skip
    print("| mode | ms a step | samples/s | GFLOP/s | share of fp32 matmul | speed vs the first |")
    print("|---|---:|---:|---:|---:|---:|")
    reference = None
    for mode in args.modes:
        steps = args.slow_steps if mode in SLOW else args.steps
        seconds = time_mode(MODES[mode], args.batch_size, steps, args.repeats)
        reference = reference or seconds
        print(f"| {mode} | {1000 * seconds:.0f} | {args.batch_size / seconds:.0f} | "
              f"{flops / seconds / 1e9:.0f} | {flops / seconds / peak:.2f} | "
              f"x{reference / seconds:.2f} |", flush=True)  # fmt: skip
    if args.profile:
        print_profile(args.batch_size, args.profile)


def print_profile(batch_size: int, steps: int, top: int = 8) -> None:
    """torch.profiler over `steps` reference steps: the top ops by self CPU time."""
    from torch.profiler import ProfilerActivity, profile

    step = FlowStep((), batch_size)
    step()  # warm-up outside the profile
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        for _ in range(steps):
            step()
    events = sorted(profiler.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events) or 1
    print(f"\nreference mode, {steps} steps profiled: the top ops by self CPU time\n")
    print("| op | share | ms a step |")
    print("|---|---:|---:|")
    for event in events[:top]:
        print(f"| {event.key} | {100 * event.self_cpu_time_total / total:.1f}% | "
              f"{event.self_cpu_time_total / 1000 / steps:.1f} |")  # fmt: skip


if __name__ == "__main__":
    main()
