"""`imagenb store ...`: look at, check, repair, export and import the image store.

Every action answers in plain lines and never with a traceback: a store that cannot be
opened is itself what `check` reports. Exit status: 0 fine, 1 problems found, 2 refused.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from imagenb.errors import ImagenbError


def add_parser(sub: Any) -> None:
    """Add the `store` command and its actions to the CLI's subparsers."""
    store = sub.add_parser("store", help="inspect, check, repair, export or import the store")
    actions = store.add_subparsers(dest="action", required=True)
    info = actions.add_parser("info", help="where the store is, what it holds and cost")
    info.add_argument("--json", action="store_true", help="machine-readable output")
    check = actions.add_parser("check", help="verify every file against the index")
    check.add_argument("--repair", action="store_true", help="the same as `store repair`")
    actions.add_parser(
        "repair", help="rebuild the index from the images' own records; say what was lost"
    )
    export = actions.add_parser("export", help="write the store to a file")
    export.add_argument("file")
    imp = actions.add_parser("import", help="merge an exported file into the store")
    imp.add_argument("file")
    imp.add_argument(
        "--trusted",
        action="store_true",
        help="your own archive: its images may answer live requests (default: replay only)",
    )


def run(args: argparse.Namespace) -> int:
    from imagenb.core import config
    from imagenb.store import check as store_check
    from imagenb.store import index as store

    cfg = config.current()
    root = Path(cfg.store).expanduser().absolute() if cfg.store else store.default_root()
    if args.action in ("check", "repair"):
        report = store_check.check(root, repair=args.action == "repair" or args.repair)
        print(report)
        return 0 if report.ok or report.repaired else 1
    from imagenb.engine import session

    try:
        opened = session.store_for(cfg)
    except ImagenbError as exc:
        print(f"imagenb: {exc}", file=sys.stderr)
        return 2
    if args.action == "info":
        facts = opened.info()
        print(json.dumps(facts, indent=2, default=str) if args.json else describe(facts))
    elif args.action == "export":
        print(f"exported {opened.export(Path(args.file))} image(s) to {args.file}")
    else:
        from imagenb.store import archive as store_archive

        result = store_archive.import_(opened, Path(args.file), trusted=args.trusted)
        print(result)
        return 1 if result.refused else 0
    return 0


def describe(facts: dict[str, Any]) -> str:
    """`store info` for people: sizes in KB/MB, dollars to the cent (4 places), no floats."""
    lines = [
        f"store      {facts['root']}",
        f"images     {facts['images']:,} in {facts['files']:,} file(s), "
        f"{_size(facts['bytes'])}",
        f"spent      ${facts['cost_usd']:.4f} real money (previews, test servers and "
        "untrusted imports are free)",
        f"schema     {facts['schema_version']}",
    ]
    for title, key in (("by source", "by_source"), ("by model (every source)", "by_model")):
        rows = facts.get(key) or {}
        if rows:
            lines.append(title)
            lines += [
                f"  {name:<28} {v['images']:>6,} image(s)  ${v['usd']:.4f}"
                for name, v in rows.items()
            ]
    return "\n".join(lines)


def _size(nbytes: int) -> str:
    for unit, scale in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if nbytes >= scale:
            return f"{nbytes / scale:.1f} {unit}"
    return f"{nbytes} bytes"
