"""Issue 15: a budget is a hard cap however many runs overlap. Every run reserves its estimate
before sending, atomically across threads and runs; the server never bills more than the
budget, and what it bills equals what imagenb accounts."""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import pytest
from conftest import wait_for

import imagenb as ig
from imagenb.api.calls import requests_from, start
from imagenb.core import config
from imagenb.core.ledger import Ledger, Reservation
from imagenb.engine import session
from imagenb.errors import BudgetExceeded
from imagenb.testing import Faults

PARAMS = {"size": "1024x1024", "quality": "low"}
BUDGET = 0.05


def _everything_at_once(fake: Any, grid_prompts: int) -> tuple[list[object], list[Any]]:
    """Six wait=False grids, four threads calling ig.generate and two panels clicked, all
    started together while the server takes 0.5 s an image. Returns what each raised (or
    returned) and the panels."""
    fake.latency = 0.5
    config.configure(budget_usd=BUDGET, concurrency=8)
    outcomes: list[object] = []
    lock = threading.Lock()
    go = threading.Barrier(10)

    def grid(g: int) -> None:
        prompts = [f"grid {g} cell {i}" for i in range(grid_prompts)]
        go.wait()
        try:
            result: object = ig.grid(prompts, wait=False, **PARAMS)
        except BudgetExceeded as exc:
            result = exc
        with lock:
            outcomes.append(result)

    def generate(t: int) -> None:
        go.wait()
        try:
            result: object = ig.generate(f"thread {t}", **PARAMS)
        except BudgetExceeded as exc:
            result = exc
        with lock:
            outcomes.append(result)

    workers = [threading.Thread(target=grid, args=(g,)) for g in range(6)]
    workers += [threading.Thread(target=generate, args=(t,)) for t in range(4)]
    panels = [ig.panel(**PARAMS) for _ in range(2)]
    for worker in workers:
        worker.start()
    for number, panel in enumerate(panels):
        panel.prompt.value = f"panel {number}"
        panel.generate_button.click()
    for worker in workers:
        worker.join(60)
    for result in outcomes:
        if isinstance(result, ig.Grid):
            result.wait(progress=False)
    for panel in panels:
        panel.wait(timeout=60)
    return outcomes, panels


@pytest.mark.slow
def test_six_grids_four_threads_two_panels_never_bill_more_than_the_budget(fake: Any) -> None:
    outcomes, panels = _everything_at_once(fake, grid_prompts=8)
    refused = sum(isinstance(o, BudgetExceeded) for o in outcomes)
    refused += sum("Over budget" in p.message.value for p in panels)
    assert fake.ledger.usd <= BUDGET
    assert refused >= 6  # a grid (~$0.047) and anything else never both fit in $0.05
    spend = ig.spent()
    assert spend.usd + spend.uncertain_usd == pytest.approx(fake.ledger.usd, rel=1e-6)
    assert session.ledger.reserved_usd == pytest.approx(0.0, abs=1e-12)  # all released


@pytest.mark.slow
def test_small_overlapping_runs_share_the_budget_exactly(fake: Any) -> None:
    outcomes, panels = _everything_at_once(fake, grid_prompts=2)
    assert fake.ledger.usd <= BUDGET
    assert len(fake.ledger.bills) >= 7  # the budget was used, not refused wholesale
    refused = sum(isinstance(o, BudgetExceeded) for o in outcomes)
    refused += sum("Over budget" in p.message.value for p in panels)
    assert refused >= 1
    spend = ig.spent()
    assert spend.usd == pytest.approx(fake.ledger.usd, rel=1e-6)
    assert session.budget_left(config.current()) == pytest.approx(BUDGET - spend.usd)


def test_lost_answers_count_against_the_budget(fake: Any) -> None:
    one = ig.estimate("cut", **PARAMS).usd
    config.configure(budget_usd=one * 1.5, ambiguous_retries=3)
    fake.faults = Faults(lost_rate=1.0)
    run = start(requests_from(["cut"], config.current(), **PARAMS)).wait(progress=False)
    # the first loss used the budget up: the retry was not sent, whatever ambiguous_retries
    assert fake.stats.completed == 1 and isinstance(run.errors[0], BudgetExceeded)
    assert "not sent" in str(run.errors[0])
    with pytest.raises(BudgetExceeded):
        ig.generate("anything else", **PARAMS)
    assert fake.ledger.usd <= config.current().budget_usd


def test_a_reservation_is_released_when_its_run_ends_or_is_stopped(fake: Any) -> None:
    fake.latency = 0.3
    config.configure(budget_usd=1.0, concurrency=1)
    job = start(requests_from([f"r{i}" for i in range(6)], config.current(), **PARAMS))
    assert session.ledger.reserved_usd > 0
    wait_for(lambda: job.run.in_flight == 1)
    job.cancel()  # graceful: the one in flight is collected, nothing more is sent
    run = job.wait(progress=False)
    assert run.done == 1 and run.stopped == 5 and fake.stats.completed == 1
    assert session.ledger.reserved_usd == pytest.approx(0.0, abs=1e-12)
    assert ig.spent().usd == pytest.approx(fake.ledger.usd, rel=1e-6)


def test_ledger_reservations_are_atomic_across_threads() -> None:
    ledger = Ledger()
    granted: list[object] = []
    barrier = threading.Barrier(16)

    def reserve() -> None:
        barrier.wait()
        with contextlib.suppress(BudgetExceeded):
            granted.append(ledger.reserve(0.01, 0.05))

    threads = [threading.Thread(target=reserve) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(granted) == 5 and ledger.reserved_usd == pytest.approx(0.05)
    first = granted[0]
    assert isinstance(first, Reservation)
    assert first.take(0.01) and not first.take(0.01)  # its own share, then nothing left
    first.spend(0.01, 0.008, "gpt-image-2", 1)
    assert ledger.left(0.05) == pytest.approx(0.002)  # the actual cost replaced the hold
    for r in granted[1:]:
        assert isinstance(r, Reservation)
        r.close()
    assert ledger.left(0.05) == pytest.approx(0.042)


def test_a_submitted_batch_holds_its_estimate_until_its_results_are_collected(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from conftest import TEST_KEY

    from imagenb.batch import jobs as batch
    from imagenb.grids import grid as grids
    from imagenb.testing import FakeImagesServer

    monkeypatch.setattr(batch, "POLL_FIRST_S", 0.05)
    monkeypatch.setattr(batch, "POLL_MAX_S", 0.2)
    with FakeImagesServer(batch_delay=1.0) as server:
        config.configure(backend="openai", api_key=TEST_KEY, base_url=server.base_url)
        first = [f"batch one {i}" for i in range(6)]
        one = grids.estimate(first, mode="batch", **PARAMS).usd
        config.configure(budget_usd=one * 1.5)
        grid = ig.grid(first, mode="batch", wait=False, **PARAMS)
        assert session.ledger.batch_reserved_usd == pytest.approx(one)
        with pytest.raises(BudgetExceeded):  # the first batch still holds its estimate
            ig.grid([f"batch two {i}" for i in range(6)], mode="batch", wait=False, **PARAMS)
        with pytest.raises(BudgetExceeded):
            ig.generate("a live image meanwhile", size="1024x1024", quality="high")
        grid.wait(progress=False)
        assert (grid.frame["status"] == "ok").all()
        assert session.ledger.batch_reserved_usd == pytest.approx(0.0, abs=1e-9)
        assert ig.spent().usd == pytest.approx(server.ledger.usd, rel=1e-6)
