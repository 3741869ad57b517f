"""How much the main job's figures move with the seed: its training and evaluation (steps
02-05 of `s2i pipeline --preset demo`) once per seed, then the mean and range of the
headline figures, the flow's and the paper's GAN's side by side.

    .venv/bin/python benchmarks/seed_spread.py --seeds 1 2 --with-report reports/main

Each seed writes its own report, runs and figures under --root (never the main job's).
`--with-report` adds a finished main job's report (seed 0) without training it again; a
seed whose report under --root is finished is read, not run again, so an interrupted
spread resumes (the pipeline's --resume). About 15 (AVX-512) to 30 (AVX2) minutes per seed on a
2-core CPU.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

STEPS = ("02_audio_autoencoder", "03_alignment", "04_decoders", "05_informativity_evaluation")


def run_seed(seed: int, root: Path) -> Path:
    """The report of the main job's steps 02-05 trained with `seed` (run unless finished)."""
    report = root / f"seed-{seed}"
    if _finished(report):
        return report
    command = [sys.executable, "-m", "s2ilib", "pipeline", "--preset", "demo"]
    command += ["--seed", str(seed), "--out", str(report), "--steps", *STEPS]
    command += ["--runs-root", str(root / f"runs-{seed}")]
    command += ["--figures-dir", str(root / f"figures-{seed}")]
    if report.with_name(report.name + ".partial").is_dir():  # an interrupted seed continues
        command.append("--resume")
    subprocess.run(command, check=True)
    return report


def _finished(report: Path) -> bool:
    summary = report / "summary.json"
    return summary.is_file() and json.loads(summary.read_text()).get("status") == "done"


def figures(report: Path) -> dict[str, float]:
    """The headline figures of one finished report: the flow's, retrieval's and the GAN's."""
    summary = json.loads((report / "summary.json").read_text())
    head = summary["headline"]
    row = {
        "flow informativity": head["informativity"],
        "retrieval informativity": head["retrieval_informativity"],
        "flow Frechet distance": head["frechet_distance"],
        "flow draw diversity (same class)": head["draw_diversity_same_class"],
    }
    for group, found in (head.get("by_voice_group") or {}).items():  # AV-Digits' kinds of voice
        row[f"flow, {group}"] = found["informativity"]
        if found.get("ceiling") is not None:
            row[f"supervised ceiling, {group}"] = found["ceiling"]
    for run, gan in _comparison(summary).items():
        if gan.get("loss") != "flow matching":
            row[f"GAN ({Path(run).name.split('-recipe-')[-1]}) informativity"] = gan[
                "informativity"
            ]
            row["GAN Frechet distance"] = gan["frechet_distance"]
    return row


def _comparison(summary: dict) -> dict:
    for step in summary["steps"]:
        if step["step"] == "05_informativity_evaluation":
            return step.get("outputs", {}).get("comparison") or {}
    return {}


def spread_table(rows: dict[int, dict]) -> str:
    """A Markdown table: each figure per seed, its mean and range."""
    seeds = sorted(rows)
    names = list(dict.fromkeys(name for row in rows.values() for name in row))
    lines = ["| figure | " + " | ".join(f"seed {s}" for s in seeds) + " | mean | range |"]
    lines.append("|---|" + "---:|" * (len(seeds) + 2))
    for name in names:
        values = [rows[s].get(name) for s in seeds]
        known = np.array([v for v in values if v is not None], float)
        cells = [f"{v:.3f}" if v is not None else "-" for v in values]
        summary = [f"{known.mean():.3f}", f"{known.min():.3f}-{known.max():.3f}"]
        lines.append(f"| {name} | " + " | ".join(cells + summary) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2], help="seeds to train")
    parser.add_argument("--root", default="reports/spread", help="folder of the seeds' reports")
    parser.add_argument(
        "--with-report", help="a finished main job's report to add as seed 0 (reports/main)"
    )
    args = parser.parse_args()
    root = Path(args.root)
    reports = {seed: run_seed(seed, root) for seed in args.seeds}
    if args.with_report:
        reports[0] = Path(args.with_report)
    rows = {seed: figures(report) for seed, report in reports.items()}
    for seed, row in sorted(rows.items()):
        print(json.dumps({"seed": seed, **row}))
    print(spread_table(rows))


if __name__ == "__main__":
    main()
