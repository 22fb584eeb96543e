"""`ig.panel()`: an ipywidgets panel to type a prompt, see its cost, generate without blocking
the kernel, pick results and refine them (edit), save, browse history and copy the
equivalent `%%imagegen` cell.

Threading: Generate calls `api.start`, which returns at once; images arrive on the engine
thread, are thumbnailed on the panel's worker and shown from the kernel thread
(`panel_threads`).

The panel never holds the API key (config is read with `config.current()` when needed) nor a
full-resolution image. Displayed, it adds a static snapshot of its last results after the
widget, so a notebook reopened without the kernel still shows them.
"""

from __future__ import annotations

import functools
import html
import time
import uuid
from pathlib import Path
from typing import Any

import ipywidgets as widgets

from imagenb import errors
from imagenb.api import calls as api
from imagenb.api.progress import summary
from imagenb.backends.base import Partial
from imagenb.core import catalog, config, inputs
from imagenb.core.request import PARAMETERS, ImageRequest
from imagenb.panels.clipboard import copy_to_clipboard, load_magics
from imagenb.panels.controls import Controls, explain, make
from imagenb.panels.gallery import (
    CSS,
    HIDE_SNAPSHOT_CSS,
    INPUT_PX,
    Gallery,
    HistoryEntry,
    HistoryList,
    close_all,
    load_history,
    snapshot_bundle,
    thumb,
)
from imagenb.panels.mask import attach as attach_mask_tool
from imagenb.panels.threads import Mailbox, render
from imagenb.store.images import GeneratedImage, ImageSet

DEFAULTS = ("prompt", *PARAMETERS[:4], "output_format", "background", "stream", "fresh")
_CONTROLS = (
    "header", "prompt", "model", "size", "custom_size", "quality", "output_format",
    "background", "n", "stream", "fresh", "estimate",
)  # fmt: skip
_PARTIAL_PX = 160
_TICK_S = 0.5


def panel(**defaults: Any) -> Panel:
    """A panel for exploring prompts; `defaults` preset its controls (`prompt`, `model`,
    `size`, `quality`, `n`, `output_format`, `background`, `stream`, `fresh`)."""
    return Panel(**defaults)


def cancelled_text(arrived: int, total: int) -> str:
    """What a cancel left: said plainly, with what the store now holds."""
    noun = "image" if total == 1 else "images"
    if arrived == 0:
        return f"Cancelled: none of the {total} {noun} had arrived."
    rest = total - arrived
    if rest == 0:  # already sent: a cancel collects what is in flight (it may be billed)
        return (
            f"Cancelled, but all {total} {noun} were already on their way: they arrived and "
            "are in the store."
        )
    return (
        f"Cancelled: {arrived} of {total} {noun} arrived and are in the store; the same "
        f"request again asks only for the other {rest}."
    )


def _html(kind: str, text: str) -> str:
    return f'<div class="ipanel-box {kind}">{html.escape(text)}</div>'


class Panel(widgets.VBox):  # type: ignore[misc]  # ipywidgets is untyped
    """The panel widget. Its controls are attributes, so code (and tests) can drive it:
    `p.prompt.value = "..."; p.generate_button.click(); p.wait()`."""

    def __init__(self, **defaults: Any) -> None:
        unknown = sorted(set(defaults) - set(DEFAULTS))
        if unknown:
            raise errors.InvalidRequest(
                f"ig.panel() has no setting {unknown}; settings: {', '.join(DEFAULTS)}"
            )
        params = {k: v for k, v in defaults.items() if k in PARAMETERS}
        api.build("-", config.current(), **params)  # a bad default fails here, naming the choices
        super().__init__()
        self.add_class("imagenb-panel")
        self._mail = Mailbox(lambda exc: self._say("error", f"panel error: {explain(exc)}"))
        self._seq = 0
        self.job: api.Job | None = None
        self.running = False
        self._inputs: list[GeneratedImage] = []
        self._loaded_inputs: tuple[inputs.ImageInput, ...] = ()
        self._snapshot_id = f"imagenb-panel-{uuid.uuid4().hex}"
        self._snapshot_shown = False
        self._message_kind = ""
        self._said_for: tuple[str, dict[str, Any], bool, bool] | None = None
        self.controls = c = Controls(self._mail.locked(self._controls_changed))
        for name in _CONTROLS:  # the panel's own attributes too: `p.prompt.value = ...`
            setattr(self, name, getattr(c, name))
        self._build_run()
        self._build_results()
        self._layout()
        c.set_params({"model": config.current().model, **params})
        self.prompt.value = str(defaults.get("prompt") or "")
        self.stream.value = bool(defaults.get("stream", False))
        self.fresh.value = bool(defaults.get("fresh", False))
        self.mask_tool = attach_mask_tool(self)  # "Paint mask" (imagenb.panels.mask)
        self._refresh()

    # --- construction -------------------------------------------------------------------------

    def _build_run(self) -> None:
        self.generate_button = make(
            widgets.Button, "ipanel-generate", description="Generate", button_style="primary",
            icon="magic", layout=widgets.Layout(width="160px"),
        )  # fmt: skip
        self.cancel_button = make(
            widgets.Button, "ipanel-cancel", description="Cancel", icon="stop", disabled=True,
            layout=widgets.Layout(width="100px"),
        )  # fmt: skip
        self.progress = make(
            widgets.FloatProgress, "ipanel-progress", min=0.0, max=1.0,
            layout=widgets.Layout(width="160px", display="none"),
        )  # fmt: skip
        self.status = make(widgets.HTML, "ipanel-status")
        self.preview = make(
            widgets.Image, "ipanel-thumb", value=b"", format="webp",
            layout=widgets.Layout(width=f"{_PARTIAL_PX}px", display="none"),
        )  # fmt: skip
        self.message = make(widgets.HTML, "ipanel-message")
        self.inputs_view = widgets.HTML()
        self.inputs_thumbs = widgets.HBox(layout=widgets.Layout(grid_gap="4px"))
        self.stop_edit_button = make(
            widgets.Button, "ipanel-stop-edit", description="Stop editing", icon="times",
            layout=widgets.Layout(width="130px"),
        )  # fmt: skip
        self.inputs_box = make(
            widgets.HBox, "ipanel-inputs",
            children=[self.inputs_view, self.inputs_thumbs, self.stop_edit_button],
            layout=widgets.Layout(display="none", grid_gap="12px", margin="4px 0"),
        )  # fmt: skip
        self.generate_button.on_click(self._mail.locked(self._generate))
        self.cancel_button.on_click(self._mail.locked(self._cancel))
        self.stop_edit_button.on_click(self._mail.locked(self._stop_editing))

    def _build_results(self) -> None:
        self.gallery = Gallery(self._gallery_changed)
        self.history = HistoryList(self._mail.locked(self._reload))
        button = functools.partial(make, widgets.Button)
        self.edit_button = button(
            "ipanel-edit", description="Edit selected", icon="pencil-alt", disabled=True,
            tooltip="Use the selected images as the inputs of the next prompt",
        )  # fmt: skip
        self.save_button = button(
            "ipanel-save", description="Save all", icon="save", disabled=True,
            tooltip="Write the full-resolution files (the selected ones, or all) to the folder",
        )  # fmt: skip
        self.folder = make(
            widgets.Text, "ipanel-folder", value="imagenb-images", description="to",
            tooltip="folder for Save (relative to the notebook)",
            layout=widgets.Layout(width="170px"),
        )  # fmt: skip
        self.history_button = make(
            widgets.ToggleButton, "ipanel-history-button", description="History",
            icon="history", tooltip="Earlier results from the store",
        )  # fmt: skip
        self.code_button = make(
            widgets.ToggleButton, "ipanel-code-button", description="Copy as code",
            icon="code", tooltip="The %%imagegen cell that makes the same request",
        )  # fmt: skip
        self.clear_button = button(
            "ipanel-clear", description="Clear", icon="trash",
            tooltip="Empty the gallery (the store keeps everything)",
        )  # fmt: skip
        for b, width in ((self.edit_button, 130), (self.save_button, 100),
                         (self.history_button, 96), (self.code_button, 126),
                         (self.clear_button, 80)):  # fmt: skip
            b.layout.width = f"{width}px"
        self.code = make(
            widgets.Textarea, "ipanel-code", rows=4,
            layout=widgets.Layout(width="100%", display="none"),
        )  # fmt: skip
        self.clipboard = widgets.Output(layout=widgets.Layout(display="none"))
        self.results_title = make(widgets.HTML, "ipanel-results-title", layout={"width": "100%"})
        self.edit_button.on_click(self._mail.locked(self._edit))
        self.save_button.on_click(self._mail.locked(self._save))
        self.clear_button.on_click(self._mail.locked(self._clear))
        self.history_button.observe(self._mail.locked(self._toggle_history), "value")
        self.code_button.observe(self._mail.locked(self._toggle_code), "value")

    def _layout(self) -> None:
        def row(*children: Any) -> Any:
            return widgets.HBox(list(children), layout=widgets.Layout(
                flex_flow="row wrap", grid_gap="6px 12px", align_items="center"))  # fmt: skip

        style = widgets.HTML(
            f"<style>{CSS}{HIDE_SNAPSHOT_CSS}</style>", layout=widgets.Layout(display="none")
        )
        toolbar = row(self.edit_button, self.save_button, self.folder, self.history_button,
                      self.code_button, self.clear_button)  # fmt: skip
        toolbar.layout.grid_gap = "6px"
        self.children = [
            style,
            self.header,
            self.prompt,
            self.inputs_box,
            self.controls.box,
            row(self.generate_button, self.cancel_button, self.estimate),
            row(self.progress, self.status, self.preview),
            self.message,
            self.results_title,
            toolbar,
            self.code,
            self.clipboard,
            self.history.box,
            self.gallery.viewer.box,
            self.gallery.box,
        ]

    # --- progress -----------------------------------------------------------------------------

    def _tick(self, seq: int) -> None:
        """Refresh the progress line twice a second while a run goes on (kernel loop only)."""
        loop = self._mail.loop
        if seq != self._seq or not self.running or loop is None:
            return
        self._show_progress()
        loop.call_later(_TICK_S, self._tick, seq)

    def wait(self, timeout: float | None = 120.0) -> None:
        """Block until the current run is finished and shown (tests, scripts).

        In a kernel prefer `await asyncio.sleep(...)`: a blocking cell delays the gallery."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            render(lambda: None).result(timeout)  # thumbnails made so far are posted
            self._mail.drain()
            if not self.running:
                return
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"the panel's run did not finish in {timeout} s")
            time.sleep(0.02)

    # --- controls -----------------------------------------------------------------------------

    @property
    def spec(self) -> catalog.ModelSpec:
        return self.controls.spec

    def params(self) -> dict[str, Any]:
        """The request parameters the controls describe."""
        return self.controls.params()

    def request(self) -> ImageRequest:
        """The request Generate would send (raises `InvalidRequest`)."""
        return self.controls.request(self._inputs)

    def code_text(self) -> str:
        """The `%%imagegen` (or `%%imageedit`) cell that makes the same request."""
        return self.controls.code_text(self._inputs)

    def _refresh(self) -> None:
        """Redraw everything derived from the controls: estimate, labels, code."""
        count = len(self._inputs)
        self.generate_button.description = (
            f"Edit {count} image{'' if count == 1 else 's'}" if count else "Generate"
        )
        self.generate_button.icon = "pencil-alt" if count else "magic"
        problem = self.controls.problem(self._loaded_inputs)
        self.generate_button.disabled = self.running or problem is not None
        self.prompt.placeholder = (
            "Describe the change: “make it night”, “add a red kite”…"
            if count
            else "Describe the image you want…"
        )
        self.header.value = self.controls.header_html()
        self.estimate.value = self.controls.estimate_html(self._loaded_inputs)
        if self.code_button.value:
            self.code.value = self.code_text()

    def _controls_changed(self) -> None:
        """A settled message ("Reloaded…", "Saved…") describes the controls as they were:
        drop it once they change, so it never sits under a new problem."""
        settled = self._message_kind in ("ok", "info") and not self.running
        if settled and self._said_for != self._settings():  # not an echo of the same values
            self._say("", "")
        self._refresh()

    def _settings(self) -> tuple[str, dict[str, Any], bool, bool]:
        return (self.prompt.value, self.controls.params(), self.stream.value, self.fresh.value)

    # --- generate / cancel --------------------------------------------------------------------

    def _generate(self, _button: Any = None) -> None:
        if self.running:
            return
        self._say("", "")
        seq = self._seq + 1
        try:
            req = self.request()
            job = api.start(
                [req],
                config.current(),
                fresh=self.fresh.value,
                stream=self.stream.value,
                on_image=functools.partial(self._arrived, seq),
                on_partial=functools.partial(self._partial, seq) if self.stream.value else None,
            )
        except errors.ImagenbError as exc:
            self._say("error", explain(exc))
            return
        self._seq, self.job, self.running = seq, job, True
        self.cancel_button.disabled = False
        self.progress.layout.display = ""
        self.progress.bar_style = "info"
        self._show_progress()
        self._refresh()
        job.future.add_done_callback(
            lambda _f: render(lambda: self._mail.post(functools.partial(self._finished, seq, job)))
        )
        self._mail.soon(self._tick, seq)

    def _cancel(self, _button: Any = None) -> None:
        """First click: send nothing more, keep what is being made; second: abandon it."""
        if self.job is not None and self.running:
            first = not self.job.run.stop_requested.is_set()
            self.job.cancel()
            flying = self.job.run.in_flight
            self.status.value = (
                f"Stopping: waiting for {flying} image(s) already being made; "
                "Cancel again to abandon them"
                if first and flying
                else "Cancelling…"
            )

    def _arrived(self, seq: int, index: int, image: GeneratedImage) -> None:
        """Engine thread: thumbnail it on the worker, then show it from the kernel thread."""

        def make() -> None:
            data, fmt = thumb(image, config.current().thumbnail_px)
            self._mail.post(lambda: self._add(seq, image, data, fmt))

        render(make)

    def _add(self, seq: int, image: GeneratedImage, data: bytes, fmt: str) -> None:
        self.gallery.add(image, data, fmt, (seq, image.variant))
        if seq == self._seq:
            self._show_progress()

    def _partial(self, seq: int, index: int, partial: Partial) -> None:
        def make() -> None:
            from imagenb.render.html import thumbnail

            data, mime = thumbnail(partial.data, _PARTIAL_PX)
            self._mail.post(lambda: self._show_partial(seq, partial, data, mime.split("/")[1]))

        render(make)

    def _show_partial(self, seq: int, partial: Partial, data: bytes, fmt: str) -> None:
        if seq != self._seq or not self.running:
            return
        with self.preview.hold_sync():
            self.preview.format = fmt
            self.preview.value = data
            self.preview.layout.display = ""
        # No `tooltip` here: ipywidgets' Image has no `description`, and its view reads
        # `description.length` when a tooltip is set ("Error setting state" in the console).

    def _show_progress(self) -> None:
        job = self.job
        if job is None:
            return
        run = job.run
        finished = run.done + run.cached + run.failed
        busy = self.running and not finished  # one request: nothing to count yet, so stripes
        self.progress.value = 1.0 if busy or not run.total else finished / run.total
        if busy:
            self.progress.add_class("ipanel-busy")
        else:
            self.progress.remove_class("ipanel-busy")
        if busy:
            elapsed = time.monotonic() - run.started
            what = "Editing" if run.requests[0].kind == "edit" else "Generating"
            text = f"{what} {run.total} image{'' if run.total == 1 else 's'}… {elapsed:.1f} s"
        else:
            text = summary(run)
        self.status.value = html.escape(text)

    def _finished(self, seq: int, job: api.Job) -> None:
        if seq != self._seq:
            return
        self.running = False
        self.cancel_button.disabled = True
        self.preview.value = b""
        self.preview.layout.display = "none"
        run = job.run
        images = job.images()
        failures = [e for e in run.errors if e is not None]
        self._show_progress()
        if job.future.cancelled() or run.stop_requested.is_set():
            self.progress.bar_style = "warning"
            self._say("info", cancelled_text(len(images), run.total))
        elif failures:
            self.progress.bar_style = "danger"
            self._say("error", *(explain(e) for e in dict.fromkeys(failures)))
        else:
            self.progress.bar_style = "success"
            if self._inputs:
                self._stop_editing()
        if images:
            self._update_snapshot()
        self._refresh()

    # --- messages -----------------------------------------------------------------------------

    def _say(self, kind: str, *lines: str) -> None:
        self._message_kind = kind if any(lines) else ""
        self._said_for = self._settings()
        self.message.value = "".join(_html(kind, line) for line in lines if line)

    # --- gallery actions ----------------------------------------------------------------------

    @property
    def results(self) -> list[GeneratedImage]:
        """The images in the gallery, newest run first."""
        return self.gallery.images

    @property
    def selected(self) -> list[GeneratedImage]:
        return self.gallery.selected

    @property
    def cards(self) -> list[Any]:
        return self.gallery.cards

    def _gallery_changed(self) -> None:
        chosen = len(self.gallery.selected)
        total = len(self.gallery.cards)
        self.edit_button.disabled = not chosen
        self.save_button.disabled = not total
        self.save_button.description = f"Save {chosen}" if chosen else "Save all"
        title = f"Results · {total}" + (f" · {chosen} selected" if chosen else "")
        self.results_title.value = f'<span class="ipanel-section">{html.escape(title)}</span>'

    def _edit(self, _button: Any = None) -> None:
        chosen = self.gallery.selected
        if not chosen:
            self._say("info", "Select one or more images first (the Select button under each).")
            return
        try:
            loaded = inputs.load_many(chosen, limit=self.spec.max_input_images)
        except errors.ImagenbError as exc:
            self._say("error", explain(exc))
            return
        thumbs = {c.image.key: c.thumb for c in self.gallery.cards}
        self._inputs, self._loaded_inputs = list(chosen), loaded
        self.inputs_thumbs.children = [
            widgets.Image(
                value=thumbs[i.key][0], format=thumbs[i.key][1],
                layout=widgets.Layout(width=f"{INPUT_PX}px", height=f"{INPUT_PX}px",
                                      object_fit="contain"),
            )
            for i in chosen
        ]  # fmt: skip
        count = len(chosen)
        self.inputs_view.value = (
            f"<b>Editing</b> {count} image{'' if count == 1 else 's'}: describe the change "
            "and click Edit"
        )
        self.inputs_box.layout.display = "flex"
        self.gallery.select_none()
        self._say("", "")
        self._refresh()

    def _stop_editing(self, _button: Any = None) -> None:
        for w in self.inputs_thumbs.children:
            close_all(w)
        self.inputs_thumbs.children = []
        self._inputs, self._loaded_inputs = [], ()
        self.inputs_box.layout.display = "none"
        self._refresh()

    def _save(self, _button: Any = None) -> None:
        chosen = self.gallery.selected or self.gallery.images
        if not chosen:
            self._say("info", "Nothing to save yet.")
            return
        folder = Path(self.folder.value.strip() or "imagenb-images").expanduser()
        try:
            paths = ImageSet(chosen).save(folder, pattern="{key}.{ext}", overwrite=True)
        except (OSError, ValueError) as exc:
            self._say("error", f"Could not save to {folder}: {exc}")
            return
        self._say("ok", f"Saved {len(paths)} full-resolution file(s) to {folder.resolve()}")

    def _clear(self, _button: Any = None) -> None:
        self.gallery.clear()
        self._say("", "")
        self._update_snapshot()

    def _toggle_code(self, change: Any) -> None:
        shown = bool(change["new"])
        self.code.layout.display = "" if shown else "none"
        self.code.value = self.code_text() if shown else ""
        if shown:
            load_magics()
            copy_to_clipboard(self.clipboard, self.code.value)
            self._say("ok", "Copied to the clipboard: paste it into a new cell.")

    # --- history ------------------------------------------------------------------------------

    def _toggle_history(self, change: Any) -> None:
        if not change["new"]:
            self.history.hide()
            return
        self.history.loading()

        def load() -> None:
            try:
                entries = load_history()
            except Exception as exc:
                problem = explain(exc)
                self._mail.post(lambda: self._say("error", f"history: {problem}"))
                return
            self._mail.post(lambda: self._show_history(entries))

        render(load)

    def _show_history(self, entries: list[tuple[HistoryEntry, bytes, str]]) -> None:
        if self.history_button.value:
            self.history.show(entries)

    def _reload(self, entry: HistoryEntry) -> None:
        """Put an earlier request back: its prompt and settings, and its images (no cost)."""
        if self.running:
            return
        self._stop_editing()
        self.controls.set_params({**entry.params, "n": len(entry.images)})
        with self.controls.hushed():
            self.prompt.value = entry.prompt
        self._seq += 1
        for image in entry.images:
            data, fmt = thumb(image, config.current().thumbnail_px)
            self.gallery.add(image, data, fmt, (self._seq, image.variant))
        self._update_snapshot()
        self.progress.layout.display = "none"
        self.status.value = ""
        self._say("ok", f"Reloaded {len(entry.images)} image(s) from the store, at no cost.")
        self._refresh()

    # --- display ------------------------------------------------------------------------------

    def __repr__(self) -> str:
        return "imagenb panel (a widget: run the cell for live controls)"

    def _ipython_display_(self) -> None:
        """The widget, then the static snapshot of the last results (updated after each run)."""
        from IPython.display import display

        display(self._repr_mimebundle_(), raw=True)
        display(self._snapshot(), raw=True, display_id=self._snapshot_id)
        self._snapshot_shown = True

    def _snapshot(self) -> dict[str, str]:
        return snapshot_bundle(self.gallery.images)

    def _update_snapshot(self) -> None:
        if self._snapshot_shown:
            from IPython.display import update_display

            update_display(self._snapshot(), raw=True, display_id=self._snapshot_id)

    def close(self) -> None:
        """Cancel a run going on and close every widget of the panel."""
        job = getattr(self, "job", None)
        if job is not None and self.running:
            job.cancel()
        for child in self.children:
            close_all(child)
        super().close()


__all__ = ["Panel", "explain", "panel"]
