"""SPEC §7.5 in a real browser: HTML and JavaScript in prompts, captions, axis labels, file
names and error messages is shown as text wherever imagenb renders it, and never runs.

A notebook written here renders hostile payloads through every renderer in a live JupyterLab
kernel (outputs made in the session are trusted, so JupyterLab would run a `<script>` in
them): `ig.generate` (progress line, `ImageSet`, `GeneratedImage`), `ig.grid` (prompts,
captions, row and column labels and axis names, a cell whose moderation error carries the
payload), `Grid.save(".html")`, `ig.edit` of a file named like a tag, `%%imageedit` and
`%imagegen` error lines, `%%imagegen`, `ig.history()` and the panel (gallery, enlarged view,
history, "copy as code", an error message). Each payload, if it ran, would open a dialog
and/or set `window.__xss`. The test asserts: no dialog, no `__xss` in any frame, no request
for the payloads' `src=x`, no `on*` attribute, `javascript:` link, `<script>` or `<iframe>`
in the outputs, and every payload present as visible text (escaped, not dropped). The saved
grid page is opened from disk (file://) and checked the same way. Screenshots go to
test-artifacts/xss-*.png.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from browser_lab import require_browser, run_all_cells, screenshots, wait_kernel_idle
from nbformat.v4 import new_code_cell, new_notebook

from imagenb.testing import FakeImagesServer, Faults

pytestmark = [pytest.mark.browser, pytest.mark.slow]
expect = require_browser()

PAYLOADS = [
    "<script>window.__xss=1;alert(1)</script>",
    '<img src=x onerror="window.__xss=2;alert(2)">',
    "<svg onload=alert(3)>",
    '"><iframe srcdoc="<script>parent.__xss=4</script>">',
    '<a href="javascript:alert(5)">j</a>',
    "</textarea><script>alert(6)</script>",
    "{{7*7}} ${alert(7)}",
    "' autofocus onfocus='window.__xss=8' x='",
    r"$\style{color:red}{TeX}$",  # JupyterLab typesets $...$ in HTML outputs (MathJax)
]
# prompts short enough to be shown whole (a figure shows 240 characters, a label 160)
GROUPS = [" ".join(PAYLOADS[:2]), " ".join(PAYLOADS[2:5]), " ".join(PAYLOADS[5:])]
EVERYTHING = " ".join(PAYLOADS)
BLOCKED = "FORBIDDEN"  # the fake server refuses prompts with this word, naming this category:
ERROR_PAYLOAD = '<img src=x onerror="window.__xss=9;alert(9)">'
GOOD_FILE = "<img src=x onerror=window.__xss=11>.png"  # a real image under a hostile name
BAD_FILE = "<svg onload=window.__xss=12>.png"  # not an image: its name is in the error
BAD_OPTION = "<script>alert(14)</script>"
BAD_SIZE = "<img src=x onerror=alert(15)>"
SMALL = {"size": "1024x640", "quality": "low"}
GRID_PAGE = "xss-grid.html"


def _braces(text: str) -> str:
    """Literal braces in a magic's body (it fills `{name}` from the user's variables)."""
    return text.replace("{", "{{").replace("}", "}}")


# (source, texts its output must show)
CELLS: list[tuple[str, list[str]]] = [
    (
        "from pathlib import Path\n\nimport pandas as pd\nfrom IPython.display import display\n\n"
        "import imagenb as ig\n\n%load_ext imagenb\n"
        f"P = {PAYLOADS!r}\nG = {GROUPS!r}\nSMALL = {SMALL!r}",
        [],
    ),
    (
        "sets = [ig.generate(g, **SMALL) for g in G]\nfor s in sets:\n    display(s, s[0])",
        PAYLOADS,
    ),
    (
        f"ROW, COL = {PAYLOADS[2]!r}, {PAYLOADS[7]!r}  # the axis names\n"
        "frame = pd.DataFrame(\n"
        "    {ROW: [P[0], P[0], P[1], P[1]], COL: [P[3], P[4], P[3], P[4]], 'note': P[4:8]}\n"
        ")\n"
        "frame.loc[3, 'note'] += ' ' + P[8]\n"
        "frame['prompt'] = 'a cat ' + frame[ROW] + ' ' + frame[COL]\n"
        f"frame.loc[3, 'prompt'] = {BLOCKED!r} + ' ' + P[5]\n"
        "grid = ig.grid(frame, rows=ROW, cols=COL, caption='note', **SMALL)\ngrid",
        [*PAYLOADS, ERROR_PAYLOAD],
    ),
    (f"grid.save({GRID_PAGE!r})", [GRID_PAGE]),
    (
        "inputs = Path('inputs')\ninputs.mkdir(exist_ok=True)\n"
        f"(inputs / {BAD_FILE!r}).write_text('<script>alert(13)</script>')\n"
        f"good = inputs / {GOOD_FILE!r}\nsets[0][0].image.save(good)\n"
        "ig.edit(G[0], [good], **SMALL)",
        PAYLOADS[:2],
    ),
    (f'%%imageedit -i "inputs/{BAD_FILE}" -q low -s 1024x640\n{_braces(GROUPS[1])}', [BAD_FILE]),
    (f"%%imagegen -q low -s 1024x640\n{_braces(GROUPS[1])} (magic)", PAYLOADS[2:5]),
    (
        f'%imagegen -q "{BAD_OPTION}" a cat\n%imagegen -s "{BAD_SIZE}" a cat',
        [BAD_OPTION, BAD_SIZE],
    ),
    (
        "# whole prompts, and pandas' own switch that keeps MathJax off its tables\n"
        "pd.set_option('display.max_colwidth', None)\n"
        "pd.set_option('display.html.use_mathjax', False)\n"
        "ig.history()[['prompt', 'kind', 'model', 'created']]",
        PAYLOADS,
    ),
    ("panel = ig.panel(**SMALL)\npanel", []),
]

# JavaScript run in the page: what a payload that got through would have left behind
_LEFTOVERS = """root => {
    const found = [];
    for (const el of root.querySelectorAll('*')) {
        for (const a of el.attributes) {
            if (/^on/i.test(a.name)) found.push(`${el.tagName} ${a.name}=${a.value}`);
            if (/^\\s*javascript:/i.test(a.value)) found.push(`${el.tagName} ${a.name}=${a.value}`);
        }
        if (['SCRIPT', 'IFRAME', 'OBJECT', 'EMBED'].includes(el.tagName)) found.push(el.outerHTML);
        if (el.tagName === 'MJX-CONTAINER') found.push(`typeset as math: ${el.textContent}`);
        if (el.tagName === 'IMG' && el.getAttribute('src') === 'x') found.push(el.outerHTML);
    }
    return found; }"""
_IMAGES_LOADED = "imgs => imgs.length > 0 && imgs.every(i => i.complete && i.naturalWidth > 0)"

_shot = screenshots("xss")


@pytest.fixture(scope="module")
def fake_api() -> Iterator[FakeImagesServer]:
    """Fast, and blocking prompts with BLOCKED with an error that carries ERROR_PAYLOAD."""
    faults = Faults(moderation_words=(BLOCKED,), moderation_category=ERROR_PAYLOAD)
    with FakeImagesServer(latency=0.05, faults=faults) as server:
        yield server


def _write_notebook(path: Path) -> None:
    nb = new_notebook(cells=[new_code_cell(source) for source, _ in CELLS])
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    nbformat.write(nb, str(path))


def _watch(tab: Any) -> dict[str, list[str]]:
    """Record (and dismiss) every dialog and every request for a payload's `src=x`."""
    seen: dict[str, list[str]] = {"dialogs": [], "requests": []}

    def on_dialog(dialog: Any) -> None:
        seen["dialogs"].append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    tab.context.on("dialog", on_dialog)  # this tab and any opened later
    tab.context.on(
        "request",
        lambda r: r.url.rstrip("/").rsplit("/", 1)[-1] == "x" and seen["requests"].append(r.url),
    )
    return seen


def _assert_nothing_ran(tab: Any, seen: dict[str, list[str]], root: Any) -> None:
    assert not seen["dialogs"], seen["dialogs"]
    assert not seen["requests"], seen["requests"]
    for frame in tab.frames:  # parent.__xss, from an iframe, lands in the page itself
        assert frame.evaluate("typeof window.__xss") == "undefined", frame.url
    leftovers = [found for element in root.all() for found in element.evaluate(_LEFTOVERS)]
    assert not leftovers, leftovers


def _assert_shows(text: str, expected: list[str], where: str) -> None:
    missing = [t for t in expected if t not in text]
    assert not missing, f"{where} does not show {missing} as text:\n{text[:3000]}"


def test_hostile_text_is_shown_not_run(lab: Any, page: Any) -> None:
    started = time.monotonic()
    _write_notebook(lab["root"] / "xss.ipynb")
    seen = _watch(page)
    page.goto(f"{lab['url']}/lab/tree/xss.ipynb?token={lab['token']}")
    outputs = page.locator(".jp-OutputArea")
    panel = page.locator(".imagenb-panel")
    try:
        nb = run_all_cells(page)
        cells = nb.locator(".jp-CodeCell")
        expect(cells).to_have_count(len(CELLS))
        expect(cells.last.locator(".jp-InputPrompt")).to_have_text(f"[{len(CELLS)}]:")
        expect(panel).to_be_visible()
        wait_kernel_idle(page)
        _assert_nothing_ran(page, seen, outputs)  # first, as that is what matters most

        # the images really are there: 3 sets shown twice, the edit, the magic; 3 grid cells
        figures = nb.locator(".imagenb-fig img")
        expect(figures).to_have_count(8)
        expect(nb.locator(".imagenb-grid img")).to_have_count(3)
        expect(nb.locator(".imagenb-grid .imagenb-err")).to_have_count(1)
        page.wait_for_function(
            f"() => ({_IMAGES_LOADED})([...document.querySelectorAll("
            "'.jp-OutputArea .imagenb-img, .jp-OutputArea .imagenb-grid img')])"
        )

        # every payload shows as text in the output of each cell that rendered it
        for i, (_, expected) in enumerate(CELLS):
            text = cells.nth(i).locator(".jp-Cell-outputArea").inner_text()
            _assert_shows(text, expected, f"cell {i}")
        # and round-trips through attributes (tooltips) unchanged
        titles = nb.locator(".imagenb-fig .imagenb-prompt").evaluate_all(
            "els => els.map(e => e.title)"
        )
        assert set(GROUPS) <= set(titles), titles
        labels = nb.locator(".imagenb-grid .imagenb-label").evaluate_all(
            "els => els.map(e => e.title)"
        )
        assert sorted(labels) == sorted(PAYLOADS[:2] + PAYLOADS[3:5]), labels
        _shot(page, "generate", cells.nth(1))
        _shot(page, "grid", cells.nth(2))
        _shot(page, "errors", cells.nth(5))
        _shot(page, "history", cells.nth(8))

        # the panel: generate the hostile prompt, enlarge it, history, copy as code
        prompt = panel.locator(".ipanel-prompt textarea")
        prompt.fill(EVERYTHING)
        panel.locator(".ipanel-generate").click()
        cards = panel.locator(".ipanel-card")
        expect(cards).to_have_count(1)
        expect(panel.locator(".ipanel-status")).to_contain_text("1/1 done")
        expect(cards.first.locator("img.ipanel-thumb")).to_be_visible()
        _assert_shows(cards.first.inner_text(), PAYLOADS[:3], "the gallery card")
        assert cards.first.locator(".ipanel-caption .p").get_attribute("title") == EVERYTHING
        cards.first.locator(".ipanel-enlarge").click()
        viewer = panel.locator(".ipanel-viewer")
        expect(viewer.locator("img.ipanel-thumb")).to_be_visible()
        _assert_shows(viewer.inner_text(), PAYLOADS, "the enlarged view")
        panel.locator(".ipanel-history-button").click()
        history = panel.locator(".ipanel-history-card")
        expect(history.first).to_be_visible()
        _assert_shows(history.first.inner_text(), PAYLOADS[:2], "the panel's history")
        panel.locator(".ipanel-code-button").click()
        code = panel.locator(".ipanel-code textarea")
        expect(code).to_be_visible()
        magic_line = code.input_value().split("\n")[-1]  # %imagegen ... 'PROMPT', shell-quoted
        assert shlex.split(magic_line)[-1] == _braces(EVERYTHING), code.input_value()
        _shot(page, "panel", panel)

        # a panel run that fails: the error message carries the payload, as text
        prompt.fill(f"{BLOCKED} {PAYLOADS[0]}")
        panel.locator(".ipanel-generate").click()
        message = panel.locator(".ipanel-message")
        expect(message).to_contain_text(ERROR_PAYLOAD)
        _shot(page, "panel-error", panel)

        wait_kernel_idle(page)
        _assert_nothing_ran(page, seen, outputs)
    finally:
        _shot(page, "lab")
        if seen["dialogs"]:
            print("dialogs:", *seen["dialogs"], sep="\n  ")
        if page.errors:
            print("browser console errors:", *page.errors, sep="\n  ")

    # the saved grid page, opened from disk
    saved = page.context.new_page()
    try:
        saved.goto((lab["root"] / GRID_PAGE).as_uri())
        body = saved.locator("body")
        expect(saved.locator(".imagenb-grid img")).to_have_count(3)
        saved.wait_for_function(f"() => ({_IMAGES_LOADED})([...document.querySelectorAll('img')])")
        _assert_shows(body.inner_text(), [*PAYLOADS, ERROR_PAYLOAD], GRID_PAGE)
        hrefs = saved.locator("a").evaluate_all("els => els.map(e => e.href)")
        assert len(hrefs) == 3 and all(h.startswith("file:///") for h in hrefs), hrefs
        _assert_nothing_ran(saved, seen, body)
    finally:
        _shot(saved, "saved-page")
        saved.close()
    print(f"\nxss browser test: {time.monotonic() - started:.1f} s")
