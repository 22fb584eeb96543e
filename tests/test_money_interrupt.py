"""Issue 15: the first interrupt keeps what was paid. SIGINT 1.5 s into a 24-image grid at
1 s latency, in a real kernel (nbclient) and in the CLI: the run stops sending at once,
collects what was in flight into the store (saying so), stops within the in-flight latency,
and the re-run brings the server's total to exactly 24."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import TEST_KEY

from imagenb.store.index import Store
from imagenb.testing import FakeImagesServer

N = 24
LATENCY = 1.0
GRID = f"""
import imagenb as ig
prompts = [f"interrupt me {{i}}" for i in range({N})]
grid = ig.grid(prompts, size="1024x1024", quality="low")
"""
RERUN = "again = ig.grid(prompts, size='1024x1024', quality='low')\nprint(again.counts())"


def _env(server: FakeImagesServer, store: Path) -> dict[str, str]:
    return {
        "OPENAI_API_KEY": TEST_KEY,
        "OPENAI_BASE_URL": server.base_url,
        "IMAGENB_BACKEND": "openai",
        "IMAGENB_CONCURRENCY": "8",
        "IMAGENB_STORE": str(store),
    }


def _after_first_request(server: FakeImagesServer, seconds: float) -> float:
    """Wait until the run's first request reached the server, then `seconds` more."""
    deadline = time.monotonic() + 60
    while server.stats.image_requests == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(seconds)
    return time.monotonic()


def _stored(store: Path) -> int:
    with Store(store) as opened:
        return len(opened.history())


@pytest.mark.kernel
@pytest.mark.slow
def test_first_kernel_interrupt_collects_what_is_in_flight(isolated, monkeypatch) -> None:
    from nbclient import NotebookClient
    from nbformat.v4 import new_code_cell, new_notebook

    with FakeImagesServer(latency=LATENCY) as server:
        for name, value in _env(server, isolated).items():
            monkeypatch.setenv(name, value)
        nb = new_notebook(cells=[new_code_cell(GRID), new_code_cell(RERUN)])
        client = NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True)
        interrupted_at: list[float] = []

        def interrupt() -> None:
            interrupted_at.append(_after_first_request(server, 1.5))
            in_flight = server.stats.in_flight
            interrupted_at.append(in_flight)
            asyncio.run(client.km.interrupt_kernel())  # SIGINT, as the toolbar button sends

        with client.setup_kernel():
            watcher = threading.Thread(target=interrupt, daemon=True)
            watcher.start()
            client.execute_cell(nb.cells[0], 0)
            stopped = time.monotonic()
            watcher.join()
            outputs = nb.cells[0].outputs
            errors = [o for o in outputs if o.output_type == "error"]
            assert errors and errors[0].ename == "KeyboardInterrupt"
            said = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
            assert "stopping: waiting for" in said and "interrupt again to abandon" in said
            assert stopped - interrupted_at[0] < LATENCY + 1.5  # the in-flight latency
            time.sleep(0.2)
            billed = server.stats.images_completed
            assert 0 < billed < N and _stored(isolated) == billed  # in flight was stored
            client.execute_cell(nb.cells[1], 1)
        printed = "".join(o.get("text", "") for o in nb.cells[1].outputs)
        assert f"'cached': {billed}" in printed and "'error': 0" in printed
        assert server.stats.images_completed == N
        assert max(server.ledger.by_prompt().values()) == 1


@pytest.mark.slow
def test_first_cli_interrupt_collects_what_is_in_flight(isolated, tmp_path) -> None:
    csv = tmp_path / "prompts.csv"
    csv.write_text("prompt\n" + "".join(f"cli interrupt {i}\n" for i in range(N)))
    imagenb = Path(sys.executable).with_name("imagenb")
    command = [str(imagenb), "grid", str(csv), "-q", "low", "-s", "1024x1024"]
    with FakeImagesServer(latency=LATENCY) as server:
        env = {**os.environ, **_env(server, isolated)}
        child = subprocess.Popen(
            [*command, "-o", str(tmp_path / "a.png")], env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        interrupted = _after_first_request(server, 1.5)
        child.send_signal(signal.SIGINT)
        _out, err = child.communicate(timeout=60)
        stopped = time.monotonic()
        assert child.returncode == 130, err
        assert "stopping: waiting for" in err and "interrupt again" in err
        assert stopped - interrupted < LATENCY + 1.5
        billed = server.stats.images_completed
        assert 0 < billed < N and _stored(isolated) == billed

        rerun = subprocess.run(
            [*command, "-o", str(tmp_path / "b.png")], env=env, capture_output=True, text=True,
            timeout=120,
        )  # fmt: skip
        assert rerun.returncode == 0, rerun.stderr
        assert server.stats.images_completed == N
        assert max(server.ledger.by_prompt().values()) == 1


@pytest.mark.slow
def test_a_second_cli_interrupt_abandons_what_is_in_flight(isolated, tmp_path) -> None:
    csv = tmp_path / "prompts.csv"
    csv.write_text("prompt\n" + "".join(f"abandon {i}\n" for i in range(N)))
    imagenb = Path(sys.executable).with_name("imagenb")
    command = [str(imagenb), "grid", str(csv), "-q", "low", "-s", "1024x1024"]
    with FakeImagesServer(latency=3.0) as server:
        env = {**os.environ, **_env(server, isolated)}
        child = subprocess.Popen(
            [*command, "-o", str(tmp_path / "a.png")], env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        _after_first_request(server, 0.5)
        child.send_signal(signal.SIGINT)
        time.sleep(0.5)
        second = time.monotonic()
        child.send_signal(signal.SIGINT)
        _out, err = child.communicate(timeout=60)
        assert child.returncode == 130 and "interrupt again to abandon" in err
        assert time.monotonic() - second < 2.5  # did not wait out the 3 s answers
        assert server.stats.images_completed == 0 and _stored(isolated) == 0
