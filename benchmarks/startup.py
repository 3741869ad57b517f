"""What a process of the workbook pays before it does any work: the start of `s2i` commands
and of a notebook's imports, in checkouts side by side.

Every test of the gate that runs `s2i` in a subprocess (a refused option, a resumed run)
and every notebook of the main job pays this start. Each LABEL=ROOT is a checkout (its
s2ilib is put first on PYTHONPATH); the commands run in turn, ROOT after ROOT, `--repeats`
times, and the median and fastest wall seconds are printed as markdown with the ratio to
the first checkout, then the heavy libraries each start loads.

    git worktree add /tmp/before <commit>
    python benchmarks/startup.py before=/tmp/before after=.

Used for RESULTS.md, "What a process pays at start".
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

# What the commands load that only some of their work needs.
HEAVY = ("torchvision", "sklearn", "pandas", "matplotlib", "seaborn", "torch._dynamo")
STARTS = {
    "s2i --help": ["-m", "s2ilib", "--help"],
    # refused after the CLI, the configs and the data set's registry are loaded (exit 2)
    "s2i train-ae, refused": ["-m", "s2ilib", "train-ae", "--epochs", "0"],
    "s2i imagine --help": ["-m", "s2ilib", "imagine", "--help"],
    # notebook 02's imports cell
    "notebook imports": [
        "-c",
        "import matplotlib.pyplot, s2ilib.notebook, s2ilib.probes, "
        "s2ilib.viz, s2ilib.train.registry, s2ilib.translate",
    ],  # fmt: skip
}
LOADED = (
    "import sys, s2ilib.cli, s2ilib.train.registry, s2ilib.evaluate, s2ilib.imagine, "
    f"s2ilib.pipeline, s2ilib.probes; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
)


def checkout(text: str) -> tuple[str, Path]:
    label, _, root = text.rpartition("=")
    root = Path(root).resolve()
    if not label or not (root / "s2ilib" / "__init__.py").is_file():
        raise SystemExit(f"startup: {text!r}: expected LABEL=ROOT, ROOT a checkout with s2ilib/")
    return label, root


def run(root: Path, arguments: list[str]) -> tuple[float, str]:
    environment = os.environ | {"PYTHONPATH": str(root)}
    start = time.perf_counter()
    result = subprocess.run([sys.executable, *arguments], cwd=root, env=environment,
                            capture_output=True, text=True)  # fmt: skip
    return time.perf_counter() - start, result.stdout


def measure(roots: dict[str, Path], repeats: int) -> dict:
    seconds = {(name, label): [] for name in STARTS for label in roots}
    for _ in range(repeats):
        for name, arguments in STARTS.items():
            for label, root in roots.items():  # alternated: a slow spell hits every checkout
                seconds[name, label].append(run(root, arguments)[0])
    return seconds


def table(seconds: dict, roots: dict[str, Path]) -> list[str]:
    first = next(iter(roots))
    rows = ["| start | " + " | ".join(f"{label} median (fastest) s" for label in roots)
            + " | " + " | ".join(f"{label} / {first}" for label in list(roots)[1:]) + " |"]  # fmt: skip
    rows.append("|---" * (2 * len(roots)) + "|")
    for name in STARTS:
        median = {label: statistics.median(seconds[name, label]) for label in roots}
        cells = [f"{median[label]:.2f} ({min(seconds[name, label]):.2f})" for label in roots]
        cells += [f"x{median[label] / median[first]:.2f}" for label in list(roots)[1:]]
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkouts", nargs="+", help="LABEL=ROOT, the first is the reference")
    parser.add_argument("--repeats", type=int, default=5, help="runs of each start per checkout")
    args = parser.parse_args()
    roots = dict(checkout(text) for text in args.checkouts)
    seconds = measure(roots, args.repeats)
    print("\n".join(table(seconds, roots)))
    print()
    for label, root in roots.items():
        print(f"{label}: the CLI's modules load: {run(root, ['-c', LOADED])[1].strip() or 'none'}")


if __name__ == "__main__":
    main()
