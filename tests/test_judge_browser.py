"""Judging in a real JupyterLab, driven in headless Chromium: stars clicked on a panel card
land in the store (read back by another process, so they outlive the kernel), and hostile
prompts, rubrics and judge reasons run no script in any rendering (grid badges, comparison,
agreement, rank chart). The judge's reasons are made hostile in the fake itself."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from typing import Any

import nbformat
import pytest
from browser_lab import require_browser, run_all_cells, screenshots, wait_kernel_idle
from nbformat.v4 import new_code_cell, new_notebook

from imagenb.testing import FakeImagesServer
from imagenb.testing import judge as fake_judge

pytestmark = [pytest.mark.browser, pytest.mark.slow]
expect = require_browser()
_shot = screenshots("judge")

EVIL = '<img src=x onerror="window.__xss=(window.__xss||0)+1">'
CELLS = [
    "import imagenb as ig\npanel = ig.panel()\npanel",
    f"EVIL = {EVIL!r}\n"
    'g = ig.grid(["a kite " + EVIL, "a boat"], quality="low", size="square",\n'
    '            judge="a kite " + EVIL)\ng',
    'ig.compare(g.frame["image"][0], g.frame["image"][1], EVIL)',
    'judged = ig.judge(g, "a kite " + EVIL)\n'
    'ig.rate(g.frame["image"][0], 5)\nig.rate(g.frame["image"][1], 1)\n'
    "ig.agreement(judged)",
    'ranking = ig.rank(g.frame.assign(style=[EVIL, "plain"]), by="style", rubric=EVIL)',
]


def test_stars_and_hostile_text_in_jupyterlab(
    lab: Any, page: Any, fake_api: FakeImagesServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_fill = fake_judge._fill

    def hostile(schema: dict[str, Any], path: str, ctx: Any) -> Any:
        value = real_fill(schema, path, ctx)
        return EVIL if path.endswith("reason") else value

    monkeypatch.setattr(fake_judge, "_fill", hostile)
    name = "judge_lab.ipynb"
    notebook = new_notebook(cells=[new_code_cell(c) for c in CELLS])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}  # fmt: skip
    nbformat.write(notebook, lab["root"] / name)
    page.goto(f"{lab['url']}/lab/tree/{name}?token={lab['token']}")
    try:
        nb = run_all_cells(page)
        wait_kernel_idle(page)
        panel = page.locator(".imagenb-panel")
        expect(panel).to_be_visible()
        # the hostile renderings: text shown, nothing run, no injected element
        expect(nb).to_contain_text(re.compile(r"★ \d\.\d/5"))  # the grid badges
        expect(nb).to_contain_text("a first:")  # the comparison's reasons
        expect(nb).to_contain_text("Spearman")
        chart = nb.locator('img[alt="ranking chart"]')
        expect(chart).to_have_count(1)  # shown by ig.rank itself
        assert chart.evaluate("i => i.complete && i.naturalWidth") > 0  # the SVG decoded
        assert page.evaluate("() => window.__xss") is None
        assert nb.locator('img[src="x"]').count() == 0
        _shot(page, "hostile")

        # stars on a panel card
        panel.locator(".ipanel-prompt textarea").fill("a red kite over the dunes")
        panel.locator(".ipanel-generate").click()
        cards = panel.locator(".ipanel-card")
        expect(cards).to_have_count(1)
        stars = cards.first.locator(".imagenb-star")
        expect(stars).to_have_count(5)
        stars.nth(3).click()
        expect(stars.nth(3)).to_have_text("★")
        expect(stars.nth(4)).to_have_text("☆")
        _shot(page, "stars", panel)
        assert page.evaluate("() => window.__xss") is None
    finally:
        _shot(page, "lab")

    # another process (a restarted kernel) reads the panel's rating from the store
    code = (
        "import imagenb as ig; r = ig.ratings(); "
        "print(r.loc[r.prompt == 'a red kite over the dunes', 'stars'].tolist())"
    )
    env = {**os.environ, "IMAGENB_STORE": str(lab["store"])}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "[4]", out.stderr
