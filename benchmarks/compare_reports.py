"""Main-job reports side by side: the headline, the voice groups and the languages.

Each REPORT is a `s2i pipeline --out` folder (its summary.json; the main job's is
reports/main), named by LABEL=FOLDER. Printed as markdown:
1. the ablation table: informativity with its interval, the held-out people, the unseen
   synthetic voices and the never-heard engine (each beside its supervised ceiling), the
   languages under 0.4, the minutes of each step;
2. the per-language table: every language's informativity (interval) and ceiling in each
   report, worst first by the last report.

    python benchmarks/compare_reports.py images=/tmp/a/reports/main audio=/tmp/b/reports/main

Used for RESULTS.md, "Features from the audio" (issue 28).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

GROUPS = ("human speakers", "unseen synthetic voices", "held-out engine")
LOW = 0.4  # issue 28's floor for every language of the test split


def read_report(folder: Path) -> dict:
    """A finished report's summary.json, or exit 2 saying what is wrong with it."""
    path = folder / "summary.json"
    if not path.is_file():
        refuse(f"{path}: no such file (give s2i pipeline --out folders)")
    summary = json.loads(path.read_text())
    if summary.get("status") != "done":
        refuse(f"{path}: status {summary.get('status')!r}, not 'done'")
    return summary


def refuse(message: str) -> None:
    print(f"compare_reports: {message}", file=sys.stderr)
    raise SystemExit(2)


def interval(low_high) -> str:
    return f"[{low_high[0]:.3f}, {low_high[1]:.3f}]" if low_high else ""


def ablation_rows(reports: dict) -> list[str]:
    # every step any report ran, by name: a report that ran fewer (a seed of seed_spread.py
    # runs steps 02-05) leaves the others' cells blank
    steps = sorted({step["step"][:2] for summary in reports.values() for step in summary["steps"]})
    header = ["report", "informativity", *GROUPS, f"languages < {LOW}",
              *(f"step {s} (s)" for s in steps), "minutes"]  # fmt: skip
    rows = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label, summary in reports.items():
        headline, groups = summary["headline"], summary["headline"]["by_voice_group"]
        low = sum(entry["informativity"] < LOW for entry in headline["by_language"].values())
        cells = [label, f"{headline['informativity']:.3f} {interval(headline['informativity_ci'])}"]
        for group in GROUPS:
            entry = groups[group]
            cells.append(f"{entry['informativity']:.3f} (ceiling {entry['ceiling']:.3f})")
        seconds = {step["step"][:2]: step["wall_seconds"] for step in summary["steps"]}
        cells += [str(low), *(f"{seconds[s]:.0f}" if s in seconds else "" for s in steps)]
        cells.append(f"{sum(seconds.values()) / 60:.1f}")
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def language_rows(reports: dict) -> list[str]:
    last = list(reports.values())[-1]["headline"]["by_language"]
    order = sorted(last, key=lambda language: last[language]["informativity"])
    header = ["language (sounds)"]
    for label in reports:
        header += [f"{label}: informativity", f"{label}: ceiling"]
    rows = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for language in order:
        cells = [f"{language} ({last[language]['num_sounds']})"]
        for summary in reports.values():
            entry = summary["headline"]["by_language"].get(language)
            if entry is None:
                cells += ["", ""]
                continue
            ceiling = "" if entry["ceiling"] is None else f"{entry['ceiling']:.3f}"
            mean = f"{entry['informativity']:.3f} {interval(entry['informativity_ci'])}"
            cells += [mean, ceiling]
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("reports", nargs="+", metavar="LABEL=FOLDER",
                        help="a report folder (s2i pipeline --out) and its label")  # fmt: skip
    args = parser.parse_args(argv)
    reports = {}
    for item in args.reports:
        label, separator, folder = item.partition("=")
        if not separator:
            parser.error(f"{item!r}: expected LABEL=FOLDER")
        reports[label] = read_report(Path(folder))
    print("\n".join(ablation_rows(reports)))
    print()
    print("\n".join(language_rows(reports)))


if __name__ == "__main__":
    main()
