"""Issue 20 acceptance in a real Jupyter kernel (driven by nbclient): the kernel's interrupt
mid-turn leaves no half-turn in the store; the re-run makes that turn once, and the next
re-run serves it from the store."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from conftest import TEST_KEY
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

from imagenb.testing import FakeImagesServer

SAY = (
    "import imagenb as ig\n"
    't = ig.chat(size="1024x1024", quality="low").say("a slow fox")\n'
    "print(t.cached, t.status)"
)


@pytest.mark.kernel
@pytest.mark.slow
def test_interrupt_mid_turn_leaves_no_half_turn(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeImagesServer(latency=5.0) as server:
        for name, value in {
            "OPENAI_API_KEY": TEST_KEY,
            "OPENAI_BASE_URL": server.base_url,
            "IMAGENB_BACKEND": "openai",
        }.items():
            monkeypatch.setenv(name, value)
        nb = new_notebook(cells=[new_code_cell(SAY), new_code_cell(SAY), new_code_cell(SAY)])
        client = NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True)

        def interrupt_mid_turn() -> None:
            deadline = time.monotonic() + 60
            while not server.responses.requests and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(0.3)
            asyncio.run(client.km.interrupt_kernel())  # SIGINT, as the toolbar button sends

        with client.setup_kernel():
            watcher = threading.Thread(target=interrupt_mid_turn, daemon=True)
            watcher.start()
            client.execute_cell(nb.cells[0], 0)
            watcher.join()
            errors = [o for o in nb.cells[0].outputs if o.output_type == "error"]
            assert errors and errors[0].ename == "KeyboardInterrupt"
            with contextlib.closing(sqlite3.connect(isolated / "index.sqlite")) as db:
                assert db.execute("SELECT count(*) FROM turns").fetchone()[0] == 0
            server.latency = 0.0
            client.execute_cell(nb.cells[1], 1)
            client.execute_cell(nb.cells[2], 2)
        assert nb.cells[1].outputs[-1].text.strip() == "False ok"
        assert nb.cells[2].outputs[-1].text.strip() == "True ok"
        assert len(server.responses.requests) == 2  # the interrupted one, and the re-run's
        with contextlib.closing(sqlite3.connect(isolated / "index.sqlite")) as db:
            assert db.execute("SELECT count(*) FROM turns").fetchone()[0] == 1
