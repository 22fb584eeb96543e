"""The main job: execute the quickstart notebook headless on the default backend and keep
what it made (the executed notebook, signed as trusted for this user, the images, an HTML
page) in an output folder."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbformat.sign import NotebookNotary

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="out", help="folder for the results")
    parser.add_argument("--notebook", default="notebooks/01_quickstart.ipynb")
    parser.add_argument(
        "--store", help="the image store to use (default: OUT/store, not your own store)"
    )
    args = parser.parse_args()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    # The demo keeps to itself: its images and spend stay out of the user's store.
    os.environ["IMAGENB_STORE"] = str(Path(args.store).resolve() if args.store else out / "store")
    source = ROOT / args.notebook
    nb = nbformat.read(source, as_version=4)
    started = time.monotonic()
    NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(out)}}
    ).execute()
    target = out / source.name
    # Signed with this user's Jupyter key, as JupyterLab signs a notebook its owner ran and
    # saved: opened here, it is trusted (its widgets' saved state shows).
    NotebookNotary().sign(nb)
    nbformat.write(nb, target)
    store = Path(os.environ["IMAGENB_STORE"])
    made = sorted(
        p.relative_to(out) for p in out.rglob("*") if p.is_file() and not p.is_relative_to(store)
    )
    print(f"executed {source.name} in {time.monotonic() - started:.1f}s; wrote to {out}:")
    for path in made:
        print(f"  {path}  ({(out / path).stat().st_size // 1024} KB)")
    print(f"  (its image store: {store})")


if __name__ == "__main__":
    main()
