"""The mask painter in a real JupyterLab, driven in headless Chromium: a mouse drag across the
displayed picture paints the full-resolution mask in the kernel along the stroke (scaled from
display to image pixels) and nowhere far from it; Undo takes the last stroke back; a pen
stroke paints too; the saved notebook holds no key and no image over 40 KB, and reopened
without the kernel it shows the static picture of the mask, not a widget error.

Screenshots go to test-artifacts/mask-*.png.
"""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

import nbformat
import pytest
from browser_lab import NOTEBOOK, require_browser, run_all_cells, screenshots, wait_kernel_idle
from conftest import TEST_KEY, assert_no_key
from nbformat.v4 import new_code_cell, new_notebook
from test_panel_browser import MAX_IMAGE, _embedded_images

pytestmark = [pytest.mark.browser, pytest.mark.slow]
expect = require_browser()
_shot = screenshots("mask")
NAME = "mask_painter.ipynb"

SETUP = '''import json
import numpy as np
from PIL import Image
import imagenb as ig

rng = np.random.default_rng(5)
ramp = np.linspace(40, 210, 1024, dtype=np.uint8)[None, :, None]
photo = Image.fromarray(rng.integers(0, 40, (768, 1024, 3), dtype=np.uint8) + ramp, "RGB")


def probe():
    """Alpha of the kernel's mask along both strokes and far from them (image pixels)."""
    a = np.asarray(painter.mask.getchannel("A"))
    h, w = a.shape
    x = int(w * 0.3)
    print(json.dumps({
        "size": [w, h],
        "along_row": int(a[h // 2, int(w * 0.2):int(w * 0.8)].max()),
        "along_col": int(a[int(h * 0.2):int(h * 0.8), w // 2].max()),
        "band_in": int(max(a[h // 2 - 26, x], a[h // 2 + 26, x])),
        "band_out": int(min(a[h // 2 - 40, x], a[h // 2 + 40, x])),
        "far": int(min(a[int(h * .1), int(w * .1)], a[int(h * .9), int(w * .9)],
                       a[int(h * .1), int(w * .9)])),
        "painted": round(painter.painted, 4),
    }))
'''


def _write_notebook(path: Any, *sources: str) -> None:
    nb = new_notebook(cells=[new_code_cell(source) for source in sources])
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)


def _probe(page: Any, nb: Any) -> dict[str, Any]:
    """Run the probe cell in place and read what it printed."""
    cell = nb.locator(".jp-CodeCell").nth(2)
    before = cell.locator(".jp-InputPrompt").inner_text()
    cell.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Control+Enter")
    page.wait_for_function(
        r"""([cell, before]) => { const p = cell.querySelector('.jp-InputPrompt').textContent;
                                 return p !== before && /\[\d+\]/.test(p); }""",
        arg=[cell.element_handle(), before],
    )
    found: dict[str, Any] = json.loads(cell.locator(".jp-OutputArea-output").inner_text())
    return found


def _drag(page: Any, stage: Any, start: tuple[float, float], end: tuple[float, float]) -> None:
    """A mouse drag between two points given as fractions of the displayed picture."""
    box = stage.bounding_box()
    x0, y0 = box["x"] + start[0] * box["width"], box["y"] + start[1] * box["height"]
    x1, y1 = box["x"] + end[0] * box["width"], box["y"] + end[1] * box["height"]
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x1, y1, steps=24)
    page.mouse.up()


def _pen(stage: Any, start: tuple[float, float], end: tuple[float, float]) -> None:
    """A pen stroke as the browser reports one: pointer events with pointerType "pen"."""
    stage.evaluate(
        """(s, [a, b]) => {
            const box = s.getBoundingClientRect();
            const at = (f) => [box.left + f[0] * box.width, box.top + f[1] * box.height];
            const fire = (type, [x, y]) => s.dispatchEvent(new PointerEvent(type, {
                pointerId: 7, pointerType: "pen", isPrimary: true, bubbles: true, button: 0,
                buttons: type === "pointerup" ? 0 : 1, pressure: 0.5, clientX: x, clientY: y }));
            fire("pointerdown", at(a));
            const step = (i) => [a[0] + (b[0] - a[0]) * i / 12, a[1] + (b[1] - a[1]) * i / 12];
            for (let i = 1; i <= 12; i++) fire("pointermove", at(step(i)));
            fire("pointerup", at(b));
        }""",
        [list(start), list(end)],
    )


def test_painting_in_jupyterlab_reaches_the_kernel_at_full_resolution(lab: Any, page: Any) -> None:
    _write_notebook(
        lab["root"] / NAME, SETUP, "painter = ig.mask(photo, brush=64)\npainter", "probe()"
    )
    page.goto(f"{lab['url']}/lab/tree/{NAME}?token={lab['token']}")
    painter = page.locator(".imagenb-painter")
    stage = painter.locator(".imagenb-painter-stage")
    status = painter.locator(".imagenb-painter-status")
    try:
        nb = run_all_cells(page)
        expect(nb.locator(".jp-CodeCell").last.locator(".jp-InputPrompt")).to_have_text("[3]:")
        expect(painter).to_be_visible()
        expect(painter.locator(".imagenb-painter-picture")).to_be_visible()
        expect(page.locator(".imagenb-mask-static")).to_be_hidden()  # the live painter hides it
        expect(nb).not_to_contain_text("Error displaying widget")
        wait_kernel_idle(page)
        assert stage.evaluate("s => s.querySelector('img').naturalWidth") == 512  # display size
        assert _probe(page, nb)["along_row"] == 255  # nothing painted yet

        # 1) a mouse drag across the middle, then another down the middle
        _drag(page, stage, (0.1, 0.5), (0.9, 0.5))
        expect(status).not_to_contain_text("0.0% painted")
        first = _probe(page, nb)
        _shot(page, "one-stroke", painter)
        assert first["size"] == [1024, 768]
        assert first["along_row"] == 0 and first["band_in"] == 0  # 64 image px wide
        assert first["band_out"] == 255 and first["far"] == 255 and first["along_col"] == 255
        assert 0.04 < first["painted"] < 0.08  # ~820 x 64 of 1024 x 768
        _drag(page, stage, (0.5, 0.1), (0.5, 0.9))
        expect(status).not_to_contain_text(f"{100 * first['painted']:.1f}% painted")
        both = _probe(page, nb)
        assert both["along_row"] == 0 and both["along_col"] == 0 and both["far"] == 255
        _shot(page, "two-strokes", painter)

        # 2) undo restores the mask as it was before the second stroke
        painter.locator("button[data-action='undo']").click()
        expect(status).to_contain_text(f"{100 * first['painted']:.1f}% painted")
        assert _probe(page, nb) == first
        _shot(page, "undone", painter)

        # 3) a pen paints too (pointer events of pointerType "pen")
        _pen(stage, (0.5, 0.1), (0.5, 0.9))
        expect(status).not_to_contain_text(f"{100 * first['painted']:.1f}% painted")
        pen = _probe(page, nb)
        assert pen["along_col"] == 0 and pen["along_row"] == 0 and pen["far"] == 255

        # 4) Ctrl+Z in the painter undoes it (not the notebook), and the pen stroke again
        stage.click(position={"x": 5, "y": 5})  # a dot in a corner, focusing the painter
        expect(status).not_to_contain_text(f"{100 * pen['painted']:.1f}% painted")
        page.keyboard.press("Control+z")
        expect(status).to_contain_text(f"{100 * pen['painted']:.1f}% painted")
        assert _probe(page, nb) == pen
        widget_errors = [e for e in page.errors if "widget" in e.lower() or "model" in e.lower()]
        assert not widget_errors, widget_errors

        # 5) saved: the static picture is in it, no key, no image over 40 KB
        path = lab["root"] / NAME
        page.keyboard.press("Control+s")
        deadline = time.monotonic() + 30
        last = f"{100 * pen['painted']:.1f}% painted"
        while "imagenb-mask-static" not in path.read_text() or last not in path.read_text():
            assert time.monotonic() < deadline, "the saved notebook has no static picture"
            time.sleep(0.2)
        text = path.read_text()
        assert TEST_KEY not in text and "sk-test" not in text
        assert assert_no_key(lab["root"]) >= 1
        sizes = _embedded_images(json.loads(text))
        assert sizes and max(sizes) <= MAX_IMAGE, sorted(sizes)[-3:]
    finally:
        _shot(page, "lab")
        if page.errors:
            print("browser console errors:", *page.errors, sep="\n  ")

    # 6) reopened without the kernel: the static picture of the mask, not a widget error
    sessions = json.load(urllib.request.urlopen(f"{lab['url']}/api/sessions?token={lab['token']}"))
    for s in sessions:
        req = urllib.request.Request(
            f"{lab['url']}/api/sessions/{s['id']}?token={lab['token']}", method="DELETE"
        )
        urllib.request.urlopen(req).read()
    page.reload()
    nb = page.locator(NOTEBOOK)
    static = page.locator(".imagenb-mask-static")
    try:
        expect(static).to_be_visible()
        expect(static.locator("img")).to_have_count(1)
        expect(static).to_contain_text(f"{100 * pen['painted']:.1f}% painted")
        page.wait_for_timeout(3000)  # the widget manager gives up on a missing model after 2 s
        expect(nb).not_to_contain_text("Error displaying widget", use_inner_text=True)
        expect(page.locator(".imagenb-painter")).to_have_count(0)
        expect(static).to_be_visible()
    finally:
        _shot(page, "reopened")


PANEL = "mask_panel.ipynb"


def test_paint_mask_in_the_panel_and_its_shortcuts(lab: Any, page: Any, fake_api: Any) -> None:
    """In the panel: Ctrl+Enter generates (and the cell is not run again), "Paint mask" opens
    the painter on the selected image, a drag paints, the next Edit sends the mask and its
    card names the image it came from; Esc closes the enlarged view."""
    panel_cell = 'import imagenb as ig\np = ig.panel(quality="low", size="1024x1024")\np'
    _write_notebook(lab["root"] / PANEL, panel_cell)
    page.goto(f"{lab['url']}/lab/tree/{PANEL}?reset&token={lab['token']}")  # one tab only
    panel = page.locator(".imagenb-panel")
    cards = panel.locator(".ipanel-card")
    try:
        nb = run_all_cells(page)
        expect(panel).to_be_visible()
        prompt = panel.locator(".ipanel-prompt textarea")
        prompt.fill("a harbour at dawn, watercolour")
        prompt.press("Control+Enter")
        expect(cards).to_have_count(1)
        expect(nb.locator(".jp-InputPrompt").first).to_have_text("[1]:")  # not run again
        cards.first.locator(".ipanel-select").click()
        panel.locator(".ipanel-paint-mask").click()
        stage = panel.locator(".imagenb-painter-stage")
        expect(stage).to_be_visible()
        expect(panel.locator(".ipanel-generate")).to_contain_text("Edit 1 image")
        _drag(page, stage, (0.2, 0.5), (0.8, 0.5))
        expect(panel.locator(".imagenb-painter-status")).not_to_contain_text("0.0% painted")
        _shot(page, "panel-painted", panel)
        prompt.fill("a lighthouse on the pier")
        panel.locator(".ipanel-generate").click()
        expect(cards).to_have_count(2)
        assert fake_api.log[-1]["mask_sha256"] is not None
        expect(cards.first).to_contain_text("edit of “a harbour at dawn, watercolour”")
        expect(cards.first).to_contain_text("outside kept")
        cards.first.locator(".ipanel-enlarge").click()
        viewer = panel.locator(".ipanel-viewer")
        expect(viewer).to_be_visible()
        _shot(page, "panel-edited", panel)
        page.keyboard.press("Escape")
        expect(viewer).to_be_hidden()

        # two selected images compared: a slider over them, or side by side
        cards.nth(0).locator(".ipanel-select").click()
        cards.nth(1).locator(".ipanel-select").click()
        panel.locator(".ipanel-compare").click()
        compared = panel.locator(".imagenb-compare-view")
        expect(compared.locator("img")).to_have_count(2)
        compared.locator(".imagenb-compare-slider").fill("25")
        clip = compared.locator("img").nth(1).evaluate("i => i.style.clipPath")
        assert clip == "inset(0px 0px 0px 25%)", clip
        _shot(page, "panel-compare-slider", compared)
        compared.locator(".imagenb-compare-mode").click()
        expect(compared.locator(".imagenb-compare-side")).to_have_count(1)
        _shot(page, "panel-compare-side", compared)
        widget_errors = [e for e in page.errors if "widget" in e.lower() or "model" in e.lower()]
        assert not widget_errors, widget_errors
    finally:
        _shot(page, "panel-lab")
        if page.errors:
            print("browser console errors:", *page.errors, sep="\n  ")
