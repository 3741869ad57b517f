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
