"""Issue 3 acceptance: a run inside a real Jupyter kernel (driven by nbclient) is stopped by
the kernel's interrupt within about a second, keeps every finished image, and the re-run
sends only the missing requests."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from conftest import TEST_KEY
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

from imagenb.store.index import Store
from imagenb.testing import FakeImagesServer

N = 40
RUN = f"""
import imagenb as ig
prompts = [f"interrupt test {{i}}" for i in range({N})]
from imagenb.api.calls import requests_from, start
from imagenb.core import config
reqs = requests_from(prompts, config.current(), size="1024x1024", quality="low")
run = start(reqs).wait()
"""
RERUN = "again = start(reqs).wait()\nprint(again.cached, again.done, again.failed)"


@pytest.mark.kernel
@pytest.mark.slow
def test_kernel_interrupt_keeps_finished_images_and_rerun_fills_the_rest(isolated, monkeypatch):
    with FakeImagesServer(latency=0.4) as server:
        for name, value in {
            "OPENAI_API_KEY": TEST_KEY,
            "OPENAI_BASE_URL": server.base_url,
            "IMAGENB_BACKEND": "openai",
            "IMAGENB_CONCURRENCY": "4",
        }.items():
            monkeypatch.setenv(name, value)
        nb = new_notebook(cells=[new_code_cell(RUN), new_code_cell(RERUN)])
        client = NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True)
        interrupted_at: list[float] = []

        def interrupt_halfway() -> None:
            deadline = time.monotonic() + 60
            while server.stats.completed < N // 2 and time.monotonic() < deadline:
                time.sleep(0.02)
            interrupted_at.append(time.monotonic())
            asyncio.run(client.km.interrupt_kernel())  # SIGINT, as the toolbar button sends

        with client.setup_kernel():
            watcher = threading.Thread(target=interrupt_halfway, daemon=True)
            watcher.start()
            client.execute_cell(nb.cells[0], 0)
            stopped = time.monotonic()
            watcher.join()
            errors = [o for o in nb.cells[0].outputs if o.output_type == "error"]
            assert errors and errors[0].ename == "KeyboardInterrupt"
            assert stopped - interrupted_at[0] < 1.5  # in-flight requests cancelled promptly

            with Store(isolated) as store:
                kept = len(store.history())
            assert N // 2 - 4 <= kept < N
            sent_before = server.stats.image_requests
            client.execute_cell(nb.cells[1], 1)

        printed = "".join(o.get("text", "") for o in nb.cells[1].outputs)
        cached, done, failed = map(int, printed.split())
        assert (cached, done, failed) == (kept, N - kept, 0)
        assert server.stats.image_requests - sent_before == N - kept
