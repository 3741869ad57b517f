"""The evaluation's tables: Markdown and LaTeX from a metrics dict of s2ilib.evaluate.

`format_tables(metrics)` gives both texts; `write_report(metrics, out_dir)` writes
metrics.json, metrics.md, metrics.tex and per_sound.csv (the metrics' "per_sound" table, one
row per sound, kept out of metrics.json); `printed_tables` is what `s2i evaluate` prints,
`breakdown_frame` a per-language (or other column) table for the notebooks.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from s2ilib.atomic import write_json, write_text

PER_SOUND_FILE = "per_sound.csv"  # s2ilib.evaluate.sound_table, one row per sound

METHOD_ROWS = (  # (method, informativity key, label)
    ("generator", "informativity", "Generator (1 draw)"),
    ("generator", "informativity_samples", "Generator (mean of {k} draws)"),
    ("generator", "informativity_any", "Generator (any of {k} draws)"),
    ("nearest_neighbour", "informativity", "Nearest-neighbour retrieval"),
    ("random_real", "informativity", "Random real image"),
    ("real", "informativity", "Real images (ceiling)"),
)


def _percent(value) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}"


def _with_ci(summary) -> str:
    if summary is None or summary.get("mean") is None:
        return "n/a"
    low, high = summary.get("ci") or (None, None)
    interval = f" [{_percent(low)}, {_percent(high)}]" if low is not None else ""
    return _percent(summary["mean"]) + interval


def _number(value, digits: int = 3) -> str:
    return (
        "n/a"
        if value is None
        else f"{value:.{digits}g}"
        if abs(value) >= 1e3
        else f"{value:.{digits}f}"
    )


def summary_rows(metrics_dict: dict) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the main table."""
    header = [
        "Method",
        "Informativity % [95% CI]",
        "K-way acc. %",
        "Frechet dist.",
        "Diversity ratio",
        "L1",
        "PSNR dB",
        "SSIM",
    ]
    rows, k = [], metrics_dict.get("samples", 1)
    for method, key, label in METHOD_ROWS:
        entry = metrics_dict["methods"].get(method)
        if entry is None or key not in entry:
            continue
        pixel = entry.get("pixel") or {}
        rows.append(
            [
                label.format(k=k),
                _with_ci(entry[key]),
                _percent(entry["kway_accuracy"]),
                _number(entry["frechet_distance"]),
                _number(entry["diversity"]["ratio"], 2),
                _number(pixel.get("l1")),
                _number(pixel.get("psnr"), 2) if pixel else "n/a",
                _number(pixel.get("ssim")),
            ]
        )
    chance = metrics_dict.get("chance", {})
    rows.append(
        ["Chance", _percent(chance.get("informativity")), _percent(chance.get("kway_accuracy"))]
        + ["n/a"] * 5
    )
    return header, rows


def per_class_rows(metrics_dict: dict) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the per-class informativity table."""
    methods = metrics_dict["methods"]
    columns = [
        (m, key, label.format(k=metrics_dict.get("samples", 1)))
        for m, key, label in METHOD_ROWS
        if m in methods and key in methods[m]
    ]
    header = ["Class"] + [label for _, _, label in columns] + ["Classifier TPR (real test)"]
    ceiling = metrics_dict.get("ceiling", {}).get("true_positive_rate")
    rows = []
    for index, name in enumerate(metrics_dict["classes"]):
        row = [name] + [_percent(methods[m][key]["per_class"][index]) for m, key, _ in columns]
        row.append(_percent(ceiling[index]) if ceiling else "n/a")
        rows.append(row)
    return header, rows


def confusion_rows(metrics_dict: dict) -> tuple[list[str], list[list[str]]]:
    """The generator's K-way confusion matrix (rows: sound class; columns: predicted)."""
    classes = metrics_dict["classes"]
    matrix = metrics_dict["methods"]["generator"]["kway_confusion"]
    return ["Sound \\ predicted", *classes], [
        [name, *map(str, row)] for name, row in zip(classes, matrix, strict=True)
    ]


def breakdown_rows(metrics_dict: dict, column: str) -> tuple[list[str], list[list[str]]]:
    """Generator informativity and K-way accuracy per value of one metadata column."""
    entries = metrics_dict["breakdown"][column]
    samples = metrics_dict.get("samples", 1)
    header = [column.capitalize(), "Sounds", "Informativity % [95% CI]"]
    if samples > 1:
        header.append(f"Mean of {samples} draws %")
    header.append("K-way acc. %")
    rows = []
    for value, entry in entries.items():
        row = [value, str(entry["num_sounds"]), _with_ci(entry["informativity"])]
        if samples > 1:
            row.append(_with_ci(entry.get("informativity_samples")))
        rows.append(row + [_percent(entry["kway_accuracy"])])
    return header, rows


def imagination_rows(metrics_dict: dict) -> tuple[list[str], list[list[str]]]:
    """Variety and realism per method: draw diversity (K draws of one sound), Frechet
    distance, precision, recall, density, coverage (one image per sound)."""
    header = ["Method", "Draw diversity", "Same-class draw div.", "Frechet dist.",
              "Class-matched real", "Precision", "Recall", "Density", "Coverage"]  # fmt: skip
    rows, k = [], metrics_dict.get("samples", 1)
    for method, key, label in METHOD_ROWS:
        entry = metrics_dict["methods"].get(method)
        if entry is None or key != "informativity":
            continue
        prdc = entry.get("prdc") or {}
        draws = entry.get("draw_diversity") or {}
        same_class = entry.get("draw_diversity_same_class") or {}
        label = f"Generator ({k} draws)" if method == "generator" else label
        rows.append(
            [label, _number(draws.get("mean"), 2), _number(same_class.get("mean"), 2),
             _number(entry["frechet_distance"]), _number(entry.get("frechet_class_matched")),
             *(_number(prdc.get(name)) for name in ("precision", "recall", "density", "coverage"))]
        )  # fmt: skip
    return header, rows


def voice_group_rows(metrics_dict: dict) -> tuple[list[str], list[list[str]]]:
    """Per kind of voice: sounds, informativity [95% CI], the supervised ceiling [95% CI]."""
    from s2ilib.evaluate import breakdown_with_ceiling

    groups = breakdown_with_ceiling(metrics_dict, "voice_group")
    header = ["Voices", "Sounds", "Informativity % [95% CI]", "Sound ceiling % [95% CI]"]
    rows = [
        [group, str(entry["num_sounds"]), _interval(entry["informativity"], entry["informativity_ci"]),
         _interval(entry["ceiling"], entry["ceiling_ci"])]
        for group, entry in groups.items()
    ]  # fmt: skip
    return header, rows


def _interval(mean, ci) -> str:
    return _with_ci({"mean": mean, "ci": ci}) if mean is not None else "n/a"


MAIN_TABLE = "Informativity, K-way accuracy and image metrics"
PRINTED_BREAKDOWNS = ("language",)  # the breakdowns `s2i evaluate` prints beside MAIN_TABLE


def _breakdown_title(column: str) -> str:
    return f"Generator per {column}"


def _tables(metrics_dict: dict) -> list[tuple[str, list[str], list[list[str]]]]:
    tables = [
        (MAIN_TABLE, *summary_rows(metrics_dict)),
        ("Imagination: variety and realism", *imagination_rows(metrics_dict)),
        (
            "By kind of voice: informativity and the supervised sound ceiling",
            *voice_group_rows(metrics_dict),
        ),
        ("Informativity per class (%)", *per_class_rows(metrics_dict)),
        ("K-way confusion matrix of generated images (all draws)", *confusion_rows(metrics_dict)),
    ]
    for column in metrics_dict.get("breakdown", {}):
        if column == "voice_group":
            continue  # its own table above, with the ceiling
        tables.append((_breakdown_title(column), *breakdown_rows(metrics_dict, column)))
    return [table for table in tables if table[2]]  # a table without rows says nothing


def _notes(metrics_dict: dict) -> list[str]:
    notes = [
        f"{metrics_dict['num_sounds']} sounds from {metrics_dict['sounds']}; {metrics_dict['samples']} "
        f"generator draw(s) per sound with dropout on; intervals: {metrics_dict['bootstrap']} bootstrap "
        "resamples of the sounds within each class.",
        metrics_dict["notes"]["chance"],
        metrics_dict["notes"]["frechet_distance"],
        "Diversity ratio = mean pairwise feature distance within a class, images / real images.",
        "Draw diversity = mean feature distance between the K draws of one sound / mean "
        "distance between two real images of its class (1.0 = as varied as real data; n/a "
        "with one draw). Precision, recall, density, coverage (k = 5): one image per sound "
        "against the split's real images, in the same feature space as the Frechet distance. "
        "Class-matched real = the Frechet distance of real images of the digits the method drew "
        "(the K-way classifier's reading of each image): what drawing those digits as real "
        "handwriting scores; the method's distance beyond it is how it draws them.",
    ]
    if metrics_dict.get("pairing") != "record":
        notes.append(
            "Pixel metrics (L1, PSNR, SSIM) need each sound's own frame: n/a here "
            f"(pairing: {metrics_dict.get('pairing')})."
        )
    if metrics_dict.get("skipped_files"):
        notes.append(
            f"{len(metrics_dict['skipped_files'])} audio file(s) skipped (see metrics.json)."
        )
    return notes


def format_tables(metrics_dict: dict) -> tuple[str, str]:
    """(Markdown, LaTeX) tables of an `evaluate_run` result."""
    markdown, latex = (
        [],
        ["% Tables of s2i evaluate; \\toprule etc. need \\usepackage{booktabs}", ""],
    )
    for title, header, rows in _tables(metrics_dict):
        markdown += [_markdown_section(title, header, rows), ""]
        latex += [_latex_table(title, header, rows), ""]
    notes = _notes(metrics_dict)
    markdown += [f"- {note}" for note in notes]
    latex += (
        ["\\begin{itemize}"]
        + [f"  \\item {_latex_escape(note)}" for note in notes]
        + ["\\end{itemize}"]
    )
    return "\n".join(markdown) + "\n", "\n".join(latex) + "\n"


def printed_tables(metrics_dict: dict) -> str:
    """The Markdown `s2i evaluate` prints: the main table and, where the sounds have a
    language (a split of AV-Digits, a labels CSV with a language column), the generator per
    language (PRINTED_BREAKDOWNS); metrics.md holds every table."""
    wanted = {MAIN_TABLE, *(_breakdown_title(column) for column in PRINTED_BREAKDOWNS)}
    sections = [_markdown_section(*table) for table in _tables(metrics_dict) if table[0] in wanted]
    return "\n\n".join(sections) + "\n"


BREAKDOWN_FRAME_COLUMNS = [
    "informativity %", "informativity 95% CI", "ceiling %", "ceiling 95% CI", "sounds",
]  # fmt: skip


def breakdown_frame(metrics_dict: dict, column: str):
    """Informativity and the supervised sound ceiling (%) per value of metadata `column`,
    each with its 95% interval, and the sounds, as a pandas table sorted by informativity
    (highest first); empty when the sounds have no such column."""
    import pandas as pd

    from s2ilib.evaluate import breakdown_with_ceiling

    def percent(value):
        return None if value is None else round(100 * value, 1)

    rows = {
        value: [
            percent(entry["informativity"]),
            _ci_text(entry["informativity_ci"]),
            percent(entry["ceiling"]),
            _ci_text(entry["ceiling_ci"]),
            entry["num_sounds"],
        ]  # in BREAKDOWN_FRAME_COLUMNS' order
        for value, entry in breakdown_with_ceiling(metrics_dict, column).items()
    }
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=BREAKDOWN_FRAME_COLUMNS)
    frame.index.name = column
    return frame.sort_values("informativity %", ascending=False, kind="stable")


def _ci_text(ci) -> str:
    low, high = ci or (None, None)
    return "n/a" if low is None or high is None else f"[{_percent(low)}, {_percent(high)}]"


def _markdown_section(title: str, header: list[str], rows: list[list[str]]) -> str:
    return f"### {title}\n\n{_markdown_table(header, rows)}"


def _markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|",
    ]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def _latex_escape(text: str) -> str:
    replacements = {
        "\\": r"\textbackslash{}",
        "&": r"\&",
        "%": r"\%",
        "_": r"\_",
        "#": r"\#",
        "$": r"\$",
        "{": r"\{",
        "}": r"\}",
    }
    return "".join(replacements.get(char, char) for char in str(text))


def _latex_table(title: str, header: list[str], rows: list[list[str]]) -> str:
    lines = [
        "\\begin{table}[ht]",
        "\\centering",
        f"\\caption{{{_latex_escape(title)}}}",
        "\\begin{tabular}{l" + "r" * (len(header) - 1) + "}",
        "\\toprule",
        " & ".join(_latex_escape(cell) for cell in header) + " \\\\",
        "\\midrule",
        *(" & ".join(_latex_escape(cell) for cell in row) + " \\\\" for row in rows),
        "\\bottomrule",
        "\\end{tabular}",
        "\\end{table}",
    ]
    return "\n".join(lines)


def write_report(metrics_dict: dict, out_dir) -> dict[str, Path]:
    """Write metrics.json, metrics.md, metrics.tex and (when the metrics have a "per_sound"
    table) per_sound.csv into `out_dir`; returns their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    per_sound = metrics_dict.get("per_sound")
    metrics_dict = {key: value for key, value in metrics_dict.items() if key != "per_sound"}
    markdown, latex = format_tables(metrics_dict)
    paths = {
        "json": out_dir / "metrics.json",
        "markdown": out_dir / "metrics.md",
        "latex": out_dir / "metrics.tex",
    }
    if per_sound:
        paths["per_sound"] = write_text(out_dir / PER_SOUND_FILE, csv_text(per_sound))
    write_json(paths["json"], metrics_dict)
    write_text(paths["markdown"], markdown)
    write_text(paths["latex"], latex)
    return paths


def csv_text(columns: dict[str, list]) -> str:
    """CSV of equally long columns, a header row first."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(zip(*columns.values(), strict=True))
    return text.getvalue()


def ceiling_rows(ceilings: dict) -> tuple[list[str], list[list[str]]]:
    """The informativity classifiers' ceilings (an informativity run's metrics.json) per
    class: true-positive rate on real images of the class, false-positive rates on other
    classes' images and on degraded images, balanced accuracy (all %, rounded)."""
    header = ["Class", "TPR (own class) %", "FPR (other classes) %", "FPR (degraded) %",
              "Balanced accuracy %"]  # fmt: skip
    columns = ("true_positive_rate", "false_positive_rate", "false_positive_rate_degraded",
               "balanced_accuracy")  # fmt: skip
    rows = [
        [name, *(_percent(ceilings[column][index]) for column in columns)]
        for index, name in enumerate(ceilings["classes"])
    ]
    means = [ceilings[f"mean_{c}"] for c in columns[:3]]
    rows.append(
        [
            "mean",
            *map(_percent, means),
            _percent(sum(ceilings["balanced_accuracy"]) / len(ceilings["classes"])),
        ]
    )
    return header, rows


def ceiling_markdown(ceilings: dict) -> str:
    """`ceiling_rows` as a Markdown table, with the K-way classifier's accuracy under it."""
    table = _markdown_table(*ceiling_rows(ceilings))
    return f"{table}\n\nK-way classifier accuracy on real test images: {_percent(ceilings['kway_accuracy'])}%\n"


def comparison_frame(rows: dict):
    """Generator rows of several GAN runs (evaluate.generator_row, keyed by run directory)
    as a pandas table indexed by the runs' folder names."""
    import pandas as pd

    return pd.DataFrame({Path(run).name: row for run, row in rows.items()}).T
