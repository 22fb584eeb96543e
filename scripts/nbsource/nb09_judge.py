"""Cells of notebooks/09_judge_and_rank.ipynb (see scripts/make_notebooks.py)."""

from nbformat.v4 import new_code_cell, new_markdown_cell

NAME = "09_judge_and_rank.ipynb"

CELLS = [
    new_markdown_cell(
        "# Judge, compare, rank and rate\n\n"
        "Prompt design ends with a question: which of these prompts, styles or settings is "
        "best? imagenb answers it three ways, all cached in the store and priced before "
        "anything is sent:\n\n"
        "- **`ig.judge`** asks a vision model (through the Responses API's structured outputs) "
        "for a verdict on each image: per criterion a pass/fail gate, a 0-5 score with "
        "anchors, and a short reason;\n"
        "- **`ig.compare`** and **`ig.rank`** ask which of two images is better, in *both* "
        "orders (a judge tends to prefer whichever comes first; when the orders disagree it "
        "is a tie), and rank a column's values with Bradley-Terry and 95% intervals;\n"
        "- **`ig.rate`** records your own stars, and **`ig.agreement`** tells how far the "
        "judge agrees with you.\n\n"
        "Judges are signals, not ground truth: keep a few images rated by hand to check them. "
        "With no `OPENAI_API_KEY` this notebook runs on the offline **preview** backend, whose "
        "verdicts are made up from the image bytes (and say so), so every step runs for free."
    ),
    new_code_cell("import imagenb as ig\n\nig.configure(budget_usd=5)"),
    new_markdown_cell(
        "## Four styles of one poster, judged as they arrive\n\n"
        "`judge=` on a grid judges every finished image against the rubric: the frame gains "
        "`judge_score` (the mean of the criteria), `judge_passed` (every gate passed) and one "
        "`score_<criterion>` column each; every cell gets a badge whose tooltip holds the "
        "reasons."
    ),
    new_code_cell(
        "RUBRIC = 'a poster for a summer jazz night that reads \"JAZZ\" in large letters'\n"
        "posters = ig.prompt_matrix(\n"
        "    'a poster for a summer jazz night that says \"JAZZ\", {style}, take {take}',\n"
        '    style=["flat vector", "woodcut print", "neon photograph", "watercolour"],\n'
        "    take=[1, 2],\n"
        ")\n"
        'grid = ig.grid(posters, rows="take", cols="style", size="1024x1536", quality="low",\n'
        "               judge=RUBRIC)"
    ),
    new_code_cell(
        'grid.frame[["style", "take", "judge_score", "judge_passed", "score_fidelity",\n'
        '            "score_text", "score_craft"]]'
    ),
    new_markdown_cell(
        "## Verdicts in full\n\n"
        "`ig.judge(images, rubric)` gives one row per image and criterion. The verdicts the "
        "grid asked for are in the store, so this sends nothing and costs nothing (`cached`). "
        "`criteria=` names your own criteria, or gives each a meaning: "
        '`{"legibility": "the word reads at a glance"}`.'
    ),
    new_code_cell(
        "judged = ig.judge(grid, RUBRIC)\n"
        'judged[["key", "criterion", "score", "passed", "reason", "judge_model", "cost_usd",\n'
        '        "cached"]].head(6)'
    ),
    new_markdown_cell(
        "## Which of two is better?\n\n"
        "`ig.compare(a, b, rubric)` asks twice, once in each order, and shows what the judge "
        "said each time."
    ),
    new_code_cell(
        'first, second = grid.frame["image"][0], grid.frame["image"][1]\n'
        "ig.compare(first, second, RUBRIC)"
    ),
    new_markdown_cell(
        "## Rank the styles\n\n"
        "`ig.rank(grid, by=column, rubric=...)` compares images of different styles pairwise "
        "(every pair for a small grid, a few random opponents each for a large one), each "
        "pair in both orders, and fits Bradley-Terry ratings on the 400-point Elo scale "
        "(mean 1000: 200 points apart means about 3 to 1 odds) with bootstrap 95% intervals. "
        "Intervals that overlap mean the judge cannot tell those styles apart yet: add takes. "
        "The chart is a static picture, so it stays in the saved notebook."
    ),
    new_code_cell('ranking = ig.rank(grid, by="style", rubric=RUBRIC)\nranking'),
    new_markdown_cell(
        "`flip_rate` is how often the two orders of a pair disagreed: a high one means the "
        "judge's position bias is doing the choosing."
    ),
    new_code_cell("ranking.attrs"),
    new_markdown_cell(
        "## Your own stars\n\n"
        "`ig.rate(image, stars)` stores 1 to 5 stars with the image (they outlive the "
        "kernel); `ig.ratings()` lists them."
    ),
    new_code_cell(
        "my_stars = [5, 4, 2, 3, 1, 2, 4, 5]\n"
        'for image, stars in zip(grid.frame["image"], my_stars):\n'
        "    ig.rate(image, stars)\n"
        'ig.ratings()[["stars", "prompt"]]'
    ),
    new_markdown_cell(
        "## Judge and people\n\n"
        "`ig.agreement(judged)` compares the judge's mean score (put on the star scale) with "
        "your stars: Spearman's rank correlation, the share within one star, and the images "
        "you disagree on. Where a prompt quotes text, OCR reads it too and sits beside the "
        "judge's `text` verdict: the OpenAI cookbook found that the two often disagree."
    ),
    new_code_cell("agreement = ig.agreement(judged)\nagreement"),
    new_code_cell(
        'agreement.frame[["key", "stars", "judge_stars", "judge_text_pass", "ocr_text",\n'
        '                 "ocr_pass"]]'
    ),
    new_code_cell("ig.spent()"),
]
