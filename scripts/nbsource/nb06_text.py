"""Cells of notebooks/06_text.ipynb (see scripts/make_notebooks.py)."""

from nbformat.v4 import new_code_cell, new_markdown_cell

NAME = "06_text.ipynb"

CELLS = [
    new_markdown_cell(
        "# Text in images: does it read right?\n\n"
        "gpt-image-2 can write legible text into images (signage, labels, UI mockups, slides) "
        "in Latin, Japanese, Korean, Chinese, Hindi and Bengali. When you design prompts for "
        "text you need to know, per image and across a grid, whether the words came out "
        "right. imagenb reads the text back with OCR (Tesseract, installed with the project's "
        "system packages) and compares it with what you asked for:\n\n"
        "- both sides are Unicode-normalised (NFKC, case folded, spacing ignored where a script "
        "does not use it);\n"
        "- the **character error rate** (CER) is the number of character edits between the "
        "expected text and the best-matching text in the image, divided by the expected "
        "length;\n"
        "- an image **passes** when its CER is at most 0.1 (about one slip in ten characters; "
        "`max_cer=` changes it).\n\n"
        "With no `OPENAI_API_KEY` this notebook runs on the offline **preview** backend, which "
        "draws the quoted text of each prompt onto a sign, so every step works (and is free)."
    ),
    new_code_cell("import imagenb as ig\n\nig.configure(budget_usd=5)"),
    new_markdown_cell(
        "## One sign, six scripts\n\n"
        "The same shop sign in each script. The `text` column is what each image should say; "
        "the prompt quotes it, which is how to ask any image model for exact text. The script "
        "(and so the OCR language) is detected from the expected text."
    ),
    new_code_cell(
        "import pandas as pd\n\n"
        "signs = pd.DataFrame(\n"
        "    {\n"
        '        "script": ["Latin", "Japanese", "Korean", "Chinese", "Hindi", "Bengali"],\n'
        '        "text": ["GRAND OPENING", "いらっしゃいませ", "영업 중입니다", "欢迎光临本店",\n'
        '                 "नमस्ते दोस्त", "স্বাগতম বন্ধু"],\n'
        "    }\n"
        ")\n"
        'signs["prompt"] = \'a painted wooden shop sign above a door that says "\' + '
        'signs["text"] + \'", photo\'\n'
        "signs"
    ),
    new_markdown_cell(
        '`check_text="text"` names the column of expected text. Every image is read as it '
        "arrives; each cell gets a badge and the results frame gains `ocr_text` (what was read "
        "where the text should be), `cer` and `pass`."
    ),
    new_code_cell(
        'grid = ig.grid(signs, cols="script", check_text="text", size="1536x1024", quality="low")'
    ),
    new_code_cell('grid.frame[["script", "text", "ocr_text", "cer", "pass"]]'),
    new_markdown_cell(
        "## Checking any image\n\n"
        "`ig.check_text(images, expected)` works on generated images, files, bytes or PIL "
        "images, with one expected text for all or one per image. Here the same images are "
        "checked against slightly misspelled text, the kind of slip a model makes: the CER "
        "shows how far off each one is, and all of them fail."
    ),
    new_code_cell(
        'images = grid.frame["image"]\n'
        'misspelled = ["GRNAD OPENIGN", "いらっしやいまぜ", "영엽 중입니디", "欢迎光临木庄",\n'
        '              "नमसते दोसत", "সাগতম বন্দু"]\n'
        'ig.check_text(images, misspelled)[["expected", "ocr_text", "cer", "pass"]]'
    ),
    new_markdown_cell(
        "The language is detected from the letters of the expected text: kana means Japanese, "
        "hangul Korean, other ideographs Chinese. Japanese written only in kanji (営業中) "
        'would be read as Chinese, so say so with `lang="ja"` (or `"jpn"`).'
    ),
    new_markdown_cell(
        "## Best of k\n\n"
        "`ig.generate(..., best_of=3)` makes three candidates as three separate calls (the "
        "cost of all three is shown before anything is sent), reads each one, and returns "
        "them best first with their scores: a self-check that works with any backend. "
        "Without `check_text=` it checks the quoted text of the prompt."
    ),
    new_code_cell(
        "menu = ig.generate(\n"
        '    \'a café chalkboard menu that says "Coffee 3" and "Tea 2", hand lettering\',\n'
        '    best_of=3, size="1024x1024", quality="low",\n'
        ")\n"
        "menu"
    ),
    new_code_cell(
        "for image in menu:\n"
        "    check = image.text_check\n"
        '    print(f"variant {image.variant}: {check.badge()}, read {check.text!r}")'
    ),
    new_markdown_cell(
        "## Share the scores\n\nThe contact sheet carries each image's score under it:"
    ),
    new_code_cell(
        "from pathlib import Path\n\n"
        'out = Path("text-output")\n'
        "out.mkdir(exist_ok=True)\n"
        'grid.save(out / "signs.png")\n'
        "print(ig.spent())"
    ),
]
