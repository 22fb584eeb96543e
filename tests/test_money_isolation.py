"""Issue 15: one bad answer or one failed write is that image's error; the others carry on,
claims are released, nothing paid for is lost. Also: run-wide errors stop the run at once,
and the blocking API refuses to deadlock the engine from its own thread."""

from __future__ import annotations

import contextlib
import gc
import os
import subprocess
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import TEST_KEY

import imagenb as ig
from imagenb.api.calls import requests_from, start
from imagenb.core import config
from imagenb.engine import session, storing
from imagenb.errors import ImagenbError, StoreUnwritable
from imagenb.testing import FakeImagesServer, Faults

PARAMS = {"size": "1024x1024", "quality": "low", "output_format": "jpeg"}


@pytest.mark.parametrize("kind", ["truncated_png", "bad_base64", "url_only"])
def test_one_malformed_image_is_one_cells_error_and_the_rest_are_stored(fake, kind, caplog) -> None:
    fake.faults = Faults(malformed_rate=1.0, malformed=kind, target_words=("broken",))
    prompts = [f"fine {i}" for i in range(5)] + ["the broken one"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "Task exception was never retrieved"
        grid = ig.grid(prompts, size="1024x1024", quality="low")
        gc.collect()
    assert "never retrieved" not in caplog.text and "ExceptionGroup" not in caplog.text
    frame = grid.frame
    assert list(frame["status"]) == ["ok"] * 5 + ["error"]
    error = frame["error"].iloc[-1]
    assert "unusable" in error and "\n" not in error and "ExceptionGroup" not in error
    assert len(ig.history()) == 5
    assert ig.spent().usd == pytest.approx(fake.ledger.usd, rel=1e-6)  # the bad one was paid
    again = ig.grid(prompts, size="1024x1024", quality="low")  # no hang, no claim left behind
    assert list(again.frame["status"]) == ["cached"] * 5 + ["error"]


def test_a_failure_storing_one_image_does_not_touch_its_siblings(fake, monkeypatch) -> None:
    real = storing.Paid.write

    def flaky(self: storing.Paid, store: Any, px: int) -> Any:
        if "poison" in self.origin.prompt:
            raise ValueError("provenance could not be embedded\nsecond line")
        return real(self, store, px)

    monkeypatch.setattr(storing.Paid, "write", flaky)
    run = start(requests_from(["a", "poison", "b"], config.current(), **PARAMS)).wait(
        progress=False
    )
    assert run.done == 2 and run.failed == 1
    assert str(run.errors[1]) == "could not be stored: ValueError: provenance could not be embedded"


@contextlib.contextmanager
def tiny_filesystem(where: Path, size: str) -> Iterator[Path]:
    where.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
            check=True, capture_output=True,
        )  # fmt: skip
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"cannot mount a tmpfs here: {exc}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _fill(folder: Path, leave: int) -> Path:
    """A ballast file that leaves about `leave` bytes free on `folder`'s filesystem."""
    stat = os.statvfs(folder)
    ballast = folder / "ballast"
    ballast.write_bytes(b"\0" * max(0, stat.f_bavail * stat.f_frsize - leave))
    return ballast


@pytest.mark.slow
def test_a_full_disk_is_per_cell_errors_and_a_rerun_after_freeing_space_pays_nothing_again(
    tmp_path: Path,
) -> None:
    with tiny_filesystem(tmp_path / "tiny", "24m") as root:
        store_root = root / "store"
        with FakeImagesServer(latency=0.2) as server:
            config.configure(
                backend="openai", api_key=TEST_KEY, base_url=server.base_url,
                store=str(store_root), concurrency=4,
            )  # fmt: skip
            ig.generate("warm the store up", **PARAMS)  # index and folders exist
            ballast = _fill(root, leave=600_000)
            prompts = [f"full disk {i}" for i in range(12)]
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                grid = ig.grid(prompts, **PARAMS)
            frame = grid.frame
            errors = frame[frame["status"] == "error"]["error"]
            assert len(errors) > 0 and all("\n" not in e for e in errors)
            assert any("could not be stored" in e for e in errors)
            kept = storing.parked_count(session.store_for(config.current()))
            billed_first = server.ledger.by_prompt()
            assert kept == sum(billed_first[p] for p in prompts) - (frame["status"] == "ok").sum()
            assert ig.spent().usd == pytest.approx(server.ledger.usd, rel=1e-6)

            ballast.unlink()
            done = threading.Event()
            result: list[Any] = []
            worker = threading.Thread(
                target=lambda: (result.append(ig.grid(prompts, **PARAMS)), done.set()),
                daemon=True,
            )
            worker.start()
            assert done.wait(60), "the re-run hung (claims of this process left behind?)"
            again = result[0].frame
            assert set(again["status"]) <= {"ok", "cached"}
            assert all(n == 1 for p, n in server.ledger.by_prompt().items() if p in prompts)
            assert len(ig.history()) == 13  # every billed image is in the store
            assert storing.parked_count(session.store_for(config.current())) == 0


def test_an_unwritable_store_stops_the_run_and_says_why(fake, monkeypatch) -> None:
    def full(self: storing.Paid, store: Any, px: int) -> Any:
        raise OSError(28, "No space left on device")

    real = storing.Paid.write
    monkeypatch.setattr(storing.Paid, "write", full)
    config.configure(concurrency=1)
    run = start(requests_from([f"nospace {i}" for i in range(5)], config.current(), **PARAMS))
    result = run.wait(progress=False)
    assert isinstance(result.fatal, StoreUnwritable)
    paid = fake.stats.completed
    assert paid <= 2  # the next one may have been out while the first was being written
    assert "kept in memory" in str(result.errors[0])
    assert all("not sent" in str(e) for e in result.errors[paid:])
    still = start(requests_from([f"nospace {i}" for i in range(5)], config.current(), **PARAMS))
    assert "kept in memory" in str(still.wait(progress=False).errors[0])
    assert max(fake.stats.completions_by_prompt.values()) == 1  # nothing paid for twice
    monkeypatch.setattr(storing.Paid, "write", real)  # space freed
    again = start(requests_from([f"nospace {i}" for i in range(5)], config.current(), **PARAMS))
    second = again.wait(progress=False)
    assert second.failed == 0 and second.cached + second.done == 5
    assert fake.stats.completed == 5 and second.cached == len(ig.history()) - second.done


@pytest.mark.parametrize(
    ("faults", "api_key", "what"),
    [
        (Faults(quota_exhausted=True), TEST_KEY, "quota"),
        (Faults(), "sk-fake-wrong-key-00000000000000000", "not authorised (401)"),
    ],
)
def test_run_wide_errors_stop_the_run_at_the_first_occurrence(faults, api_key, what) -> None:
    with FakeImagesServer(api_key=TEST_KEY, faults=faults) as server:
        config.configure(backend="openai", api_key=api_key, base_url=server.base_url, concurrency=2)
        grid = ig.grid([f"doomed {i}" for i in range(10)], size="1024x1024", quality="low")
        assert set(grid.frame["status"]) == {"error"}
        assert len({e for e in grid.frame["error"]}) == 1 and what in grid.frame["error"][0]
        assert server.stats.image_requests <= 2  # those already out when the first came back


def test_which_errors_are_run_wide() -> None:
    from imagenb.engine.attempts import run_wide
    from imagenb.errors import BackendError, ModerationBlocked, QuotaExceeded

    assert run_wide(BackendError("x", status=404, code="model_not_found"))
    assert run_wide(BackendError("x", status=403, code=None))
    assert run_wide(QuotaExceeded("x", status=429, code="credit_balance_exhausted"))
    assert not run_wide(BackendError("x", status=400, code="invalid_value"))
    assert not run_wide(ModerationBlocked("x", categories=["violence"]))


def test_calling_the_blocking_api_from_an_on_image_callback_is_a_clear_error(fake) -> None:
    seen: list[BaseException | None] = []

    def on_image(index: int, image: Any) -> None:
        try:
            ig.generate("inside the callback", **PARAMS)
            seen.append(None)
        except ImagenbError as exc:
            seen.append(exc)

    start(requests_from(["outer"], config.current(), **PARAMS), on_image=on_image).wait(
        progress=False
    )
    (error,) = seen
    assert isinstance(error, ImagenbError) and "ig.start" in str(error)
    assert "engine thread" in str(error)
    # the engine stays usable, and starting (not waiting) from a callback works
    inner: list[Any] = []
    start(
        requests_from(["outer two"], config.current(), **PARAMS),
        on_image=lambda i, img: inner.append(
            start(requests_from(["from a callback"], config.current(), **PARAMS))
        ),
    ).wait(progress=False)
    assert inner[0].wait(progress=False).done == 1
    assert ig.generate("after", **PARAMS)[0].path.exists()
