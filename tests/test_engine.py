"""The engine on its own: order kept, failures isolated, retries bounded, cancellation
clean — with a scripted in-process backend, no network."""

from __future__ import annotations

import asyncio
import io
import random
from collections import Counter

import pytest
from PIL import Image

from imagenb.backends.base import Response
from imagenb.core import cost, request
from imagenb.engine.limiter import AdaptiveLimiter
from imagenb.engine.retry import RetryPolicy
from imagenb.engine.runner import Engine, Run
from imagenb.errors import AnswerLost, ModerationBlocked, RateLimited, TransientError
from imagenb.store.index import Store


def _png(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (seed % 256, 0, 0)).save(buf, "PNG")
    return buf.getvalue()


class Scripted:
    """Fails each prompt per a script of exceptions, then succeeds; counts calls."""

    name = "scripted"
    paid = True

    def __init__(
        self, script: dict[str, list[Exception]] | None = None, delay: float = 0.0, jitter=True
    ):
        self.script = {k: list(v) for k, v in (script or {}).items()}
        self.calls: Counter[str] = Counter()
        self.completed: Counter[str] = Counter()
        self.delay = delay
        self.jitter = jitter

    async def run(self, req, variants, *, partial_images=0, on_partial=None):
        self.calls[req.prompt] += 1
        await asyncio.sleep(self.delay * (random.random() if self.jitter else 1.0))
        pending = self.script.get(req.prompt)
        if pending:
            raise pending.pop(0)
        self.completed[req.prompt] += len(variants)
        return Response([_png(v) for v in variants], usage=None)

    async def aclose(self):
        return None


def _engine(tmp_path, backend, ceiling=4):
    policy = RetryPolicy(max_attempts=3, base_s=0.001, cap_s=0.01)
    return Engine(backend, Store(tmp_path / "s"), AdaptiveLimiter(ceiling), policy)


def _run(engine, prompts, **kw):
    reqs = [request.build(p, size="1024x1024", quality="low") for p in prompts]
    return asyncio.run(engine.execute(Run(reqs), **kw))


def test_results_keep_request_order_and_rerun_is_free(tmp_path):
    backend = Scripted(delay=0.01)
    engine = _engine(tmp_path, backend)
    prompts = [f"p{i}" for i in range(20)]
    run = _run(engine, prompts)
    assert [r[0].prompt for r in run.results] == prompts
    assert run.done == 20 and run.failed == 0 and run.pending == 0
    again = _run(engine, prompts)
    assert again.cached == 20 and sum(backend.calls.values()) == 20


def test_transient_errors_are_retried_and_user_errors_are_not(tmp_path):
    backend = Scripted(
        {
            "flaky": [TransientError("503"), RateLimited("429", retry_after=0.01)],
            "blocked": [ModerationBlocked("no", categories=["violence"])],
            "dead": [TransientError("503")] * 5,
        }
    )
    run = _run(_engine(tmp_path, backend), ["flaky", "blocked", "dead", "fine"])
    assert run.results[0][0] is not None and backend.calls["flaky"] == 3
    assert isinstance(run.errors[1], ModerationBlocked) and backend.calls["blocked"] == 1
    assert isinstance(run.errors[2], TransientError) and backend.calls["dead"] == 3
    assert run.results[3][0] is not None
    assert run.failed == 2 and run.done == 2


def test_only_missing_variants_are_requested(tmp_path):
    backend = Scripted()
    engine = _engine(tmp_path, backend)
    one = request.build("fox", size="1024x1024", quality="low", n=1)
    asyncio.run(engine.execute(Run([one])))
    three = one.with_n(3)
    run = asyncio.run(engine.execute(Run([three])))
    assert run.cached == 1 and run.done == 2 and backend.completed["fox"] == 3


def test_cancel_keeps_finished_images(tmp_path):
    backend = Scripted(delay=0.2, jitter=False)
    engine = _engine(tmp_path, backend, ceiling=2)
    reqs = [request.build(f"c{i}", size="1024x1024", quality="low") for i in range(10)]
    run = Run(reqs)

    async def main():
        task = asyncio.create_task(engine.execute(run))
        await asyncio.sleep(0.5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert run.settled.is_set()
    stored = engine.store.get_many([r.key(0) for r in reqs])
    assert 0 < len(stored) < 10
    assert len(stored) == sum(backend.completed.values())


def test_stop_sends_nothing_more_and_collects_what_is_in_flight(tmp_path):
    backend = Scripted(delay=0.3, jitter=False)
    engine = _engine(tmp_path, backend, ceiling=2)
    reqs = [request.build(f"s{i}", size="1024x1024", quality="low") for i in range(10)]
    run = Run(reqs)

    async def main():
        task = asyncio.create_task(engine.execute(run))
        await asyncio.sleep(0.1)
        assert run.in_flight == 2
        assert run.stop() == 2
        await task

    asyncio.run(main())
    assert run.done == 2 and run.stopped == 8 and run.failed == 0 and run.pending == 0
    assert sum(backend.calls.values()) == 2 and engine.limiter.in_flight == 0


def test_abandoned_requests_count_as_possibly_billed(tmp_path):
    from imagenb.core.ledger import Ledger

    backend = Scripted(delay=5.0, jitter=False)
    engine = _engine(tmp_path, backend, ceiling=2)
    reqs = [request.build(f"a{i}", size="1024x1024", quality="low") for i in range(4)]
    ledger = Ledger()
    reservation = ledger.reserve(1.0, None)
    run = Run(reqs)

    async def main():
        task = asyncio.create_task(engine.execute(run, reservation=reservation))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    one = cost.estimate(reqs[0]).usd
    assert ledger.uncertain_requests == 2 and ledger.uncertain_usd == pytest.approx(2 * one)
    assert run.uncertain_usd == pytest.approx(2 * one) and engine.limiter.in_flight == 0


def test_lost_answers_are_asked_again_at_most_ambiguous_retries_times(tmp_path):
    backend = Scripted({"lost": [AnswerLost("cut")] * 5, "once": [AnswerLost("cut")]})
    engine = _engine(tmp_path, backend)
    engine.ambiguous_retries = 1
    run = _run(engine, ["lost", "once", "fine"])
    assert backend.calls["lost"] == 2 and isinstance(run.errors[0], AnswerLost)
    assert "asked 2 times" in str(run.errors[0])
    assert backend.calls["once"] == 2 and run.results[1][0] is not None
    assert run.uncertain_usd > 0 and run.done == 2


def test_any_failure_of_one_call_is_its_error_and_never_an_exception_group(tmp_path):
    backend = Scripted({"bug": [RuntimeError("a plugin's bug\nwith detail")]})
    engine = _engine(tmp_path, backend)
    run = _run(engine, ["bug", "fine"])
    assert str(run.errors[0]) == "the scripted backend failed: RuntimeError: a plugin's bug"
    assert run.results[1][0] is not None and engine.limiter.in_flight == 0


def test_nonsense_usage_falls_back_to_the_estimate(tmp_path):
    class Negative(Scripted):
        async def run(self, req, variants, *, partial_images=0, on_partial=None):
            answer = await super().run(req, variants)
            return Response(answer.images, usage={"output_tokens": -500, "input_tokens": 3})

    run = _run(_engine(tmp_path, Negative()), ["negative"])
    image = run.results[0][0]
    assert image is not None and image.cost_is_estimate and image.usage is None
    assert image.cost_usd == pytest.approx(cost.estimate(run.requests[0]).usd) and run.usd > 0
