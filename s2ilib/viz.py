"""Plots and tables the notebooks show: data exploration, grids, curves.

Every plotting function returns the matplotlib Figure, so a notebook can show it and
`save_figure` can write it to figures/, byte for byte the same for the same content.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from s2ilib.datasets import DataSet
from s2ilib.datasets.sounds import examples_per_class
from s2ilib.formats import RecordSet

MEAN_SPECTRUM_MAX_RECORDS = 4000  # records per class averaged for a mean spectrum (bounded IO)
FIGURE_DPI = 150  # resolution of the PNG figures (the PDFs are vector)
# Per-class colours: tab10's ten hues are told apart at a glance (and by more colour-blind
# readers) where evenly spaced husl hues of one lightness run into their neighbours.
CLASS_PALETTE = "tab10"
CLASS_PALETTE_FALLBACK = "husl"  # more classes than CLASS_PALETTE has colours: evenly spread hues
# Metadata matplotlib writes by default that changes with the clock or the installed version;
# None leaves the key out, so tracked figures change only when their content does.
_STABLE_METADATA = {
    ".png": {"Software": None},
    ".pdf": {"Creator": None, "Producer": None, "CreationDate": None, "ModDate": None},
}


def class_palette(count: int) -> list[tuple[float, float, float]]:
    """One RGB colour per class for every per-class figure: CLASS_PALETTE's distinct hues
    for up to 10 classes, CLASS_PALETTE_FALLBACK's evenly spread hues for more."""
    if count <= len(sns.color_palette(CLASS_PALETTE)):
        return sns.color_palette(CLASS_PALETTE, count)
    return sns.color_palette(CLASS_PALETTE_FALLBACK, count)


def save_figure(figure, name: str, figures_dir: str | os.PathLike = "figures") -> list[Path]:
    """Save `figure` as figures_dir/name.png and name.pdf (deterministic bytes); returns the paths."""
    folder = Path(figures_dir)
    return [write_figure(figure, folder / f"{name}{suffix}") for suffix in (".png", ".pdf")]


def write_figure(figure, path, dpi: int = FIGURE_DPI, tight: bool = True) -> Path:
    """Write one PNG or PDF figure with no date or version in it: same content, same bytes.

    Arguments: tight crops the canvas to the drawn content (bbox_inches="tight").
    """
    path = Path(path)
    metadata = _STABLE_METADATA.get(path.suffix.lower())
    if metadata is None:
        raise ValueError(f"{path}: figures are written as .png or .pdf, not {path.suffix!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {"bbox_inches": "tight"} if tight else {}
    figure.savefig(path, dpi=dpi, metadata=metadata, **options)
    return path


def class_balance_table(data: DataSet) -> pd.DataFrame:
    """Sounds per class (rows) and split (columns), with totals."""
    counts = {
        split: np.bincount(records.labels, minlength=data.num_classes)
        for split, records in data.sounds.items()
    }
    table = pd.DataFrame(counts, index=pd.Index(data.classes, name="class"))
    table["total"] = table.sum(axis=1)
    return table


def plot_class_balance(data: DataSet, title: str = "Sounds per class and split"):
    """Grouped bars of `class_balance_table`."""
    long = class_balance_table(data).drop(columns="total").reset_index()
    long = long.melt(id_vars="class", var_name="split", value_name="sounds")
    figure, axis = plt.subplots(figsize=(max(6, 0.7 * data.num_classes + 3), 3.5))
    sns.barplot(long, x="class", y="sounds", hue="split", ax=axis)
    axis.set_title(title)
    axis.tick_params(axis="x", rotation=30)
    figure.tight_layout()
    return figure


def metadata_table(records: RecordSet, rows: str, columns: str = "split") -> pd.DataFrame:
    """Counts of sounds by two metadata columns (e.g. language x engine)."""
    frame = pd.DataFrame({k: np.asarray(v) for k, v in records.extra.items()})
    frame["split"] = records.split
    return pd.crosstab(frame[rows], frame[columns], margins=True)


def source_table(data: DataSet, column: str) -> pd.DataFrame:
    """Sounds per value of a metadata column (rows) and split (columns), all splits together."""
    frames = [
        pd.DataFrame({column: np.asarray(r.extra[column]).astype(str), "split": split})
        for split, r in data.sounds.items()
        if column in r.extra
    ]
    if not frames:
        raise ValueError(f"{data.root}: the sounds have no '{column}' column")
    every = pd.concat(frames)
    return pd.crosstab(every[column], every["split"])[list(data.sounds)]


def plot_voice_sources(data: DataSet):
    """Who speaks (AV-Digits): sounds per engine (humans as `fsdd`) and per language, stacked
    by split, so that a glance shows which voices only val/test have."""
    engines, languages = source_table(data, "engine"), source_table(data, "language")
    languages = languages.loc[languages.sum(axis=1).sort_values(ascending=False).index]
    figure, axes = plt.subplots(
        1, 2, figsize=(12, max(3.5, 0.17 * len(languages) + 1)),
        gridspec_kw={"width_ratios": [1, 1.6]},
    )  # fmt: skip
    engines.plot.barh(stacked=True, ax=axes[0], legend=False)
    axes[0].set_title("Sounds per engine (fsdd = human speakers)")
    languages.plot.barh(stacked=True, ax=axes[1])
    axes[1].set_title(f"Sounds per language ({len(languages)} languages)")
    axes[1].tick_params(axis="y", labelsize=7)
    for axis in axes:
        axis.invert_yaxis()
        axis.set_xlabel("sounds")
        axis.set_ylabel("")
    figure.tight_layout()
    return figure


def plot_examples(data: DataSet, split: str = "train", per_class: int = 2, seed: int = 0):
    """One row per class: spectrograms (image orientation), and an image of the class."""
    sounds = data.split(split)
    picks = examples_per_class(sounds, per_class, seed)
    has_images = data.pairing != "none"
    columns = per_class * (2 if has_images else 1)
    figure, axes = plt.subplots(
        data.num_classes, columns, figsize=(1.9 * columns, 1.5 * data.num_classes), squeeze=False
    )
    images = _example_images(data, split, sounds, picks, seed) if has_images else None
    for row, label in enumerate(range(data.num_classes)):
        mine = np.flatnonzero(sounds.labels[picks] == label)
        for slot in range(per_class):
            spectrogram_axis = axes[row, slot * (2 if has_images else 1)]
            if slot < len(mine):
                spectrogram_axis.imshow(
                    sounds.spectrograms[picks[mine[slot]]],
                    cmap="magma",
                    vmin=0,
                    vmax=255,
                    aspect="auto",
                )
                if has_images:
                    image = images[mine[slot]]
                    axes[row, slot * 2 + 1].imshow(
                        image.squeeze(), cmap="gray" if image.shape[-1] == 1 else None
                    )
        axes[row, 0].set_ylabel(data.classes[label], rotation=0, ha="right", va="center")
    for axis in axes.flat:
        axis.set_xticks([])
        axis.set_yticks([])
    figure.suptitle(
        f"{split}: spectrogram (low frequencies at the bottom)" + (" | image" if has_images else "")
    )
    figure.tight_layout()
    return figure


def _example_images(data: DataSet, split: str, sounds: RecordSet, picks: np.ndarray, seed: int):
    """The paired frame of each picked sound, or a random image of its class (class pairing)."""
    pool = data.image_pool(split)
    if data.pairing == "record":
        return pool.images[picks]
    rng = np.random.default_rng(seed)
    chosen = [rng.choice(np.flatnonzero(pool.labels == sounds.labels[i])) for i in picks]
    return pool.images[np.asarray(chosen)]


def mean_spectra(records: RecordSet, num_classes: int, seed: int = 0) -> np.ndarray:
    """(num_classes, 128) mean grey level per mel band (time-averaged), low band first.

    At most MEAN_SPECTRUM_MAX_RECORDS random records per class are read, in sorted order
    (memory-mapped and JPEG sets are then read forwards, in one batch per class).
    """
    rng = np.random.default_rng(seed)
    spectra = np.zeros((num_classes, records.spectrograms.shape[1]))
    for label in range(num_classes):
        members = np.flatnonzero(records.labels == label)
        if len(members) == 0:
            spectra[label] = np.nan
            continue
        if len(members) > MEAN_SPECTRUM_MAX_RECORDS:
            members = np.sort(rng.choice(members, MEAN_SPECTRUM_MAX_RECORDS, replace=False))
        batch = np.asarray(records.spectrograms[members], dtype=np.float32)
        spectra[label] = batch.mean(axis=(0, 2))[::-1]  # image row 0 is the top band
    return spectra


def plot_mean_spectra(records: RecordSet, classes: list[str], title: str | None = None):
    """Mean spectrum per class against mel band (low to high)."""
    spectra = mean_spectra(records, len(classes))
    figure, axis = plt.subplots(figsize=(7, 3.5))
    palette = class_palette(len(classes))
    for label, name in enumerate(classes):
        axis.plot(spectra[label], label=name, color=palette[label])
    axis.set_xlabel("mel band (low -> high)")
    axis.set_ylabel("mean grey level")
    axis.set_title(title or f"Mean spectrum per class ({records.split})")
    axis.legend(fontsize=7, ncol=2 if len(classes) > 5 else 1)
    figure.tight_layout()
    return figure


def image_grid(images: np.ndarray, columns: int, pad: int = 2, fill: int = 255) -> np.ndarray:
    """uint8 (N, H, W, C) -> one (rows*(H+pad), columns*(W+pad), C) mosaic, row-major."""
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    count, height, width, channels = images.shape
    rows = -(-count // columns)
    padded = np.full((rows * columns, height + pad, width + pad, channels), fill, np.uint8)
    padded[:count, :height, :width] = images
    grid = padded.reshape(rows, columns, height + pad, width + pad, channels)
    return grid.transpose(0, 2, 1, 3, 4).reshape(
        rows * (height + pad), columns * (width + pad), channels
    )


def plot_curves(stats: pd.DataFrame, columns: list[str], title: str, x: str = "step"):
    """Loss curves (seaborn lines) of the given stats columns against `x`; a column absent
    or without a single value (a GAN's losses in a flow run's stats) gets no legend entry."""
    present = [c for c in columns if c in stats and stats[c].notna().any()]
    long = stats.melt(id_vars=x, value_vars=present, var_name="curve", value_name="value")
    figure, axis = plt.subplots(figsize=(7, 3.5))
    sns.lineplot(long, x=x, y="value", hue="curve", ax=axis)
    axis.set_title(title)
    figure.tight_layout()
    return figure


def plot_recall_choice(
    choice: dict, title: str = "Recall by the front: the validation split's choice"
):
    """The recall's class accuracy on the validation split at each front weight (a flow
    run's recall.json: s2ilib.train.flow.choose_front_weight), the chosen one marked."""
    accuracy = {float(w): a for w, a in choice["validation_accuracy"].items()}
    figure, axis = plt.subplots(figsize=(5.5, 3.2))
    axis.plot(list(accuracy), list(accuracy.values()), marker="o", color="0.3")
    chosen = float(choice["front_weight"])
    axis.plot([chosen], [accuracy[chosen]], marker="o", markersize=11, color="C3",
              linestyle="none", label=f"chosen: {chosen:g}")  # fmt: skip
    axis.set_xlabel("front weight (0: the embedding alone, 1: the front alone)")
    axis.set_ylabel("recalled class accuracy")
    axis.set_title(title, fontsize=10)
    axis.legend(loc="lower right")
    figure.tight_layout()
    return figure


def plot_reconstructions(originals: np.ndarray, reconstructions: np.ndarray, titles=None):
    """Two rows: original spectrograms above their reconstructions (uint8 (N, 128, 100))."""
    count = len(originals)
    figure, axes = plt.subplots(2, count, figsize=(1.6 * count, 3.6), squeeze=False)
    for column in range(count):
        for row, source in enumerate((originals, reconstructions)):
            axes[row, column].imshow(source[column], cmap="magma", vmin=0, vmax=255, aspect="auto")
            axes[row, column].set_xticks([])
            axes[row, column].set_yticks([])
        if titles is not None:
            axes[0, column].set_title(str(titles[column]), fontsize=8)
    axes[0, 0].set_ylabel("input")
    axes[1, 0].set_ylabel("reconstruction")
    figure.tight_layout()
    return figure


def plot_embedding_map(coordinates: np.ndarray, labels: np.ndarray, classes: list[str], title: str):
    """Scatter of 2-D embedding coordinates coloured by class."""
    figure, axis = plt.subplots(figsize=(6, 5))
    palette = class_palette(len(classes))
    for label, name in enumerate(classes):
        chosen = labels == label
        axis.scatter(*coordinates[chosen].T, s=8, color=palette[label], label=name, alpha=0.7)
    axis.set_title(title)
    axis.set_xticks([])
    axis.set_yticks([])
    axis.legend(fontsize=7, markerscale=2, ncol=2 if len(classes) > 5 else 1)
    figure.tight_layout()
    return figure


def show_image(image: np.ndarray, title: str = "", scale: float = 1.0):
    """A uint8 image (H, W, C) as a figure without axes."""
    height, width = image.shape[:2]
    figure, axis = plt.subplots(figsize=(scale * width / 40, scale * height / 40))
    axis.imshow(image.squeeze(), cmap="gray" if image.shape[-1] == 1 else None)
    axis.set_title(title)
    axis.axis("off")
    figure.tight_layout()
    return figure


def show_image_blocks(blocks, titles: list[str], classes, labels, scale: float = 1.0):
    """Panels side by side, one per block of uint8 images (N sounds, K draws, H, W, C):
    a row per sound (labelled with its class), a column per draw, one title per panel."""
    if len(blocks) != len(titles):
        raise ValueError(f"{len(blocks)} blocks but {len(titles)} titles")
    count, draws, height, width = np.asarray(blocks[0]).shape[:4]
    figure, axes = plt.subplots(
        1, len(blocks), squeeze=False,
        figsize=(len(blocks) * scale * draws * (width + 2) / 40 + 0.6,
                 scale * count * (height + 2) / 40 + 0.8),
    )  # fmt: skip
    for axis, block, title in zip(axes[0], blocks, titles, strict=True):
        block = np.asarray(block)
        axis.imshow(image_grid(block.reshape(-1, *block.shape[2:]), draws).squeeze())
        axis.set_title(title, fontsize=9)
        axis.set_xticks([])
        axis.set_yticks((np.arange(count) + 0.5) * (height + 2))
        axis.set_yticklabels([str(classes[int(label)]) for label in labels], fontsize=8)
        axis.tick_params(length=0)
        for side in axis.spines.values():
            side.set_visible(False)
    figure.tight_layout()
    return figure


def show_image_rows(rows: dict, title: str = "", scale: float = 1.0):
    """Rows of uint8 images ({label: (N, H, W, C)}, every row as long), one mosaic with
    each row labelled on the left (e.g. an interpolation drawn two ways)."""
    blocks = [np.asarray(images) for images in rows.values()]
    if len({block.shape for block in blocks}) != 1:
        raise ValueError(f"rows of different shapes: {[block.shape for block in blocks]}")
    count, height, width = blocks[0].shape[:3]
    figure, axis = plt.subplots(
        figsize=(
            scale * count * (width + 2) / 40 + 1.2,
            scale * len(blocks) * (height + 2) / 40 + 0.6,
        )
    )
    axis.imshow(image_grid(np.concatenate(blocks), count).squeeze())
    axis.set_title(title)
    axis.set_xticks([])
    axis.set_yticks((np.arange(len(blocks)) + 0.5) * (height + 2), list(rows), fontsize=9)
    axis.tick_params(length=0)
    for side in axis.spines.values():
        side.set_visible(False)
    figure.tight_layout()
    return figure


def plot_sample_grids(paths: list[Path], title: str = "", titles: list[str] | None = None):
    """Sample-grid PNGs side by side, titled by their step (or by `titles`)."""
    from PIL import Image

    grids = [np.asarray(Image.open(path)) for path in paths]
    height, width = grids[0].shape[:2]
    panel_width = 4.5
    figure, axes = plt.subplots(
        1,
        len(grids),
        figsize=(panel_width * len(grids), panel_width * height / width + 0.8),
        squeeze=False,
    )
    for index, (axis, grid) in enumerate(zip(axes[0], grids, strict=True)):
        axis.imshow(grid)
        axis.set_title(titles[index] if titles else paths[index].stem.replace("_", " "))
        axis.axis("off")
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def plot_informativity_bars(metrics: dict, methods=("generator", "nearest_neighbour", "real")):
    """Per-class informativity with 95% intervals, one bar colour per method."""
    classes = metrics["classes"]
    rows = []
    for method in methods:
        summary = metrics["methods"].get(method, {}).get("informativity")
        if not summary:
            continue
        for label, name in enumerate(classes):
            low, high = summary["per_class_ci"][label]
            rows.append(
                {
                    "class": name,
                    "method": method,
                    "value": summary["per_class"][label],
                    "low": low,
                    "high": high,
                }
            )
    frame = pd.DataFrame(rows)
    figure, axis = plt.subplots(figsize=(max(7, 0.8 * len(classes) + 3), 3.8))
    sns.barplot(frame, x="class", y="value", hue="method", ax=axis, errorbar=None)
    for patch_group, (_, group) in zip(
        axis.containers, frame.groupby("method", sort=False), strict=False
    ):
        centres = [patch.get_x() + patch.get_width() / 2 for patch in patch_group]
        values = group["value"].to_numpy()
        errors = np.vstack([values - group["low"].to_numpy(), group["high"].to_numpy() - values])
        axis.errorbar(
            centres,
            values,
            yerr=np.nan_to_num(errors),
            fmt="none",
            ecolor="black",
            capsize=2,
            lw=0.8,
        )
    chance = metrics.get("chance", {}).get("informativity")
    if chance is not None:
        axis.axhline(chance, ls="--", color="grey", lw=1, label="chance")
    axis.set_ylim(0, 1.05)
    axis.set_ylabel("informativity")
    axis.set_title("Informativity per class (95% bootstrap intervals over sounds)")
    axis.legend(fontsize=7)
    axis.tick_params(axis="x", rotation=30)
    figure.tight_layout()
    return figure


def plot_confusion(confusion, classes: list[str], title: str):
    """Row-normalised confusion matrix heatmap (rows: the sound's class)."""
    matrix = np.asarray(confusion, dtype=np.float64)
    matrix = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    figure, axis = plt.subplots(figsize=(0.55 * len(classes) + 2.5, 0.5 * len(classes) + 2))
    sns.heatmap(
        matrix,
        annot=len(classes) <= 10,
        fmt=".2f",
        cmap="Blues",
        vmin=0,
        vmax=1,
        xticklabels=classes,
        yticklabels=classes,
        ax=axis,
        cbar=False,
    )
    axis.set_xlabel("K-way classifier's prediction")
    axis.set_ylabel("class of the sound")
    axis.set_title(title)
    figure.tight_layout()
    return figure


def plot_breakdown(metrics: dict, column: str):
    """Informativity of generated images per value of a metadata column (language, engine)."""
    entries = metrics.get("breakdown", {}).get(column, {})
    rows = [
        {
            "value": value,
            "informativity": e["informativity"]["mean"],
            "sounds": e["num_sounds"],
            "low": (e["informativity"].get("ci") or [np.nan, np.nan])[0],
            "high": (e["informativity"].get("ci") or [np.nan, np.nan])[1],
        }
        for value, e in entries.items()
    ]
    frame = pd.DataFrame(rows)
    figure, axis = plt.subplots(figsize=(max(5, 0.7 * len(frame) + 2), 3.2))
    axis.bar(frame["value"], frame["informativity"], color=sns.color_palette("muted")[0])
    errors = np.vstack(
        [frame["informativity"] - frame["low"], frame["high"] - frame["informativity"]]
    )
    axis.errorbar(
        frame["value"],
        frame["informativity"],
        yerr=np.nan_to_num(errors),
        fmt="none",
        ecolor="black",
        capsize=3,
        lw=0.8,
    )
    for x, (value, count) in enumerate(zip(frame["informativity"], frame["sounds"], strict=True)):
        axis.text(x, min(value + 0.04, 1.0), f"n={count}", ha="center", fontsize=7)
    axis.set_ylim(0, 1.08)
    axis.set_ylabel("informativity")
    axis.set_title(f"Generated images: informativity per {column} (unseen voices)")
    figure.tight_layout()
    return figure


def plot_curves_by(stats: pd.DataFrame, column: str, hue: str, title: str, x: str = "step"):
    """One stats column against `x`, one line per value of `hue` (e.g. per loss)."""
    figure, axis = plt.subplots(figsize=(7, 3.5))
    sns.lineplot(stats, x=x, y=column, hue=hue, ax=axis)
    axis.set_title(title)
    figure.tight_layout()
    return figure


def plot_imagined(spectrogram: np.ndarray, images: np.ndarray, title: str):
    """A spectrogram and the images imagined for it, in one row."""
    figure, axes = plt.subplots(1, len(images) + 1, figsize=(2.2 * (len(images) + 1), 2.4))
    axes[0].imshow(spectrogram, cmap="magma", vmin=0, vmax=255, aspect="auto")
    axes[0].set_title("log-mel (1 s)")
    for axis, image in zip(axes[1:], images, strict=True):
        axis.imshow(image)
    for axis in axes:
        axis.axis("off")
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def plot_voice_groups(metrics: dict):
    """Per kind of voice (human speakers, unseen synthetic voices, the held-out engine):
    informativity of the generated images beside the supervised sound ceiling, 95% CIs."""
    from s2ilib.evaluate import breakdown_with_ceiling

    groups = breakdown_with_ceiling(metrics, "voice_group")
    bars = [
        (group, measure, entry[key], entry[f"{key}_ci"] or [np.nan, np.nan])
        for group, entry in groups.items()
        for measure, key in (("informativity", "informativity"), ("sound ceiling", "ceiling"))
        if entry[key] is not None
    ]
    figure, axis = plt.subplots(figsize=(6.5, 3.4))
    colours = sns.color_palette("muted")
    palette = {"informativity": colours[0], "sound ceiling": colours[1]}
    width, names = 0.38, list(groups)
    for group, measure, value, (low, high) in bars:
        x = names.index(group) + (-width / 2 if measure == "informativity" else width / 2)
        axis.bar(x, value, width, color=palette[measure], label=measure)
        axis.errorbar(x, value, yerr=[[value - low], [high - value]], fmt="none",
                      ecolor="black", capsize=3, lw=0.8)  # fmt: skip
    unique = dict(zip(*reversed(axis.get_legend_handles_labels()), strict=True))  # label: handle
    axis.legend(unique.values(), unique.keys(), fontsize=8)
    axis.set_xticks(range(len(names)), [f"{g}\n{groups[g]['num_sounds']} sounds" for g in names])
    axis.set_ylim(0, 1.1)
    axis.set_title("By kind of voice: informativity and the supervised sound ceiling")
    figure.tight_layout()
    return figure


LISTENING_PLAYER_WIDTH = "11em"  # narrow players, so that one row's engines fit a page


def listening_grid(data: DataSet, picks: list[dict]) -> str:
    """An HTML table of one clip per engine (columns) and language (rows): each an
    IPython.display.Audio player of the clip's own file (an .ogg of a few kB, embedded as
    base64) above its voice, the word said and its class; an empty cell: the engine has no
    voice of that language. picks: datasets.sounds.clips_per_engine_and_language."""
    import html

    from IPython.display import Audio

    from s2ilib.datasets.avdigits import audio_path
    from s2ilib.datasets.avdigits_voices import LANGUAGE_NAMES

    engines = sorted({pick["engine"] for pick in picks})
    languages = sorted({pick["language"] for pick in picks})
    cells = {}
    for pick in picks:
        audio = Audio(filename=str(audio_path(data.root, pick["file"])))
        voice, word = html.escape(pick["voice"]), html.escape(pick["word"])
        digit = html.escape(data.classes[pick["label"]])
        cells[pick["engine"], pick["language"]] = (
            f'<audio controls preload="none" style="width: {LISTENING_PLAYER_WIDTH}">'
            f'<source src="{audio.src_attr()}" type="{audio.mimetype}"></audio>'
            f"<br><small>{voice}: &ldquo;{word}&rdquo; ({digit})</small>"
        )
    head = "".join(f"<th>{html.escape(engine)}</th>" for engine in engines)
    rows = []
    for language in languages:
        name = html.escape(f"{language} ({LANGUAGE_NAMES.get(language, language)})")
        row = "".join(f"<td>{cells.get((engine, language), '')}</td>" for engine in engines)
        rows.append(f"<tr><th>{name}</th>{row}</tr>")
    return f"<table><tr><th>language \\ engine</th>{head}</tr>{''.join(rows)}</table>"
