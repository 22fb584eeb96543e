"""Cells of notebooks/08_conversations.ipynb (see scripts/make_notebooks.py)."""

from nbformat.v4 import new_code_cell, new_markdown_cell

NAME = "08_conversations.ipynb"

SIGN = "いらっしゃいませ"

CELLS = [
    new_markdown_cell(
        "# Conversations: refine an image turn by turn\n\n"
        'ChatGPT\'s image model "thinks before it draws": it plans, looks things up, and is '
        'refined in conversation ("make the title bigger"). In the API that is the '
        "**Responses API** with the `image_generation` tool, driven by a *mainline* model. "
        "`ig.chat` gives you that in a notebook, with what the rest of imagenb gives you: the "
        "cost before every turn, the budget, every turn stored (re-running this notebook "
        "costs nothing), and the model's words always shown as text.\n\n"
        "With no `OPENAI_API_KEY` it runs on the offline **preview** backend: every step works, "
        "for free, with images marked PREVIEW."
    ),
    new_code_cell("import imagenb as ig\n\nig.configure(budget_usd=5)"),
    new_markdown_cell(
        "## A poster in three turns\n\n"
        "Each `say` continues from the last turn: the service keeps the conversation "
        "(`previous_response_id`) and imagenb forces the image tool, so a refine turn always "
        "draws. Under each image: the **revised prompt** the mainline wrote for the image "
        "model, and the cost of the turn (mainline tokens plus image tokens)."
    ),
    new_code_cell(
        'poster = ig.chat(size="1536x1024", quality="low")\n'
        "t1 = poster.say('a travel poster for Kyoto with the title \"KYOTO\"')\n"
        "t1"
    ),
    new_code_cell('t2 = poster.say("make the title twice as big")\nt2'),
    new_code_cell('t3 = poster.say("switch to an autumn palette, keep the layout")\nt3'),
    new_markdown_cell(
        "## A branch\n\n"
        "`Turn.say` branches from any earlier turn; `Chat.tree()` shows the branches side by "
        "side (static HTML: it reads the same on GitHub), and `Chat.frame` has one row per turn."
    ),
    new_code_cell('woodcut = t1.say("as a woodcut print")\nposter.tree()'),
    new_code_cell("poster.frame"),
    new_markdown_cell(
        "## Thinking on and off\n\n"
        '`thinking="high"` sets the mainline\'s reasoning effort; its summary is shown '
        "(collapsed, under *reasoning*). Thinking costs output tokens: compare."
    ),
    new_code_cell(
        "import pandas as pd\n"
        "from IPython.display import HTML\n\n"
        "menu = 'a chalk menu board that says \"SOUP OF THE DAY\"'\n"
        'plain = ig.chat(size="1024x1024", quality="low").say(menu)\n'
        'planned = ig.chat(size="1024x1024", quality="low", thinking="high").say(menu)\n'
        "display(HTML(plain._repr_html_() + planned._repr_html_()))\n"
        "pd.DataFrame(\n"
        '    [{"thinking": name, "cost_usd": t.cost_usd, "summary": (t.reasoning or "")[:80]}\n'
        '     for name, t in [("off", plain), ("high", planned)]]\n'
        ")"
    ),
    new_markdown_cell(
        "## A sign in Japanese that checks itself\n\n"
        '`check_text="..."` reads the text of the image back (OCR) and, while it is wrong, '
        "asks the model to fix only the text (at most `fixes=2` more turns). Each attempt is "
        "shown with its reading and its cost."
    ),
    new_code_cell(
        f'sign = ig.chat(size="1024x1024", quality="low").say(\n'
        f'    \'a wooden shop sign that says "{SIGN}"\', check_text="{SIGN}"\n'
        ")\n"
        "sign"
    ),
    new_markdown_cell(
        "## From a cell magic\n\n"
        "`%%imagechat -c NAME` sends the cell as the next message of conversation NAME (also a "
        "variable); `--from N` branches from turn N, `--thinking` and `--web` work as above."
    ),
    new_code_cell('%load_ext imagenb\ncafe_name = "Blue Heron"'),
    new_code_cell(
        '%%imagechat -c cafe -s 1024x1024 -q low\na round logo for a café called "{cafe_name}"'
    ),
    new_code_cell("%%imagechat -c cafe\nuse only two colours"),
    new_code_cell("ig.spent()"),
]
