"""IPython magics: `%%imagegen` / `%imagegen`, `%%imageedit` / `%imageedit`, `%%storyboard`
and `%imagenb`.

Thin glue: parse the cell (`magic_args`), call `imagenb.api.calls`, display the `ImageSet`. A user
error prints one line, `imagenb: <what to do>`, on stderr instead of a traceback. The API
and Pillow load on the first magic call, not at `%load_ext`, which registers the magics and
nothing else (no hooks, no global state).
"""

from __future__ import annotations

import re
import sys
from dataclasses import fields, replace
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import (
    Magics,
    cell_magic,
    line_cell_magic,
    line_magic,
    magics_class,
    no_var_expand,
)
from IPython.core.magic_arguments import argument, magic_arguments
from traitlets import Int, Unicode, observe

from imagenb.core import plan_notes
from imagenb.errors import ImagenbError, InvalidRequest
from imagenb.magics import args as magic_args

if TYPE_CHECKING:
    from imagenb.api import progress
    from imagenb.api.calls import Job
    from imagenb.core.config import Config

# trait name -> request parameter it supplies when a magic line leaves it out
_DEFAULT_TRAITS = {
    "default_model": "model",
    "default_size": "size",
    "default_quality": "quality",
    "default_n": "n",
    "default_format": "output_format",
    "default_compression": "output_compression",
    "default_background": "background",
    "default_moderation": "moderation",
    "default_complexity": "complexity",
}
_PROMPT_HELP = "the prompt (quote it to keep spaces and quotes exact); in a cell: the body"


@magics_class
class ImagenbMagics(Magics):
    """Generate and edit images from notebook cells; see `%imagegen?`."""

    default_model = Unicode(
        "", help="Model when -m is not given ('' means the configured model)."
    ).tag(config=True)
    default_size = Unicode(
        "auto", help="Size when -s is not given: WxH, a preset or a ratio such as 16:9."
    ).tag(config=True)
    default_quality = Unicode("auto", help="Quality when -q is not given.").tag(config=True)
    default_n = Int(1, help="Variants per prompt when -n is not given.").tag(config=True)
    default_format = Unicode("png", help="Output format when -f is not given.").tag(config=True)
    default_compression = Int(
        None, allow_none=True, help="Compression (0-100, webp/jpeg) when not given."
    ).tag(config=True)
    default_background = Unicode("auto", help="Background when not given.").tag(config=True)
    default_moderation = Unicode("auto", help="Moderation when not given.").tag(config=True)
    default_complexity = Unicode(
        None, allow_none=True, help="Complexity (2.6 models) when not given."
    ).tag(config=True)

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        self._document()

    @observe(*_DEFAULT_TRAITS)
    def _defaults_changed(self, change: Any) -> None:
        self._document()

    def _defaults(self) -> dict[str, Any]:
        return {param: getattr(self, trait) for trait, param in _DEFAULT_TRAITS.items()}

    def _document(self) -> None:
        """Put the current defaults into the help `%imagegen?` shows."""
        for magic in (ImagenbMagics.imagegen, ImagenbMagics.imageedit, ImagenbMagics.storyboard):
            magic.__doc__ = magic_args.help_text(magic.parser, self._defaults())

    # --- the magics ---------------------------------------------------------------------------

    @magic_arguments()  # type: ignore[untyped-decorator]  # IPython's magic_arguments is untyped
    @argument("prompt", nargs="*", help=_PROMPT_HELP)  # type: ignore[untyped-decorator]
    @magic_args.request_options
    @no_var_expand
    @line_cell_magic
    def imagegen(self, line: str, cell: str | None = None) -> None:
        """Generate images: `%%imagegen [options]` with the prompt as the cell body, or
        `%imagegen [options] PROMPT`. `{name}` in the prompt is filled from your variables."""
        self._run(magic_args.parse(self.imagegen.parser, line, cell, self._defaults()))

    @magic_arguments()  # type: ignore[untyped-decorator]  # IPython's magic_arguments is untyped
    @argument("prompt", nargs="*", help=_PROMPT_HELP)  # type: ignore[untyped-decorator]
    @magic_args.edit_options
    @magic_args.request_options
    @no_var_expand
    @line_cell_magic
    def imageedit(self, line: str, cell: str | None = None) -> None:
        """Edit images: `%%imageedit -i IMAGE [-i IMAGE ...] [--mask MASK] [options]` with the
        instruction as the cell body. IMAGE is a variable, a path or a glob."""
        args = magic_args.parse(self.imageedit.parser, line, cell, self._defaults())
        if not args.images:
            raise UsageError("give the image(s) to edit with -i IMAGE (a variable or a path)")
        self._run(args)

    @magic_arguments()  # type: ignore[untyped-decorator]  # IPython's magic_arguments is untyped
    @magic_args.storyboard_options
    @magic_args.request_options
    @no_var_expand
    @cell_magic
    def storyboard(self, line: str, cell: str) -> None:
        """Make a comic page: `%%storyboard [options]` with one panel per line
        (`description | caption: narration | Mira: words`), characters from
        `-c NAME="description"` or `-c NAME=IMAGE`. Panels are square unless -s says
        otherwise; `-o VAR` keeps the Storyboard; `--save comic.png` (or .pdf) writes the
        pages, replacing earlier ones of that name. `{name}` in the body is filled from your
        variables."""
        defaults = self._defaults()
        if defaults.get("size") == "auto":
            del defaults["size"]  # the storyboard's own default (square panels)
        args = magic_args.parse(self.storyboard.parser, line, cell, defaults)
        try:
            self._storyboard(args)
        except (ImagenbError, FileNotFoundError) as exc:
            _fail(exc)

    @no_var_expand
    @line_magic
    def imagenb(self, line: str = "") -> None:
        """`%imagenb`: backend, model, store, spend and budget.
        `%imagenb KEY=VALUE ...` configures (budget_usd=5 concurrency=4 model=...;
        KEY=none resets one to its environment/default value)."""
        try:
            if line.strip():
                _configure(line)
            else:
                print(_status(self))
        except ImagenbError as exc:
            _fail(exc)

    # --- glue ---------------------------------------------------------------------------------

    def _run(self, args: magic_args.MagicArgs) -> None:
        try:
            self._generate(args)
        except (ImagenbError, FileNotFoundError) as exc:
            _fail(exc)

    def _generate(self, args: magic_args.MagicArgs) -> None:
        from imagenb.api import calls as api
        from imagenb.api import progress
        from imagenb.masks import keep
        from imagenb.store.images import GeneratedImage, ImageSet

        cfg = _config_for(args.backend)
        ns: dict[str, Any] = self.shell.user_ns if self.shell is not None else {}
        prompt, unfilled = magic_args.interpolate(args.prompt, ns)
        if unfilled:
            raise magic_args.unfilled_error(unfilled)
        images = [x for spec in args.images for x in magic_args.resolve_image(spec, ns)]
        mask = _single_mask(args.mask, ns)
        edit = {"images": images, "mask": mask} if args.images else {}
        request = api.build(prompt, cfg, **args.params(), **edit)
        if request.mask is not None:  # as ig.edit: the outside of the mask is kept
            request = keep.prepare(request)
        plan = (
            magic_args.save_plan(args.save, request.n, request.output_format) if args.save else None
        )
        if args.estimate:
            shown = api.DEFAULT_PARTIAL_IMAGES if args.stream else 0
            estimate = api.plan([request], cfg, fresh=args.fresh, partials=shown)
            print(_estimate_line(estimate, cfg) + plan_notes.suffix([request], partials=shown))
            return
        partials = progress.PartialPreview(cfg.thumbnail_px) if args.stream else None
        job = api.start(
            [request],
            cfg,
            fresh=args.fresh,
            stream=args.stream,
            on_partial=partials.offer if partials else None,
        )
        try:
            _wait(job, _label(request.prompt), partials)
        except KeyboardInterrupt:
            done = len(job.images())
            print(
                f"imagenb: interrupted; {done} finished image(s) are in the store, so running "
                "the cell again asks only for the rest",
                file=sys.stderr,
            )
            raise
        made: list[GeneratedImage] = list(job.images())
        if request.mask is not None:
            made = keep.finish(request, made, cfg)
        result = ImageSet(made, title=request.prompt)
        failures = [e for e in job.run.errors if e is not None]
        if failures and not result:
            raise failures[0]
        if failures:
            _fail(failures[0], prefix=f"{job.run.failed} image(s) failed: ")
        if args.out:
            ns[args.out] = result
        if partials is None or not partials.replace_with(result):
            _show(result)
        if plan:
            saved = magic_args.save(result, *plan)
            print("saved " + ", ".join(str(p) for p in saved))

    def _storyboard(self, args: magic_args.MagicArgs) -> None:
        from imagenb.api import progress
        from imagenb.storyboards import board as storyboards

        ns: dict[str, Any] = self.shell.user_ns if self.shell is not None else {}
        body, unfilled = magic_args.interpolate(args.prompt, ns)
        if unfilled:
            raise magic_args.unfilled_error(unfilled)
        cfg = _config_for(args.backend)
        board = storyboards.prepare(
            body,
            characters=magic_args.characters(args.characters, args.cast, ns),
            style=args.style,
            layout=args.layout or "2x2",
            chain=args.chain,
            cfg=cfg,
            **args.params(),
        )
        if args.estimate:
            print(_estimate_line(board.plan(fresh=args.fresh), cfg))
            return
        if args.save:
            storyboards.check_target(args.save)
        try:
            board.run(fresh=args.fresh, stream=args.stream)
        except KeyboardInterrupt:
            print(
                "imagenb: interrupted; finished panels are in the store, so running the cell "
                "again asks only for the rest",
                file=sys.stderr,
            )
            raise
        if args.out:
            ns[args.out] = board
        if not progress.in_notebook():  # in a notebook the live view above is the result
            _show(board)
        if args.save:
            print("saved " + ", ".join(str(p) for p in board.save(args.save)))


def register(ipython: Any) -> None:
    """Register the magics on `ipython` (what `%load_ext imagenb` does)."""
    ipython.register_magics(ImagenbMagics(shell=ipython))
    ipython.register_magic_function(_imagechat, "cell", "imagechat")


def _imagechat(line: str, cell: str) -> Any:
    """`%%imagechat`: conversations live in `imagenb.conversations` (imported on first use)."""
    from imagenb.magics.chat import imagechat

    return imagechat(line, cell)


# --- helpers ----------------------------------------------------------------------------------


def _config_for(backend: str | None) -> Config:
    from imagenb.core import backend_names, config

    cfg = config.current()
    if backend is None or backend == cfg.backend:
        return cfg
    known = ("auto", *backend_names.available())
    if backend not in known:
        raise InvalidRequest(f"--backend {backend!r} is unknown; choose one of: {', '.join(known)}")
    return replace(cfg, backend=backend)


def _single_mask(spec: str | None, namespace: dict[str, Any]) -> Any:
    if spec is None:
        return None
    found = magic_args.resolve_image(spec, namespace, role="mask")
    if len(found) != 1:
        raise InvalidRequest(f"--mask {spec!r} names {len(found)} images; give exactly one")
    return found[0]


def _label(prompt: str) -> str:
    text = " ".join(prompt.split())
    return text if len(text) <= 40 else text[:39] + "…"


def _wait(job: Job, label: str, partials: progress.PartialPreview | None) -> None:
    job.wait(label=label, tick=partials.show_latest if partials else None)


def _show(obj: Any) -> None:
    from IPython.display import display

    display(obj)


def _estimate_line(estimate: Any, cfg: Config) -> str:
    from imagenb.engine import session

    parts = [f"estimate: {estimate}", "nothing sent"]
    backend = session.backend_name(cfg)
    if backend in ("preview", "replay"):
        parts.insert(1, f"the {backend} backend charges nothing")
    left = session.budget_left(cfg)
    if left is not None:
        parts.insert(1, f"budget ${left:.4f} left of ${cfg.budget_usd:.2f}")
    return " · ".join(parts)


# --- %imagenb -----------------------------------------------------------------------------------


def _configure(line: str) -> None:
    from imagenb.core import config

    settable = [f.name for f in fields(config.Config) if f.name != "api_key"]
    changes = magic_args.parse_settings(line, settable)
    cfg = config.configure(**changes).public()
    print("imagenb: " + ", ".join(f"{k}={cfg[k]}" for k in changes))


def _status(magics: ImagenbMagics) -> str:
    from imagenb.api import calls as api
    from imagenb.core import config
    from imagenb.engine import session

    cfg = config.current()
    backend = session.backend_name(cfg)
    if cfg.backend == "auto":
        why = "API key set" if cfg.api_key else "no OPENAI_API_KEY set: offline previews"
        backend = f"{backend} (auto: {why})"
    elif backend == "openai" and not cfg.api_key:
        backend += " (no OPENAI_API_KEY set: requests will fail)"
    if cfg.base_url:
        backend += f" at {_without_userinfo(cfg.base_url)}"
    spend = api.spent()
    left = session.budget_left(cfg)
    budget = (
        "none (cap spending with %imagenb budget_usd=5)"
        if left is None
        else f"${cfg.budget_usd:.2f}, ${left:.4f} left this session"
    )
    lines = [
        ("backend", backend),
        ("model", cfg.model),
        ("store", str(session.store_for(cfg).root)),
        ("spent", str(spend)),
        ("budget", budget),
        ("other", f"concurrency={cfg.concurrency}, thumbnail_px={cfg.thumbnail_px}"),
    ]
    changed = [
        f"{name}={getattr(magics, name)!r}"
        for name in _DEFAULT_TRAITS
        if getattr(magics, name) != magics.traits()[name].default_value
    ]
    if changed:
        lines.append(("defaults", "ImagenbMagics." + ", ".join(changed)))
    if spend.preview_usd:
        lines.append(("previews", f"would have cost ${spend.preview_usd:.4f} on a paid backend"))
    return "\n".join(f"{name:<9}{value}" for name, value in lines)


def _without_userinfo(url: str) -> str:
    return re.sub(r"//[^/@]*@", "//", url)


# --- errors -------------------------------------------------------------------------------------


def _fail(exc: BaseException, *, prefix: str = "") -> None:
    """Print `exc` as one line on stderr, with anything that looks like an API key removed."""
    from imagenb.core import config

    text = " ".join(f"{prefix}{exc}{_hint(exc)}".split()) or type(exc).__name__
    print(f"imagenb: {config.redact(text)}", file=sys.stderr)


def _hint(exc: BaseException) -> str:
    """What to do next, where the core's message speaks in Python API terms."""
    from imagenb import errors

    if isinstance(exc, errors.BudgetExceeded):
        return " (or: %imagenb budget_usd=...)"
    if isinstance(exc, errors.BackendError) and exc.status in (401, 403):
        return (
            " — check the OPENAI_API_KEY the kernel was started with (%imagenb shows the backend)"
        )
    advice = errors.hint(exc)
    return f" — {advice}" if advice else ""


__all__ = ["ImagenbMagics", "register"]
