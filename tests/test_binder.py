"""Issue 8: the Binder environment, built from binder/ alone in a fresh virtualenv, runs the
quickstart with no key (the preview backend answers)."""

from __future__ import annotations

import os
import subprocess
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RUN = """
import sys, nbformat
from nbclient import NotebookClient
nb = nbformat.read(sys.argv[1], as_version=4)
where = {"metadata": {"path": sys.argv[2]}}
NotebookClient(nb, timeout=300, kernel_name="python3", resources=where).execute()
kinds = {o.get("output_type") for c in nb.cells for o in c.get("outputs", [])}
assert "error" not in kinds, kinds
print("quickstart ran")
"""


@pytest.mark.slow
def test_binder_requirements_build_an_environment_that_runs_the_quickstart(tmp_path):
    env_dir = tmp_path / "binder-env"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [python, "-m", "pip", "install", "-q", "-r", "binder/requirements.txt"],
        cwd=ROOT,
        check=True,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "IMAGENB_"))}
    env["IMAGENB_STORE"] = str(tmp_path / "store")
    env.pop("PYTHONPATH", None)  # only what binder/ installed
    out = subprocess.run(
        [python, "-c", RUN, ROOT / "notebooks" / "01_quickstart.ipynb", tmp_path],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "quickstart ran" in out.stdout
    assert (tmp_path / "quickstart-output" / "contact-sheet.png").is_file()
