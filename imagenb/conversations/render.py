"""How turns and conversations look: static HTML with inline styles only (no `<style>`, no
script), so a saved notebook shows them without a kernel, in nbviewer and on GitHub.

Everything the service wrote (revised prompt, reasoning summary, the model's words, source
titles and URLs) is untrusted and goes through `display.esc`; a source is a link only when its
URL is http(s).
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

from imagenb.render.html import NO_MATH, clip, esc, thumbnail

if TYPE_CHECKING:
    from imagenb.conversations.conversation import Chat
    from imagenb.conversations.turn import Turn

CARD = (
    "display:inline-block;vertical-align:top;width:{w}px;margin:4px;padding:6px;"
    "border:1px solid rgba(128,128,128,.4);border-radius:6px;font:12px/1.4 system-ui,"
    "sans-serif;text-align:left;overflow-wrap:anywhere"
)
MUTED = "opacity:.75;font-size:11px"
PREVIEW = "background:#b45309;color:#fff;font-weight:600;font-size:11px;padding:1px 4px"
TEXT_CHARS = 600


def _thumb(turn: Turn, px: int) -> str:
    image = turn.image
    if image is None:
        return f'<div style="padding:24px 6px;text-align:center;{MUTED}">{esc(turn.status)}</div>'
    data, mime = thumbnail(image.path, px)
    src = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
    return (
        f'<img src="{src}" alt="{esc(clip(turn.prompt, 120))}" '
        f'style="display:block;max-width:100%;height:auto;border-radius:4px">'
    )


def _sources(turn: Turn) -> str:
    items = []
    for title, url in turn.sources[:8]:
        label = esc(clip(title or url, 120))
        if url.startswith(("https://", "http://")):
            items.append(
                f'<li><a href="{esc(url)}" target="_blank" rel="noopener noreferrer">'
                f"{label}</a></li>"
            )
        else:
            items.append(f"<li>{label} ({esc(clip(url, 80))})</li>")
    if not items:
        return ""
    listing = f'<ul style="margin:0;padding-left:16px">{"".join(items)}</ul>'
    return f'<div style="{MUTED}">sources:{listing}</div>'


def _cost(turn: Turn) -> str:
    if turn.cached:
        return "cached (free)"
    if turn.record.backend == "preview":
        return f"≈ ${turn.cost_usd:.4f} if real"
    return f"${turn.cost_usd:.4f}" + (" est." if turn.cost_is_estimate else "")


def card(turn: Turn, px: int = 192, label: str = "") -> str:
    """One turn: thumbnail, what was said, revised prompt, collapsible reasoning, the model's
    words, sources, cost; a notice or an error when there is one."""
    parts = [_thumb(turn, px), f"<div><b>{esc(label)}</b>{esc(clip(turn.prompt, 240))}</div>"]
    if turn.revised_prompt:
        parts.append(
            f'<div style="{MUTED}" title="revised prompt">→ '
            f"{esc(clip(turn.revised_prompt, TEXT_CHARS))}</div>"
        )
    if turn.reasoning:
        parts.append(
            f'<details style="{MUTED}"><summary>reasoning</summary>'
            f'<div style="white-space:pre-wrap">{esc(clip(turn.reasoning, 2000))}</div>'
            "</details>"
        )
    if turn.text and (turn.image is None or turn.status != "ok"):
        parts.append(f'<div style="font-style:italic">{esc(clip(turn.text, TEXT_CHARS))}</div>')
    parts.append(_sources(turn))
    if turn.error:
        parts.append(f'<div style="color:#b91c1c">{esc(clip(turn.error, TEXT_CHARS))}</div>')
    if turn.notice:
        parts.append(f'<div style="color:#b45309">{esc(turn.notice)}</div>')
    meta = f"{esc(turn.record.mainline)} → {esc(turn.record.image_model)} · {esc(_cost(turn))}"
    if turn.text_check is not None:
        meta += f" · {esc(turn.text_check.badge())}"
    parts.append(f'<div style="{MUTED}">{meta}</div>')
    if turn.record.backend == "preview":
        parts.append(f'<div style="{PREVIEW}">PREVIEW — not a real model output</div>')
    return f'<div class="{NO_MATH}" style="{CARD.format(w=px)}">{"".join(parts)}</div>'


def turn_html(turn: Turn) -> str:
    if len(turn.attempts) > 1:
        return "".join(card(t, label=f"attempt {i + 1}: ") for i, t in enumerate(turn.attempts))
    if len(turn.variations) > 1:
        return "".join(card(t, label=f"#{i + 1} ") for i, t in enumerate(turn.variations))
    return card(turn)


def tree_html(chat: Chat, px: int = 160) -> str:
    """Each turn above its children; sibling branches side by side."""
    children: dict[int | None, list[Turn]] = {}
    for turn in chat.turns:
        children.setdefault(id(turn.parent) if turn.parent else None, []).append(turn)
    number = {id(t): i for i, t in enumerate(chat.turns)}

    def node(turn: Turn) -> str:
        below = "".join(node(c) for c in children.get(id(turn), []))
        row = f'<div style="display:flex;gap:8px;align-items:flex-start">{below}</div>'
        return (
            f'<div style="display:flex;flex-direction:column;align-items:center;'
            f'border-left:2px solid rgba(128,128,128,.3);padding-left:4px">'
            f"{card(turn, px, f'turn {number[id(turn)]}: ')}{row if below else ''}</div>"
        )

    roots = "".join(node(t) for t in children.get(None, []))
    preview = bool(chat.turns) and all(t.record.backend == "preview" for t in chat.turns)
    spent = f"≈ ${chat.cost_usd:.4f} if real" if preview else f"${chat.cost_usd:.4f}"
    title = f"{esc(chat.settings.mainline)} · {len(chat.turns)} turn(s) · {spent}"
    return (
        f'<div class="{NO_MATH}" style="font:12px/1.4 system-ui,sans-serif">'
        f'<div style="{MUTED}">{title}</div>'
        f'<div style="display:flex;gap:12px;align-items:flex-start;overflow-x:auto">'
        f"{roots}</div></div>"
    )


class TreeView:
    """`Chat.tree()`: displays as the tree; `.html` is the markup, `.save(path)` a page."""

    def __init__(self, chat: Chat) -> None:
        self.html = tree_html(chat)

    def _repr_html_(self) -> str:
        return self.html

    def save(self, path: str) -> None:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(f'<!doctype html><meta charset="utf-8"><title>conversation</title>{self.html}')
