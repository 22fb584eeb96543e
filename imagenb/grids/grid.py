"""Prompt grids: one image request per frame row, laid out by two columns, filled in live.

`grid()` validates every row before anything is sent, states what the run will make and cost,
checks the budget, and starts the run on the engine. The `Grid` it returns reads the engine's
`Run` (the single source of truth) to build its results frame, its notebook view and its
saved forms; nothing is copied, so the three cannot drift apart.

This module is named `grids` rather than `grid` on purpose: a submodule called `grid` would
replace the `imagenb.grid` function as soon as anything imported it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imagenb.api import calls as api
from imagenb.api.progress import in_notebook, summary
from imagenb.backends.base import Partial
from imagenb.checks import text as textcheck
from imagenb.core import config, frames, plan_notes, request, sizes
from imagenb.engine import session
from imagenb.errors import InvalidRequest, describe
from imagenb.grids import results as grid_results
from imagenb.store.images import GeneratedImage
from imagenb.text import match as textmatch

if TYPE_CHECKING:
    import pandas as pd

    from imagenb.core.cost import Estimate
    from imagenb.grids.view import LiveView, NotebookView, Thumbnails
    from imagenb.judging.grid_scores import GridJudge
    from imagenb.text.match import TextCheck

MAX_IMAGES = 10_000  # more than this is a mistake to refuse, not a bill to run up
MODES = ("live", "batch")
STATUSES = ("ok", "cached", "error", "pending")
SAVE_SUFFIXES = (".png", ".jpg", ".jpeg", ".html", ".htm", ".pdf")


@dataclass(frozen=True)
class Item:
    """One image slot of a grid (a row's variant) as it stands now."""

    row: int
    variant: int
    status: str
    prompt: str
    caption: str
    image: GeneratedImage | None
    error: str | None
    aspect: tuple[int, int]
    partial: bytes | None = None
    check: TextCheck | None = None  # how its text read (grids with check_text)

    @property
    def path(self) -> Path | None:
        return self.image.path if self.image is not None else None


def grid(
    frame: Any,
    *,
    prompt: str = "prompt",
    rows: str | None = None,
    cols: str | None = None,
    caption: str | None = None,
    mode: str = "live",
    wait: bool = True,
    fresh: bool = False,
    stream: bool = False,
    check_text: str | bool | None = None,
    judge: str | None = None,
    **params: Any,
) -> Grid:
    """Generate one image per row of `frame` (a pandas or polars DataFrame, a list of dicts or
    a list of prompts) and lay them out with `rows` and `cols` as labelled axes.

    Columns named like request parameters (`model`, `size`, `quality`, `n`, ...) override
    `params` per row, so `cols="quality"` compares qualities. `caption` is a column name or a
    `str.format` template over the row. Stored images are free; a grid over the budget, or
    over `MAX_IMAGES` images, raises before anything is sent. `wait=False` returns at once
    and keeps filling in the notebook view. `mode="batch"` sends the grid through the OpenAI
    Batch API (half price, done within 24 h); the job is kept in the store, so re-running the
    cell after a restart picks it up instead of paying again. `check_text="column"` reads
    the text in each image (OCR) and compares it with that column (`True`: with the quoted
    text of each prompt): `.frame` gains `ocr_text`, `cer` and `pass`, and cells a badge.
    `judge="rubric"` judges each finished image against it (`ig.judge`): `.frame` gains
    `judge_score`, `judge_passed`, `score_<criterion>` and `judge_error`, cells a score badge.
    """
    if mode not in MODES:
        raise InvalidRequest(f"mode={mode!r} is not a grid mode; choose one of: live, batch")
    cfg = config.current()
    if mode == "batch":
        from imagenb.batch import jobs as batch

        if stream:
            raise InvalidRequest("stream=True shows images as they are drawn; use mode='live'")
        batch.require_support(cfg)
    result = _prepare(frame, prompt, rows, cols, caption, params, cfg)
    if check_text is not None and check_text is not False:
        result.expect_text(check_text)  # OCR missing, or no text to check: nothing sent
    if judge is not None:
        from imagenb.judging.grid_scores import GridJudge

        result.judge = GridJudge(judge)  # a bad rubric: nothing sent
    plan = _plan(result.requests, cfg, fresh=fresh, mode=mode)
    partials = api.DEFAULT_PARTIAL_IMAGES if stream else 0
    result.plan_line = _plan_line(plan, cfg) + session.reuse_note(result.requests, cfg, fresh=fresh)
    result.plan_line += plan_notes.suffix(result.requests, partials=partials)
    view = _open_view()
    if view is None:
        print(result.plan_line)
    api.check_budget(plan, cfg)  # BudgetExceeded: nothing sent, nothing shown but the line
    result._start(view, fresh=fresh, stream=stream, background=not wait, mode=mode)
    if wait:
        result.wait()
    return result


def estimate(
    frame: Any, *, prompt: str = "prompt", fresh: bool = False, mode: str = "live", **params: Any
) -> Estimate:
    """What `grid(frame, ...)` would make and cost now (stored images free). No network."""
    cfg = config.current()
    return _plan(requests_for(frame, prompt=prompt, **params), cfg, fresh=fresh, mode=mode)


def requests_for(
    frame: Any, *, prompt: str = "prompt", **params: Any
) -> list[request.ImageRequest]:
    """The validated requests `grid(frame, ...)` would run (no network)."""
    return _prepare(frame, prompt, None, None, None, params, config.current()).requests


def _plan(
    requests: Sequence[request.ImageRequest], cfg: config.Config, *, fresh: bool, mode: str
) -> Estimate:
    if mode == "batch":  # at the batch price; what a recorded batch job covers is paid for
        from imagenb.batch import jobs as batch

        return batch.estimate(requests, cfg, fresh=fresh)
    return api.plan(requests, cfg, fresh=fresh)


def _prepare(
    frame: Any,
    prompt: str,
    rows: str | None,
    cols: str | None,
    caption: str | None,
    params: Mapping[str, Any],
    cfg: config.Config,
) -> Grid:
    """Validate everything (input, columns, every row's request, the size) into a `Grid`."""
    unknown = sorted(set(params) - set(request.PARAMETERS))
    if unknown:
        raise InvalidRequest(
            f"grid() got unknown keyword(s) {', '.join(unknown)}; request parameters are: "
            f"{', '.join(request.PARAMETERS)}"
        )
    tab = frames.table(frame)
    frames.require(tab, prompt=prompt, caption=caption)
    if len(tab) > MAX_IMAGES:
        raise InvalidRequest(_too_big(len(tab), "rows"))
    built = [_build(tab, i, row, prompt, cfg, params) for i, row in enumerate(tab.rows)]
    total = sum(r.n for r in built)
    if total > MAX_IMAGES:
        raise InvalidRequest(_too_big(total, "images"))
    return Grid(tab, frames.layout(tab, rows, cols), built, cfg, prompt=prompt, caption=caption)


def _open_view() -> NotebookView | None:
    """A live HTML display in a notebook; None on a terminal or in a script."""
    if not in_notebook():
        return None
    from imagenb.grids.view import NotebookView

    return NotebookView()


def _too_big(count: int, what: str) -> str:
    return (
        f"this grid would make {count:,} {what}; the limit is {MAX_IMAGES:,} images per grid. "
        "Split the frame or use fewer values per axis."
    )


def _build(
    tab: frames.Table,
    i: int,
    row: Mapping[str, Any],
    prompt: str,
    cfg: config.Config,
    params: Mapping[str, Any],
) -> request.ImageRequest:
    try:
        return api.build(row.get(prompt), cfg, **frames.parameters(row, params))
    except InvalidRequest as exc:
        where = f"row {i}" if tab.index is None else f"row {i} (index {tab.index[i]!r})"
        raise InvalidRequest(f"{where}: {exc}") from exc


def _plan_line(plan: Estimate, cfg: config.Config) -> str:
    """`grid: 64 images, 60 already in the store (free) · ~$0.0840 est. · budget left $4.20`"""
    head = f"grid: {plan.images + plan.cached_images} image(s)"
    if plan.cached_images:
        head += f", {plan.cached_images} already in the store (free)"
    return f"{head} · {session.plan_tail(plan, cfg)}"


class Grid:
    """A grid being generated or done: `.frame`, `.wait()`, `.save(path)`; shows itself in a
    notebook as static HTML (thumbnails only)."""

    plan_line: str = ""

    def __init__(
        self,
        tab: frames.Table,
        layout: frames.Layout,
        requests: Sequence[request.ImageRequest],
        cfg: config.Config,
        *,
        prompt: str = "prompt",
        caption: str | None = None,
    ) -> None:
        self.table = tab
        self.layout = layout
        self.config = cfg
        self.prompt_column = prompt
        # Identical rows share one request: the engine would otherwise pay for both.
        unique: dict[tuple[str, int], int] = {}
        self._slot = [unique.setdefault((r.key(0), r.n), len(unique)) for r in requests]
        firsts = {u: i for i, u in reversed(list(enumerate(self._slot)))}
        self.requests = [requests[firsts[u]] for u in range(len(unique))]
        self._row_requests = list(requests)
        self._captions = frames.captions(tab, layout, prompt, caption)
        self._job: api.Job | None = None  # a batch.BatchJob in batch mode
        self._live: LiveView | None = None
        self._partials: dict[tuple[int, int], bytes] = {}
        self._partial_count = 0
        self._missing: list[list[int]] = []
        self._thumbs: Thumbnails | None = None
        self._expected: list[tuple[str, str] | None] = []  # per row: (text, OCR language)
        self._checked_rows: dict[int, list[int]] = {}  # slot -> rows whose text is checked
        self._checker: textcheck.Checker | None = None
        self.judge: GridJudge | None = None  # grid(..., judge=RUBRIC)

    def expect_text(self, check_text: str | bool) -> None:
        """Check that each row's images show the text in column `check_text` (`True`: the
        quoted text of its prompt). Raises `InvalidRequest`, or `OCRUnavailable` naming what
        to install, before anything is sent."""
        if check_text is True:
            texts = [
                "\n".join(textmatch.quoted(str(row.get(self.prompt_column) or ""))) or None
                for row in self.table.rows
            ]
            if not any(texts):
                raise InvalidRequest(
                    "check_text=True checks the quoted text of each prompt, but no prompt has "
                    'any (a sign that says "OPEN"); name the column holding the expected text'
                )
        elif isinstance(check_text, str) and check_text in self.table.columns:
            texts = [_text(row.get(check_text)) for row in self.table.rows]
        else:
            raise InvalidRequest(
                f"check_text={check_text!r} is not a column; name the column holding the text "
                f"each image should show (columns: {', '.join(self.table.columns)}), or pass "
                "True to check the quoted text of each prompt"
            )
        codes = textcheck.prepare(texts)
        self._expected = [
            (text, code) if text is not None and code is not None else None
            for text, code in zip(texts, codes, strict=True)
        ]
        for row, slot in enumerate(self._slot):
            if self._expected[row] is not None:
                self._checked_rows.setdefault(slot, []).append(row)
        self._checker = textcheck.Checker(on_done=self._checked)

    def _checked(self) -> None:
        # On an OCR worker: a background view shows the last check (one waiting redraws).
        live, checker = self._live, self._checker
        if live is not None and checker is not None and checker.settled and self.finished:
            live.refresh(force=True)

    def _check(self, row: int, image: GeneratedImage) -> TextCheck | None:
        expected = self._expected[row] if self._expected else None
        if expected is None or self._checker is None:
            return None
        self._checker.submit(image, *expected)  # at once if new, else a no-op
        return self._checker.get(image, expected[0])

    # --- running --------------------------------------------------------------------------

    def _start(
        self,
        view: NotebookView | None,
        *,
        fresh: bool,
        stream: bool,
        background: bool,
        mode: str = "live",
    ) -> None:
        """Send what is missing (budget already checked); show `view` at once."""
        if stream:
            store = session.store_for(self.config)
            keys = [k for r in self.requests for k in r.variant_keys()]
            found = set() if fresh else set(store.get_many(keys))
            self._missing = [
                [v for v in range(r.n) if r.key(v) not in found] for r in self.requests
            ]
        if view is not None:
            from imagenb.grids.view import LiveView

            self._live = LiveView(self, view)
        if mode == "batch":
            from imagenb.batch import jobs as batch

            label = f"grid of {len(self.table)}: {self.requests[0].prompt[:60]}"
            self._job = batch.start(
                self.requests, self.config, label=label, fresh=fresh, check=False
            )
        else:
            self._job = api.start(
                self.requests,
                self.config,
                fresh=fresh,
                stream=stream,
                on_image=self._on_image,
                on_partial=self._on_partial if stream else None,
                check=False,
            )
        if self._live is not None and background:
            self._live.follow(self._job)

    def _on_image(self, slot: int, image: GeneratedImage) -> None:
        # On the engine loop: stay cheap. Whoever waits redraws the view, throttled.
        self._partials.pop((slot, image.variant), None)
        for row in self._checked_rows.get(slot, ()):  # start reading its text now (on a worker)
            self._check(row, image)

    def _on_partial(self, slot: int, partial: Partial) -> None:
        missing = self._missing[slot] if slot < len(self._missing) else []
        variant = missing[partial.slot] if partial.slot < len(missing) else partial.slot
        self._partials[(slot, variant)] = partial.data
        self._partial_count += 1

    @property
    def finished(self) -> bool:
        return self._job is None or self._job.finished

    def version(self) -> tuple[int, ...]:
        """Changes whenever what the grid shows changes (the live view redraws on it)."""
        if self._job is None:
            return ()
        run = self._job.run
        checked = self._checker.done if self._checker is not None else 0
        return (run.done, run.cached, run.failed, self._partial_count, int(self.finished), checked)

    def wait(self, *, progress: bool = True) -> Grid:
        """Block until every cell is done or failed (Ctrl-C stops it; finished images stay)."""
        job = self._job
        if job is None or job.future.cancelled():
            return self
        if self._live is not None:
            self._live.wait(job)
        else:
            job.wait(progress=progress, label="grid")
        if self._checker is not None:
            for row in range(len(self.table)):
                self.items(row)  # submits the checks of images that came another way
            live = self._live
            self._checker.wait(tick=live.refresh if live is not None else None)
            if live is not None:
                live.refresh(force=True)
        if self.judge is not None:
            self.judge.run([img for i in range(len(self.table)) for img in self._images(i)])
            if self._live is not None:
                self._live.refresh(force=True)
        return self

    def _images(self, row: int) -> list[GeneratedImage]:
        return [item.image for item in self.items(row) if item.image is not None]

    def score_badge(self, image: GeneratedImage) -> str:
        """The judge's badge for a cell (empty without `judge=`, or until judged)."""
        return self.judge.badge(image.key) if self.judge is not None else ""

    def cancel(self) -> None:
        if self._job is not None:
            self._job.cancel()

    # --- state ----------------------------------------------------------------------------

    def items(self, row: int) -> list[Item]:
        """The variants of input row `row`, as they stand now."""
        req = self._row_requests[row]
        slot = self._slot[row]
        run = self._job.run if self._job is not None else None
        error = run.errors[slot] if run is not None else None
        aspect = sizes.dimensions(req.size) or (1, 1)
        out = []
        for v in range(req.n):
            image = run.results[slot][v] if run is not None else None
            if image is not None:
                status, message = ("cached" if image.cached else "ok"), None
                aspect = (image.width, image.height)
            elif error is not None:
                status, message = "error", describe(error)
            else:
                status, message = "pending", None
            partial = self._partials.get((slot, v)) if status == "pending" else None
            check = self._check(row, image) if image is not None else None
            out.append(
                Item(
                    row,
                    v,
                    status,
                    req.prompt,
                    self._captions[row],
                    image,
                    message,
                    aspect,
                    partial,
                    check,
                )
            )
        return out

    @property
    def frame(self) -> pd.DataFrame:
        """The input columns plus `variant`, `image`, `path`, `status`, `error`, `cost_usd`
        (what this run paid: 0 for cached) and `latency_s`; one row per image (per input row
        when n = 1), indexed like the input frame. With `check_text`, also `ocr_text`, `cer`
        and `pass` (empty for rows without expected text, and until a check is done)."""
        per_row = [self.items(i) for i in range(len(self.table))]
        out = grid_results.results_frame(self.table, per_row)
        if self._checker is not None:
            textcheck.add_columns(out, [item.check for items in per_row for item in items])
        if self.judge is not None:
            self.judge.add_columns(out)
        return out

    def counts(self) -> dict[str, int]:
        found = dict.fromkeys(STATUSES, 0)
        for i in range(len(self.table)):
            for item in self.items(i):
                found[item.status] += 1
        return found

    def describe(self) -> str:
        """`12 images · 11 ok, 1 error · gpt-image-2 · preview backend` (sheet titles)."""
        counts = ", ".join(f"{v} {k}" for k, v in self.counts().items() if v)
        models = ", ".join(dict.fromkeys(r.model for r in self.requests))
        total = sum(r.n for r in self._row_requests)
        backend = session.backend_name(self.config)
        return f"{total} images · {counts} · {models} · {backend} backend"

    def progress_line(self) -> str:
        if self._job is None:
            return "not started"
        return summary(self._job.run)

    # --- output ---------------------------------------------------------------------------

    @property
    def thumbs(self) -> Thumbnails:
        """Thumbnails of this grid's images, cached in the store and in memory."""
        if self._thumbs is None:
            from imagenb.grids.view import Thumbnails

            self._thumbs = Thumbnails(session.store_for(self.config))
        return self._thumbs

    def _html(self, *, live: bool, standalone: bool = False) -> str:
        from imagenb.grids import html as grid_html

        return grid_html.render(self, live=live, standalone=standalone)

    def save(self, path: str | Path, *, cell_px: int = 384) -> list[Path]:
        """Wait, then write a contact sheet (`.png`, `.jpg`; tiles `name-2.png`, ... when one
        image would exceed Pillow's limits), a self-contained `.html`, or a `.pdf`. Returns
        the files written."""
        target = Path(path)
        suffix = target.suffix.lower()
        if suffix not in SAVE_SUFFIXES:
            raise InvalidRequest(
                f"cannot save a grid as {suffix or 'a file without suffix'!r}; use .png, .jpg, "
                ".html or .pdf"
            )
        self.wait()
        target.parent.mkdir(parents=True, exist_ok=True)
        if suffix in (".html", ".htm"):
            target.write_text(self._html(live=False, standalone=True), encoding="utf-8")
            return [target]
        from imagenb.grids import html as grid_html
        from imagenb.render import sheet

        return sheet.save(grid_html.sheet_of(self), target, cell_px=cell_px)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        text = repr(self)
        if self._live is not None and self._live.view.in_current_cell():
            return {"text/plain": text}  # the live view above is this grid already
        return {"text/html": self._html(live=not self.finished), "text/plain": text}

    def __repr__(self) -> str:
        counts = ", ".join(f"{v} {k}" for k, v in self.counts().items() if v)
        r, c = self.layout.shape
        return f"Grid({len(self.table)} rows in {r}x{c} cells: {counts}; {self.progress_line()})"


def _text(value: Any) -> str | None:
    return None if value is None or not str(value).strip() else str(value)
