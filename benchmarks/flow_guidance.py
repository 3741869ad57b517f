"""How a flow run's sampling settings trade recognisability against realism and variety.

Scores one `s2i train-flow` run (recipe `flow`) at each guidance scale given, with the
informativity classifiers of the same data set: informativity, K-way accuracy, Frechet
distance (and that of real images of the digits drawn), precision/recall/density/coverage
and draw diversity, over all draws and within the class each draw is judged to show
(s2ilib.evaluate), the same sounds and draws for every setting. Nearest-neighbour retrieval
and real images are scored once, in the same run, as the baselines.

    .venv/bin/python benchmarks/flow_guidance.py --run runs/NNN-flow-recipe-flow \
        --informativity runs/NNN-informativity-avdigits-32px --guidance 1 2 4 --from 0.1 \
        --until 0.5

Each setting samples the split `--samples` times (10 ODE steps, two network passes a step
when guided): 1-6 minutes per setting on 2 CPU cores (machines differ) for AV-Digits' test
split as measured then (1,380 sounds) and 3 draws.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from s2ilib.evaluate import evaluate_run
from s2ilib.informativity import load_informativity
from s2ilib.models.flow import set_sampling
from s2ilib.runs import load_run

COLUMNS = ("informativity", "K-way", "Frechet", "class-matched real", "draw div.",
           "same-class div.", "P", "R", "D", "C", "s")  # fmt: skip


def row(method: dict) -> list[str]:
    """The table cells of one method's metrics."""
    informativity = method["informativity"]
    low, high = informativity.get("ci", (float("nan"),) * 2)
    prdc = method.get("prdc") or {}
    diversities = [(method.get(key) or {}).get("mean")
                   for key in ("draw_diversity", "draw_diversity_same_class")]  # fmt: skip
    cells = [
        f"{100 * informativity['mean']:.1f} [{100 * low:.1f}, {100 * high:.1f}]",
        f"{100 * method['kway_accuracy']:.1f}",
        f"{method['frechet_distance']:.3f}",
        f"{method['frechet_class_matched']:.3f}",
        *("" if value is None else f"{value:.2f}" for value in diversities),
    ]
    return cells + [f"{prdc[k]:.3f}" if k in prdc else "" for k in
                    ("precision", "recall", "density", "coverage")]  # fmt: skip


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    run = load_run(args.run, kind="flow")
    bank = load_informativity(args.informativity)
    data = args.data or run.config["data"]
    print("| setting | " + " | ".join(COLUMNS) + " |")
    print("|---|" + "---:|" * len(COLUMNS))
    results, baselines = {}, True
    for guidance in args.guidance:
        start, until = (args.start, args.until) if guidance != 1.0 else (0.0, 1.0)
        recall = run.generator.config.recall_from if args.recall_from is None else args.recall_from
        set_sampling(run.generator, guidance=guidance, guidance_from=start, guidance_until=until,
                     sample_steps=args.steps, solver=args.solver, recall_from=recall)  # fmt: skip
        began = time.perf_counter()
        metrics = evaluate_run(run, bank, data, split=args.split, samples=args.samples,
                               bootstrap=args.bootstrap, seed=args.seed, baselines=baselines)  # fmt: skip
        seconds = time.perf_counter() - began
        name = (f"guidance {guidance:g} for {start:g} <= t < {until:g}, {args.steps} "
                f"{args.solver}, recall from {recall:g}")  # fmt: skip
        results[name] = metrics["methods"]
        print(f"| {name} | " + " | ".join(row(metrics["methods"]["generator"])), end="")
        print(f" | {seconds:.0f} |", flush=True)
        if baselines:
            for method in ("nearest_neighbour", "real"):
                cells = row(metrics["methods"][method])
                print(f"| {method} (baseline) | " + " | ".join(cells) + " | |", flush=True)
            baselines = False
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=1)
    return 0


def flow_run_parser(description: str) -> argparse.ArgumentParser:
    """The arguments every flow-run benchmark takes: the run, its informativity classifiers
    and the data set."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--run", required=True, help="a flow run directory (s2i train-flow)")
    parser.add_argument("--informativity", required=True, help="informativity run directory")
    parser.add_argument("--data", help="data set folder (default: the run's)")
    return parser


def _parser() -> argparse.ArgumentParser:
    parser = flow_run_parser(__doc__.splitlines()[0])
    parser.add_argument("--guidance", type=float, nargs="+", default=[1.0, 2.0, 4.0],
                        help="guidance scales to score (default 1 2 4)")  # fmt: skip
    parser.add_argument("--from", dest="start", type=float, default=0.1,
                        help="guide only from t = this on (default 0.1)")  # fmt: skip
    parser.add_argument("--until", type=float, default=0.5,
                        help="guide only while t < this (default 0.5)")  # fmt: skip
    parser.add_argument("--steps", type=int, default=10, help="ODE steps (default 10)")
    parser.add_argument("--recall-from", type=float,
                        help="start from a recalled image at this time (default: the run's; "
                             "0: from noise, runs trained before recall_from existed)")  # fmt: skip
    parser.add_argument("--solver", default="euler", help="euler or heun (default euler)")
    parser.add_argument("--split", default="test", help="split scored (default test)")
    parser.add_argument("--samples", type=int, default=3, help="draws per sound (default 3)")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples")
    parser.add_argument("--seed", type=int, default=0, help="seed of the draws")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--json", help="also write every setting's metrics to this file")
    return parser


if __name__ == "__main__":
    raise SystemExit(main())
