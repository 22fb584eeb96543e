"""SPEC §7.4 in a real browser: every kind of output keeps its layout where `<style>` blocks
are dropped (an untrusted notebook in JupyterLab, and GitHub's stricter sanitizer), no output
restyles another, and notebook 06's six-script grid fits a 1280 px window.

A notebook is executed headless on the offline preview backend (the outputs users get:
image card, ImageSet, live and static grid, storyboard, the panel's static snapshot, the
progress line the set's cell shows) and saved unsigned, so JupyterLab opens it untrusted.
The same outputs are also run through a GitHub-like sanitizer (no `<style>`, no `<script>`,
no event handlers, no classes or ids; inline styles kept) and opened as a plain page.
Screenshots go to test-artifacts/looks-*.png.
"""

from __future__ import annotations

import html
import os
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import nbformat
import pytest
from browser_lab import NOTEBOOK, require_browser, screenshots, wait_kernel_idle
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

from imagenb.panels.gallery import HIDE_DEAD_WIDGET

pytestmark = [pytest.mark.browser, pytest.mark.slow]
expect = require_browser()
_shot = screenshots("looks")

SCRIPTS = (
    '"script": ["Latin", "Japanese", "Korean", "Chinese", "Hindi", "Bengali"],\n'
    '"text": ["GRAND OPENING", "いらっしゃいませ", "영업 중입니다", "欢迎光临本店",'
    ' "नमस्ते दोस्त", "স্বাগতম বন্ধু"]'
)
# (tag, source): each cell's outputs are found again in the browser by their cell's position
CELLS = [
    ("setup", "import imagenb as ig\nfrom IPython.display import display\n"
              "ig.configure(backend='preview')"),
    ("set", "s = ig.generate('a red fox in the snow', n=2, quality='low', size='1536x1024')\ns"),
    ("card", "s[0]"),
    ("grid6", "import pandas as pd\n"
              f"signs = pd.DataFrame({{{SCRIPTS}}})\n"
              "signs['prompt'] = 'a wooden shop sign that says \"' + signs['text'] + '\"'\n"
              "grid = ig.grid(signs, cols='script', size='1536x1024', quality='low')"),
    ("grid-live", "from imagenb.grids import html as grid_html\n"
                  "display({'text/html': grid_html.render(grid, live=True)}, raw=True)"),
    ("story", "ig.storyboard(['a robot waves hello', 'a girl waves back', 'they share tea'],"
              " quality='low')"),
    ("snapshot", "from imagenb.panels.gallery import snapshot_bundle\n"
                 "display(snapshot_bundle(list(s)), raw=True)"),
]  # fmt: skip
TAGS = [tag for tag, _ in CELLS]

# Per figure: its box, the image's box and the caption's box (page coordinates)
_FIGURES = """root => [...root.querySelectorAll('figure')]
    .filter(f => f.querySelector('figcaption'))
    .map(f => { const r = e => { const b = e.getBoundingClientRect();
                                 return [b.left, b.top, b.right, b.bottom]; };
                return {fig: r(f), img: r(f.querySelector('img')),
                        cap: r(f.querySelector('figcaption'))}; })"""
_GRID = """table => { const box = table.parentElement; const out = table.closest('%s');
    const rows = [...table.querySelectorAll('tr')];
    return {table: table.getBoundingClientRect().width, box: box.clientWidth,
            scroll: box.scrollWidth, out: out ? out.getBoundingClientRect().width : 0,
            heads: [...table.querySelectorAll('thead th')].slice(1)
                      .map(t => getComputedStyle(t).textAlign),
            backgrounds: rows.map(r => getComputedStyle(r).backgroundColor),
            imgs: [...table.querySelectorAll('img')]
                      .map(i => i.getBoundingClientRect().width)}; }"""
_CLEAR = "rgba(0, 0, 0, 0)"


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> nbformat.NotebookNode:
    """The notebook run headless on the preview backend (no key), as `make demo` runs one."""
    where = tmp_path_factory.mktemp("looks-run")
    nb = new_notebook(cells=[new_code_cell(source) for _, source in CELLS])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                 "language": "python"}  # fmt: skip
    with pytest.MonkeyPatch.context() as env:  # the kernel's own store and home, no key
        for var in [v for v in os.environ if v.startswith(("IMAGENB_", "OPENAI_"))]:
            env.delenv(var)
        env.setenv("IMAGENB_STORE", str(where / "store"))
        env.setenv("HOME", str(where))
        NotebookClient(nb, timeout=600, kernel_name="python3",
                       resources={"metadata": {"path": str(where)}}).execute()  # fmt: skip
    return nb


def _htmls(nb: nbformat.NotebookNode, tag: str) -> list[str]:
    cell = nb.cells[TAGS.index(tag)]
    return [o["data"]["text/html"] for o in cell.outputs if "text/html" in o.get("data", {})]


def test_outputs_carry_no_style_block_or_script(executed: nbformat.NotebookNode) -> None:
    """No layout rides on a `<style>` block; the snapshot's one rule only hides a dead widget
    output next to it (see panel_gallery)."""
    for tag in TAGS[1:]:
        for fragment in _htmls(executed, tag):
            fragment = fragment.replace(HIDE_DEAD_WIDGET, "")
            assert "<style" not in fragment.lower() and "<script" not in fragment.lower(), tag
    assert _htmls(executed, "grid6") and _htmls(executed, "story")
    progress, image_set = _htmls(executed, "set")  # the progress line stays, then the set
    assert "imagenb-progress" in progress and "imagenb-set" in image_set


def _check_figures(figures: list[dict[str, Any]], where: str) -> None:
    """One card per figure: each image and caption inside its own card, cards of a set side
    by side (not stacked at full width), and no two cards overlapping."""
    assert figures, where
    for f in figures:
        x0, y0, x1, y1 = f["fig"]
        for part in ("img", "cap"):
            a0, b0, a1, b1 = f[part]
            assert x0 - 1 <= a0 and a1 <= x1 + 1 and y0 - 1 <= b0 and b1 <= y1 + 1, (where, f)
        assert x1 - x0 < 420, (where, f)  # a thumbnail card, not a full-width block
    boxes = [f["fig"] for f in figures]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            apart = a[2] <= b[0] + 1 or b[2] <= a[0] + 1 or a[3] <= b[1] + 1 or b[3] <= a[1] + 1
            assert apart, (where, a, b)


def _check_grid(grid: dict[str, Any], where: str) -> None:
    assert grid["scroll"] <= grid["box"] + 1, (where, grid)  # fits: no sideways scroll
    assert grid["table"] <= grid["box"] + 1, (where, grid)
    assert all(a == "center" for a in grid["heads"]), (where, grid["heads"])
    assert all(b == _CLEAR for b in grid["backgrounds"]), (where, grid["backgrounds"])
    assert grid["imgs"] and min(grid["imgs"]) >= 100, (where, grid["imgs"])


def test_untrusted_notebook_keeps_its_layout_in_jupyterlab(
    executed: nbformat.NotebookNode, lab: Any, page: Any
) -> None:
    path = lab["root"] / "looks.ipynb"
    nbformat.write(executed, str(path))  # unsigned: JupyterLab opens it untrusted
    page.goto(f"{lab['url']}/lab/tree/looks.ipynb?token={lab['token']}")
    nb = page.locator(NOTEBOOK)
    try:
        expect(nb).to_be_visible()
        wait_kernel_idle(page)
        cells = nb.locator(".jp-CodeCell")
        expect(cells).to_have_count(len(CELLS))
        assert not page.locator(".jp-OutputArea style").count()  # Lab dropped nothing we need
        page.wait_for_function(
            "() => [...document.querySelectorAll('.jp-OutputArea img')]"
            ".every(i => i.complete && i.naturalWidth > 0)"
        )
        for tag in ("set", "card", "snapshot"):
            area = cells.nth(TAGS.index(tag)).locator(".jp-OutputArea")
            _check_figures(area.evaluate(_FIGURES), f"lab {tag}")
        set_figs = cells.nth(TAGS.index("set")).locator(".jp-OutputArea").evaluate(_FIGURES)
        assert len(set_figs) == 2 and abs(set_figs[0]["fig"][1] - set_figs[1]["fig"][1]) < 2
        for tag in ("grid6", "grid-live", "story"):
            table = cells.nth(TAGS.index(tag)).locator(".jp-OutputArea table")
            expect(table).to_have_count(1)
            table.locator("tbody img").first.hover()  # over a row: JupyterLab colours it
            _check_grid(table.evaluate(_GRID % ".jp-OutputArea-output"), f"lab {tag}")
    finally:
        _shot(page, "untrusted-lab")
        for tag in ("set", "grid6", "story", "snapshot"):
            area = cells.nth(TAGS.index(tag)).locator(".jp-OutputArea")
            if area.count():
                area.scroll_into_view_if_needed()
                _shot(page, f"untrusted-{tag}", area)


# --- GitHub ------------------------------------------------------------------------------------


class _GitHubLike(HTMLParser):
    """A sanitizer at least as strict as GitHub's for notebook HTML: drops `<style>`,
    `<script>`, `<iframe>` and their content, event handlers, `class`, `id` and `data-*`
    attributes; keeps inline styles (as the task's bar sets it)."""

    DROP = frozenset({"style", "script", "iframe", "object", "embed"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.out: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.DROP:
            self.skipping += 1
            return
        if self.skipping:
            return
        kept = [
            f' {k}="{html.escape(v or "", quote=True)}"'
            for k, v in attrs
            if not re.match(r"on|class$|id$|data-", k)
        ]
        self.out.append(f"<{tag}{''.join(kept)}>")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.DROP:
            self.skipping = max(0, self.skipping - 1)
        elif not self.skipping:
            self.out.append(f"</{tag}>")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.out.append(data)

    def handle_entityref(self, name: str) -> None:
        self.handle_data(f"&{name};")

    def handle_charref(self, name: str) -> None:
        self.handle_data(f"&#{name};")


def github_sanitize(fragment: str) -> str:
    parser = _GitHubLike()
    parser.feed(fragment)
    parser.close()
    return "".join(parser.out)


def test_the_sanitizer_is_strict() -> None:
    dirty = '<style>p{}</style><p class="a" id="b" onclick="x()" style="color:red">t</p>'
    assert github_sanitize(dirty) == '<p style="color:red">t</p>'


def test_outputs_keep_their_layout_under_a_github_like_sanitizer(
    executed: nbformat.NotebookNode, browser: Any, tmp_path: Path
) -> None:
    sections = []
    for tag in TAGS[1:]:
        for fragment in _htmls(executed, tag):
            sections.append(f'<section title="{tag}">{github_sanitize(fragment)}</section>')
    # GitHub shows a notebook in a column about 980 px wide
    page_html = (
        '<!DOCTYPE html><meta charset="utf-8"><body style="margin:0">'
        f'<div style="width:900px;margin:16px">{"".join(sections)}</div>'
    )
    target = tmp_path / "github.html"
    target.write_text(page_html, encoding="utf-8")
    tab = browser.new_page(viewport={"width": 1012, "height": 1600})
    try:
        tab.goto(target.as_uri())
        tab.wait_for_function(
            "() => [...document.images].every(i => i.complete && i.naturalWidth > 0)"
        )
        for tag in ("set", "card", "snapshot"):
            sections = tab.locator(f"section[title='{tag}']")
            _check_figures(sections.last.evaluate(_FIGURES), f"github {tag}")
        tables = tab.locator("section[title^='grid'] table, section[title='story'] table")
        assert tables.count() == 3
        for table in tables.all():
            _check_grid(table.evaluate(_GRID % "section"), "github grid")
    finally:
        _shot(tab, "github")
        tab.close()


# --- one output never restyles another ---------------------------------------------------------

_STYLES = """root => [...root.querySelectorAll('*')].map(e => { const s = getComputedStyle(e);
    return [e.tagName, s.width, s.height, s.display, s.fontSize, s.color, s.backgroundColor,
            s.margin, s.padding, s.textAlign, s.position, s.overflow].join('|'); })"""


def test_two_outputs_do_not_change_each_others_computed_style(
    executed: nbformat.NotebookNode, browser: Any, tmp_path: Path
) -> None:
    """Trusted HTML as JupyterLab shows it in the session that made it (nothing sanitized):
    each output's computed style alone equals its computed style beside all the others."""
    kinds = {tag: "".join(_htmls(executed, tag)) for tag in TAGS[1:] if _htmls(executed, tag)}
    tab = browser.new_page(viewport={"width": 1280, "height": 1600})

    def styles(shown: dict[str, str], tag: str) -> list[str]:
        body = "".join(f'<div id="out-{t}" style="width:900px">{h}</div>' for t, h in shown.items())
        tab.set_content(f'<!DOCTYPE html><meta charset="utf-8"><body>{body}</body>')
        result: list[str] = tab.locator(f"#out-{tag}").evaluate(_STYLES)
        return result

    try:
        for tag in kinds:
            alone = styles({tag: kinds[tag]}, tag)
            together = styles(kinds, tag)
            assert alone == together, f"{tag} looks different next to the other outputs"
    finally:
        tab.close()
