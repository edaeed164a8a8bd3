"""A real JupyterLab server and a headless Chromium, so the tests can use the notebooks as a learner does.

papermill proves that a notebook runs; it cannot prove that a learner who opens it in
JupyterLab sees a working widget. The fixtures here give the tests what JupyterLab's own UI
tests (galata) use, built from plain parts:

* ``lab_server`` (session): ``python -m jupyter lab`` from this interpreter's environment, on
  127.0.0.1 with a free port and a random token, serving a temporary copy of ``notebooks/``.
  Its configuration, settings, workspaces and runtime files live in a temporary folder, with
  the news and update pop-ups switched off, and notebooks write under a temporary
  ``MTLKIT_RUN_DIR``. It is stopped by its own process id at the end, whatever happens.
* ``browser`` (session): Selenium driving the system's Chromium headless through its
  ``chromedriver`` (Debian: ``apt-get install chromium chromium-driver``; ``scripts/
  ensure-chromium.sh`` does it in CI). Nothing is downloaded: without both programs every
  test here skips and says why. The browser has a fresh profile and reaches only loopback.
* ``lab`` (session): the two together, as a :class:`Lab`.
* ``artifacts`` (autouse): after each test a PNG of the browser window in ``tmp_path``; when
  the test failed, also the browser's console log and the server's log.

:class:`Lab` holds the few page operations the tests share: open a notebook, Run All through
the menu, wait until every code cell has run, and read what the page shows.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import traceback
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = ROOT / "notebooks"

# Generous limits: the CI machine has 2 shared cores, and a kernel start plus Run All of a
# notebook that trains small models can take a minute there.
SERVER_START_TIMEOUT_S = 120
PAGE_TIMEOUT_S = 120
RUN_ALL_TIMEOUT_S = 600
WINDOW_SIZE = (1400, 1000)

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMEDRIVER_NAMES = ("chromedriver",)
# Flags from the issue: a fresh profile is added per session; nothing phones home.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
    "--disable-dev-shm-usage",  # containers often have a tiny /dev/shm
    "--disable-extensions",
    "--disable-default-apps",
    "--no-default-browser-check",
    "--metrics-recording-only",
    # Only loopback resolves: a stray request to the internet fails at once instead of waiting.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
    f"--window-size={WINDOW_SIZE[0]},{WINDOW_SIZE[1]}",
)

# JupyterLab settings for the tests: no news or update toasts (they would cover the page and
# ask the network), every cell kept in the page (the default windowing leaves cells outside the
# viewport out of the DOM, so they could not be inspected), each cell's execution time recorded
# (printed by the tests: where the time goes), and no autosave of the notebook copy.
SETTINGS_OVERRIDES = {
    "@jupyterlab/apputils-extension:notification": {
        "checkForUpdates": False,
        "fetchNews": "false",
        "doNotDisturbMode": True,
    },
    "@jupyterlab/notebook-extension:tracker": {"windowingMode": "none", "recordTiming": True},
    "@jupyterlab/docmanager-extension:plugin": {"autosave": False},
}
# Server-side: no news feed, no update check, no extension manager (it would query PyPI), and
# none of the server extensions the tests do not use (language servers, terminals).
SERVER_CONFIG = {
    "ServerApp": {"jpserver_extensions": {"jupyter_lsp": False, "jupyter_server_terminals": False}},
    "LabApp": {
        "news_url": None,
        "check_for_updates_class": "jupyterlab.handlers.announcements.NeverCheckForUpdate",
        "extension_manager": "readonly",
    },
}
PAGE_CONFIG = {"disabledExtensions": {"@jupyterlab/extensionmanager-extension": True,
                                      "@jupyterlab/lsp-extension": True}}

ERROR_OUTPUT_RE = re.compile(r"Traceback|^\s*\w*(Error|Exception)\b.*:", re.MULTILINE)


# --------------------------------------------------------------------------- report hook
@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    """Keep each phase's report on the item (``item.rep_setup``, ``item.rep_call``) for ``artifacts``."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


# --------------------------------------------------------------------------- programs
def find_program(names: tuple[str, ...], env_var: str) -> str | None:
    """``$env_var`` when set, else the first of ``names`` on PATH."""
    given = os.environ.get(env_var)
    if given:
        return given if os.access(given, os.X_OK) else None
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --------------------------------------------------------------------------- the server
@dataclass
class LabServer:
    """A running JupyterLab: where it listens, its token, its folders and its log."""

    process: subprocess.Popen
    url: str
    token: str
    root_dir: Path
    run_dir: Path
    log_path: Path

    def api(self, method: str, path: str, timeout: float = 10) -> Any:
        """Call the server's REST API (``path`` like ``/api/sessions``); the JSON answer or None."""
        request = urllib.request.Request(f"{self.url}{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
        return json.loads(body) if body else None

    def shutdown_kernels(self) -> None:
        """Shut every kernel down through the API (frees the CPU between notebooks)."""
        try:
            for session in self.api("GET", "/api/sessions"):
                self.api("DELETE", f"/api/sessions/{session['id']}", timeout=30)
            for kernel in self.api("GET", "/api/kernels"):
                self.api("DELETE", f"/api/kernels/{kernel['id']}", timeout=30)
        except (OSError, urllib.error.URLError, ValueError):
            pass  # the server is going away anyway; stop() still ends it

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2))


def _stop(process: subprocess.Popen) -> None:
    """Terminate the server by its own process group (SIGTERM shuts its kernels down), then kill it if it hangs."""
    if process.poll() is not None:
        return
    for sig, patience in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=patience)
            return
        except subprocess.TimeoutExpired:
            continue


def _wait_until_up(process: subprocess.Popen, url: str, token: str, log_path: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with code {process.returncode}; its log:\n"
                               f"{log_path.read_text(errors='replace')[-4000:]}")
        try:
            request = urllib.request.Request(f"{url}/api/status", headers={"Authorization": f"token {token}"})
            with urllib.request.urlopen(request, timeout=5) as response:
                if response.status == 200:
                    return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.5)
    raise RuntimeError(f"JupyterLab did not answer /api/status within {SERVER_START_TIMEOUT_S} s; its log:\n"
                       f"{log_path.read_text(errors='replace')[-4000:]}")


@pytest.fixture(scope="session")
def lab_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    """JupyterLab from this environment on a temporary copy of ``notebooks/``; stopped at the end."""
    base = tmp_path_factory.mktemp("jupyterlab")
    root_dir = base / "notebooks"
    shutil.copytree(NOTEBOOK_DIR, root_dir, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "runs"))
    config_dir, run_dir = base / "config", base / "run"
    settings_dir = base / "app-settings"
    _write_json(settings_dir / "overrides.json", SETTINGS_OVERRIDES)
    _write_json(config_dir / "jupyter_server_config.json", SERVER_CONFIG)
    _write_json(config_dir / "labconfig" / "page_config.json", PAGE_CONFIG)
    run_dir.mkdir()

    env = dict(os.environ)
    env.update({
        "JUPYTER_CONFIG_DIR": str(config_dir),
        "JUPYTER_DATA_DIR": str(base / "data"),
        "JUPYTER_RUNTIME_DIR": str(base / "runtime"),
        "JUPYTER_PLATFORM_DIRS": "1",
        "IPYTHONDIR": str(base / "ipython"),
        "MTLKIT_RUN_DIR": str(run_dir),
        "PYTHONUNBUFFERED": "1",
    })
    port, token = free_port(), secrets.token_hex(24)
    command = [
        sys.executable, "-m", "jupyter", "lab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root_dir}",
        "--ServerApp.terminals_enabled=False",
        # A safety net if this process is killed before its finaliser runs.
        "--ServerApp.shutdown_no_activity_timeout=900",
        f"--LabApp.app_settings_dir={settings_dir}",
        f"--LabApp.user_settings_dir={base / 'user-settings'}",
        f"--LabApp.workspaces_dir={base / 'workspaces'}",
        "--LabApp.expose_app_in_browser=True",  # window.jupyterapp: read the kernel's state exactly
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    log_path = base / "jupyterlab.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=root_dir, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    server = LabServer(process, url, token, root_dir, run_dir, log_path)
    try:
        _wait_until_up(process, url, token, log_path)
        yield server
    finally:
        if process.poll() is None:
            server.shutdown_kernels()
        _stop(process)


# --------------------------------------------------------------------------- the browser
@pytest.fixture(scope="session")
def chromium_programs() -> tuple[str, str]:
    """(chromium, chromedriver) paths; skips with the reason when either is missing."""
    chromium = find_program(CHROMIUM_NAMES, "MTLKIT_CHROMIUM")
    driver = find_program(CHROMEDRIVER_NAMES, "MTLKIT_CHROMEDRIVER")
    missing = [name for name, path in (("chromium", chromium), ("chromedriver", driver)) if path is None]
    if missing:
        pytest.skip(f"browser tests need chromium and chromedriver; not found: {', '.join(missing)} "
                    f"(Debian: apt-get install chromium chromium-driver, which scripts/ensure-chromium.sh "
                    f"does as root; or set MTLKIT_CHROMIUM / MTLKIT_CHROMEDRIVER to the programs' paths)")
    return chromium, driver


@pytest.fixture(scope="session")
def webdriver_module() -> Any:
    return pytest.importorskip("selenium.webdriver", reason="browser tests need selenium (pip install selenium)")


@pytest.fixture(scope="session")
def browser(chromium_programs: tuple[str, str], webdriver_module: Any,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Headless Chromium with a fresh profile, driven by Selenium through the system's chromedriver."""
    from selenium.webdriver.chrome.service import Service

    chromium, driver_path = chromium_programs
    base = tmp_path_factory.mktemp("chromium")
    options = webdriver_module.ChromeOptions()
    options.binary_location = chromium
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={base / 'profile'}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=driver_path, log_output=str(base / "chromedriver.log"))
    driver = webdriver_module.Chrome(service=service, options=options)
    try:
        driver.set_page_load_timeout(PAGE_TIMEOUT_S)
        driver.set_script_timeout(60)
        yield driver
    finally:
        driver.quit()  # ends chromedriver and the browser it started


# --------------------------------------------------------------------------- page operations
_KERNEL_STATE_JS = """
const app = window.jupyterapp;
const panel = app && app.shell.currentWidget;
if (!panel || !panel.sessionContext || !panel.content || !panel.content.widgets) { return null; }
const session = panel.sessionContext.session;
const cells = panel.content.widgets.filter(c => c.model.type === 'code');
const runnable = cells.filter(c => c.model.sharedModel.getSource().trim() !== '');
const errors = [];
cells.forEach((c, i) => {
  for (let j = 0; j < c.model.outputs.length; j++) {
    const out = c.model.outputs.get(j).toJSON();
    if (out.output_type === 'error') { errors.push(`code cell #${i + 1}: ${out.ename}: ${out.evalue}`); }
  }
});
const seconds = runnable.map(c => {
  const t = c.model.getMetadata('execution') || {};
  const start = t['iopub.status.busy'], end = t['shell.execute_reply'];
  return start && end ? (Date.parse(end) - Date.parse(start)) / 1000 : null;
});
return {
  path: panel.context.path,
  cell_seconds: seconds,
  kernel: session && session.kernel ? session.kernel.status : 'none',
  code_cells: runnable.length,
  executed: runnable.filter(c => c.model.executionCount !== null).length,
  running: cells.filter(c => (c.promptNode && c.promptNode.textContent || '').includes('*')).length,
  errors: errors,
};
"""


@dataclass
class NotebookRun:
    """The outcome of opening a notebook and running all its cells (a module fixture's result).

    A module fixture that raised would fail its tests before the ``artifacts`` fixture exists,
    leaving no screenshot; so the run keeps its error and each test re-raises it with
    :meth:`state`, failing where the screenshot and logs are saved.
    """

    name: str
    final_state: dict[str, Any] | None = None
    error: str | None = None

    def state(self) -> dict[str, Any]:
        if self.error is not None:
            pytest.fail(f"opening {self.name} and running all cells failed:\n{self.error}", pytrace=False)
        assert self.final_state is not None
        return self.final_state


@dataclass
class Lab:
    """The browser pointed at the JupyterLab server, with the operations the tests share."""

    driver: Any
    server: LabServer
    timings: dict[str, float] = field(default_factory=dict)
    cell_seconds: dict[str, list[float | None]] = field(default_factory=dict)

    # ---- waiting
    def wait_for(self, condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.5) -> Any:
        """Poll ``condition`` until it returns something truthy; fail saying ``what`` we waited for."""
        from selenium.common.exceptions import WebDriverException

        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            try:
                value = condition()
                if value:
                    return value
            except WebDriverException as error:  # a stale element while JupyterLab re-renders: try again
                last_error = error
            time.sleep(interval)
        raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}"
                             + (f" (last error: {last_error!r})" if last_error else ""))

    def css(self, selector: str, within: Any = None) -> list[Any]:
        from selenium.webdriver.common.by import By

        return (within or self.driver).find_elements(By.CSS_SELECTOR, selector)

    def state(self) -> dict[str, Any] | None:
        """The current notebook's kernel status, executed/total code cells, and error outputs."""
        return self.driver.execute_script(_KERNEL_STATE_JS)

    # ---- notebooks
    def open_notebook(self, name: str) -> None:
        """Open ``name`` in its own workspace (nothing restored from an earlier test) and wait for an idle kernel."""
        assert (self.server.root_dir / name).is_file(), f"{name} is not in notebooks/"
        workspace = re.sub(r"\W", "-", Path(name).stem)
        start = time.monotonic()
        self.driver.get(f"{self.server.url}/lab/workspaces/{workspace}/tree/{name}?reset&token={self.server.token}")
        self.wait_for(lambda: (s := self.state()) and s["path"] == name and s["kernel"] == "idle",
                      PAGE_TIMEOUT_S, f"{name} to open with an idle kernel")
        self.timings[f"open {name}"] = time.monotonic() - start

    def run_all(self) -> None:
        """Run > Run All Cells, through the menu bar as a learner does."""
        from selenium.webdriver.common.action_chains import ActionChains

        menu = next(item for item in self.css(".lm-MenuBar-item") if item.text.strip() == "Run")
        menu.click()
        entry = self.wait_for(lambda: [item for item in self.css(".lm-Menu .lm-Menu-item")
                                       if item.text.strip().startswith("Run All Cells")],
                              10, "the Run menu to show 'Run All Cells'")[0]
        ActionChains(self.driver).move_to_element(entry).click().perform()

    def hide_file_browser(self) -> None:
        """Click the active left side-bar tab, as a learner does to give the notebook the full width."""
        for tab in self.css(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current"):
            tab.click()
        self.wait_for(lambda: not self.css(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current"), 10,
                      "the file browser to close")

    def run_notebook(self, name: str) -> NotebookRun:
        """Open ``name``, hide the file browser, Run All from the menu and wait until every cell ran."""
        run = NotebookRun(name)
        try:
            self.open_notebook(name)
            self.hide_file_browser()
            self.run_all()
            run.final_state = self.wait_until_executed(name)
        except Exception as error:  # noqa: BLE001 - kept, and raised by NotebookRun.state() in each test
            run.error = "".join(traceback.format_exception_only(type(error), error)).strip()
        return run

    def wait_until_executed(self, name: str, timeout: float = RUN_ALL_TIMEOUT_S) -> dict[str, Any]:
        """Wait until every code cell ran and the kernel is idle; fail at once on an error output."""
        start = time.monotonic()

        def finished() -> dict[str, Any] | None:
            state = self.state()
            if state is None:
                return None
            errors = state["errors"] + self.error_texts()
            if errors:
                raise AssertionError(f"{name}: error output after Run All:\n" + "\n---\n".join(errors))
            if state["kernel"] == "dead":
                raise AssertionError(f"{name}: the kernel died during Run All (see the server log)")
            done = (state["kernel"] == "idle" and state["running"] == 0
                    and state["executed"] == state["code_cells"] > 0)
            return state if done else None

        deadline = time.monotonic() + timeout
        while True:
            state = finished()  # an AssertionError (error output) propagates at once
            if state:
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"{name}: Run All did not finish within {timeout} s; last state {self.state()}")
            time.sleep(1.0)
        self.timings[f"run all {name}"] = time.monotonic() - start
        self.cell_seconds[name] = state["cell_seconds"]
        return state

    def timing_report(self) -> str:
        """Seconds to open and to run each notebook, and its three slowest code cells."""
        lines = [f"{what}: {seconds:.1f} s" for what, seconds in self.timings.items()]
        for name, seconds in self.cell_seconds.items():
            slowest = sorted(((s, i) for i, s in enumerate(seconds) if s is not None), reverse=True)[:3]
            lines.append(f"slowest code cells of {name}: "
                         + ", ".join(f"#{i + 1} {s:.1f} s" for s, i in slowest))
        return "\n".join(lines)

    # ---- reading the page
    def error_texts(self, within: Any = None) -> list[str]:
        """Texts of error outputs in the page (or in ``within``): tracebacks, exceptions, broken widgets."""
        found = []
        for output in self.css('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]', within):
            text = output.get_attribute("textContent") or ""
            if ERROR_OUTPUT_RE.search(text):
                found.append(text.strip()[-2000:])
        for broken in self.css(".jupyter-widgets-error-widget, .jp-RenderedText.jp-mod-error", within):
            found.append((broken.get_attribute("textContent") or "broken widget").strip()[-2000:])
        page = (within or self.driver.find_element("tag name", "body")).get_attribute("textContent") or ""
        if "Error displaying widget" in page:
            found.append("Error displaying widget")
        return found

    def output_texts(self) -> list[str]:
        """The text of every plain-text output (stdout and results) in the notebook."""
        return [o.get_attribute("textContent") or "" for o in self.css(".jp-OutputArea-output")]

    def screenshot(self, path: Path) -> Path:
        self.driver.save_screenshot(str(path))
        return path

    def scroll_into_view(self, element: Any) -> None:
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'start'});", element)
        time.sleep(0.3)


@pytest.fixture(scope="session")
def lab(browser: Any, lab_server: LabServer) -> Lab:
    """The browser on the JupyterLab server (both started once per session; the browser first, so
    a machine without Chromium skips before a server is started for nothing)."""
    return Lab(browser, lab_server)


# --------------------------------------------------------------------------- artifacts
@pytest.fixture(autouse=True)
def artifacts(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[None]:
    """After each test: a screenshot of the final state; on failure, the console and server logs too."""
    yield
    if "lab" not in request.fixturenames:
        return
    lab_ = request.getfixturevalue("lab")
    try:
        lab_.screenshot(tmp_path / f"{request.node.name}.png")
    except Exception as error:  # noqa: BLE001 - a dead browser must not hide the test's own failure
        (tmp_path / "screenshot-error.txt").write_text(repr(error))
    failed = any(getattr(request.node, f"rep_{when}", None) is not None
                 and getattr(request.node, f"rep_{when}").failed for when in ("setup", "call"))
    if failed:
        try:
            console = lab_.driver.get_log("browser")
            (tmp_path / "browser-console.log").write_text(
                "\n".join(f"{entry.get('level')} {entry.get('message')}" for entry in console))
        except Exception as error:  # noqa: BLE001 - as above
            (tmp_path / "browser-console.log").write_text(f"could not read the console log: {error!r}")
        (tmp_path / "jupyterlab.log").write_text(lab_.server.log_text())
    print(f"\nbrowser artifacts of {request.node.name}: {tmp_path}")
