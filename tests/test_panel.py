"""The panel driven through its widget API (set values, `.click()`) against the loopback fake:
every control, the live estimate, generate, cancel, errors, edit, save, history, copy as code,
and what its widget state may hold (no key, no image over 40 KB)."""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import json
import threading
import time
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import pytest
from conftest import TEST_KEY
from IPython.core.interactiveshell import InteractiveShell
from PIL import Image

import imagenb as ig
from imagenb.core import catalog, config
from imagenb.engine import session
from imagenb.magics import args as magic_args
from imagenb.magics.cells import ImagenbMagics
from imagenb.panels.gallery import HIDE_DEAD_WIDGET, history_entries
from imagenb.panels.threads import Mailbox
from imagenb.panels.widget import Panel
from imagenb.testing import Faults

MAX_STATE_IMAGE = 40_000


def _panel(**defaults: Any) -> Panel:
    p = ig.panel(**defaults)
    assert isinstance(p, Panel) and isinstance(p, widgets.VBox)
    return p


def _generate(p: Panel, prompt: str | None = None) -> None:
    if prompt is not None:
        p.prompt.value = prompt
    p.generate_button.click()
    p.wait(timeout=60)


def _values(dropdown: Any) -> list[str]:
    return [o[1] if isinstance(o, tuple) else o for o in dropdown.options]


# --- controls and estimate --------------------------------------------------------------------


def test_controls_offer_what_the_catalog_says_and_follow_the_model(fake: Any) -> None:
    p = _panel()
    spec = catalog.lookup("gpt-image-2")
    assert p.model.value == "gpt-image-2" and set(_values(p.model)) == set(catalog.MODELS)
    assert _values(p.quality) == list(spec.qualities)
    assert _values(p.output_format) == list(spec.formats)
    assert p.n.max == spec.n_max
    assert {"auto", "square", "2k", "4k", "16:9", "custom"} <= set(_values(p.size))
    assert "transparent" in _values(p.background)

    p.model.value = "gpt-image-2.5-sunburst"  # more qualities
    assert "xhigh" in _values(p.quality)
    p.quality.value = "xhigh"
    p.size.value = "4k"
    p.model.value = "gpt-image-1.5"  # three fixed sizes, no xhigh
    assert _values(p.quality) == list(catalog.lookup("gpt-image-1.5").qualities)
    assert p.quality.value == "auto"
    assert _values(p.size) == ["auto", "square", "landscape", "portrait"]
    assert p.size.value == "auto"

    p.model.value = "gpt-image-2"
    p.output_format.value = "jpeg"  # JPEG has no alpha: no transparent background offered
    assert "transparent" not in _values(p.background)


def test_estimate_updates_as_every_control_changes(fake: Any) -> None:
    p = _panel()
    assert "Type a prompt" in p.estimate.value
    assert p.generate_button.disabled
    p.prompt.value = "a lighthouse at dusk"
    assert not p.generate_button.disabled
    seen = [p.estimate.value]
    for control, value in [
        (p.quality, "low"),
        (p.size, "2k"),
        (p.n, 3),
        (p.model, "gpt-image-1-mini"),
        (p.stream, True),
    ]:
        control.value = value
        assert p.estimate.value not in seen, control
        seen.append(p.estimate.value)
    expected = ig.estimate(
        "a lighthouse at dusk", model="gpt-image-1-mini", quality="low", n=3
    ).usd  # the streaming partials come on top
    assert f"${expected:.4f}" not in p.estimate.value
    p.stream.value = False
    assert f"${expected:.4f}" in p.estimate.value and "3 images at auto size" in p.estimate.value
    p.model.value = "gpt-image-2"
    p.size.value = "16:9"
    assert "at 1536\u00d7864" in p.estimate.value


def test_defaults_preset_the_controls_and_bad_ones_are_refused(fake: Any) -> None:
    p = _panel(prompt="a boat", size="1536x864", quality="low", n=2, output_format="jpg")
    assert (p.prompt.value, p.size.value, p.quality.value) == ("a boat", "16:9", "low")
    assert p.n.value == 2
    assert p.output_format.value == "jpeg"
    q = _panel(size="1280x720")
    assert q.size.value == "custom" and q.custom_size.value == "1280x720"
    with pytest.raises(ig.errors.InvalidRequest, match="no setting"):
        ig.panel(colour="red")
    with pytest.raises(ig.errors.InvalidRequest, match="quality"):
        ig.panel(quality="ultra")


# --- generate, cancel, errors -----------------------------------------------------------------


def test_generate_returns_at_once_and_fills_the_gallery(fake: Any) -> None:
    fake.latency = 2.0
    p = _panel(quality="low", n=3)
    p.prompt.value = "three small boats"
    started = time.monotonic()
    p.generate_button.click()
    assert time.monotonic() - started < 1.0  # never blocks: the answer takes 2 s
    assert p.running and p.generate_button.disabled and not p.cancel_button.disabled
    assert "ipanel-busy" in p.progress._dom_classes and "Generating 3 images" in p.status.value
    p.wait(timeout=30)
    assert "ipanel-busy" not in p.progress._dom_classes
    assert not p.running and p.cancel_button.disabled
    assert len(p.cards) == 3 and len(p.results) == 3
    assert "3/3 done" in p.status.value and p.progress.value == 1.0
    assert p.progress.bar_style == "success"
    assert all(0 < len(c.picture.value) <= MAX_STATE_IMAGE for c in p.cards)
    assert "Results · 3" in p.results_title.value
    assert fake.stats.completed == 1

    p.generate_button.click()  # the same request again comes from the store, free
    p.wait()
    assert fake.stats.completed == 1 and len(p.cards) == 3
    assert "cached" in p.cards[0].caption.value


def test_cancel_stops_a_run(fake: Any) -> None:
    fake.latency = 5.0
    p = _panel(quality="low", n=2)
    _start = time.monotonic()
    p.prompt.value = "a slow painting"
    p.generate_button.click()
    assert p.running
    p.cancel_button.click()  # stops sending; what is being made would still be collected
    p.cancel_button.click()  # abandons it
    p.wait(timeout=10)
    assert time.monotonic() - _start < 3.0
    assert not p.running and not p.cards
    assert "Cancelled" in p.message.value and p.progress.bar_style == "warning"
    assert not p.generate_button.disabled  # ready for the next prompt


def test_moderation_error_is_shown(fake: Any) -> None:
    fake.faults = Faults(moderation_words=("forbidden",))
    p = _panel(quality="low")
    _generate(p, "a <b>forbidden</b> thing")
    assert "Blocked by moderation" in p.message.value and "Rephrase" in p.message.value
    assert "&lt;b&gt;" in p.message.value or "<b>" not in p.message.value
    assert p.progress.bar_style == "danger" and not p.cards and not p.running


def test_budget_error_is_shown_and_nothing_is_sent(fake: Any) -> None:
    config.configure(budget_usd=0.01)
    p = _panel(quality="high", size="4k", n=2)
    p.prompt.value = "an expensive poster"
    assert "over budget" in p.estimate.value
    p.generate_button.click()
    assert "Over budget" in p.message.value and "budget" in p.message.value
    assert not p.running and fake.stats.requests == 0


def test_invalid_size_is_shown_and_nothing_is_sent(fake: Any) -> None:
    p = _panel()
    p.prompt.value = "a wide banner"
    p.size.value = "custom"
    assert p.custom_size.layout.display != "none"
    p.custom_size.value = "1000x1000"
    assert "divisible by 16" in p.estimate.value and "⚠" in p.estimate.value
    p.generate_button.click()
    assert "Invalid input" in p.message.value and "divisible by 16" in p.message.value
    assert fake.stats.requests == 0
    p.custom_size.value = "1008x1008"
    assert "⚠" not in p.estimate.value


def test_prompts_are_escaped_everywhere(fake: Any) -> None:
    p = _panel(quality="low")
    _generate(p, '<img src=x onerror="alert(1)"> & co')
    card = p.cards[0].caption.value
    assert "<img src=x" not in card and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in card
    p.cards[0].enlarge_button.click()
    assert "<img src=x" not in p.gallery.viewer.details.value


def test_streaming_shows_partial_previews(fake: Any) -> None:
    fake.latency = 0.5
    p = _panel(quality="low", stream=True)
    shown: list[int] = []
    p.preview.observe(lambda change: shown.append(len(change["new"])), "value")
    _generate(p, "a streaming kite")
    assert fake.log[-1]["stream"] is True
    assert any(0 < size <= MAX_STATE_IMAGE for size in shown)  # a partial was shown ...
    assert p.preview.value == b"" and p.preview.layout.display == "none"  # ... then removed
    assert len(p.cards) == 1


# --- gallery: select, enlarge, edit, save, history, code -------------------------------------


def test_select_and_edit_sends_an_edit_of_the_selected_image(fake: Any) -> None:
    p = _panel(quality="low", n=2, output_format="webp")
    _generate(p, "a red barn")
    assert p.edit_button.disabled
    chosen = p.cards[1]
    chosen.select.value = True
    assert p.selected == [chosen.image] and not p.edit_button.disabled
    assert "ipanel-selected" in chosen.box._dom_classes and chosen.select.description == "Selected"
    p.edit_button.click()
    assert p.inputs_box.layout.display == "flex" and len(p.inputs_thumbs.children) == 1
    assert p.generate_button.description == "Edit 1 image" and not p.selected
    assert p.code_text().startswith(f"%load_ext imagenb\n%imageedit -i {chosen.image.path} ")
    p.prompt.value = "the same barn at night"
    p.generate_button.click()
    p.wait()
    sent = fake.log[-1]
    assert sent["path"].endswith("/images/edits") and sent["prompt"] == "the same barn at night"
    assert sent["image_sha256s"] == [hashlib.sha256(chosen.image.path.read_bytes()).hexdigest()]
    assert [c.image.prompt for c in p.cards] == ["the same barn at night"] * 2 + ["a red barn"] * 2
    assert p.inputs_box.layout.display == "none" and p.generate_button.description == "Generate"


def test_stop_editing_returns_to_generate(fake: Any) -> None:
    p = _panel(quality="low")
    _generate(p, "a kite")
    p.cards[0].select.value = True
    p.edit_button.click()
    p.stop_edit_button.click()
    assert p.generate_button.description == "Generate" and p.inputs_box.layout.display == "none"
    assert p.code_text() == "%load_ext imagenb\n%imagegen " + (
        "-m gpt-image-2 -s auto -q low -n 1 -f png 'a kite'"
    )


def test_enlarge_shows_a_bigger_thumbnail_never_the_file(fake: Any) -> None:
    p = _panel(quality="low", size="4k")
    _generate(p, "a detailed city")
    card = p.cards[0]
    card.enlarge_button.click()
    viewer = p.gallery.viewer
    assert viewer.box.layout.display == "flex"
    assert len(card.picture.value) < len(viewer.picture.value) <= MAX_STATE_IMAGE
    assert str(card.image.path) in viewer.details.value
    viewer.close_button.click()
    assert viewer.box.layout.display == "none" and viewer.picture.value == b""


def test_save_writes_the_full_resolution_files(fake: Any, tmp_path: Path) -> None:
    p = _panel(quality="low", size="2k", n=2)
    _generate(p, "two harbours")
    p.folder.value = str(tmp_path / "picked")
    p.cards[0].select.value = True
    assert p.save_button.description == "Save 1"
    p.save_button.click()
    saved = list((tmp_path / "picked").iterdir())
    assert len(saved) == 1 and "Saved 1 full-resolution" in p.message.value
    assert saved[0].read_bytes() == p.cards[0].image.path.read_bytes()
    with Image.open(saved[0]) as im:
        assert im.size == (2560, 1440)
    p.cards[0].select.value = False
    assert p.save_button.description == "Save all"
    p.folder.value = str(tmp_path / "all")
    p.save_button.click()
    assert len(list((tmp_path / "all").iterdir())) == 2


def test_history_lists_earlier_requests_and_reloads_one(fake: Any) -> None:
    first = _panel(quality="low", size="landscape", n=2, output_format="webp")
    _generate(first, "a quiet lake")
    _generate(first, "a busy market")
    sent = fake.stats.requests

    p = _panel()
    p.history_button.value = True
    p.wait()
    prompts = [c.entry.prompt for c in p.history.cards]
    assert prompts[:2] == ["a busy market", "a quiet lake"]
    assert all(len(c.picture.value) <= MAX_STATE_IMAGE for c in p.history.cards)
    p.history.cards[1].reload_button.click()
    assert p.prompt.value == "a quiet lake"
    assert (p.size.value, p.quality.value, p.n.value) == ("landscape", "low", 2)
    assert p.output_format.value == "webp"
    assert [c.image.prompt for c in p.cards] == ["a quiet lake"] * 2
    assert "Reloaded 2" in p.message.value and "a quiet lake" in p._snapshot()["text/html"]
    assert fake.stats.requests == sent  # reloading costs nothing
    p.history_button.value = False
    assert p.history.box.layout.display == "none" and not p.history.cards


def test_history_groups_variants_of_one_request(fake: Any) -> None:
    p = _panel(quality="low", n=3)
    _generate(p, "three owls")
    rows = session.store_for(config.current()).history()
    entries = history_entries(rows)
    assert len(entries) == 1 and [i.variant for i in entries[0].images] == [0, 1, 2]


def test_copy_as_code_is_the_equivalent_magic_cell(fake: Any) -> None:
    p = _panel(quality="low", n=2, output_format="webp", size="landscape")
    p.prompt.value = 'a "quoted" {name} with\nnew lines'
    p.background.value = "opaque"
    p.code_button.value = True
    text = p.code.value
    assert p.code.layout.display != "none"
    first, body = text.split("\n", 1)
    assert first == (
        "%%imagegen -m gpt-image-2 -s 1536x1024 -q low -n 2 -f webp --background opaque"
    )
    parser = ImagenbMagics(shell=InteractiveShell.instance()).imagegen.parser
    args = magic_args.parse(parser, first.removeprefix("%%imagegen"), body)
    prompt, unfilled = magic_args.interpolate(args.prompt, {"name": "NOT USED"})
    assert prompt == p.prompt.value and not unfilled
    assert args.params() == {**p.params(), "size": "1536x1024"}
    p.n.value = 4
    assert " -n 4 " in p.code.value  # follows the controls while shown
    p.code_button.value = False
    assert p.code.layout.display == "none"


def test_clear_empties_the_gallery_not_the_store(fake: Any) -> None:
    p = _panel(quality="low")
    _generate(p, "a lamp")
    p.clear_button.click()
    assert not p.cards and p.save_button.disabled
    assert len(ig.history()) == 1


# --- what the widget state may hold -----------------------------------------------------------


def _buffers(state: dict[str, Any]) -> list[bytes]:
    out = []
    for model in state["state"].values():
        for buffer in model.get("buffers", []):
            out.append(base64.b64decode(buffer["data"]))
    return out


def test_widget_state_holds_no_key_and_no_large_image(fake: Any) -> None:
    fake.latency = 0.2
    p = _panel(quality="low", size="4k", n=2, stream=True)
    _generate(p, "noise and detail everywhere")
    p.cards[0].select.value = True
    p.cards[0].enlarge_button.click()
    p.history_button.value = True
    p.wait()
    p.code_button.value = True
    state = widgets.Widget.get_manager_state()
    text = json.dumps(state)
    assert TEST_KEY not in text and "sk-test" not in text
    buffers = _buffers(state)
    assert buffers and max(len(b) for b in buffers) <= MAX_STATE_IMAGE
    for image in p.results:
        assert image.path.stat().st_size > max(len(b) for b in buffers)  # thumbnails only
    assert TEST_KEY not in repr(p.get_state())
    assert "sk-test" not in repr(p) and "sk-test" not in json.dumps(p._snapshot())


def test_snapshot_shows_the_whole_gallery_as_static_html(fake: Any) -> None:
    p = _panel(quality="low", n=2)
    assert "no results yet" in p._snapshot()["text/html"]
    _generate(p, "two <i>moons</i>")
    _generate(p, "a third moon")
    html = p._snapshot()["text/html"]
    assert html.count("<img ") == 4 and "two &lt;i&gt;moons&lt;/i&gt;" in html
    assert "a third moon" in html and "4 image(s) in the gallery" in html
    assert "imagenb-snapshot" in html and "<style" not in html.replace(HIDE_DEAD_WIDGET, "")
    images = [part.split('"')[0] for part in html.split("base64,")[1:]]
    assert all(len(base64.b64decode(i)) <= MAX_STATE_IMAGE for i in images)


def test_ig_panel_is_the_function_however_the_module_was_imported() -> None:

    assert isinstance(ig.panel(), Panel) and "panel" in ig.__all__


# --- in a real kernel -------------------------------------------------------------------------


@pytest.mark.kernel
@pytest.mark.slow
def test_in_a_kernel_other_cells_run_while_eight_images_are_made(
    fake: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import nbformat
    from nbclient import NotebookClient
    from nbformat.v4 import new_code_cell, new_notebook

    fake.latency = 3.0
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
    monkeypatch.setenv("IMAGENB_BACKEND", "openai")
    cells = [
        "import time\nimport imagenb as ig\n"
        "p = ig.panel(prompt='eight <b>paper</b> boats', n=8, quality='low')\np",
        "p.generate_button.click()\nt0 = time.perf_counter()",
        "print('other cell ran', p.running, f'{time.perf_counter() - t0:.2f}')",
        "import asyncio\nwhile p.running:\n    await asyncio.sleep(0.05)\n"
        "print(len(p.cards), 'cards;', p.status.value)",
    ]
    nb = new_notebook(cells=[new_code_cell(c) for c in cells])
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()

    running, took = nb.cells[2].outputs[0].text.split()[-2:]
    assert running == "True" and float(took) < 1.0  # it ran during the 3 s generation
    assert nb.cells[3].outputs[0].text.startswith("8 cards; 8/8 done")
    widget, snapshot = nb.cells[0].outputs
    assert "application/vnd.jupyter.widget-view+json" in widget.data
    assert "run the cell for live controls" in widget.data["text/plain"]
    html = snapshot.data["text/html"]  # updated in place after the run (display_id)
    assert html.count("<img ") == 8 and "eight &lt;b&gt;paper&lt;/b&gt; boats" in html
    text = nbformat.writes(nb)
    assert TEST_KEY not in text and "sk-test" not in text
    images = [len(base64.b64decode(c.split('"')[0])) for c in html.split("base64,")[1:]]
    state = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
    images += [len(b) for b in _buffers(state)] if state else []
    assert images and max(images) <= MAX_STATE_IMAGE


def test_mailbox_applies_updates_from_other_threads_on_the_loop_thread() -> None:
    problems: list[Exception] = []

    async def in_a_kernel() -> tuple[set[str], list[str]]:
        box = Mailbox(problems.append)  # made while the loop runs, as in a kernel cell
        applied: list[str] = []
        threads: set[str] = set()

        def update(name: str) -> None:
            threads.add(threading.current_thread().name)
            applied.append(name)
            if name == "broken":
                raise RuntimeError("a display problem")

        posters = [
            threading.Thread(target=box.post, args=(functools.partial(update, n),), name=n)
            for n in ("a", "broken", "b")
        ]
        for t in posters:
            t.start()
        for t in posters:
            t.join()
        assert applied == []  # nothing ran on the posting threads
        await asyncio.sleep(0.05)
        return threads, applied

    threads, applied = asyncio.run(in_a_kernel())
    assert threads == {threading.main_thread().name} and sorted(applied) == ["a", "b", "broken"]
    assert [str(p) for p in problems] == ["a display problem"]  # reported, and b still ran

    outside: list[int] = []
    Mailbox(problems.append).post(lambda: outside.append(1))  # no loop: applied at once
    assert outside == [1]


# --- truthful status lines ----------------------------------------------------------------------


def test_cancel_wording_says_what_arrived() -> None:
    from imagenb.panels.widget import cancelled_text

    assert cancelled_text(0, 4) == "Cancelled: none of the 4 images had arrived."
    assert cancelled_text(1, 4) == (
        "Cancelled: 1 of 4 images arrived and are in the store; the same request again asks "
        "only for the other 3."
    )


def test_invalid_input_disables_generate_and_clears_a_settled_message(fake: Any) -> None:
    p = _panel(quality="low")
    _generate(p, "a lighthouse")
    assert "Generate again: free" in p.estimate.value and "free</b>:" not in p.estimate.value
    p._say("ok", "Reloaded 1 image(s) from the store, at no cost.")
    p.size.value = "custom"
    p.custom_size.value = "100x100"
    assert "⚠" in p.estimate.value and p.generate_button.disabled
    assert "Reloaded" not in p.message.value
    p.size.value = "auto"
    assert not p.generate_button.disabled


def test_copy_as_code_one_line_prompt_runs_as_a_line_magic(fake: Any) -> None:
    p = _panel(quality="low", n=2)
    p.prompt.value = "a 'quoted' {name} kite"
    load, line = p.code_text().split("\n")
    assert load == "%load_ext imagenb" and line.startswith("%imagegen ")
    parser = ImagenbMagics(shell=InteractiveShell.instance()).imagegen.parser
    args = magic_args.parse(parser, line.removeprefix("%imagegen"))
    prompt, unfilled = magic_args.interpolate(args.prompt, {"name": "NOT USED"})
    assert prompt == p.prompt.value and not unfilled
    assert args.params() == {k: v for k, v in p.params().items() if k != "background"}


def test_cancel_wording_when_everything_had_already_been_sent() -> None:
    from imagenb.panels.widget import cancelled_text

    assert "the other 0" not in cancelled_text(4, 4) and "already on their way" in cancelled_text(
        4, 4
    )
