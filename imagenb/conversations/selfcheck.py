"""The self-check loop: read the text of a turn's image (OCR) and, while it is wrong, ask the
model to fix only the text, up to a bound. Every attempt is its own turn (stored, costed and
replayed like any other), so a re-run replays the whole loop at no cost."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from imagenb.checks import text as textcheck
from imagenb.errors import InvalidRequest

if TYPE_CHECKING:
    from imagenb.conversations.conversation import Chat
    from imagenb.conversations.turn import Turn

MAX_FIXES = 3


def fix_request(expected: str, read: str) -> str:
    """The message that asks for a corrected text and nothing else."""
    seen = f'it reads "{read}"' if read else "it cannot be read"
    return (
        f'The text in the image must read exactly "{expected}", but {seen}. Fix only the text; '
        "keep everything else as it is."
    )


def say_checked(
    chat: Chat, parent: Turn | None, text: str, expected: str, *, fixes: int = 2, **kwargs: Any
) -> Turn:
    """A turn whose image's text is checked against `expected`; up to `fixes` more turns
    ask for a correction. Returns the last attempt; `.attempts` holds them all."""
    if isinstance(fixes, bool) or not isinstance(fixes, int) or not 0 <= fixes <= MAX_FIXES:
        raise InvalidRequest(f"fixes={fixes!r}; allow 0 to {MAX_FIXES} correction turns")
    textcheck.prepare([expected])  # OCR and its language are there before anything is paid
    turn = chat.say_from(parent, text, **kwargs)
    attempts = [turn]
    kwargs.pop("images", None)
    while True:
        if turn.image is None:
            break
        check = textcheck.check_image(turn.image, expected)
        turn.text_check = check
        if check.passed or len(attempts) > fixes:
            break
        turn = turn.say(fix_request(expected, check.text), **kwargs)
        attempts.append(turn)
    for attempt in attempts:
        attempt.attempts = attempts
    return turn
