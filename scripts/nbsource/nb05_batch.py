"""Cells of notebooks/05_batch.ipynb (see scripts/make_notebooks.py)."""

from nbformat.v4 import new_code_cell, new_markdown_cell

NAME = "05_batch.ipynb"

CELLS = [
    new_markdown_cell(
        "# Batch mode: big grids at half the price\n\n"
        "A live grid is for one sitting at the notebook. When a grid grows to thousands of "
        "prompts, or whenever you can wait for the 50% discount, send it through OpenAI's "
        "**Batch API**: the requests run on OpenAI's side within 24 hours, in a separate "
        "rate-limit pool, at half the token price.\n\n"
        "imagenb makes that as easy as a live grid, and safe: the job is recorded in the store "
        "before anything is uploaded, so re-running the cell after a kernel restart picks the "
        "job up again instead of paying twice.\n\n"
        "The preview backend has no batches, so without a key this notebook starts imagenb's "
        "own loopback `FakeImagesServer`, which speaks the Files and Batches API. With a real "
        "key in the environment it uses OpenAI."
    ),
    new_code_cell(
        "import os\n\nimport imagenb as ig\n\n"
        'if not os.environ.get("OPENAI_API_KEY"):\n'
        "    from imagenb.testing import FakeImagesServer\n\n"
        "    server = FakeImagesServer(batch_delay=1.0).start()\n"
        '    ig.configure(backend="openai", api_key="sk-fake-notebook", '
        "base_url=server.base_url)\n"
        'ig.configure().public()["backend"]'
    ),
    new_markdown_cell(
        "## The price, before and after\n\nThe same rows estimated live and in batch mode:"
    ),
    new_code_cell(
        "frame = ig.prompt_matrix(\n"
        '    "a {fruit} on a {surface}, studio photograph",\n'
        '    fruit=["pear", "fig", "lemon", "plum"],\n'
        '    surface=["marble slab", "linen cloth", "slate tile"],\n'
        ")\n"
        'print("live: ", ig.estimate(frame, size="square", quality="medium"))\n'
        'print("batch:", ig.estimate(frame, size="square", quality="medium", batch=True))'
    ),
    new_markdown_cell(
        '## Submit, then wait\n\n`mode="batch"` returns as soon as the batch is created; the '
        "grid fills in as results are collected. `wait()` polls with backoff; Ctrl-C (or the "
        "interrupt button) only stops watching."
    ),
    new_code_cell(
        'grid = ig.grid(frame, rows="fruit", cols="surface", size="square", quality="medium", '
        'mode="batch", wait=False)\n'
        "grid.wait();"
    ),
    new_code_cell('grid.frame[["fruit", "surface", "status", "cost_usd"]].head()'),
    new_markdown_cell(
        "Every image was billed at the batch price: `cost_usd` is half what the same image "
        "costs live. The job is in the store's record of batches:"
    ),
    new_code_cell(
        "from imagenb.batch import jobs as batch\n\n"
        "for job in batch.jobs():\n    print(batch.describe(job))"
    ),
    new_markdown_cell(
        "## Run it again\n\nThe images are in the store now, so the same grid is free, live or "
        "batch. The same command-line tools work from a terminal: `imagenb batch list`, "
        "`imagenb batch status ID`, `imagenb batch collect ID`."
    ),
    new_code_cell(
        'again = ig.grid(frame, rows="fruit", cols="surface", size="square", quality="medium", '
        'mode="batch")\n'
        'again.frame["status"].value_counts()'
    ),
    new_code_cell('if "server" in globals():\n    server.stop()'),
]
