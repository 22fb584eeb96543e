"""The `imagenb` command: thin glue over the Python API (argparse in, one clear line out)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from . import options
from .errors import ImagenbError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="imagenb", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="generate images from a prompt")
    gen.add_argument("prompt")
    options.add_to(gen)
    gen.add_argument(
        "-o",
        "--output",
        required=True,
        help="file to write; with n > 1 use a pattern such as out/{i}.png",
    )
    gen.add_argument("--overwrite", action="store_true", help="replace existing files")

    grid = sub.add_parser("grid", help="a labelled grid of images, one per CSV row")
    grid.add_argument("csv", help="a CSV file with a prompt column (and parameter columns)")
    grid.add_argument("--prompt-col", default="prompt", help="the prompt column (default: prompt)")
    grid.add_argument("--rows", help="column whose values label the rows")
    grid.add_argument("--cols", help="column whose values label the columns")
    grid.add_argument("--caption", help="column (or {template}) written under each image")
    grid.add_argument(
        "--batch", action="store_true", help="use the Batch API: half price, within 24 h"
    )
    grid.add_argument("--judge", metavar="RUBRIC", help="judge each image against RUBRIC")
    options.add_to(grid)
    grid.add_argument("-o", "--output", required=True, help="sheet.png, .jpg, .html or .pdf")

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

    store = sub.add_parser("store", help="inspect, check, export or import the image store")
    store_sub = store.add_subparsers(dest="action", required=True)
    store_sub.add_parser("info", help="where the store is, what it holds and cost")
    check = store_sub.add_parser("check", help="verify every file against the index")
    check.add_argument("--repair", action="store_true", help="drop broken rows and leftovers")
    export = store_sub.add_parser("export", help="write the store to a file")
    export.add_argument("file")
    imp = store_sub.add_parser("import", help="merge an exported file into the store")
    imp.add_argument("file")

    fake = sub.add_parser("fake-server", help="run the loopback fake OpenAI Images API")
    fake.add_argument("--port", type=int, default=0)
    fake.add_argument("--latency", type=float, default=0.0, help="seconds per image request")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "generate":
            return _generate(args)
        if args.command == "grid":
            return _grid(args)
        if args.command == "batch":
            return _batch(args)
        if args.command == "store":
            return _store(args)
        return _fake_server(args)
    except ImagenbError as exc:
        print(f"imagenb: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("imagenb: interrupted; finished images are in the store", file=sys.stderr)
        return 130


def _generate(args: argparse.Namespace) -> int:
    from . import api, config

    if args.backend:
        config.configure(backend=args.backend)
    params = options.request_params(args)
    if args.estimate:
        print(api.estimate(args.prompt, **params))
        return 0
    images = api.generate(args.prompt, fresh=args.fresh, stream=args.stream, **params)
    pattern = args.output
    if len(images) > 1 and "{i}" not in pattern:
        path = Path(pattern)
        pattern = str(path.with_name(f"{path.stem}-{{i}}{path.suffix}"))
    for i, image in enumerate(images):
        target = image.save(pattern.format(i=i), overwrite=args.overwrite)
        note = "cached" if image.cached else f"${image.cost_usd or 0:.4f}"
        print(f"{target}  {image.width}x{image.height}  {note}  [{image.backend}]")
    return 0


def _grid(args: argparse.Namespace) -> int:
    from . import config, frames, grids
    from .errors import InvalidRequest

    mode = "batch" if args.batch else "live"
    if Path(args.output).suffix.lower() not in grids.SAVE_SUFFIXES:
        raise InvalidRequest(f"-o {args.output}: use a .png, .jpg, .html or .pdf file name")
    if args.backend:
        config.configure(backend=args.backend)
    frame = frames.read_csv(args.csv)
    params = options.request_params(args)
    if args.estimate:
        print(grids.estimate(frame, prompt=args.prompt_col, fresh=args.fresh, mode=mode, **params))
        return 0
    result = grids.grid(
        frame,
        prompt=args.prompt_col,
        rows=args.rows,
        cols=args.cols,
        caption=args.caption,
        mode=mode,
        fresh=args.fresh,
        stream=args.stream,
        judge=args.judge,
        **params,
    )
    for path in result.save(args.output):
        print(path)
    if args.judge:
        print(result.frame[["prompt", "judge_score", "judge_passed"]].to_string())
    failed = result.counts()["error"]
    if failed:
        print(f"imagenb: {failed} cell(s) failed; their errors are in the sheet", file=sys.stderr)
    return 1 if failed else 0


def _batch(args: argparse.Namespace) -> int:
    from . import batch, config

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


def _store(args: argparse.Namespace) -> int:
    from . import config, session

    store = session.store_for(config.current())
    if args.action == "info":
        print(json.dumps(store.info(), indent=2, default=str))
    elif args.action == "check":
        report = store.check(repair=args.repair)
        print(report)
        return 0 if report.ok or args.repair else 1
    elif args.action == "export":
        store.export(Path(args.file))
        print(f"exported to {args.file}")
    else:
        print(f"imported {store.import_(Path(args.file))} image(s)")
    return 0


def _fake_server(args: argparse.Namespace) -> int:
    from .testing.fake_server import main as serve

    serve(port=args.port, latency=args.latency)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
