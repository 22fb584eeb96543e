"""The preview backend's judge: made-up but deterministic verdicts, so judging, ranking and
their notebooks run offline. Each image gets a "merit" from the hash of its bytes; scores
follow it (shifted per criterion), and a comparison prefers the image of higher merit. Every
reason says plainly that no judge was asked. The answer fits the schema it was asked for."""

from __future__ import annotations

import hashlib
from typing import Any

from imagenb.backends.base import JudgeAnswer, JudgeRequest

NOTE = "preview: made up from the image bytes, no judge was asked"


def merit(data: bytes, salt: str = "") -> float:
    """A stable number in [0, 1) for an image (and a salt)."""
    digest = hashlib.sha256(salt.encode() + data).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def answer(request: JudgeRequest) -> JudgeAnswer:
    props = request.schema.get("properties", {})
    if "winner" in props:
        return JudgeAnswer(_comparison(request), None, usage_is_estimate=True)
    names = list(props.get("scores", {}).get("properties", {}))
    data = request.images[0].data if request.images else b""
    salt = request.instructions
    scores = {n: min(5, int(6 * (merit(data) + merit(data, salt + n)) / 2)) for n in names}
    payload: dict[str, Any] = {
        "gates": {n: scores[n] >= 3 for n in names},
        "text_in_image": "",
        "scores": {n: {"score": scores[n], "reason": f"{NOTE} (score {scores[n]})"} for n in names},
    }
    return JudgeAnswer(payload, None, usage_is_estimate=True)


def _comparison(request: JudgeRequest) -> dict[str, Any]:
    first, second = (merit(i.data) for i in request.images[:2])
    winner = "tie" if abs(first - second) < 0.05 else "first" if first > second else "second"
    return {"reason": f"{NOTE}", "winner": winner}
