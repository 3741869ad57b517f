"""The imagine notebook live in a real browser: JupyterLab on a free port, headless Chromium.

Run alone: `.venv/bin/python -m pytest -m browser tests/test_browser.py`. A failing run keeps
its screenshots, the browser console and the server log under test-artifacts/browser/
($S2I_BROWSER_ARTIFACTS); S2I_BROWSER_KEEP=1 keeps them after a pass too.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

import nbformat
import pytest
import soundfile
from browser import (
    ImagineWidgets,
    JupyterLab,
    NotebookPage,
    artefact_folder,
    browser_missing,
    start_chromium,
    wait_for,
)

from s2ilib.datasets.avdigits import AVDIGITS_DIR

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "07_imagine.ipynb"
# A person saying "seven" (an FSDD clip of the shipped set), uploaded as a WAV of the user's own.
CLIP = min((AVDIGITS_DIR / "audio").glob("fsdd-*_7_*.ogg"))
WHICH_S2ILIB = "import s2ilib\nprint('s2ilib imported from', s2ilib.__file__)"
# Generous bounds (seconds) for a busy 2-core machine, where Run All takes about 30 s
# and a redraw of the tiny run about 3 s.
RUN_ALL_TIMEOUT = 240
WIDGETS_TIMEOUT = 30
REDRAW_TIMEOUT = 90

MISSING = browser_missing()
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(bool(MISSING), reason=f"real-browser test skipped: {MISSING}"),
]


def notebook_copy(folder: Path, decoder_run: Path, outputs: Path) -> str:
    """NOTEBOOK with its parameters injected (not executed) and, last, a cell that says
    which s2ilib the kernel imported; its file name in `folder`."""
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    parameters = {
        "decoder_run": str(decoder_run),
        "device": "cpu",
        "report_dir": str(outputs / "report"),
        "figures_dir": str(outputs / "figures"),
    }
    notebook = parameterize_notebook(load_notebook_node(str(NOTEBOOK)), parameters)
    notebook.cells.append(nbformat.v4.new_code_cell(WHICH_S2ILIB))
    nbformat.write(notebook, folder / NOTEBOOK.name)
    return NOTEBOOK.name


def upload_files(folder: Path) -> tuple[Path, Path]:
    """A real WAV (a shipped clip, converted) and a text file named like one."""
    folder.mkdir()
    wave, rate = soundfile.read(CLIP)
    sound = folder / "spoken-seven.wav"
    soundfile.write(sound, wave, rate)
    not_sound = folder / "notes.wav"
    not_sound.write_text("shopping list: eggs, flour\n")
    return sound, not_sound


@pytest.fixture
def lab(tmp_path):
    """JupyterLab serving tmp_path/lab; its kernels import this checkout's s2ilib."""
    root = tmp_path / "lab"
    root.mkdir()
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env = os.environ | {"PYTHONPATH": path, "OMP_NUM_THREADS": "1"}
    server = JupyterLab(root, tmp_path / "state", env)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def page(lab, tmp_path):
    """A headless Chromium page on the server; its artefacts kept if the test fails."""
    driver = start_chromium(tmp_path / "profile")
    try:
        yield NotebookPage(driver, lab, tmp_path / "screenshots")
    finally:
        driver.quit()


@contextlib.contextmanager
def artefacts_kept(page: NotebookPage):
    """Keep the screenshots and logs in the repository's test-artifacts on any failure,
    and after a pass too when S2I_BROWSER_KEEP=1 (to look at what the test saw)."""
    try:
        yield
    except BaseException as error:
        folder = page.keep_artefacts(artefact_folder(REPO))
        message = f"browser test artefacts (screenshots, console, server log): {folder}"
        print(message)
        error.add_note(message)
        raise
    if os.environ.get("S2I_BROWSER_KEEP") == "1":
        print(f"browser test artefacts: {page.keep_artefacts(artefact_folder(REPO))}")


@pytest.mark.parametrize(
    ("run_fixture", "knob", "nudged"),
    [("tiny_gan_run", ("dropout x", "1.00"), "0.50"), ("tiny_flow_run", ("guidance", "2.00"), "1.00")],
    ids=["gan", "flow"],
)  # fmt: skip
def test_imagine_notebook_live_in_jupyterlab(
    run_fixture, knob, nudged, request, lab, page, tmp_path
):
    """Run All, then what a user does: choose a test sound, turn the sampling slider (a
    GAN's dropout, a flow's guidance), upload a recording, upload a file that is not one."""
    run = request.getfixturevalue(run_fixture)
    name = notebook_copy(lab.root, run, tmp_path)
    sound, not_sound = upload_files(tmp_path / "uploads")
    widgets = ImagineWidgets(page)
    with artefacts_kept(page):
        page.open(name)
        page.screenshot("opened")

        prompts = page.run_all(RUN_ALL_TIMEOUT)
        assert not page.errors(), f"Run All showed a traceback:\n{page.errors()[0]}"
        assert all(re.fullmatch(r"\[\d+\]:", p) for p in prompts), f"Run All stopped: {prompts}"
        assert f"s2ilib imported from {REPO / 's2ilib'}" in page.cells()[-1]

        first = wait_for(widgets.image, WIDGETS_TIMEOUT, "the live controls' first picture")
        page.scroll_to(widgets.OUTPUT)
        page.screenshot("ran")
        assert first.startswith("data:image/png"), f"the output widget shows {first[:40]!r}"
        options = widgets.dropdown_options()
        assert len(options) > 1, f"the test-sound dropdown offers {options}"
        assert widgets.upload_label() == "your file (0)"
        assert widgets.sliders() == 2

        label = widgets.choose(len(options) // 2)
        picked = widgets.wait_for_new_image(first, REDRAW_TIMEOUT)
        page.screenshot("dropdown")
        assert "Traceback" not in widgets.output_text(), f"redraw for {label!r} failed"

        setting, value = knob
        assert widgets.slider_readouts()[setting] == value  # the run's own setting first
        widgets.nudge_slider(1, -2)
        if run_fixture == "tiny_flow_run":  # a 2-step GAN may draw flat grey at any dropout
            chosen = widgets.wait_for_new_image(picked, REDRAW_TIMEOUT)
        else:
            chosen = wait_for(lambda: page.kernel_status() == "idle" and widgets.image(),
                              REDRAW_TIMEOUT, "the redraw after the slider")  # fmt: skip
        page.screenshot("slider")
        assert widgets.slider_readouts()[setting] == nudged
        assert "Traceback" not in widgets.output_text(), f"redraw at {setting} {nudged} failed"

        widgets.upload(sound)
        widgets.wait_for_new_image(chosen, REDRAW_TIMEOUT)
        page.screenshot("uploaded-wav")
        assert widgets.upload_label() == "your file (1)"
        assert "cannot read" not in widgets.output_text() and widgets.audio_players() == 1

        widgets.upload(not_sound)
        widgets.wait_for_text(f"cannot read {not_sound.name}: ", REDRAW_TIMEOUT)
        page.screenshot("uploaded-text")
        assert "Traceback" not in widgets.output_text()
        assert not widgets.image(), "the picture of the previous file stayed"
    print("\n".join(page.steps))
