"""Run by test_distributed under torchrun (2 ranks, gloo): a DDP forward on one half of a
batch and a bare forward (distributed.bare) on the other give, after one backward, each
rank the mean over ranks of both halves' gradients; exits non-zero otherwise."""

import torch
import torch.distributed as dist
from torch import nn

from s2ilib.distributed import FreezableDDP, bare


def main() -> None:
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    torch.manual_seed(0)
    network = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    reference = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    reference.load_state_dict(network.state_dict())
    wrapped = FreezableDDP(network)
    torch.manual_seed(1)
    batches = torch.randn(dist.get_world_size(), 2, 4, 4)  # rank, half, rows, features
    first, second = batches[rank]
    (torch.cat([wrapped(first), bare(wrapped)(second)]) ** 2).sum().backward()
    expected = [torch.zeros_like(p) for p in reference.parameters()]
    for halves in batches:  # every rank's gradient, computed here in one process
        reference.zero_grad()
        (torch.cat([reference(half) for half in halves]) ** 2).sum().backward()
        for total, parameter in zip(expected, reference.parameters(), strict=True):
            total += parameter.grad / len(batches)
    for parameter, total in zip(network.parameters(), expected, strict=True):
        torch.testing.assert_close(parameter.grad, total, atol=1e-6, rtol=1e-5)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
