"""JupyterLab driven by headless Chromium, for the real-browser test of the notebooks.

Only the system's browser is used (Debian packages `chromium` and `chromium-driver`): the
driver path is given explicitly, so Selenium never tries to download one.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import datetime
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
INSTALL_HINT = (
    "install them as root: apt-get update && apt-get install -y --no-install-recommends "
    "chromium chromium-driver (.ci/run does it)"
)
# The network is closed: without these flags Chromium's background services retry noisily.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
)
# JupyterLab settings for a quiet, deterministic page: every cell stays in the DOM (no
# windowing), no news toast, no update check, no extension manager reaching PyPI.
LAB_SETTINGS = {"@jupyterlab/notebook-extension:tracker": {"windowingMode": "none"}}
LAB_DISABLED_PLUGINS = ("@jupyterlab/apputils-extension:announcements",)
LAB_OPTIONS = (
    "--ServerApp.ip=127.0.0.1",
    "--ServerApp.port_retries=0",
    "--ServerApp.open_browser=False",
    "--ServerApp.allow_root=True",
    "--ServerApp.terminals_enabled=False",
    "--LabApp.news_url=None",
    "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    "--LabApp.extension_manager=readonly",
)
# ipywidgets' FileUpload keeps its <input type=file> out of the document and clicks it to
# open the system's file dialog; headless there is no dialog, so the click puts the input
# in the page instead, where WebDriver can hand it a file (its change handler is untouched).
EXPOSE_FILE_INPUT = """
if (!window.__s2iExposeFileInput) {
    const click = HTMLInputElement.prototype.click;
    HTMLInputElement.prototype.click = function () {
        if (this.type !== 'file') { return click.call(this); }
        this.value = '';
        this.id = 's2i-file-input';
        this.style.display = 'block';
        document.body.appendChild(this);
    };
    window.__s2iExposeFileInput = true;
}
"""


def browser_missing() -> str:
    """Why the browser test cannot run here ('' when it can)."""
    absent = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.is_file()]
    if absent:
        return f"{' and '.join(absent)} missing; {INSTALL_HINT}"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium missing: pip install -e '.[dev]'"
    return ""


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(condition, timeout: float, what: str, interval: float = 0.5):
    """Poll `condition` until it returns something truthy; TimeoutError naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout:.0f} s for {what}")
        time.sleep(interval)


class JupyterLab:
    """A JupyterLab server on a free port serving `root`, its state kept under `state`."""

    def __init__(self, root: Path, state: Path, env: dict):
        self.root, self.state, self.env = root, state, env
        self.port = free_port()
        self.token = os.urandom(16).hex()
        self.log_path = state / "jupyterlab.log"
        self.process = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120) -> None:
        """Start the server and wait until its API answers."""
        self._write_settings()
        command = [
            sys.executable,
            "-m",
            "jupyterlab",
            f"--ServerApp.port={self.port}",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root}",
            f"--LabApp.user_settings_dir={self.state / 'settings'}",
            f"--LabApp.workspaces_dir={self.state / 'workspaces'}",
            *LAB_OPTIONS,
        ]
        env = self.env | {
            "JUPYTER_RUNTIME_DIR": str(self.state / "runtime"),
            "JUPYTER_CONFIG_DIR": str(self.state / "config"),
            "JUPYTER_DATA_DIR": str(self.state / "data"),
        }
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                command,
                cwd=self.root,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its kernels in its process group, stopped with it
            )
        wait_for(self._answers, timeout, f"JupyterLab to answer on port {self.port}")

    def _answers(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(
                f"JupyterLab exited with status {self.process.returncode}:\n{self.log_tail()}"
            )
        try:
            with urllib.request.urlopen(f"{self.url}/api/status?token={self.token}", timeout=5):
                return True
        except OSError:
            return False

    def _write_settings(self) -> None:
        for plugin, values in LAB_SETTINGS.items():
            package, name = plugin.split(":")
            path = self.state / "settings" / package / f"{name}.jupyterlab-settings"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        page_config = self.state / "config" / "labconfig" / "page_config.json"
        page_config.parent.mkdir(parents=True, exist_ok=True)
        disabled = dict.fromkeys(LAB_DISABLED_PLUGINS, True)
        page_config.write_text(json.dumps({"disabledExtensions": disabled}))

    def stop(self) -> None:
        """Stop the server and its kernels: SIGTERM to the group, SIGKILL after 20 s."""
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]


def start_chromium(profile: Path):
    """Headless Chromium under WebDriver, from the system's packages only."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(120)
    driver.set_script_timeout(60)
    return driver


class NotebookPage:
    """One notebook open in JupyterLab, seen and driven as a user would.

    The page is read through JavaScript snapshots (texts, attributes), never through held
    element references, which go stale whenever JupyterLab re-renders an output.
    """

    def __init__(self, driver, lab: JupyterLab, shots: Path):
        self.driver, self.lab, self.shots = driver, lab, shots
        self.shots.mkdir(parents=True, exist_ok=True)
        self.started = time.monotonic()
        self.steps: list[str] = []  # "12.3 s opened": when each screenshot was taken

    def open(self, name: str, timeout: float = 120) -> None:
        """Open the notebook and wait until its cells show and its kernel is idle."""
        self.driver.get(f"{self.lab.url}/lab/tree/{name}?token={self.lab.token}")
        wait_for(self.cells, timeout, f"{name} to show its cells")
        wait_for(self.kernel_ready, timeout, "the notebook's kernel to be idle")

    def kernel_ready(self) -> bool:
        """A kernel is attached to the notebook and idle (Run All before it asks for one)."""
        name, state = self.kernel()
        return name not in ("", "No Kernel") and state == "Idle"

    def texts(self, selector: str) -> list[str]:
        """The text of every element matching the CSS `selector`, in document order."""
        return self.driver.execute_script(
            "return Array.from(document.querySelectorAll(arguments[0]), e => e.innerText)",
            selector,
        )

    def attribute(self, selector: str, name: str) -> str:
        """Attribute `name` of the first element matching `selector` ('' if none)."""
        return self.driver.execute_script(
            "const e = document.querySelector(arguments[0]);"
            "return (e && e.getAttribute(arguments[1])) || ''",
            selector,
            name,
        )

    def elements(self, selector: str) -> list:
        """The elements matching `selector`, to act on at once (click, type)."""
        from selenium.webdriver.common.by import By

        return self.driver.find_elements(By.CSS_SELECTOR, selector)

    def kernel(self) -> tuple[str, str]:
        """The status bar's kernel name and state, e.g. ('Python 3 (ipykernel)', 'Idle')."""
        items = [t for t in self.texts(".jp-StatusBar-Widget span") if " | " in t]
        name, _, state = (items[0] if items else "").rpartition(" | ")
        return name, state

    def dialog(self) -> str:
        """The text of an open dialog ('' when none is)."""
        return " ".join(self.texts(".jp-Dialog"))

    def kernel_status(self) -> str:
        """The toolbar's kernel state: idle, busy, starting, connecting, ... ('' before)."""
        return self.attribute(".jp-Notebook-ExecutionIndicator", "data-status")

    def prompts(self) -> list[str]:
        """The code cells' prompts: '[3]:' ran, '[*]:' queued or running, '[ ]:' not run."""
        return [t.strip() for t in self.texts(".jp-Notebook .jp-CodeCell .jp-InputPrompt")]

    def cells(self) -> list[str]:
        """The text of the notebook's cells (source and outputs), in order."""
        return self.texts(".jp-Notebook .jp-Cell")

    def errors(self) -> list[str]:
        """Tracebacks shown anywhere in the notebook (cell outputs and Output widgets)."""
        return [t for t in self.texts(".jp-OutputArea-output") if "Traceback" in t]

    def menu(self, menu: str, item: str) -> None:
        """Click `menu` in the menu bar, then its entry `item`."""
        from selenium.webdriver.common.by import By

        def find(path):
            return self.driver.find_elements(By.XPATH, path)

        bar = f"//li[contains(@class,'lm-MenuBar-item')][.//div[text()='{menu}']]"
        wait_for(lambda: find(bar), 30, f"the {menu} menu")[0].click()
        entry = f"//li[contains(@class,'lm-Menu-item')][.//div[text()='{item}']]"
        wait_for(lambda: find(entry), 30, f"{menu} > {item}")[0].click()

    def run_all(self, timeout: float) -> list[str]:
        """Run > Run All Cells, then wait until every cell ran or the run stopped."""
        self.menu("Run", "Run All Cells")
        wait_for(lambda: "[*]:" in self.prompts(), 30, "Run All to queue the cells", 0.1)

        def finished():
            if self.dialog():
                raise AssertionError(f"a dialog interrupted Run All: {self.dialog()}")
            return self.kernel_status() == "idle" and "[*]:" not in self.prompts()

        wait_for(finished, timeout, "Run All to finish")
        return self.prompts()

    def scroll_to(self, selector: str) -> None:
        self.driver.execute_script(
            "document.querySelector(arguments[0]).scrollIntoView({block: 'center'})", selector
        )

    def screenshot(self, name: str) -> Path:
        """Save what the page shows now as the next numbered screenshot; log the time."""
        self.steps.append(f"{time.monotonic() - self.started:6.1f} s {name}")
        path = self.shots / f"{len(self.steps):02d}-{name}.png"
        self.driver.save_screenshot(str(path))
        return path

    def keep_artefacts(self, folder: Path) -> Path:
        """Screenshots so far and of the page now, the browser console, the server log, the
        page's text and the step times, copied to `folder`."""
        folder.mkdir(parents=True, exist_ok=True)
        for shot in self.shots.glob("*.png"):
            shutil.copy(shot, folder / shot.name)
        with contextlib.suppress(Exception):
            self.driver.save_screenshot(str(folder / "last.png"))
        with contextlib.suppress(Exception):
            console = self.driver.get_log("browser")
            (folder / "console.log").write_text("".join(f"{json.dumps(e)}\n" for e in console))
        with contextlib.suppress(Exception):
            text = self.driver.execute_script("return document.body.innerText")
            (folder / "page.txt").write_text(text)
        shutil.copy(self.lab.log_path, folder / "jupyterlab.log")
        (folder / "steps.txt").write_text("".join(f"{step}\n" for step in self.steps))
        return folder


class ImagineWidgets:
    """The live controls of the imagine notebook: dropdown, file upload, sliders, output."""

    OUTPUT = ".widget-output"

    def __init__(self, page: NotebookPage):
        self.page = page

    def dropdown_options(self) -> list[str]:
        return self.page.texts(".widget-dropdown select option")

    def upload_label(self) -> str:
        labels = self.page.texts("button.widget-upload")
        return labels[0].strip() if labels else ""

    def sliders(self) -> int:
        return len(self.page.texts(".widget-slider"))

    def slider_readouts(self) -> dict[str, str]:
        """Each slider's label -> the value it shows."""
        labels = self.page.texts(".widget-slider .widget-label")
        return dict(zip(labels, self.page.texts(".widget-slider .widget-readout"), strict=True))

    def nudge_slider(self, index: int, presses: int) -> None:
        """Move slider `index` by `presses` keyboard steps (right: up) as a user would:
        focus its handle, press the arrow key."""
        from selenium.webdriver.common.keys import Keys

        handle = self.page.elements(".widget-slider .noUi-handle")[index]
        handle.click()
        key = Keys.ARROW_RIGHT if presses > 0 else Keys.ARROW_LEFT
        handle.send_keys(key * abs(presses))

    def output_text(self) -> str:
        return "\n".join(self.page.texts(self.OUTPUT))

    def audio_players(self) -> int:
        return len(self.page.texts(f"{self.OUTPUT} audio"))

    def image(self) -> str:
        """The data URL of the picture in the output widget ('' when there is none)."""
        return self.page.attribute(f"{self.OUTPUT} img", "src")

    def wait_for_text(self, text: str, timeout: float) -> str:
        """The output widget's text once it shows `text`."""

        def shown():
            output = self.output_text()
            return output if text in output else ""

        return wait_for(shown, timeout, f"the output widget to print {text!r}")

    def wait_for_new_image(self, before: str, timeout: float) -> str:
        """The output's picture once it differs from `before`, the kernel idle again."""

        def redrawn():
            image = self.image()
            idle = self.page.kernel_status() == "idle"
            return image if image and image != before and idle else ""

        return wait_for(redrawn, timeout, "the output widget to draw a new image")

    def choose(self, index: int) -> str:
        """Select the dropdown's option `index` as a user would; its label."""
        from selenium.webdriver.support.ui import Select

        menu = Select(self.page.elements(".widget-dropdown select")[0])
        menu.select_by_index(index)
        return menu.first_selected_option.text

    def upload(self, path: Path) -> None:
        """Click the FileUpload button and give the file input `path`."""
        self.page.driver.execute_script(EXPOSE_FILE_INPUT)
        self.page.elements("button.widget-upload")[0].click()
        inputs = wait_for(lambda: self.page.elements("#s2i-file-input"), 10, "the file input")
        inputs[0].send_keys(str(path))


def artefact_folder(repo: Path) -> Path:
    """Where a failing run's screenshots go: $S2I_BROWSER_ARTIFACTS or test-artifacts/browser."""
    base = Path(os.environ.get("S2I_BROWSER_ARTIFACTS", repo / "test-artifacts" / "browser"))
    return base / datetime.now().strftime("%Y%m%d-%H%M%S")
