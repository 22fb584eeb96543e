"""What the real-browser tests share: JupyterLab on a free loopback port whose kernels use a
`FakeImagesServer` with a test key, Debian's Chromium driven by Playwright, and helpers.

Follows shared/reference/browser_test_example.py: Debian's /usr/bin/chromium through
Playwright's `executable_path` (no `playwright install`), JupyterLab with a random token, the
exact server PID ended afterwards.

tests/conftest.py registers this module as a plugin, so its fixtures are there for every test
module; they are module-scoped, so each module gets its own server and browser (a module can
override `fake_api` to configure the fake). The `lab` fixture copies the notebooks named in the
module's `LAB_NOTEBOOKS` into its root; a test may also write its own there. A browser test
module starts with `expect = require_browser()`, which skips it without Chromium or Playwright.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import TEST_KEY

from imagenb.testing import FakeImagesServer

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
TIMEOUT_MS = int(os.environ.get("PW_TIMEOUT_MS", "60000"))
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}  # fmt: skip
NOTEBOOK = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook"  # the notebook in view


def _sync_api() -> Any:
    return pytest.importorskip(
        "playwright.sync_api", reason="Python playwright is missing: pip install playwright==1.65.2"
    )


def require_browser() -> Any:
    """Playwright's `expect`; at a test module's top, skips the module without a browser."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium", allow_module_level=True)
    return _sync_api().expect


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def fake_api() -> Iterator[FakeImagesServer]:
    with FakeImagesServer(latency=0.3) as server:
        yield server


@pytest.fixture(scope="module")
def lab(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    fake_api: FakeImagesServer,
) -> Iterator[Any]:
    """`jupyter lab` on a free loopback port whose kernels use the fake API with a test key;
    its root holds copies of the module's `LAB_NOTEBOOKS`."""
    base = tmp_path_factory.mktemp("lab")
    root, settings, workspaces, home = (base / d for d in ("root", "settings", "ws", "home"))
    for folder in (root, workspaces, home):
        folder.mkdir()
    for notebook in getattr(request.module, "LAB_NOTEBOOKS", ()):
        shutil.copy(notebook, root / Path(notebook).name)  # Lab autosaves: keep the source clean
    for rel, value in LAB_SETTINGS.items():
        f = settings / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(json.dumps(value))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IMAGENB_", "OPENAI_"))}
    env.update(
        OPENAI_API_KEY=TEST_KEY,
        OPENAI_BASE_URL=fake_api.base_url,
        IMAGENB_BACKEND="openai",
        IMAGENB_STORE=str(base / "store"),
        HOME=str(home),  # notebook signatures, IPython profile: all in the temp folder
    )
    port, token = free_port(), secrets.token_hex(16)
    cmd = [
        sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.token={token}", f"--ServerApp.root_dir={root}",
        f"--LabApp.user_settings_dir={settings}", f"--LabApp.workspaces_dir={workspaces}",
    ]  # fmt: skip
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    log_path = base / "jupyter-lab.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 90
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"jupyter lab exited rc={proc.returncode}:\n{log_path.read_text()}")
                try:
                    urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2).read()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        pytest.fail(f"jupyter lab not up in 90s:\n{log_path.read_text()[-3000:]}")
                    time.sleep(0.25)
            yield {
                "url": url,
                "token": token,
                "root": root,
                "store": base / "store",
                "log": log_path,
            }
        finally:
            proc.terminate()  # SIGTERM to the server only; it shuts its kernels down
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with _sync_api().sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 2400})
    pg = ctx.new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    _sync_api().expect.set_options(timeout=TIMEOUT_MS)
    pg.errors = []
    pg.on("console", lambda m: m.type == "error" and pg.errors.append(m.text))
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    yield pg
    ctx.close()


def wait_kernel_idle(page: Any, kernel: str = "Python 3 (ipykernel)") -> None:
    """Kernel name AND idle: a fresh notebook says idle while still "No Kernel"."""
    page.wait_for_function(
        """name => {
            const p = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
            const kernel = p?.querySelector('.jp-Toolbar-kernelName')?.textContent.trim();
            const busy = p?.querySelector('.jp-Notebook-ExecutionIndicator');
            return kernel === name && busy?.getAttribute('data-status') === 'idle'; }""",
        arg=kernel,
    )  # fmt: skip


def run_all_cells(page: Any) -> Any:
    """Once the notebook in view has its kernel, Run > Run All Cells; returns the notebook."""
    nb = page.locator(NOTEBOOK)
    _sync_api().expect(nb).to_be_visible()
    wait_kernel_idle(page)
    page.locator(".lm-MenuBar-itemLabel:text-is('Run')").click()
    page.locator(".lm-Menu-itemLabel:text-is('Run All Cells')").click()
    return nb


def screenshots(prefix: str) -> Callable[..., Path]:
    """`shot(page, name, target=None)`: a screenshot of `target` (or the page) saved as
    test-artifacts/<prefix>-<name>.png."""

    def shot(page: Any, name: str, target: Any = None) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{prefix}-{name}.png"
        (target or page).screenshot(path=str(path))
        return path

    return shot
