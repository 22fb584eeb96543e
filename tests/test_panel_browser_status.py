"""The panel's words and clipboard in a real JupyterLab (headless Chromium): "Copy as code"
puts a runnable snippet on the clipboard; a streamed Generate logs no console error; the
status lines say what is true after a paid run, a settled message followed by an invalid
size, and a cancel before anything arrived. Screenshots go to test-artifacts/panel-status-*.png.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import nbformat
import pytest
from browser_lab import TIMEOUT_MS, require_browser, run_all_cells, screenshots, wait_kernel_idle
from nbformat.v4 import new_code_cell, new_notebook

from imagenb.testing import FakeImagesServer

pytestmark = [pytest.mark.browser, pytest.mark.slow]
expect = require_browser()
_shot = screenshots("panel-status")


@pytest.fixture(scope="module")
def fake_api() -> Iterator[FakeImagesServer]:
    with FakeImagesServer(latency=0.2) as server:
        yield server


@pytest.fixture
def clip_page(browser: Any) -> Iterator[Any]:
    """A page whose context may read and write the clipboard (as a user who allowed it)."""
    ctx = browser.new_context(
        viewport={"width": 1280, "height": 2000},
        permissions=["clipboard-read", "clipboard-write"],
    )
    pg = ctx.new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    expect.set_options(timeout=TIMEOUT_MS)
    pg.errors = []
    pg.on("console", lambda m: m.type == "error" and pg.errors.append(m.text))
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    yield pg
    ctx.close()


def test_panel_copies_streams_and_says_what_is_true(
    lab: Any, clip_page: Any, fake_api: FakeImagesServer
) -> None:
    page = clip_page
    nb = new_notebook(
        cells=[new_code_cell('import imagenb as ig\n\np = ig.panel(quality="low")\np')]
    )
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                 "language": "python"}  # fmt: skip
    nbformat.write(nb, str(lab["root"] / "status.ipynb"))
    page.goto(f"{lab['url']}/lab/tree/status.ipynb?token={lab['token']}")
    panel = page.locator(".imagenb-panel")
    message = panel.locator(".ipanel-message")
    estimate = panel.locator(".ipanel-estimate")
    generate = panel.locator(".ipanel-generate")
    prompt = panel.locator(".ipanel-prompt textarea")
    try:
        run_all_cells(page)
        expect(panel).to_be_visible()
        wait_kernel_idle(page)

        # 1) a paid Generate: afterwards the estimate speaks of a re-run, not of this run
        prompt.fill("a lighthouse on a cliff at dusk")
        expect(estimate).to_contain_text("≈ $")
        generate.click()
        expect(panel.locator(".ipanel-status")).to_contain_text("1/1 done")
        expect(estimate).to_contain_text("Generate again: free")
        expect(estimate).not_to_contain_text("free: ")
        _shot(page, "after-paid", panel)

        # 2) Copy as code puts the snippet on the clipboard
        panel.locator(".ipanel-code-button").click()
        code = panel.locator(".ipanel-code textarea")
        expect(code).to_have_value("%load_ext imagenb\n%imagegen -m gpt-image-2 -s auto -q low "
                                   "-n 1 -f png 'a lighthouse on a cliff at dusk'")  # fmt: skip
        page.wait_for_function(
            "want => navigator.clipboard.readText().then(t => t === want)",
            arg=code.input_value(),
        )
        expect(message).to_contain_text("Copied to the clipboard")
        panel.locator(".ipanel-code-button").click()

        # 3) a streamed Generate: partial images, and no console error
        errors_before = len(page.errors)
        panel.locator(".ipanel-stream input").check()
        prompt.fill("a paper boat on a pond, streamed")
        expect(message).to_be_empty()  # the "Copied" line went with the change
        generate.click()
        expect(panel.locator(".ipanel-status")).to_contain_text("1/1 done")
        panel.locator(".ipanel-stream input").uncheck()
        streamed_errors = page.errors[errors_before:]
        assert not streamed_errors, streamed_errors

        # 4) a settled message, then an invalid size: the message goes, Generate is off
        panel.locator(".ipanel-code-button").click()
        expect(message).to_contain_text("Copied to the clipboard")
        panel.locator(".ipanel-code-button").click()
        panel.locator(".ipanel-size select").select_option(label="custom WxH…")
        custom = panel.locator(".ipanel-custom-size input")
        custom.fill("100x100")
        custom.press("Enter")
        expect(estimate).to_contain_text("⚠")
        expect(message).not_to_contain_text("Copied")
        expect(generate).to_be_disabled()
        _shot(page, "invalid", panel)
        panel.locator(".ipanel-size select").select_option(index=0)
        expect(generate).to_be_enabled()

        # 5) cancel before anything arrived: said plainly
        fake_api.latency = 6.0
        prompt.fill("four slow paintings")
        readout = panel.locator(".ipanel-n .widget-readout")
        readout.click()
        page.keyboard.press("Control+a")
        page.keyboard.type("4")
        page.keyboard.press("Enter")
        expect(estimate).to_contain_text("for 4 images")
        generate.click()
        expect(panel.locator(".ipanel-status")).to_contain_text("Generating 4 images")
        panel.locator(".ipanel-cancel").click()
        # a cancel collects what was already sent; either way the line says what happened
        expect(message).to_contain_text(re.compile(r"Cancelled(: none of the 4|, but all 4)"))
        expect(message).not_to_contain_text("the other 0")
        _shot(page, "cancelled", panel)
    finally:
        fake_api.latency = 0.2
        _shot(page, "lab")
        if page.errors:
            print("browser console errors:", *page.errors, sep="\n  ")
