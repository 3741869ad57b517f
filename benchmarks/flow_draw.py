"""What drawing images with the flow decoder costs on this CPU, with the network's maps in
NCHW (PyTorch's default layout) and in channels_last (NHWC, what s2ilib.runs.load_run gives
a flow on the CPU), in one process, alternated.

Evaluation draws every test sound `samples` times (notebook 05: 2,100 sounds x 3 draws of
the main job), each draw `sample_steps` velocity evaluations, two a step under guidance: the
largest part of step 05's minutes. For each layout: seconds to draw `--sounds` sounds once
through s2ilib.translate.draw_batches (the median of `--repeats`), sounds/s, the speed
against NCHW, and the largest pixel difference between the two layouts' images.

Without --run the network is recipe `flow`'s at the main job's size (32 pixels, grey,
embedding 512), randomly initialised and drawing from noise (recall needs a trained run's
memory); with --run DIR, that trained flow run as evaluation loads it.

    .venv/bin/python benchmarks/flow_draw.py --threads 2 [--run runs/00002-flow-recipe-flow]

About a minute on 2 CPU cores (`--profile` adds torch.profiler's top operations).
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace
from types import SimpleNamespace

import torch

from s2ilib.bench import profile_steps, profile_table
from s2ilib.models import build_models
from s2ilib.models.flow import set_sampling
from s2ilib.train.config import FlowTrainConfig
from s2ilib.train.flow import flow_network_config
from s2ilib.translate import draw_batches

LAYOUTS = {"nchw": torch.contiguous_format, "channels_last": torch.channels_last}
IMAGE_SIZE = 32  # the main job's (the demo preset's) image side; AV-Digits' images are grey
EMBEDDING_DIM = 512  # the main job's embedding width (a flow run takes its encoder's)


def random_flow() -> torch.nn.Module:
    """Recipe `flow`'s decoder as FlowTask builds it, untrained, drawing from pure noise."""
    train = replace(FlowTrainConfig(), embedding_dim=EMBEDDING_DIM, recall_from=0.0)
    network = flow_network_config(train, IMAGE_SIZE, grey=True)
    return build_models({"flow": network}, ["flow"])["flow"].eval().requires_grad_(False)


def trained_flow(run_dir) -> torch.nn.Module:
    """A trained flow run's decoder; recall by the embedding alone (this benchmark has no
    sounds, only embeddings, so no frozen-front features to recall by)."""
    from s2ilib.runs import load_run

    flow = load_run(run_dir, kind="flow").generator
    if flow.config.recall_front_weight != 0.0:
        set_sampling(flow, recall_front_weight=0.0)
    return flow


def draw_all(flow, embeddings: torch.Tensor, batch_size: int) -> torch.Tensor:
    return torch.cat(list(draw_batches(flow, embeddings, "cpu", batch_size=batch_size)))


def measure(flow, embeddings, batch_size: int, repeats: int) -> tuple[dict, dict]:
    seconds = {layout: [] for layout in LAYOUTS}
    images = {}
    for _ in range(repeats + 1):  # the first round warms oneDNN's primitives up, untimed
        for layout, memory_format in LAYOUTS.items():
            flow.to(memory_format=memory_format)
            start = time.perf_counter()
            images[layout] = draw_all(flow, embeddings, batch_size)
            seconds[layout].append(time.perf_counter() - start)
    return {layout: statistics.median(times[1:]) for layout, times in seconds.items()}, images


def profile(flow, embeddings, batch_size: int) -> None:
    """s2ilib.bench's profile_steps over one draw of the sounds in each layout."""
    for layout, memory_format in LAYOUTS.items():
        flow.to(memory_format=memory_format)
        draw = SimpleNamespace(  # what profile_steps takes: a step and its device
            step=lambda: draw_all(flow, embeddings, batch_size), device=torch.device("cpu")
        )
        result = profile_steps(draw, 1, top=8)
        print(f"\n{layout}, {result['ms_per_step'] / 1000:.2f} s a draw profiled: the top ops\n")
        print(profile_table(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", help="a trained flow run directory (default: a random flow)")
    parser.add_argument("--sounds", type=int, default=512, help="sounds drawn once per timing")
    parser.add_argument("--batch-size", type=int, default=256, help="evaluation's batch")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds (median)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--profile", action="store_true", help="also print the top operations")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    flow = trained_flow(args.run) if args.run else random_flow()
    embeddings = torch.randn(args.sounds, flow.config.embedding_dim)
    seconds, images = measure(flow, embeddings, args.batch_size, args.repeats)
    c = flow.config
    print(f"flow: {args.run or 'random, recipe flow'}; {c.sample_steps} steps, guidance "
          f"{c.guidance}, recall_from {c.recall_from}; {args.sounds} sounds, batch "
          f"{args.batch_size}, {torch.get_num_threads()} threads\n")  # fmt: skip
    print("| layout | s per draw of the sounds | sounds/s | speed |\n|---|---|---|---|")
    for layout, value in seconds.items():
        speed = seconds["nchw"] / value
        print(f"| {layout} | {value:.2f} | {args.sounds / value:.0f} | x{speed:.2f} |")
    difference = (images["nchw"] - images["channels_last"]).abs().max().item()
    print(f"\nlargest pixel difference between the layouts: {difference:.1e} (images in [-1, 1])")
    if args.profile:
        profile(flow, embeddings, args.batch_size)


if __name__ == "__main__":
    main()
