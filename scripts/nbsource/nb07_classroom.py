"""Cells of notebooks/07_classroom.ipynb (see scripts/make_notebooks.py)."""

from nbformat.v4 import new_code_cell, new_markdown_cell

NAME = "07_classroom.ipynb"

CELLS = [
    new_markdown_cell(
        "# imagenb in the classroom\n\n"
        "A class needs three things from an image tool: students who can run every cell "
        "without an API key, a teacher who pays once for the images everybody looks at, and "
        "a cap on what any one student can spend.\n\n"
        "imagenb gives you all three: the teacher runs the notebook once with a key and "
        "exports the store; students open it on the **replay** backend, which answers only "
        "from that store (free, identical images for everyone); students who do get a key "
        "get a **budget**, a hard cap checked before anything is sent.\n\n"
        "Below, the teacher's run uses the preview backend so this notebook runs anywhere."
    ),
    new_code_cell(
        "import tempfile\nfrom pathlib import Path\n\nimport imagenb as ig\n\n"
        'work = Path(tempfile.mkdtemp(prefix="imagenb-class-"))\n'
        'teacher_store, student_store = work / "teacher", work / "student"'
    ),
    new_markdown_cell(
        "## 1. The teacher prepares the lesson\n\nRun the lesson's cells once (with a real key "
        "in the environment, this is where the class's images are paid for), then export the "
        "store to one file to hand out."
    ),
    new_code_cell(
        "ig.configure(store=str(teacher_store))\n"
        'lesson = ig.prompt_matrix("a {animal} drawn as a {style}", animal=["cat", "heron"], '
        'style=["woodcut", "children\'s book illustration"])\n'
        'ig.grid(lesson, rows="animal", cols="style", size="square", quality="low");\n'
        'exported = work / "lesson-store.zip"\n'
        "ig.current_store().export(exported)\n"
        'print(f"{exported.name}: {exported.stat().st_size // 1024} KB")'
    ),
    new_markdown_cell(
        "## 2. A student runs the same notebook with no key\n\nThe student imports the file "
        "(or the class points `IMAGENB_STORE` at a shared folder) and uses the replay backend:"
    ),
    new_code_cell(
        'ig.configure(store=str(student_store), backend="replay")\n'
        'print(ig.current_store().import_(exported), "images imported")\n'
        'grid = ig.grid(lesson, rows="animal", cols="style", size="square", quality="low")\n'
        'grid.frame[["animal", "style", "status", "cost_usd"]]'
    ),
    new_markdown_cell(
        "Everything came from the store: status `cached`, cost 0. A prompt the teacher did not "
        "run is refused plainly instead of silently costing money:"
    ),
    new_code_cell(
        "try:\n"
        '    ig.generate("a heron drawn as a woodcut, at night", size="square", quality="low")\n'
        "except ig.errors.NotInStore as err:\n"
        "    print(err)"
    ),
    new_markdown_cell(
        "## 3. Per-student budgets\n\nA student with their own key gets a budget. It is a hard "
        "cap: a request whose estimate exceeds what is left raises `BudgetExceeded` before "
        "anything is sent. (On the preview backend the check is the same; only the money is "
        "pretend.)"
    ),
    new_code_cell(
        'ig.configure(backend="auto", budget_usd=0.25)\n'
        'print(ig.estimate("a poster of the water cycle", size="4k", quality="high"))\n'
        "try:\n"
        '    ig.generate("a poster of the water cycle", size="4k", quality="high")\n'
        "except ig.errors.BudgetExceeded as err:\n"
        "    print(err)"
    ),
    new_markdown_cell("Cheaper settings fit:"),
    new_code_cell(
        'poster = ig.generate("a poster of the water cycle", size="landscape", quality="low")\n'
        "poster"
    ),
    new_markdown_cell(
        "## Keys stay out of notebooks\n\nSet `OPENAI_API_KEY` in the environment before "
        "starting Jupyter (a class's JupyterHub can inject it), never in a cell: a key typed "
        "into a cell is saved with the notebook. imagenb never prints, stores or displays it; "
        "its configuration shows only whether one is set:"
    ),
    new_code_cell(
        'key = ig.configure(budget_usd=None).public()["api_key"]\n'
        'print("API key:", key or "not set (the preview backend runs, free)")'
    ),
]
