"""The panel's request controls: prompt, model, size, quality, format, background, n, and the
live estimate. Every choice offered comes from the model catalog, so changing the model
changes what is offered; the same controls give the request, its cost and its magic cell.
"""

from __future__ import annotations

import contextlib
import html
import shlex
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

import ipywidgets as widgets

from imagenb import errors
from imagenb.api import calls as api
from imagenb.core import catalog, config, options, plan_notes, sizes
from imagenb.core.inputs import ImageInput
from imagenb.core.request import ImageRequest
from imagenb.core.request import build as build_request
from imagenb.engine import session
from imagenb.store.images import GeneratedImage

CUSTOM = "custom"
TIMES = "\u00d7"  # the multiplication sign, in labels
_RATIOS = ("16:9", "9:16", "4:3", "3:4")
FULL = {"width": "100%"}


def make(cls: Any, css_class: str, **kwargs: Any) -> Any:
    """A widget of `cls` with `css_class` (the panel's styles and the browser test use it)."""
    if isinstance(kwargs.get("layout"), dict):
        kwargs["layout"] = widgets.Layout(**kwargs["layout"])
    if "description" in kwargs and cls is not widgets.Button:
        kwargs.setdefault("style", {"description_width": "initial"})
    w = cls(**kwargs)
    w.add_class(css_class)
    return w


def explain(exc: BaseException) -> str:
    """One line saying what went wrong and what to do, with anything like a key removed."""
    if isinstance(exc, errors.ModerationBlocked):
        text = f"Blocked by moderation: {exc} Rephrase the prompt: unchanged, it is blocked again."
    elif isinstance(exc, errors.BudgetExceeded):
        text = f"Over budget: {exc}"
    elif isinstance(exc, errors.InvalidRequest):
        text = f"Invalid input: {exc}"
    elif isinstance(exc, errors.BackendError) and exc.status in (401, 403):
        text = f"{exc} (check the OPENAI_API_KEY the kernel was started with)"
    else:
        text = f"{type(exc).__name__}: {exc}"
    return config.redact(" ".join(text.split()))


class Controls:
    """The request widgets; `on_change()` is called after any of them changes."""

    def __init__(self, on_change: Callable[[], None]) -> None:
        self._on_change = on_change
        self._quiet = False
        self.header = make(widgets.HTML, "ipanel-header")
        self.prompt = make(
            widgets.Textarea, "ipanel-prompt", rows=3, layout=FULL,
            placeholder="Describe the image you want…",
        )  # fmt: skip
        self.model = make(widgets.Dropdown, "ipanel-model", options=list(catalog.MODELS))
        self.size = make(widgets.Dropdown, "ipanel-size")
        self.custom_size = make(
            widgets.Text, "ipanel-custom-size", value="1536x864", placeholder="WxH, e.g. 1536x864"
        )
        self.quality = make(widgets.Dropdown, "ipanel-quality")
        self.output_format = make(widgets.Dropdown, "ipanel-format")
        self.background = make(widgets.Dropdown, "ipanel-background")
        self.n = make(widgets.IntSlider, "ipanel-n", value=1, min=1, max=10)
        self.stream = make(
            widgets.Checkbox, "ipanel-stream", description="partial images", indent=False,
            tooltip="Show partial images while each is made; each is billed as 100 more output "
            "tokens (2 partials about double a low-quality image's cost; the estimate shows it)",
        )  # fmt: skip
        self.fresh = make(
            widgets.Checkbox, "ipanel-fresh", description="new, don't reuse", indent=False,
            tooltip="Pay for new images even when the store holds this exact request",
        )  # fmt: skip
        self.estimate = make(widgets.HTML, "ipanel-estimate")
        self.box = self._grid()
        for control in self.all:
            control.observe(self._changed, "value")

    @property
    def all(self) -> tuple[Any, ...]:
        return (
            self.prompt, self.model, self.size, self.custom_size, self.quality,
            self.output_format, self.background, self.n, self.stream, self.fresh,
        )  # fmt: skip

    def _grid(self) -> Any:
        def field(label: str, *controls: Any) -> Any:
            for control in controls:
                control.layout.width = "100%"
            title = widgets.HTML(f'<span class="ipanel-label">{label}</span>')
            return widgets.VBox([title, *controls])

        return widgets.GridBox(
            [field("Model", self.model), field("Size", self.size, self.custom_size),
             field("Quality", self.quality), field("Format", self.output_format),
             field("Background", self.background), field("Images", self.n),
             field("Stream", self.stream), field("Store", self.fresh)],
            layout=widgets.Layout(grid_template_columns="repeat(4, minmax(0, 1fr))",
                                  grid_gap="6px 14px", margin="6px 0 8px 0"),
        )  # fmt: skip

    # --- options from the catalog -------------------------------------------------------------

    @contextlib.contextmanager
    def hushed(self) -> Iterator[None]:
        """Change several controls without an update after each."""
        quiet, self._quiet = self._quiet, True
        try:
            yield
        finally:
            self._quiet = quiet

    def _changed(self, change: Any) -> None:
        if self._quiet:
            return
        if change["owner"] in (self.model, self.output_format):
            with self.hushed():
                self.offer_options()
        self._show_custom()
        self._on_change()

    def _show_custom(self) -> None:
        self.custom_size.layout.display = "" if self.size.value == CUSTOM else "none"

    @property
    def spec(self) -> catalog.ModelSpec:
        return catalog.lookup(self.model.value)

    def offer_options(self) -> None:
        """Fill size, quality, format, n and background with what the model accepts."""
        spec = self.spec
        _choose(self.quality, list(spec.qualities), "auto")
        _choose(self.output_format, list(spec.formats), "png")
        backgrounds = ["auto", "opaque"]
        if spec.transparent and self.output_format.value in ("png", "webp"):
            backgrounds.append("transparent")
        _choose(self.background, backgrounds, "auto")
        self.n.max = spec.n_max
        current, offered = self.size.value, size_options(spec)
        if [tuple(o) for o in self.size.options] != offered:
            self.size.options = offered
        values = [v for _, v in offered]
        self.size.value = current if current in values else "auto"
        self._show_custom()

    def set_params(self, params: Mapping[str, Any]) -> None:
        """Show `params` (defaults, or a request from history) in the controls."""
        with self.hushed():
            if params.get("model") in catalog.MODELS:
                self.model.value = params["model"]
            self.offer_options()
            if params.get("size"):
                self._set_size(str(params["size"]))
            for name in ("quality", "output_format", "background"):
                value = str(params.get(name) or "").lower().replace("jpg", "jpeg")
                if value in getattr(self, name).options:
                    getattr(self, name).value = value
                    self.offer_options()
            if params.get("n"):
                self.n.value = min(int(params["n"]), self.n.max)

    def _set_size(self, text: str) -> None:
        values = [v for _, v in self.size.options]
        if text.lower() in values:
            self.size.value = text.lower()
        else:
            try:
                canonical: str | None = sizes.resolve(text, self.spec)
            except errors.InvalidRequest:
                canonical = None
            named = [v for v in values if v not in (CUSTOM, "auto")]
            same = [v for v in named if _resolves_to(v, self.spec) == canonical]
            if same:  # a preset with exactly this size reads better
                self.size.value = same[0]
            else:
                self.size.value = CUSTOM if CUSTOM in values else "auto"
                self.custom_size.value = text
        self._show_custom()

    # --- what the controls say ----------------------------------------------------------------

    def params(self) -> dict[str, Any]:
        """The request parameters the controls describe."""
        size = self.custom_size.value.strip() if self.size.value == CUSTOM else self.size.value
        return {
            "model": self.model.value,
            "size": size,
            "quality": self.quality.value,
            "n": self.n.value,
            "output_format": self.output_format.value,
            "background": self.background.value,
        }

    def request(self, images: Sequence[GeneratedImage] = ()) -> ImageRequest:
        """The request to send (raises `InvalidRequest`, naming what is allowed)."""
        edit = {"images": list(images)} if images else {}
        return api.build(self.prompt.value, config.current(), **self.params(), **edit)

    def header_html(self) -> str:
        backend = session.backend_name(config.current())
        pill = (
            '<span class="ipanel-pill">PREVIEW: offline, free, not real model output</span>'
            if backend == "preview"
            else ""
        )
        return (
            f'<div class="ipanel-head"><span class="ipanel-title">imagenb</span>'
            f'<span class="ipanel-sub">{html.escape(backend)} backend · '
            f"{html.escape(self.model.value)}</span>{pill}</div>"
        )

    def _plan(self, inputs: tuple[ImageInput, ...]) -> tuple[ImageRequest, Any]:
        """The request with `inputs` and its estimate; raises what makes it unsendable."""
        req = self.request()
        if len(inputs) > req.spec.max_input_images:
            raise errors.InvalidRequest(
                f"{len(inputs)} input images; {req.spec.name} accepts 1 to "
                f"{req.spec.max_input_images}"
            )
        req = replace(req, images=inputs)
        plan = api.plan([req], config.current(), fresh=self.fresh.value, partials=self._partials())
        return req, plan

    def _partials(self) -> int:
        """Partial images a Generate would stream (each one priced)."""
        return api.DEFAULT_PARTIAL_IMAGES if self.stream.value else 0

    def problem(self, inputs: tuple[ImageInput, ...] = ()) -> str | None:
        """Why Generate cannot send this (no prompt, an invalid setting), or None."""
        if not self.prompt.value.strip():
            return "Type a prompt to see what it will cost."
        try:
            self._plan(inputs)
        except errors.ImagenbError as exc:
            return explain(exc)
        return None

    def estimate_html(self, inputs: tuple[ImageInput, ...] = ()) -> str:
        """What Generate would cost, or why it cannot be sent; `inputs` are read once."""
        if not self.prompt.value.strip():
            return '<span class="ipanel-muted">Type a prompt to see what it will cost.</span>'
        cfg = config.current()
        try:
            req, est = self._plan(inputs)
        except errors.ImagenbError as exc:
            return f'<span class="ipanel-bad">⚠ {html.escape(explain(exc))}</span>'
        backend = session.backend_name(cfg)
        images = f"{req.n} image{'' if req.n == 1 else 's'}"
        at = "auto size" if req.size == "auto" else req.size.replace("x", TIMES)
        if est.images == 0:  # e.g. right after a paid run: that run was not free, a re-run is
            parts = [
                f"<b>Generate again: free</b> ({images} at {at} already in the store; "
                "tick fresh for new ones)"
            ]
        else:
            parts = [f"<b>≈ ${est.usd:.4f}</b> for {images} at {at}"]
            if est.cached_images:
                parts.append(f"{est.cached_images} of them already in the store (free)")
        if est.images:
            notes = plan_notes.notes([req], partials=self._partials())
            parts += [html.escape(note) for note in notes]
        if backend in ("preview", "replay"):
            parts.append(f"{backend} backend: nothing is charged")
        left = session.budget_left(cfg)
        if left is not None:
            over = est.usd > left and backend not in ("preview", "replay")
            text = f"${left:.4f} of the ${cfg.budget_usd:.2f} budget left"
            parts.append(f'<span class="ipanel-bad">over budget: {text}</span>' if over else text)
        return " · ".join(parts)

    def code_text(self, images: Sequence[GeneratedImage] = ()) -> str:
        """The cell that makes the same request: `%load_ext imagenb`, then the `%imagegen`
        (or `%imageedit`) line; a prompt of several lines needs the `%%` cell form, whose
        first line must be the magic (the panel loads the extension in its own kernel)."""
        flags = {options.dest_of(f, k): f[0] for f, k in options.REQUEST_OPTIONS}
        flags.update({options.dest_of(f, k): f[0] for f, k in options.EDIT_OPTIONS})
        params = self.params()
        with contextlib.suppress(errors.ImagenbError):
            params["size"] = build_request("-", **params).size  # the size exactly as sent
        words = ["imageedit" if images else "imagegen"]
        for image in images:
            words += [flags["images"], str(image.path)]
        for name in ("model", "size", "quality", "n", "output_format"):
            words += [flags[name], str(params[name])]
        if params["background"] != "auto":
            words += [flags["background"], params["background"]]
        words += [flags[name] for name in ("fresh", "stream") if getattr(self, name).value]
        body = str(self.prompt.value).strip().replace("{", "{{").replace("}", "}}")
        line = " ".join(shlex.quote(w) for w in words)
        if "\n" in body:
            return f"%%{line}\n{body}"
        return f"%load_ext imagenb\n%{line} {shlex.quote(body)}"


def _choose(dropdown: Any, values: list[str], fallback: str) -> None:
    current = dropdown.value
    if list(dropdown.options) != values:
        dropdown.options = values
    dropdown.value = (
        current if current in values else (fallback if fallback in values else values[0])
    )


def _resolves_to(value: str, spec: catalog.ModelSpec) -> str | None:
    try:
        return sizes.resolve(value, spec)
    except errors.InvalidRequest:
        return None


def size_options(spec: catalog.ModelSpec) -> list[tuple[str, str]]:
    """`(label, value)` pairs: auto, the presets and ratios this model takes, and custom."""
    out, seen = [("auto", "auto")], set()
    choices = list(sizes.PRESETS) + (list(_RATIOS) if spec.size_rule == "flexible" else [])
    for name in choices:
        size = _resolves_to(name, spec)
        if size is not None and size not in seen:
            seen.add(size)
            out.append((f"{name} · {size.replace('x', TIMES)}", name))
    if spec.size_rule == "flexible":
        out.append(("custom WxH…", CUSTOM))
    return out
