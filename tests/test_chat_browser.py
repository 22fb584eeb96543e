"""Untrusted text from the service (reasoning summary, revised prompt, the model's words,
source titles and URLs) stays text in a real browser: a conversation's tree and turn cards,
saved as a page and opened in headless Chromium, run no script, open no dialog, load nothing
from the payloads, link no `javascript:` URL, and show every payload as visible text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from browser_lab import require_browser

import imagenb as ig
from imagenb.testing import FakeImagesServer

pytestmark = [pytest.mark.browser, pytest.mark.slow]
require_browser()

SCRIPT = "<script>window.__xss=1;alert(1)</script>"
IMAGE = '<img src=x onerror="window.__xss=2;alert(2)">'
TITLE = '<svg onload="window.__xss=3">evil title'


def test_hostile_summary_and_source_title_stay_text(
    fake: FakeImagesServer, page: Any, tmp_path: Path
) -> None:
    fake.responses.extra_citations = ((TITLE, "javascript:window.__xss=4"),)
    fake.responses.text_only_words = ("describe",)
    c = ig.chat(thinking="high", web_search=True, size="1024x1024", quality="low")
    first = c.say(f"a poster {SCRIPT}")
    c.say(f"describe {IMAGE}")
    assert first.reasoning and SCRIPT in first.reasoning  # the payload reached the summary
    assert any(title == TITLE for title, _ in first.sources)
    target = tmp_path / "tree.html"
    c.tree().save(str(target))
    target.write_text(target.read_text() + first._repr_html_(), encoding="utf-8")
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    page.goto(target.as_uri())
    page.wait_for_timeout(300)
    page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
    assert dialogs == [] and page.evaluate("window.__xss") is None
    assert not any(url.endswith("/x") for url in requested)
    found = page.evaluate(
        """() => ({
            scripts: document.querySelectorAll('script, iframe, svg').length,
            handlers: [...document.querySelectorAll('*')].filter(
                e => [...e.attributes].some(a => a.name.startsWith('on'))).length,
            js: [...document.querySelectorAll('a')].filter(
                a => a.href.startsWith('javascript:')).length,
            text: document.body.innerText,
        })"""
    )
    assert found["scripts"] == 0 and found["handlers"] == 0 and found["js"] == 0
    for payload in (SCRIPT, IMAGE, TITLE):
        assert payload in found["text"]
    page.screenshot(path=str(tmp_path / "chat-xss.png"))
