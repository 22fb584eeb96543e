"""The panel in a real JupyterLab, driven in headless Chromium the way a student uses it:
type a prompt, Generate, select a result, Edit it, Save, History, Copy as code; another cell
runs while 8 images are being made; the saved notebook holds neither the key nor any image
over 40 KB, and reopened without the kernel it shows the gallery, not a widget error.

JupyterLab, Chromium and the helpers come from `browser_lab` (Debian's /usr/bin/chromium
through Playwright, JupyterLab on a free loopback port, the exact server PID ended afterwards).
The OpenAI API is the loopback `FakeImagesServer`, running in this process. Screenshots go to
test-artifacts/panel-*.png.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from browser_lab import (
    NOTEBOOK,
    ROOT,
    TIMEOUT_MS,
    require_browser,
    run_all_cells,
    screenshots,
    wait_kernel_idle,
)
from conftest import TEST_KEY, assert_no_key
from PIL import Image

from imagenb.testing import FakeImagesServer

pytestmark = [pytest.mark.browser, pytest.mark.slow]
expect = require_browser()

PANEL_NOTEBOOK = ROOT / "notebooks" / "03_panel.ipynb"
LAB_NOTEBOOKS = [PANEL_NOTEBOOK]  # copied into the lab's root
MAX_IMAGE = 40_000
_shot = screenshots("panel")


def _embedded_images(value: Any) -> list[int]:
    """Decoded sizes of every image anywhere in a notebook: image/* outputs, data: URIs in
    HTML and widget-state buffers."""
    sizes: list[int] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key.startswith("image/") and isinstance(item, str):
                sizes.append(len(base64.b64decode(item)))
            elif key == "buffers" and isinstance(item, list):
                sizes += [len(base64.b64decode(b["data"])) for b in item if "data" in b]
            else:
                sizes += _embedded_images(item)
    elif isinstance(value, list):
        for item in value:
            sizes += _embedded_images(item)
    elif isinstance(value, str):
        for chunk in value.split(";base64,")[1:]:
            data = chunk.split('"', 1)[0].split("'", 1)[0].split(")", 1)[0]
            sizes.append(len(base64.b64decode(data)))
    return sizes


def _objects(store: Path) -> set[Path]:
    return set((store / "objects").glob("*/*"))


def test_panel_in_jupyterlab(lab: Any, page: Any, fake_api: FakeImagesServer) -> None:
    started = time.monotonic()
    page.goto(f"{lab['url']}/lab/tree/{PANEL_NOTEBOOK.name}?token={lab['token']}")
    panel = page.locator(".imagenb-panel")
    cards = panel.locator(".ipanel-card")
    try:
        nb = run_all_cells(page)
        expect(panel).to_be_visible()
        expect(nb).not_to_contain_text("Error displaying widget")
        expect(page.locator(".imagenb-snapshot")).to_be_hidden()  # the live panel hides it
        wait_kernel_idle(page)

        # 1) type a prompt: the estimate follows; Generate
        prompt = panel.locator(".ipanel-prompt textarea")
        prompt.fill("a lighthouse on a cliff at dusk, watercolour")
        expect(panel.locator(".ipanel-estimate")).to_contain_text("≈ $")
        panel.locator(".ipanel-generate").click()
        expect(cards).to_have_count(1)
        first = cards.first.locator("img")
        expect(first).to_be_visible()
        assert first.evaluate("i => i.complete && i.naturalWidth") > 0
        expect(panel.locator(".ipanel-status")).to_contain_text("1/1 done")
        _shot(page, "generated", panel)
        (generated,) = _objects(lab["store"])

        # 2) enlarge, then select it and edit it
        cards.first.locator(".ipanel-enlarge").click()
        expect(panel.locator(".ipanel-viewer img")).to_be_visible()
        _shot(page, "enlarged", panel)
        panel.locator(".ipanel-viewer-close").click()
        cards.first.locator(".ipanel-select").click()
        expect(cards.first).to_have_class(re.compile("ipanel-selected"))
        panel.locator(".ipanel-edit").click()
        expect(panel.locator(".ipanel-inputs img")).to_have_count(1)
        prompt.fill("the same lighthouse at night, a warm beam of light")
        expect(panel.locator(".ipanel-generate")).to_contain_text("Edit 1 image")
        _shot(page, "editing", panel)
        panel.locator(".ipanel-generate").click()
        expect(cards).to_have_count(2)
        edit = fake_api.log[-1]
        assert edit["path"].endswith("/images/edits")
        assert edit["image_sha256s"] == [hashlib.sha256(generated.read_bytes()).hexdigest()]
        expect(panel.locator(".ipanel-inputs")).to_be_hidden()
        _shot(page, "edited", panel)

        # 3) save the selected image's full-resolution file
        cards.nth(1).locator(".ipanel-select").click()
        panel.locator(".ipanel-folder input").fill("saved")
        panel.locator(".ipanel-save").click()
        expect(panel.locator(".ipanel-message")).to_contain_text("Saved 1 full-resolution")
        (saved,) = (lab["root"] / "saved").iterdir()
        assert saved.read_bytes() == generated.read_bytes()
        with Image.open(saved) as im:
            assert max(im.size) >= 1024

        # 4) another cell runs at once while 8 images are being made
        fake_api.latency = 4.0
        prompt.fill("eight paper boats on a pond, morning mist")
        readout = panel.locator(".ipanel-n .widget-readout")
        readout.click()
        page.keyboard.press("Control+a")
        page.keyboard.type("8")
        page.keyboard.press("Enter")
        expect(panel.locator(".ipanel-estimate")).to_contain_text("for 8 images")
        panel.locator(".ipanel-generate").click()
        expect(panel.locator(".ipanel-status")).to_contain_text("Generating 8 images")
        other = nb.locator(".jp-CodeCell").nth(1)  # print(... results ...); ig.spent()
        count = other.locator(".jp-InputPrompt").inner_text()
        other.locator(".jp-InputArea-editor").click()
        clicked = time.monotonic()
        page.keyboard.press("Control+Enter")  # run it in place
        page.wait_for_function(
            r"""([cell, before]) => { const p = cell.querySelector('.jp-InputPrompt').textContent;
                                     return p !== before && /\[\d+\]/.test(p); }""",
            arg=[other.element_handle(), count],
        )
        other_took = time.monotonic() - clicked
        expect(other.locator(".jp-OutputArea-output").first).to_contain_text("result(s)")
        expect(panel.locator(".ipanel-status")).to_contain_text("Generating 8 images")
        assert other_took < 2.5, f"the other cell took {other_took:.1f} s"
        _shot(page, "running", panel)
        expect(cards).to_have_count(10, timeout=TIMEOUT_MS)
        fake_api.latency = 0.3
        expect(panel.locator(".ipanel-status")).to_contain_text("8/8 done")
        page.locator(".imagenb-panel").scroll_into_view_if_needed()
        _shot(page, "gallery", panel)

        # 5) history and copy as code
        panel.locator(".ipanel-history-button").click()
        history = panel.locator(".ipanel-history-card")
        expect(history).to_have_count(3)
        expect(history.first).to_contain_text("eight paper boats")
        _shot(page, "history", panel)
        history.nth(2).locator(".ipanel-reload").click()
        expect(prompt).to_have_value("a lighthouse on a cliff at dusk, watercolour")
        panel.locator(".ipanel-history-button").click()
        panel.locator(".ipanel-code-button").click()
        code = panel.locator(".ipanel-code textarea")
        expect(code).to_have_value(
            re.compile(r"^%load_ext imagenb\n%imagegen -m gpt-image-2 -s auto -q low -n 1 -f png ")
        )
        _shot(page, "code", panel)
        assert not [e for e in page.errors if "widget" in e.lower() or "model" in e.lower()]

        # 6) save the notebook: no key, no image over 40 KB, and the snapshot is in it
        gallery_size = cards.count()
        path = lab["root"] / PANEL_NOTEBOOK.name
        page.keyboard.press("Control+s")
        deadline = time.monotonic() + 30
        while "imagenb-snapshot" not in path.read_text() or "a lighthouse on a cliff" not in (
            path.read_text()
        ):
            assert time.monotonic() < deadline, "the saved notebook has no snapshot"
            time.sleep(0.2)
        text = path.read_text()
        assert TEST_KEY not in text and "sk-test" not in text
        assert assert_no_key(lab["log"].parent) > 1  # notebooks, store, server log, home
        sizes = _embedded_images(json.loads(text))
        assert sizes and max(sizes) <= MAX_IMAGE, sorted(sizes)[-3:]
    finally:
        _shot(page, "lab")
        if page.errors:
            print("browser console errors:", *page.errors, sep="\n  ")
        print(f"\nbrowser test, live part: {time.monotonic() - started:.1f} s")

    # 7) reopened without the kernel: the static snapshot, not "model not found"
    sessions = json.load(urllib.request.urlopen(f"{lab['url']}/api/sessions?token={lab['token']}"))
    for s in sessions:
        req = urllib.request.Request(
            f"{lab['url']}/api/sessions/{s['id']}?token={lab['token']}", method="DELETE"
        )
        urllib.request.urlopen(req).read()
    page.reload()
    nb = page.locator(NOTEBOOK)
    snapshot = page.locator(".imagenb-snapshot")
    try:
        expect(snapshot).to_be_visible()
        expect(snapshot.locator("img")).to_have_count(gallery_size)  # the whole gallery
        expect(snapshot).to_contain_text("a lighthouse on a cliff")
        page.wait_for_timeout(3000)  # the widget manager gives up on a missing model after 2 s
        expect(nb).not_to_contain_text("Error displaying widget", use_inner_text=True)
        expect(nb).not_to_contain_text("Loading widget", use_inner_text=True)
        expect(page.locator(".imagenb-panel")).to_have_count(0)
        expect(snapshot).to_be_visible()
    finally:
        _shot(page, "reopened")

    # 8) a copy someone else saved (untrusted: no widget, sanitized HTML) shows it too
    shared = json.loads(path.read_text())
    shared["metadata"]["shared"] = True  # another signature: Lab does not trust it
    (lab["root"] / "shared.ipynb").write_text(json.dumps(shared))
    page.goto(f"{lab['url']}/lab/tree/shared.ipynb?reset&token={lab['token']}")
    nb = page.locator(NOTEBOOK)
    try:
        tab = page.locator('.lm-TabBar-tab.lm-mod-current[data-type="document-title"]')
        expect(tab).to_contain_text("shared.ipynb")
        expect(nb.locator("img")).to_have_count(gallery_size)
        expect(nb).to_contain_text("a lighthouse on a cliff", use_inner_text=True)
        expect(nb).not_to_contain_text("Error displaying widget", use_inner_text=True)
        expect(nb).to_contain_text("run the cell for live controls", use_inner_text=True)
    finally:
        _shot(page, "untrusted")
