"""Storyboards: comic pages whose characters look the same from panel to panel.

Describe the characters once and write the panels. A character given as a description gets a
reference image first (one generate request each); then every panel is an edit whose inputs
are the references of the characters it shows, and whose prompt says which input is whom
(`storyboard_script`). Store keys include the hashes of an edit's inputs, so a re-run sends
only the panels whose text, references or parameters changed.

Panels do not see each other by default: changing panel 3 remakes panel 3 alone. With
`chain=True` each panel also receives the panel before it (continuity of place and light),
which makes every later panel depend on every earlier one, and makes them run one by one.

Like a grid, a storyboard states its cost (both stages) before sending anything, checks the
budget, fills in live in a notebook (`grid_html` draws it), keeps one failing panel from
stopping the others, and returns a results frame (`grid_results.results_frame`). Pages are drawn by
`storyboard_page`.

This module is named `storyboards` (like `grids`): a submodule called `storyboard` would
replace the `imagenb.storyboard` function as soon as anything imported it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imagenb.api import calls as api
from imagenb.api.progress import in_notebook
from imagenb.core import config, cost, frames, plan_notes, request
from imagenb.engine import session
from imagenb.errors import InvalidRequest, describe
from imagenb.grids import results as grid_results
from imagenb.grids.grid import Item
from imagenb.store.images import GeneratedImage
from imagenb.storyboards.script import (
    ONE_PER_PANEL,
    Character,
    Script,
    cast_of,
    dialogue,
    dims_of,
    layout_of,
    panels_table,
    parse_panels,
)

if TYPE_CHECKING:
    import pandas as pd

    from imagenb.backends.base import Partial
    from imagenb.grids.view import LiveView, NotebookView, Thumbnails
    from imagenb.storyboards.page import Page, Panel

DEFAULT_SIZE = "square"
SAVE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".pdf", ".html", ".htm")
Layout = str | tuple[int, int]


def storyboard(
    panels: Any,
    *,
    characters: Mapping[str, Any] | None = None,
    style: str | None = None,
    layout: Layout = "2x2",
    size: str | None = DEFAULT_SIZE,
    chain: bool = False,
    fresh: bool = False,
    stream: bool = False,
    **params: Any,
) -> Storyboard:
    """Make a comic: one image per panel, with the characters kept the same throughout.

    `panels`: a list of panel descriptions, a DataFrame (or list of dicts) with a `panel`
    column and optional `caption`, `dialogue` ("Mira: Hello!" lines) and `characters`
    ("Mira, Tom", or "none") columns, or text with one panel per line (`description |
    caption: narration | Mira: words`). `characters`: name -> a description, or one or
    more reference images (paths, PIL images, bytes, GeneratedImages). A panel gets the
    references of the characters it names (in its text, its dialogue's speakers or its
    `characters` column), or all of them if it names none. `layout` is ROWSxCOLS panels per
    page (for `save`); `chain=True` also gives each panel the one before it (see the module
    notes). The cost of both stages (references, then panels) is shown first and checked
    against the budget before anything is sent; panels already in the store are free.
    """
    board = prepare(
        panels, characters=characters, style=style, layout=layout, size=size, chain=chain, **params
    )
    return board.run(fresh=fresh, stream=stream)


def estimate(
    panels: Any,
    *,
    characters: Mapping[str, Any] | None = None,
    style: str | None = None,
    layout: Layout = "2x2",
    size: str | None = DEFAULT_SIZE,
    chain: bool = False,
    fresh: bool = False,
    **params: Any,
) -> cost.Estimate:
    """What `storyboard(...)` would make and cost now (stored images free). No network."""
    board = prepare(
        panels, characters=characters, style=style, layout=layout, size=size, chain=chain, **params
    )
    return board.plan(fresh=fresh)


def prepare(
    panels: Any,
    *,
    characters: Mapping[str, Any] | None = None,
    style: str | None = None,
    layout: Layout = "2x2",
    size: str | None = DEFAULT_SIZE,
    chain: bool = False,
    cfg: config.Config | None = None,
    **params: Any,
) -> Storyboard:
    """Validate everything into a `Storyboard` that has sent nothing yet (`.plan()`,
    `.run()`); `InvalidRequest` names the panel or character at fault."""
    unknown = sorted(set(params) - set(request.PARAMETERS))
    if unknown:
        raise InvalidRequest(
            f"storyboard() got unknown keyword(s) {', '.join(unknown)}; request parameters "
            f"are: {', '.join(request.PARAMETERS)}"
        )
    if params.get("n") not in (None, 1):
        raise InvalidRequest(ONE_PER_PANEL.format(n=params["n"]))
    if style is not None and not isinstance(style, str):
        raise InvalidRequest(f"style must be text, such as 'ink and watercolour'; got {style!r}")
    clean = {k: v for k, v in params.items() if v is not None}
    clean["size"] = size or DEFAULT_SIZE
    cfg = cfg or config.current()
    script = Script(
        panels_table(panels),
        cast_of(characters),
        style=" ".join(style.split()) if style else None,
        chain=chain,
        params=clean,
        cfg=cfg,
    )
    return Storyboard(script, layout_of(layout))


class Storyboard:
    """A comic being made or done: `.panels`, `.frame`, `.references`, `.save(path)`,
    `.page(n)`; in a notebook, thumbnails of the cast and the pages.

    Its images sit in slots: the references to generate first, then the panels.
    """

    plan_line: str = ""

    def __init__(self, script: Script, layout: tuple[int, int]) -> None:
        self.script = script
        self.layout = layout
        self.config = script.config
        self._refs = len(script.references)
        slots = self._refs + len(script.table)
        self._requests: list[request.ImageRequest | None] = [None] * slots
        self._images: list[GeneratedImage | None] = [None] * slots
        self._errors: list[str | None] = [None] * slots
        self._partials: dict[int, bytes] = {}
        self._version = 0
        self._running = False
        self._live: LiveView | None = None
        self._thumbs: Thumbnails | None = None

    @property
    def table(self) -> frames.Table:
        return self.script.table

    @property
    def cast(self) -> tuple[Character, ...]:
        return self.script.cast

    @property
    def chain(self) -> bool:
        return self.script.chain

    # --- cost -----------------------------------------------------------------------------

    def plan(self, *, fresh: bool = False) -> cost.Estimate:
        """What running now would make and cost, both stages, with stored images free. Panels
        whose references (or, chained, previous panel) are not made yet are estimated with
        stand-ins of the right size, and counted as to be made."""
        script, store = self.script, session.store_for(self.config)
        keys = [r.key(0) for r in script.references]
        found = {} if fresh else store.get_many(keys)
        refs = [self._stored(found.get(k)) for k in keys]
        total = api.plan(_unique(script.references), self.config, fresh=fresh)
        ready: list[request.ImageRequest] = []
        previous: GeneratedImage | None = None
        for i in range(len(script.table)):
            sources, dims, complete = script.inputs(i, refs, previous)
            if not complete:
                total += cost.estimate(script.stand_in(i, dims))
                previous = None
                continue
            req = script.panel(i, sources)
            ready.append(req)
            if self.chain:
                key = req.key(0)
                previous = None if fresh else self._stored(store.get_many([key]).get(key))
        return total + api.plan(_unique(ready), self.config, fresh=fresh)

    def _stored(self, row: Any) -> GeneratedImage | None:
        if row is None:
            return None
        return GeneratedImage.from_stored(row, cached=True, thumbnail_px=self.config.thumbnail_px)

    # --- running --------------------------------------------------------------------------

    def run(self, *, fresh: bool = False, stream: bool = False) -> Storyboard:
        """State the cost, check the budget, then make the references and the panels (stored
        ones free), filling in live. Ctrl-C stops it; what arrived stays in the store."""
        plan = self.plan(fresh=fresh)
        self.plan_line = _plan_line(plan, self._refs, len(self.table), self.config)
        self.plan_line += plan_notes.suffix(self.script.drafts)  # what `auto` is priced at
        view = _open_view()
        if view is None:
            print(self.plan_line)
        api.check_budget(plan, self.config)  # BudgetExceeded: nothing sent
        self._running = True
        if view is not None:
            from imagenb.grids.view import LiveView

            self._live = LiveView(_View(self), view)
        try:
            references = self.script.references
            self._stage(list(range(self._refs)), references, fresh=fresh, stream=stream)
            panels = list(range(len(self.table)))
            for batch in [[i] for i in panels] if self.chain else [panels]:
                self._run_panels(batch, fresh=fresh, stream=stream)
        finally:
            self._running = False
            if self._live is not None:
                self._live.refresh(force=True)
        return self

    def _run_panels(self, panels: list[int], *, fresh: bool, stream: bool) -> None:
        slots, requests = [], []
        refs = self._images[: self._refs]
        for i in panels:
            slot = self._refs + i
            blocked = self._blocked(i)
            if blocked:
                self._errors[slot] = blocked
                continue
            previous = self._images[slot - 1] if self.chain and i > 0 else None
            req = self.script.panel(i, self.script.inputs(i, refs, previous)[0])
            self._requests[slot] = req
            slots.append(slot)
            requests.append(req)
        self._stage(slots, requests, fresh=fresh, stream=stream)

    def _blocked(self, i: int) -> str | None:
        """Why panel `i` cannot be made (a reference or, chained, the panel before failed)."""
        for c in self.script.shown[i]:
            slot = self.script.ref_slot(c) if c.description is not None else None
            if slot is not None and self._images[slot] is None:
                why = self._errors[slot] or "it was not made"
                return f"not made: the reference image of {c.name} failed ({why})"
        if self.chain and i > 0 and self._images[self._refs + i - 1] is None:
            return f"not made: panel {i} failed, and chain=True continues each panel from it"
        return None

    def _stage(
        self,
        slots: list[int],
        requests: Sequence[request.ImageRequest],
        *,
        fresh: bool,
        stream: bool,
    ) -> None:
        """Run `requests` (for `slots`) at once; identical ones are sent once and shared."""
        if not requests:
            return
        unique = _unique(requests)
        position = {r.key(0): u for u, r in enumerate(unique)}
        groups: list[list[int]] = [[] for _ in unique]
        for slot, req in zip(slots, requests, strict=True):
            groups[position[req.key(0)]].append(slot)

        def on_image(u: int, image: GeneratedImage) -> None:  # on the engine loop: stay cheap
            for s in groups[u]:
                self._images[s] = image
                self._partials.pop(s, None)
            self._version += 1

        def on_partial(u: int, partial: Partial) -> None:
            for s in groups[u]:
                self._partials[s] = partial.data
            self._version += 1

        job = api.start(
            unique,
            self.config,
            fresh=fresh,
            stream=stream,
            on_image=on_image,
            on_partial=on_partial if stream else None,
            check=False,
        )
        try:
            if self._live is not None:
                self._live.wait(job)
            else:
                job.wait(label="storyboard")
        finally:
            for u, error in enumerate(job.run.errors):
                if error is not None:
                    for s in groups[u]:
                        self._errors[s] = describe(error)
            for s in slots:
                self._partials.pop(s, None)
            self._version += 1

    # --- state ----------------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        return not self._running

    @property
    def panels(self) -> list[GeneratedImage | None]:
        """The panel images in order (None where a panel was not made: `.frame` says why)."""
        return self._images[self._refs :]

    @property
    def references(self) -> dict[str, list[Any]]:
        """Each character's reference images: the generated one, or the ones given."""
        out: dict[str, list[Any]] = {}
        for c in self.cast:
            if c.description is None:
                out[c.name] = list(c.sources)
            else:
                made = self._images[self.script.ref_slot(c)]
                out[c.name] = [made] if made is not None else []
        return out

    @property
    def cost_usd(self) -> float:
        """What this run paid: references and panels made now (stored ones are free)."""
        return sum(i.cost_usd or 0.0 for i in self._images if i is not None and not i.cached)

    def _request(self, slot: int) -> request.ImageRequest:
        made = self._requests[slot]
        if made is not None:
            return made
        if slot < self._refs:
            return self.script.references[slot]
        return self.script.drafts[slot - self._refs]

    def _item(self, slot: int) -> Item:
        image, error = self._images[slot], self._errors[slot]
        if image is not None:
            status = "cached" if image.cached else "ok"
            aspect = (image.width, image.height)
        else:
            status = "error" if error is not None else "pending"
            aspect = dims_of(self._request(slot).size)
        if slot < self._refs:
            text = caption = f"{self.script.drawn[slot].name} (reference)"
        else:
            i = slot - self._refs
            text = self.table.rows[i]["panel"]
            caption = f"{i + 1}. {text}"
        partial = self._partials.get(slot) if status == "pending" else None
        return Item(slot, 0, status, text, caption, image, error, aspect, partial)

    @property
    def frame(self) -> pd.DataFrame:
        """One row per panel: the input columns, `characters` (whose references it got),
        `prompt` (as sent), then `variant`, `image`, `path`, `status` (ok, cached, error,
        pending), `error`, `cost_usd` (what this run paid: 0 for cached) and `latency_s`;
        indexed like the input frame."""
        rows = tuple(
            {
                **row,
                "characters": ", ".join(c.name for c in self.script.shown[i]),
                "prompt": self._request(self._refs + i).prompt,
            }
            for i, row in enumerate(self.table.rows)
        )
        columns = tuple(dict.fromkeys([*self.table.columns, "characters", "prompt"]))
        tab = frames.Table(columns, rows, self.table.index)
        items = [[self._item(self._refs + i)] for i in range(len(rows))]
        return grid_results.results_frame(tab, items)

    def counts(self) -> dict[str, int]:
        """Panels per status."""
        found = {"ok": 0, "cached": 0, "error": 0, "pending": 0}
        for slot in range(self._refs, len(self._images)):
            found[self._item(slot).status] += 1
        return found

    def version(self) -> tuple[int, ...]:
        """Changes whenever what the storyboard shows changes (the live view redraws on it)."""
        return (self._version, int(self.finished))

    def progress_line(self) -> str:
        """`5/6 done · 2 cached · 1 failed · $0.1230`, references and panels together."""
        images = [i for i in self._images if i is not None]
        cached = sum(1 for i in images if i.cached)
        failed = sum(1 for e in self._errors if e is not None)
        parts = [f"{len(images)}/{len(self._images)} done"]
        parts += [f"{cached} cached"] if cached else []
        parts += [f"{failed} failed"] if failed else []
        return " · ".join([*parts, f"${self.cost_usd:.4f}"])

    def describe(self) -> str:
        """`4 panels · 3 ok, 1 cached · gpt-image-2 · preview backend`"""
        counts = ", ".join(f"{v} {k}" for k, v in self.counts().items() if v)
        models = ", ".join(dict.fromkeys(r.model for r in self.script.drafts))
        backend = session.backend_name(self.config)
        return f"{len(self.table)} panels · {counts} · {models} · {backend} backend"

    # --- output ---------------------------------------------------------------------------

    @property
    def thumbs(self) -> Thumbnails:
        if self._thumbs is None:
            from imagenb.grids.view import Thumbnails

            self._thumbs = Thumbnails(session.store_for(self.config))
        return self._thumbs

    def pages(self, layout: Layout | None = None) -> int:
        """How many pages the panels fill (with the storyboard's layout, or `layout`)."""
        rows, cols = layout_of(layout) if layout is not None else self.layout
        return -(-len(self.table) // (rows * cols))

    def page(
        self,
        number: int = 1,
        *,
        layout: Layout | None = None,
        lettering: bool = True,
        panel_px: int | None = None,
        px: int = 640,
    ) -> Page:
        """Page `number` (from 1) as `save` draws it: `.image` is the full page (a PIL
        image); in a notebook it shows as a thumbnail at most `px` wide."""
        from imagenb.storyboards import page as storyboard_page

        rows, cols = layout_of(layout) if layout is not None else self.layout
        (image,) = storyboard_page.render(
            self._page_panels(),
            rows=rows,
            cols=cols,
            panel_px=panel_px or storyboard_page.DEFAULT_PANEL_PX,
            lettering=lettering,
            only=number - 1,
        )
        return storyboard_page.Page(image, number, self.pages(layout), px)

    def save(
        self,
        path: str | os.PathLike[str],
        *,
        layout: Layout | None = None,
        lettering: bool = True,
        panel_px: int | None = None,
        title: str | None = None,
    ) -> list[Path]:
        """Write the pages: `.png`/`.jpg`/`.webp` (one file per page: `name.png`,
        `name-2.png`, ...) or `.pdf` (one page each), with gutters, panel borders and, unless
        `lettering=False`, each panel's caption and speech bubbles drawn by imagenb; or
        `.html`, the notebook view as a page. `layout` (ROWSxCOLS) overrides the
        storyboard's: four panels saved with `layout="1x2"` make two pages of two. Returns the
        files written."""
        from imagenb.storyboards import page as storyboard_page

        target = check_target(path)
        if target.suffix.lower() in (".html", ".htm"):
            from imagenb.grids import html as grid_html

            target.parent.mkdir(parents=True, exist_ok=True)
            page = grid_html.render(_View(self), live=False, standalone=True)
            target.write_text(page, encoding="utf-8")
            return [target]
        rows, cols = layout_of(layout) if layout is not None else self.layout
        return storyboard_page.save(
            self._page_panels(),
            target,
            rows=rows,
            cols=cols,
            panel_px=panel_px or storyboard_page.DEFAULT_PANEL_PX,
            lettering=lettering,
            title=title,
        )

    def _page_panels(self) -> list[Panel]:
        from imagenb.storyboards.page import Panel

        out = []
        for i, row in enumerate(self.table.rows):
            item = self._item(self._refs + i)
            out.append(
                Panel(
                    item.path,
                    *item.aspect,
                    caption=" ".join(str(row.get("caption") or "").split()),
                    dialogue=dialogue(row.get("dialogue")),
                    note=_note(item.error),
                )
            )
        return out

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        from imagenb.grids import html as grid_html

        text = repr(self)
        if self._live is not None and self._live.view.in_current_cell():
            return {"text/plain": text}  # the live view above is this storyboard already
        return {
            "text/html": grid_html.render(_View(self), live=not self.finished),
            "text/plain": text,
        }

    def __repr__(self) -> str:
        counts = ", ".join(f"{v} {k}" for k, v in self.counts().items() if v)
        rows, cols = self.layout
        pages = self.pages()
        return (
            f"Storyboard({len(self.table)} panels, {len(self.cast)} characters, "
            f"{pages} page{'s' if pages > 1 else ''} of {rows}x{cols}: {counts}; "
            f"{self.progress_line()})"
        )


class _View:
    """The storyboard as `grid_html` draws a grid: the cast on the first line(s), then the
    panels page by page, `cols` to a line."""

    def __init__(self, board: Storyboard) -> None:
        self.board = board
        self.table = range(len(board._images))
        rows, cols = board.layout
        refs, count = board._refs, len(board.table)
        lines: list[tuple[tuple[int, ...], ...]] = []
        labels: list[str] = []
        for start in range(0, refs, cols):
            lines.append(_line(range(start, min(start + cols, refs)), cols))
            labels.append("cast" if start == 0 else "")
        for start in range(0, count, cols):
            lines.append(_line(range(refs + start, refs + min(start + cols, count)), cols))
            page, first = divmod(start, rows * cols)
            labels.append(f"page {page + 1}" if first == 0 else "")
        shown = tuple(labels) if refs or count > rows * cols else ()
        self.layout = frames.Layout(None, None, shown, (), tuple(lines))

    @property
    def plan_line(self) -> str:
        return self.board.plan_line

    @property
    def thumbs(self) -> Thumbnails:
        return self.board.thumbs

    @property
    def finished(self) -> bool:
        return self.board.finished

    def items(self, row: int) -> list[Item]:
        return [self.board._item(row)]

    def version(self) -> tuple[int, ...]:
        return self.board.version()

    def progress_line(self) -> str:
        return self.board.progress_line()

    def describe(self) -> str:
        return self.board.describe()

    def __repr__(self) -> str:
        return repr(self.board)


def _note(error: str | None) -> str:
    """What a page shows in place of a panel that was not made."""
    if error is None:
        return "not made (the run stopped)"
    return error if error.startswith("not made") else f"not made: {error}"


def check_target(path: str | os.PathLike[str]) -> Path:
    """`path` as a place `Storyboard.save` can write, or `InvalidRequest` (before paying)."""
    target = Path(path)
    if target.suffix.lower() not in SAVE_SUFFIXES:
        raise InvalidRequest(
            f"cannot save a storyboard as {target.suffix or 'a file without suffix'!r}; use "
            f"{', '.join(SAVE_SUFFIXES)}"
        )
    return target


def _line(slots: range, cols: int) -> tuple[tuple[int, ...], ...]:
    cells = [(s,) for s in slots]
    return tuple(cells + [()] * (cols - len(cells)))


def _unique(requests: Iterable[request.ImageRequest]) -> list[request.ImageRequest]:
    """One request per store key, in first-seen order: the engine would pay for each."""
    first: dict[str, request.ImageRequest] = {}
    for r in requests:
        first.setdefault(r.key(0), r)
    return list(first.values())


def _open_view() -> NotebookView | None:
    """A live HTML display in a notebook; None on a terminal or in a script."""
    if not in_notebook():
        return None
    from imagenb.grids.view import NotebookView

    return NotebookView()


def _plan_line(plan: cost.Estimate, refs: int, panels: int, cfg: config.Config) -> str:
    """`storyboard: 2 character reference(s) + 4 panel(s), 1 already in the store (free) ·
    5 to make ~$0.1500 est. · budget left $4.2000`"""
    head = f"storyboard: {refs} character reference(s) + " if refs else "storyboard: "
    head += f"{panels} panel(s)"
    if plan.cached_images:
        head += f", {plan.cached_images} already in the store (free)"
    return f"{head} · {session.plan_tail(plan, cfg)}"


__all__ = ["Character", "Storyboard", "estimate", "parse_panels", "prepare", "storyboard"]
