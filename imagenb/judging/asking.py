"""Asking a judge: questions built, looked up in the store, estimated and checked against the
budget before anything is sent, sent side by side with the engine's retry policy, paid for
from `usage`, and the answers stored. Shared by verdicts (`judge`) and comparisons.

A refusal, an incomplete answer or one that does not fit its schema is that question's error
(`VerdictError`); what it cost is still counted. Nothing that failed is stored, so asking
again asks again.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from imagenb.backends.base import JudgeAnswer, JudgeBackend, JudgeRequest
from imagenb.core import catalog
from imagenb.core.config import Config
from imagenb.core.ledger import Reservation
from imagenb.engine import loop, session
from imagenb.engine.retry import RetryPolicy
from imagenb.errors import AnswerLost, BackendError, ImagenbError, InvalidRequest, RateLimited
from imagenb.judging import money, pricing, records, rubrics
from imagenb.judging.rubrics import Rubric
from imagenb.judging.subjects import Subject

DETAIL = "high"  # bounded and predictable; left out, GPT-5.6 takes an image at full size
REASONING_TOKENS = {
    "none": 0, "minimal": 256, "low": 1024, "medium": 4096, "high": 16384, "xhigh": 32768,
    "max": 65536,
}  # fmt: skip  # room left for reasoning in `max_output_tokens`, which caps it too
KINDS = ("verdict", "comparison")


class VerdictError(BackendError):
    """The judge answered, but with no usable verdict (a refusal, a cut-off or malformed
    answer). It was paid for."""


@dataclass(frozen=True)
class Question:
    kind: str
    subjects: tuple[Subject, ...]
    rubric: Rubric
    request: JudgeRequest
    key: str


@dataclass(frozen=True)
class Outcome:
    """One question's answer (`record`) or error; `cached`: from the store, at no cost."""

    question: Question
    record: records.Record | None
    error: ImagenbError | None = None
    cached: bool = False


def judge_model(model: str | None) -> catalog.MainlineSpec:
    return catalog.lookup_mainline(model or catalog.DEFAULT_JUDGE_MODEL)


def effort_for(spec: catalog.MainlineSpec, thinking: str | None) -> str:
    """`thinking` checked against the model; None is its lowest effort (a judge needs little,
    and a model's default may spend thousands of reasoning tokens)."""
    if thinking is None:
        return spec.efforts[0]
    if thinking not in spec.efforts:
        raise InvalidRequest(
            f"thinking={thinking!r} is not an effort {spec.name} accepts; choose one of: "
            f"{', '.join(spec.efforts)}"
        )
    return thinking


def question(
    kind: str,
    subjects: Sequence[Subject],
    rub: Rubric,
    spec: catalog.MainlineSpec,
    effort: str,
) -> Question:
    """A question about `subjects` (one image for a verdict, two for a comparison)."""
    if kind == "verdict":
        schema, text = rubrics.verdict_schema(rub), rubrics.verdict_instructions(rub)
        visible = 160 + 90 * len(rub.criteria)
    else:
        schema, text, visible = (
            rubrics.comparison_schema(),
            rubrics.comparison_instructions(rub),
            300,
        )
    request = JudgeRequest(
        model=spec.name,
        instructions=text,
        images=tuple(s.image for s in subjects),
        schema_name=f"image_{kind}",
        schema=schema,
        detail=DETAIL,
        effort=effort,
        max_output_tokens=visible + REASONING_TOKENS[effort],
    )
    settings = _settings(request, kind)
    blob = json.dumps(
        {"images": [s.sha256 for s in subjects], **rub.canonical(), "model": spec.name,
         "settings": settings},
        sort_keys=True, ensure_ascii=False, separators=(",", ":"),
    )  # fmt: skip
    return Question(kind, tuple(subjects), rub, request, hashlib.sha256(blob.encode()).hexdigest())


def _settings(request: JudgeRequest, kind: str) -> dict[str, Any]:
    return {"kind": kind, "detail": request.detail, "effort": request.effort,
            "schema": rubrics.SCHEMA_VERSION}  # fmt: skip


def estimate_usd(questions: Sequence[Question]) -> float:
    return sum(pricing.estimate_usd(judge_model(q.request.model), q.request) for q in questions)


def ask(questions: Sequence[Question], cfg: Config, *, fresh: bool = False) -> list[Outcome]:
    """Answer every question: stored answers at no cost, the rest sent after the budget check."""
    store = session.store_for(cfg)
    backend = session.backend_name(cfg)
    keys = [q.key for q in questions]
    found = {} if fresh else records.get_many(store, keys, backend)
    todo = list({q.key: q for q in questions if q.key not in found}.values())
    holds = [pricing.estimate_usd(judge_model(q.request.model), q.request) for q in todo]
    if todo:
        print(_plan_line(todo, len(questions) - len(todo), sum(holds), cfg))
    reservation = session.reserve(holds, cfg)
    done: dict[str, Outcome] = {}

    def arrived(index: int, answer: JudgeAnswer | ImagenbError) -> None:
        # settled (paid, stored) as each answer comes: an interrupt loses none that arrived
        if isinstance(answer, ImagenbError):
            money.failed(reservation, holds[index], lost=isinstance(answer, AnswerLost))
        done[todo[index].key] = _settle(todo[index], answer, cfg, backend, reservation,
                                        holds[index])  # fmt: skip

    try:
        if todo:
            loop.wait(loop.submit(_send([q.request for q in todo], cfg, arrived)))
    finally:
        reservation.close()
    out, seen = [], set()
    for q in questions:
        if q.key in found or q.key in seen:  # stored, or asked once already in this call: free
            answer = found.get(q.key) or done[q.key].record
            out.append(Outcome(q, answer, done[q.key].error if answer is None else None, True))
        else:
            out.append(done[q.key])
        seen.add(q.key)
    return out


def _plan_line(todo: Sequence[Question], stored: int, usd: float, cfg: Config) -> str:
    """`judge gpt-6-luna: 4 to ask, 2 stored (free) · at most $0.0011 · budget left $4.2000`"""
    left = session.budget_left(cfg)
    note = " if real (preview backend)" if session.backend_name(cfg) == "preview" else ""
    return " · ".join(
        [
            f"judge {todo[0].request.model}: {len(todo)} to ask"
            + (f", {stored} stored (free)" if stored else ""),
            f"at most ${usd:.4f}{note}",
            "no budget set" if left is None else f"budget left ${left:.4f}",
        ]
    )


def _settle(
    q: Question,
    answer: JudgeAnswer | ImagenbError,
    cfg: Config,
    backend: str,
    reservation: Reservation,
    held: float,
) -> Outcome:
    if isinstance(answer, ImagenbError):
        return Outcome(q, None, answer)
    spec = judge_model(q.request.model)
    estimated = answer.usage is None or answer.usage_is_estimate
    usd = (
        pricing.estimate_usd(spec, q.request)
        if answer.usage is None
        else pricing.usage_cost(spec, answer.usage)
    )
    money.paid(reservation, held, usd, spec.name)
    problem = _problem(q, answer)
    if problem is not None:
        return Outcome(q, None, VerdictError(f"{problem} (paid ${usd:.5f})"))
    assert answer.payload is not None
    record = records.Record(
        key=q.key, kind=q.kind, images=tuple(s.sha256 for s in q.subjects), rubric=q.rubric.text,
        model=spec.name, settings=_settings(q.request, q.kind), payload=answer.payload,
        usage=answer.usage, cost_usd=usd, cost_is_estimate=estimated, backend=backend,
        created=time.time(),
    )  # fmt: skip
    records.put(session.store_for(cfg), record)
    return Outcome(q, record)


def _problem(q: Question, answer: JudgeAnswer) -> str | None:
    if answer.refusal is not None:
        return f"the judge refused: {answer.refusal}"
    if answer.problem is not None or answer.payload is None:
        return f"no usable verdict: {answer.problem or 'empty answer'}"
    if q.kind == "verdict":
        wrong = rubrics.check_verdict(q.rubric, answer.payload)
    else:
        wrong = rubrics.check_comparison(answer.payload)
    return None if wrong is None else f"malformed verdict: {wrong}"


async def _send(
    requests: list[JudgeRequest],
    cfg: Config,
    arrived: Callable[[int, JudgeAnswer | ImagenbError], None],
) -> None:
    """Send `requests` side by side (at most `cfg.concurrency` at once), retrying what the
    engine's policy retries; each answer or final error goes to `arrived` at once."""
    backend = session.engine_for(cfg).backend
    if not isinstance(backend, JudgeBackend):
        raise InvalidRequest(f"the {session.backend_name(cfg)} backend cannot judge images")
    gate = asyncio.Semaphore(cfg.concurrency)
    policy = RetryPolicy(max_attempts=cfg.max_attempts)
    rng = random.Random()

    async def one(index: int) -> None:
        arrived(index, await attempt(requests[index]))

    async def attempt(request: JudgeRequest) -> JudgeAnswer | ImagenbError:
        attempts = limited = 0
        async with gate:
            while True:
                try:
                    return await backend.judge(request)
                except BackendError as error:
                    wait = policy.delay(error, attempts, limited, rng)
                    if wait is None:
                        return error
                    rate_limited = isinstance(error, RateLimited)
                    limited, attempts = limited + rate_limited, attempts + (not rate_limited)
                    await asyncio.sleep(wait)
                except ImagenbError as error:  # NotInStore (replay): this question's error
                    return error

    await asyncio.gather(*(one(i) for i in range(len(requests))))
