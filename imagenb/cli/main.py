"""The `imagenb` command: thin glue over the Python API (argparse in, one clear line out).

Every user error, before or after sending, ends as one `imagenb: ...` line on stderr and a
non-zero exit; what can be checked before paying (output names, formats, existing files,
unreadable inputs) is checked before anything is sent.
"""

from __future__ import annotations

import argparse
import sys
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from imagenb import __version__
from imagenb.cli import checks as cli_checks
from imagenb.cli import store as store_cli
from imagenb.core import options, plan_notes
from imagenb.errors import ImagenbError, InvalidRequest

EXAMPLES = """examples:
  imagenb generate "a red fox in snow" -q low -o fox.png
  imagenb generate "a lighthouse" -n 4 -o out/lighthouse-{i}.webp
  imagenb generate "a lighthouse" -q high --estimate
  imagenb grid prompts.csv --cols quality -o sheet.html
  imagenb grid axes.csv --template "a {animal} in {style} style" -o sheet.png
  imagenb batch list
  imagenb store info

Without OPENAI_API_KEY the preview backend makes free, marked placeholder images."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (usage is one `--help` away) and no prefix matching, so
    `--prompt` is never taken for `--prompt-col`."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"imagenb: {message} (see: {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="imagenb",
        description=__doc__.split("\n\n")[0],
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"imagenb {__version__}")
    sub = parser.add_subparsers(dest="command")

    gen = sub.add_parser("generate", help="generate images from a prompt")
    gen.add_argument("prompt")
    options.add_to(gen)
    gen.add_argument(
        "-o",
        "--output",
        help="file to write (.png, .jpg or .webp: the suffix decides the format); with n > 1 "
        "a pattern such as out/{i}.png",
    )
    gen.add_argument("--overwrite", action="store_true", help="replace existing files")

    grid = sub.add_parser("grid", help="a labelled grid of images, one per CSV row")
    grid.add_argument("csv", help="a CSV file with a prompt column (and parameter columns)")
    grid.add_argument("--prompt-col", default="prompt", help="the prompt column (default: prompt)")
    grid.add_argument(
        "--template",
        help="make the prompts from this template, such as 'a {animal} in {style}': the CSV "
        "then holds one column of values per axis, and the grid has every combination",
    )
    grid.add_argument("--rows", help="column whose values label the rows")
    grid.add_argument("--cols", help="column whose values label the columns")
    grid.add_argument("--caption", help="column (or {template}) written under each image")
    grid.add_argument(
        "--batch", action="store_true", help="use the Batch API: half price, within 24 h"
    )
    grid.add_argument("--judge", metavar="RUBRIC", help="judge each image against RUBRIC")
    options.add_to(grid)
    grid.add_argument("-o", "--output", help="sheet.png, .jpg, .html or .pdf")
    grid.add_argument("--overwrite", action="store_true", help="replace an existing sheet")

    batch = sub.add_parser("batch", help="Batch API jobs: list, check, collect, cancel")
    batch_sub = batch.add_subparsers(dest="action", required=True)
    batch_sub.add_parser("list", help="the batch jobs recorded in the store, newest first")
    for name, text in (
        ("status", "ask the service where a job stands"),
        ("collect", "wait for a job to finish and store its images"),
        ("cancel", "cancel a job's unfinished batches (what they made is still collected)"),
        ("resubmit", "collect a job, then send again what expired or was cancelled"),
    ):
        action = batch_sub.add_parser(name, help=text)
        action.add_argument("id", help="a job id (bj_...), a unique prefix of one, or a batch id")

    store_cli.add_parser(sub)

    fake = sub.add_parser("fake-server", help="run the loopback fake OpenAI Images API")
    fake.add_argument("--port", type=int, default=0)
    fake.add_argument("--latency", type=float, default=0.0, help="seconds per image request")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # --help, --version, or a one-line usage error
        return done.code if isinstance(done.code, int) else 2
    if args.command is None:
        parser.print_help()
        return 0
    try:
        if args.command == "generate":
            return _generate(args)
        if args.command == "grid":
            return _grid(args)
        if args.command == "batch":
            return _batch(args)
        if args.command == "store":
            return store_cli.run(args)
        return _fake_server(args)
    except (ImagenbError, OSError, zipfile.BadZipFile, UnicodeError) as exc:
        _fail(exc)
        return 2
    except KeyboardInterrupt:
        print("imagenb: interrupted; finished images are in the store", file=sys.stderr)
        return 130


def _fail(exc: BaseException) -> None:
    """One redacted line: the message, or for an OS error the file and what went wrong."""
    from imagenb.core.config import redact

    if isinstance(exc, OSError) and exc.strerror:
        where = f"{exc.filename}: " if exc.filename else ""
        text = f"{where}{exc.strerror}"
    else:
        text = str(exc) or type(exc).__name__
    print(f"imagenb: {redact(' '.join(text.split()))}", file=sys.stderr)


def _generate(args: argparse.Namespace) -> int:
    from imagenb.api import calls as api
    from imagenb.core import config

    if args.backend:
        config.configure(backend=args.backend)
    params = options.request_params(args)
    if args.estimate:
        cfg = config.current()
        request = api.build(args.prompt, cfg, **params)
        partials = api.DEFAULT_PARTIAL_IMAGES if args.stream else 0
        plan = api.plan([request], cfg, fresh=args.fresh, partials=partials)
        print(f"{plan}{plan_notes.suffix([request], partials=partials)}")
        return 0
    if not args.output:
        raise InvalidRequest("say where to write the image with -o FILE (or use --estimate)")
    count = api.build(args.prompt, config.current(), **params).n  # a valid n before naming files
    targets, params["output_format"] = cli_checks.image_targets(
        args.output,
        count,
        output_format=params.get("output_format"),
        overwrite=args.overwrite,
    )
    images = api.generate(args.prompt, fresh=args.fresh, stream=args.stream, **params)
    for image, path in zip(images, targets, strict=False):
        try:
            target = image.save(path, overwrite=args.overwrite)
        except OSError as exc:  # checked before sending, yet the disk can still fill up
            raise ImagenbError(
                f"{path}: {exc.strerror or exc}; the images are in the store, so running the "
                "same command again (with another -o) costs nothing"
            ) from None
        note = "cached" if image.cached else f"${image.cost_usd or 0:.4f}"
        print(f"{target}  {image.width}x{image.height}  {note}  [{image.backend}]")
    return 0


def _grid(args: argparse.Namespace) -> int:
    from imagenb.core import config
    from imagenb.grids import grid as grids

    mode = "batch" if args.batch else "live"
    sheet = None
    if not args.estimate:
        if not args.output:
            raise InvalidRequest("say where to write the sheet with -o FILE (or use --estimate)")
        sheet = cli_checks.sheet_target(args.output, overwrite=args.overwrite)
    if args.backend:
        config.configure(backend=args.backend)
    table = _grid_input(args)
    params = options.request_params(args)
    if sheet is None:
        plan = grids.estimate(
            table.frame, prompt=table.prompt, fresh=args.fresh, mode=mode, **params
        )
        requests = grids.requests_for(table.frame, prompt=table.prompt, **params)
        print(f"{plan}{plan_notes.suffix(requests)}")
        return 0
    result = grids.grid(
        table.frame,
        prompt=table.prompt,
        rows=table.rows,
        cols=table.cols,
        caption=args.caption,
        mode=mode,
        fresh=args.fresh,
        stream=args.stream,
        judge=args.judge,
        **params,
    )
    for path in result.save(sheet):
        print(path)
    if args.judge:
        print(result.frame[["prompt", "judge_score", "judge_passed"]].to_string())
    failed = result.counts()["error"]
    if failed:
        print(f"imagenb: {failed} cell(s) failed; their errors are in the sheet", file=sys.stderr)
    return 1 if failed else 0


@dataclass(frozen=True)
class _GridInput:
    frame: Any
    prompt: str
    rows: str | None
    cols: str | None


def _grid_input(args: argparse.Namespace) -> _GridInput:
    """The CSV's rows; or with `--template`, every combination of the CSV's columns of axis
    values (empty cells ignored), rows and cols defaulting to the first two axes."""
    from imagenb.core import frames

    table = frames.read_csv(cli_checks.readable_csv(args.csv))
    if args.template is None:
        return _GridInput(table, args.prompt_col, args.rows, args.cols)
    axes = {
        str(name): [v for v in dict.fromkeys(table[name]) if isinstance(v, str) and v.strip()]
        for name in table.columns
    }
    names = list(axes)
    rows = args.rows or (names[0] if len(names) > 1 else None)
    cols = args.cols or (names[1] if len(names) > 1 else names[0])
    return _GridInput(frames.prompt_matrix(args.template, **axes), "prompt", rows, cols)


def _batch(args: argparse.Namespace) -> int:
    from imagenb.batch import jobs as batch
    from imagenb.core import config

    cfg = config.current()
    if args.action == "list":
        jobs = batch.jobs(cfg)
        for record in jobs:
            print(batch.describe(record))
        if not jobs:
            print("no batch jobs in this store")
        return 0
    if args.action == "status":
        record = batch.status(args.id, cfg)
        print(batch.describe(record))
        for part in record.parts:
            done = part.total if part.collected else part.completed + part.failed
            note = f"  {part.error}" if part.error else ""
            print(
                f"  {part.batch_id or '(no batch)'}  {part.status}"
                f"{' (collected)' if part.collected else ''}  {done}/{part.total} processed, "
                f"{part.failed} failed{note}"
            )
        return 0
    job = batch.resume(args.id, cfg)
    label = f"batch {job.ids[0]}"
    if args.action == "cancel":
        job.cancel()
        print(
            f"{label}: cancel requested; `imagenb batch collect {job.ids[0]}` stores what it made"
        )
        return 0
    run = job.wait(label=label)
    if args.action == "resubmit":
        sent = job.resubmit_missing()
        print(f"{label}: {sent} request(s) sent again")
        run = job.wait(label=label)
    stored = run.done + run.cached
    print(f"{label}: {stored} image(s) in the store, ${run.usd:.4f} at the batch price")
    if run.failed:
        reasons = list(dict.fromkeys(str(e) for e in run.errors if e is not None))
        print(f"imagenb: {run.failed} failed: {'; '.join(reasons[:3])}", file=sys.stderr)
    return 1 if run.failed else 0


def _fake_server(args: argparse.Namespace) -> int:
    from imagenb.testing.server import main as serve

    serve(port=args.port, latency=args.latency)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
