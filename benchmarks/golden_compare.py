"""Compare two sets of golden runs (benchmarks/golden_runs.sh) tensor by tensor.

    python benchmarks/golden_compare.py OLD_DIR NEW_DIR

Used to check that a refactor leaves behaviour unchanged: every network weight the runs
finish with, and every figure of the evaluation's metrics.json except timings, must be
equal. For the informativity classifiers it compares the selected (best-epoch) weights,
read through s2ilib.informativity whatever the checkpoint layout of the version that
wrote them. Exits 1 and lists what differs otherwise.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import torch

from s2ilib.informativity import selected_weights

TRAINING_RUNS = ("ae", "align", "gan", "gan_ma")
TIMINGS = ("train_seconds", "seconds", "wall_seconds")


def tensor_hashes(obj) -> dict:
    """{path: sha256 prefix} for every tensor inside nested dicts/lists."""
    return {
        path: hashlib.sha256(leaf.detach().cpu().contiguous().numpy().tobytes()).hexdigest()[:16]
        for path, leaf in flatten(obj).items()
        if isinstance(leaf, torch.Tensor)
    }


def without_timings(obj):
    """`obj` with every timing entry removed, recursively."""
    if isinstance(obj, dict):
        return {k: without_timings(v) for k, v in obj.items() if k not in TIMINGS}
    return [without_timings(v) for v in obj] if isinstance(obj, list) else obj


def flatten(obj, prefix: str = "") -> dict:
    """{"a/b/0": leaf} for nested dicts/lists/tuples."""
    if isinstance(obj, dict | list | tuple):
        items = obj.items() if isinstance(obj, dict) else enumerate(obj)
        return {k: v for key, value in items for k, v in flatten(value, f"{prefix}/{key}").items()}
    return {prefix: obj}


def fingerprint(root: Path) -> dict:
    """Weights of each golden run and the evaluation metrics, comparable across versions."""
    found = {}
    for run in TRAINING_RUNS:
        state = torch.load(root / run / "checkpoints" / "last.pt", weights_only=False)
        found[run] = tensor_hashes(state["models"])
    state = torch.load(root / "inf" / "checkpoints" / "last.pt", weights_only=False)
    found["inf"] = tensor_hashes(selected_weights(state))
    metrics = json.loads((root / "eval" / "metrics.json").read_text())
    found["eval"] = without_timings({k: metrics[k] for k in ("methods", "chance", "ceiling")})
    return found


def main() -> int:
    old, new = (fingerprint(Path(arg)) for arg in sys.argv[1:3])
    differ = [part for part in old if old[part] != new[part]]
    for part in old:
        before, after = flatten(old[part]), flatten(new[part])
        changed = sorted(k for k in before.keys() & after.keys() if before[k] != after[k])
        print(
            f"{part}: {'same' if part not in differ else 'DIFFERENT'} ({len(before)} entries; "
            f"{len(changed)} changed, {len(before.keys() - after.keys())} gone, "
            f"{len(after.keys() - before.keys())} new)"
        )
        for key in changed[:12] if len(changed) <= 12 else ():
            print(f"  {key}: {before[key]} -> {after[key]}")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
