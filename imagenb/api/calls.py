"""The Python API: `generate`, `edit`, `estimate`, `history`, `spent`, and `start` (the
non-blocking form every caller builds on: grids, the panel, the CLI).

Order of work for every call: validate (raises `InvalidRequest`, nothing sent), look the
variants up in the store, estimate what is missing and reserve it against the budget
(atomically with every other run of the process; `BudgetExceeded`, nothing sent), then run
on the engine loop, which releases what the run did not use when it ends.
"""

from __future__ import annotations

import concurrent.futures
import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from imagenb.api.progress import PartialPreview, in_notebook, wait_showing
from imagenb.api.spend import Spend, spent
from imagenb.backends.base import Partial
from imagenb.checks import text as textcheck
from imagenb.core import catalog, cost, request
from imagenb.core import config as config_mod
from imagenb.engine import loop, session
from imagenb.engine.runner import Run
from imagenb.errors import BudgetExceeded, ImagenbError, InvalidRequest
from imagenb.masks import keep
from imagenb.store.images import GeneratedImage, ImageSet
from imagenb.text import match as textmatch

if TYPE_CHECKING:
    import pandas as pd

    from imagenb.store.index import Store

DEFAULT_PARTIAL_IMAGES = 2


def build(prompt: Any, cfg: config_mod.Config, **params: Any) -> request.ImageRequest:
    """`request.build` with the configured model as the default."""
    params = {k: v for k, v in params.items() if v is not None}
    params.setdefault("model", cfg.model)
    return request.build(prompt, **params)


def plan(
    requests: Sequence[request.ImageRequest],
    cfg: config_mod.Config,
    *,
    fresh: bool = False,
    batch: bool = False,
    partials: int = 0,
    split: bool = False,
) -> cost.Estimate:
    """What running `requests` would send and cost, counting stored variants as free. With
    `split`, each variant is its own call (and pays for the prompt again)."""
    store = session.store_for(cfg)
    found = set() if fresh else set(store.get_many([k for r in requests for k in r.variant_keys()]))
    total = cost.ZERO
    for r in requests:
        missing = sum(1 for k in r.variant_keys() if k not in found)
        calls = [1] * missing if split else [missing] if missing else []
        for images in calls:
            total += cost.estimate(r, images=images, partials=partials, batch=batch)
        total += cost.Estimate(0.0, 0, 0, 0, cached_images=r.n - missing)
    return total


def check_budget(estimate: cost.Estimate, cfg: config_mod.Config) -> None:
    """Raise `BudgetExceeded` (before anything is sent) if `estimate` exceeds what is left.
    A quick look for a clear early message; `start` makes the binding reservation."""
    left = session.budget_left(cfg)
    if left is None or estimate.usd <= left:
        return
    raise BudgetExceeded(
        f"this would cost about ${estimate.usd:.4f} ({estimate.images} image(s)) but only "
        f"${left:.4f} of the "
        f"${cfg.budget_usd:.2f} budget is left; lower the quality, size or count, or raise it "
        "with ig.configure(budget_usd=...)",
        estimate_usd=estimate.usd,
        left_usd=left,
    )


@dataclass
class Job:
    """A run going on in the background. `wait()` blocks (interruptibly); `cancel()` stops
    sending and collects what is in flight, a second `cancel()` abandons it."""

    run: Run
    future: concurrent.futures.Future[Run]

    @property
    def finished(self) -> bool:
        return self.future.done()

    def wait(
        self,
        *,
        progress: bool = True,
        label: str = "imagenb",
        tick: Callable[[], None] | None = None,
    ) -> Run:
        """Block until done (Ctrl-C stops it), showing progress and calling `tick()` often."""
        return wait_showing(self.run, self.future, label=label, progress=progress, tick=tick)

    def cancel(self) -> None:
        """First call: send nothing more, keep collecting what is in flight. Second: abandon."""
        if self.run.stop_requested.is_set():
            self.future.cancel()
        else:
            self.run.stop()

    def images(self) -> ImageSet:
        """Every image finished so far, in request order."""
        return ImageSet([img for row in self.run.results for img in row if img is not None])


def start(
    requests: Sequence[request.ImageRequest],
    cfg: config_mod.Config | None = None,
    *,
    fresh: bool = False,
    stream: bool = False,
    on_image: Callable[[int, GeneratedImage], None] | None = None,
    on_partial: Callable[[int, Partial], None] | None = None,
    check: bool = True,
    split: bool = False,
) -> Job:
    """Begin running `requests` and return at once. Their estimate is reserved against the
    budget first (`BudgetExceeded`, nothing sent, if it does not fit), whatever `check` says:
    the reservation is what makes the budget a hard cap across runs under way. `split`
    sends each variant as its own call (independent candidates for `best_of`)."""
    if isinstance(requests, str) or not all(isinstance(r, request.ImageRequest) for r in requests):
        raise InvalidRequest(
            "ig.start takes built requests (ig.api.requests_from(prompts, ig.configure())); "
            "to make images from prompts, call ig.generate or ig.grid"
        )
    cfg = cfg or config_mod.current()
    partials = DEFAULT_PARTIAL_IMAGES if stream else 0
    estimate = plan(requests, cfg, fresh=fresh, partials=partials, split=split)
    paid = session.backend_name(cfg) not in ("preview", "replay")
    reservation = session.ledger.reserve(estimate.usd, session.budget_cap(cfg), paid=paid)
    run = Run(list(requests))

    async def go() -> Run:
        try:
            engine = session.engine_for(cfg)
            return await engine.execute(
                run,
                fresh=fresh,
                partial_images=partials,
                on_partial=(on_partial or _ignore) if stream else None,
                on_image=on_image,
                split_variants=split,
                reservation=reservation,
            )
        finally:
            reservation.close()

    future = loop.submit(go())
    loop.on_interrupt(future, functools.partial(_stopping_line, run))
    return Job(run, future)


def _stopping_line(run: Run) -> str:
    """Stop `run` gracefully; the line that says so."""
    flying = run.stop()
    if not flying:
        return "stopping: nothing is being made"
    return (
        f"stopping: waiting for {flying} image(s) already being made; "
        "interrupt again to abandon them"
    )


def _ignore(index: int, partial: Partial) -> None:
    """A stream nobody watches (a script): partials are simply dropped."""


_NOT_PARAMETERS = ("prompt", "fresh", "stream", "best_of", "check_text", "keep_outside")


def _run_one(
    prompt: Any,
    arguments: dict[str, Any],
    *,
    fresh: bool,
    stream: bool,
    keep_outside: bool = False,
) -> ImageSet:
    """Validate and run one request to the end (`arguments`: the caller's keyword arguments),
    streaming partial previews into the notebook if asked. With `best_of=k`, k candidates
    are made as k calls and come back best first by how their text reads (`check_text`).
    With `keep_outside`, each answer is composited onto the input outside the mask."""
    loop.refuse_blocking("ig.generate / ig.edit", "ig.start(requests, on_image=...)")
    cfg = config_mod.current()
    params = {k: v for k, v in arguments.items() if k not in _NOT_PARAMETERS}
    best_of, check_text = arguments.get("best_of"), arguments.get("check_text")
    if best_of is not None:
        params["n"] = _candidates(best_of, params, cfg)
        check_text = True if check_text is None else check_text  # the prompt's quoted text
    req = build(prompt, cfg, **params)
    if keep_outside:
        req = keep.prepare(req)
    expected = textmatch.expected_from(req.prompt, check_text)
    if expected is not None:
        textcheck.prepare([expected])  # OCR installed and the language known: before paying
    split = best_of is not None
    if split:
        partials = DEFAULT_PARTIAL_IMAGES if stream else 0
        estimate = plan([req], cfg, fresh=fresh, partials=partials, split=True)
        print(_best_of_line(req.n, estimate, expected or "", cfg))  # all k, before sending
        check_budget(estimate, cfg)
    preview = PartialPreview(cfg.thumbnail_px) if stream and in_notebook() else None
    job = start(
        [req],
        cfg,
        fresh=fresh,
        stream=stream,
        on_partial=preview.offer if preview else None,
        check=not split,
        split=split,
    )
    title = req.prompt
    run = job.wait(label=title, tick=preview.show_latest if preview else None)
    if preview:
        preview.clear()
    images: Sequence[GeneratedImage] = job.images()
    errors = [e for e in run.errors if e is not None]
    if errors and not images:
        raise errors[0]
    if expected is not None:
        images = textcheck.rank(images, expected)
    if keep_outside:
        images = keep.finish(req, images, cfg)
        title += " · the outside of the mask kept as it was"
    return ImageSet(images, title=f"best of {req.n}: {title}" if split else title)


def _candidates(best_of: Any, params: dict[str, Any], cfg: config_mod.Config) -> int:
    """`best_of` checked: a whole number of candidates the model allows, and no `n` beside."""
    most = catalog.lookup(params.get("model") or cfg.model).n_max
    if isinstance(best_of, bool) or not isinstance(best_of, int) or not 1 <= best_of <= most:
        raise InvalidRequest(f"best_of={best_of!r}; make a whole number of candidates, 1 to {most}")
    if params.get("n") not in (None, 1):
        raise InvalidRequest(
            f"best_of={best_of} makes {best_of} candidates of one image each and returns them "
            "all, best first; leave n out"
        )
    return best_of


def _best_of_line(k: int, estimate: cost.Estimate, expected: str, cfg: config_mod.Config) -> str:
    """`best of 3: 3 image(s) in 3 request(s): ~$0.0159 est. · checking 'OPEN' · budget ...`"""
    note = " if real (preview backend)" if session.backend_name(cfg) == "preview" else " est."
    left = session.budget_left(cfg)
    text = " / ".join(expected.splitlines())
    return " · ".join(
        [
            f"best of {k}: {estimate}{note}",
            f"checking the text {text[:60]!r}",
            "no budget set" if left is None else f"budget left ${left:.4f}",
        ]
    )


def generate(
    prompt: str,
    *,
    model: str | None = None,
    size: str | None = None,
    quality: str | None = None,
    n: int | None = None,
    output_format: str | None = None,
    output_compression: int | None = None,
    background: str | None = None,
    moderation: str | None = None,
    complexity: str | None = None,
    best_of: int | None = None,
    check_text: str | bool | None = None,
    fresh: bool = False,
    stream: bool = False,
) -> ImageSet:
    """Generate images from `prompt`, blocking with live progress; stored variants are free.

    `check_text="..."` reads the text in each image (OCR) and returns them best first, each
    with its `.text_check`; `True` checks the prompt's quoted text. `best_of=k` makes k
    candidates as k separate calls (the cost of all k is printed before sending) and scores
    them the same way (by default against the quoted text of the prompt), so any backend
    gets the model's "self-check": the first image is the one whose text reads best.

    Ctrl-C stops it; images that already arrived are kept in the store.
    """
    return _run_one(prompt, locals(), fresh=fresh, stream=stream)


def edit(
    prompt: str,
    images: Any,
    *,
    mask: Any = None,
    input_fidelity: str | None = None,
    model: str | None = None,
    size: str | None = None,
    quality: str | None = None,
    n: int | None = None,
    output_format: str | None = None,
    output_compression: int | None = None,
    background: str | None = None,
    moderation: str | None = None,
    complexity: str | None = None,
    keep_outside: bool | None = None,
    fresh: bool = False,
    stream: bool = False,
) -> ImageSet:
    """Edit `images` (paths, bytes, PIL images or GeneratedImages; 1 to 16) as `prompt` says.

    With a `mask` (a PNG, PIL image or `ig.mask` painter; transparent where to edit), the
    answer is by default composited onto the first image, so the outside stays exactly as it
    was (`keep_outside=False`: the answer as it came); each result's `.changed_outside` says
    how much of the outside the model had changed, and `.raw` is its answer (stored too)."""
    if images is None:  # else it would quietly become a paid generation
        raise InvalidRequest(
            "ig.edit needs the image(s) to edit; got None. For a new image use ig.generate"
        )
    return _run_one(
        prompt, locals(), fresh=fresh, stream=stream, keep_outside=keep.wanted(mask, keep_outside)
    )


def requests_from(
    prompts: Any, cfg: config_mod.Config, **params: Any
) -> list[request.ImageRequest]:
    """Requests for a prompt, a list of prompts, or rows (dicts / a DataFrame) whose columns
    named like parameters override `params` per row."""
    if isinstance(prompts, str):
        return [build(prompts, cfg, **params)]
    rows: Iterable[Any] = _rows(prompts)
    out = []
    for row in rows:
        if isinstance(row, Mapping):
            merged = {**params, **{k: v for k, v in row.items() if k in request.PARAMETERS}}
            out.append(build(row.get("prompt"), cfg, **merged))
        else:
            out.append(build(row, cfg, **params))
    return out


def _rows(data: Any) -> Iterable[Any]:
    """Rows the way a grid reads them (pandas, polars eager or lazy, dicts, lists), so
    `estimate` takes whatever `grid` takes and refuses what it refuses."""
    from imagenb.core import frames

    return frames.table(data).rows


def estimate(
    prompt_or_frame: Any, *, fresh: bool = False, batch: bool = False, **params: Any
) -> cost.Estimate:
    """Cost of generating `prompt_or_frame` now, with stored images counted as free. No network."""
    cfg = config_mod.current()
    return plan(requests_from(prompt_or_frame, cfg, **params), cfg, fresh=fresh, batch=batch)


def current_store() -> Store:
    """The store in use: `.info()`, `.check()`, `.export(path)`, `.import_(path)` (to share a
    class's images as a replay store), `.history()`."""
    return session.store_for(config_mod.current())


def history(limit: int | None = None) -> pd.DataFrame:
    """Every stored image, newest first, as a DataFrame; an edit's `sources` are the store keys
    of its input images (those in the store), and a masked edit's `changed_outside` is there."""
    import pandas as pd

    store = session.store_for(config_mod.current())
    rows = store.history(limit)
    columns = [
        "key",
        "prompt",
        "model",
        "params",
        "path",
        "created",
        "cost_usd",
        "backend",
        "source",
        "cost_is_estimate",
        "width",
        "height",
        "variant",
        "latency_s",
        "kind",
        "input_keys",  # an edit's inputs; a conversation turn's parent image
    ]
    frame = pd.DataFrame([{c: getattr(r, c) for c in columns} for r in rows], columns=columns)
    frame["created"] = pd.to_datetime(frame["created"], unit="s", utc=True)
    keep.add_lineage(frame, rows, store)
    return frame


__all__ = ["ImagenbError", "Spend", "edit", "estimate", "generate", "history", "spent", "start"]
