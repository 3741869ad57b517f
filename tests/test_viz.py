"""Figures are deterministic files: the same content gives the same PNG and PDF bytes."""

from __future__ import annotations

import os
import re
import struct
import subprocess
import sys
import textwrap

import matplotlib
import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Workbook plots of every kind (seaborn lines, heatmap with text, images, non-ASCII text),
# saved by the workbook's saver; once with embedded TrueType subsets (subset tags).
SAVE_FIGURES = textwrap.dedent(
    """
    import sys

    import matplotlib

    matplotlib.use("Agg")
    import numpy as np
    import pandas as pd

    from s2ilib import viz

    folder = sys.argv[1]
    rng = np.random.default_rng(0)
    stats = pd.DataFrame({"step": np.arange(20), "loss": rng.random(20), "val_loss": rng.random(20)})
    viz.save_figure(viz.plot_curves(stats, ["loss", "val_loss"], "loss ≥ 0 (µ, −)"), "curves", folder)
    viz.save_figure(viz.plot_confusion(rng.integers(0, 9, (4, 4)), list("abcd"), "K-way"), "confusion", folder)
    images = rng.integers(0, 256, (3, 96, 96, 3), dtype=np.uint8)
    viz.save_figure(viz.plot_imagined(images[0, :, :, 0], images, "imagined"), "imagined", folder)
    matplotlib.rcParams["pdf.fonttype"] = 42
    viz.save_figure(viz.plot_curves(stats, ["loss"], "TrueType Ωmega"), "truetype", folder)
    """
)
NAMES = ("curves", "confusion", "imagined", "truetype")


def _save_in_new_process(folder, epoch: str, hash_seed: str) -> None:
    """Run the saving script in a fresh interpreter with its own clock and hash seed."""
    env = {
        **os.environ,
        "PYTHONPATH": REPO_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
        "SOURCE_DATE_EPOCH": epoch,  # matplotlib dates its PDFs from this when it is set
        "PYTHONHASHSEED": hash_seed,
        "MPLBACKEND": "Agg",
    }
    result = subprocess.run(
        [sys.executable, "-c", SAVE_FIGURES, str(folder)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def two_savings(tmp_path_factory):
    """The same figures saved by two processes that differ in date and hash seed."""
    first, second = tmp_path_factory.mktemp("first"), tmp_path_factory.mktemp("second")
    _save_in_new_process(first, "946684800", "1")  # 2000-01-01
    _save_in_new_process(second, "1767225600", "2")  # 2026-01-01
    return first, second


@pytest.mark.parametrize("suffix", [".png", ".pdf"])
def test_same_figure_gives_same_bytes_in_two_processes(two_savings, suffix):
    first, second = two_savings
    for name in NAMES:
        written = (first / f"{name}{suffix}").read_bytes()
        assert written, name
        assert written == (second / f"{name}{suffix}").read_bytes(), f"{name}{suffix} differs"


def _png_chunk_types(data: bytes) -> list[bytes]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    types, offset = [], 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        types.append(data[offset + 4 : offset + 8])
        offset += 12 + length
    return types


def test_no_version_or_date_in_the_bytes(two_savings):
    first, _ = two_savings
    versions = {matplotlib.__version__.encode(), b"Matplotlib", b"matplotlib.org"}
    date_keys = (b"CreationDate", b"ModDate", b"D:19", b"D:20")
    for name in NAMES:
        pdf = (first / f"{name}.pdf").read_bytes()
        png = (first / f"{name}.png").read_bytes()
        assert pdf.startswith(b"%PDF-")
        for needle in (*versions, *date_keys, b"Producer", b"Creator"):
            assert needle not in pdf, (name, needle)
        assert not re.search(rb"D:\d{8}", pdf), name
        # PNG text and time chunks are where a version or date would go
        chunks = _png_chunk_types(png)
        assert not {b"tEXt", b"iTXt", b"zTXt", b"tIME"} & set(chunks), (name, chunks)
        assert not any(needle in png for needle in versions), name


def test_write_figure_refuses_other_formats(tmp_path):
    import matplotlib.pyplot as plt

    from s2ilib.viz import write_figure

    figure = plt.figure()
    with pytest.raises(ValueError, match=r"\.png or \.pdf"):
        write_figure(figure, tmp_path / "plot.svg")
    plt.close(figure)
    assert not (tmp_path / "plot.svg").exists()


def test_save_figure_writes_png_and_pdf(tmp_path):
    import matplotlib.pyplot as plt

    from s2ilib.viz import save_figure

    figure, axis = plt.subplots()
    axis.plot([0, 1], [1, 0])
    paths = save_figure(figure, "line", tmp_path / "figures")
    plt.close(figure)
    assert [p.name for p in paths] == ["line.png", "line.pdf"]
    assert b"CreationDate" not in paths[1].read_bytes()


def _cielab(rgb):
    """sRGB colours (N, 3) in [0, 1] -> CIELAB (N, 3) under D65."""
    import numpy as np

    rgb = np.asarray(rgb, dtype=np.float64)
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    to_xyz = np.array(
        [[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]
    )
    xyz = linear @ to_xyz.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], 1)


def _closest_pair(colours) -> float:
    """The smallest CIE76 colour difference between two colours of a palette."""
    import numpy as np

    lab = _cielab(colours)
    distances = np.linalg.norm(lab[:, None] - lab[None], axis=2)
    return float(distances[np.triu_indices(len(lab), 1)].min())


# Two colours closer than this (CIE76; about ten just-noticeable differences) are hard to
# tell apart as small, half-transparent dots: husl's ten hues of one lightness fall below it.
DISTINCT_COLOURS = 25.0


def test_the_class_palette_gives_ten_clearly_distinct_colours():
    import seaborn as sns

    from s2ilib.viz import class_palette

    assert _closest_pair(class_palette(10)) > DISTINCT_COLOURS
    assert _closest_pair(sns.color_palette("husl", 10)) < DISTINCT_COLOURS  # what it replaced
    assert class_palette(5) == class_palette(10)[:5]  # VEGAS's classes: the same first colours
    many = class_palette(14)  # beyond ten classes: evenly spread hues, every one its own
    assert len(set(many)) == 14 and _closest_pair(many) > 5


def test_every_per_class_figure_colours_its_classes_with_the_class_palette():
    import types

    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.colors import to_rgb

    from s2ilib import viz

    classes = [f"digit {i}" for i in range(10)]
    labels = np.repeat(np.arange(10), 3)
    rng = np.random.default_rng(0)
    palette = [tuple(colour) for colour in viz.class_palette(10)]

    embedding_map = viz.plot_embedding_map(rng.normal(size=(30, 2)), labels, classes, "map")
    dots = embedding_map.axes[0].collections
    assert [tuple(to_rgb(dots_of.get_facecolor()[0])) for dots_of in dots] == palette
    records = types.SimpleNamespace(
        spectrograms=rng.integers(0, 256, (30, 128, 100), dtype=np.uint8), labels=labels,
        split="train",
    )  # fmt: skip
    spectra = viz.plot_mean_spectra(records, classes)
    assert [tuple(to_rgb(line.get_color())) for line in spectra.axes[0].lines] == palette
    for figure in (embedding_map, spectra):  # the legend names each class in its colour
        legend = figure.axes[0].get_legend()
        assert [text.get_text() for text in legend.get_texts()] == classes
        plt.close(figure)


def test_plot_curves_draws_only_the_columns_that_hold_values():
    """A flow run's stats have the GAN's loss columns empty (or absent): no legend entry
    without a line."""
    import matplotlib.pyplot as plt
    import numpy as np
    import pandas as pd

    from s2ilib.viz import plot_curves

    stats = pd.DataFrame({
        "step": np.arange(6), "flow_loss": np.linspace(1, 0.2, 6),
        "val_flow_loss": [np.nan, 0.9, np.nan, 0.5, np.nan, 0.3], "d_loss": np.nan,
    })  # fmt: skip
    columns = ["d_loss", "g_adversarial", "flow_loss", "val_flow_loss"]
    figure = plot_curves(stats, columns, "losses")
    axis = figure.axes[0]
    entries = [text.get_text() for text in axis.get_legend().get_texts()]
    assert entries == ["flow_loss", "val_flow_loss"]
    drawn = [line for line in axis.lines if len(line.get_xdata())]
    assert len(drawn) == len(entries)  # one line with data per entry
    plt.close(figure)
    empty = plot_curves(stats, ["d_loss"], "a GAN's losses in a flow run")
    assert empty.axes[0].get_legend() is None and not any(
        len(line.get_xdata()) for line in empty.axes[0].lines
    )
    plt.close(empty)


def test_show_image_rows_labels_each_row_and_refuses_rows_of_other_lengths():
    import matplotlib.pyplot as plt
    import numpy as np

    from s2ilib.viz import show_image_rows

    rows = {
        "recall off": np.zeros((5, 8, 8, 3), np.uint8),
        "recall on": np.full((5, 8, 8, 3), 255, np.uint8),
    }
    figure = show_image_rows(rows, "zero -> one")
    axis = figure.axes[0]
    assert [label.get_text() for label in axis.get_yticklabels()] == list(rows)
    mosaic = axis.get_images()[0].get_array()
    assert mosaic.shape[:2] == (2 * 10, 5 * 10)  # two rows of five 8-pixel images, padded by 2
    assert mosaic[:8, :8].max() == 0 and mosaic[10:18, :8].min() == 255  # in the given order
    plt.close(figure)
    with pytest.raises(ValueError, match="different shapes"):
        show_image_rows({"a": rows["recall off"], "b": rows["recall on"][:4]})
