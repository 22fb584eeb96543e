"""Issue 11 acceptance: storyboards whose characters stay the same, end to end against the
loopback fake (the real SDK over HTTP) or the preview backend, with a fresh store per test."""

from __future__ import annotations

import hashlib
import io
import re
import time
from pathlib import Path

import pandas as pd
import polars as pl
import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from PIL import Image

import imagenb as ig
from imagenb.errors import BudgetExceeded, InvalidRequest
from imagenb.storyboards import (
    board as storyboards,
)
from imagenb.storyboards import (
    page as storyboard_page,
)
from imagenb.storyboards import (
    script as storyboard_script,
)
from imagenb.testing import Faults

CAST = {
    "Mira": "a ten-year-old girl with a red scarf and curly black hair",
    "Tom": "a tall rusty robot with round blue eyes",
}
PANELS = [
    "Mira finds Tom half buried in a junkyard",
    "Tom wakes up, his eyes glowing",
    "Mira and Tom walk into town",
    "Tom carries Mira home in the rain",
]
EVIL = "<script>alert(1)</script>"
COLON = "\uff1a"  # the full-width colon of Japanese and Chinese dialogue


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def pdf_pages(path: Path) -> int:
    return len(re.findall(rb"/Type\s*/Page\b", path.read_bytes()))


def make(panels: object = PANELS, **kwargs: object) -> storyboards.Storyboard:
    kwargs.setdefault("characters", CAST)
    kwargs.setdefault("quality", "low")
    return ig.storyboard(panels, **kwargs)  # type: ignore[arg-type]


class RecordingView:
    def __init__(self) -> None:
        self.shown: list[str] = []
        self.updates: list[str] = []

    def show(self, text: str, plain: str) -> None:
        assert plain.startswith("Storyboard(")  # a readable text fallback beside the HTML
        self.shown.append(text)

    def update(self, text: str, plain: str) -> None:
        self.updates.append(text)

    def in_current_cell(self) -> bool:
        return False


# --- acceptance ---------------------------------------------------------------------------------


def test_four_panels_two_characters_pages_and_a_rerun_of_one_panel(fake, tmp_path):
    board = make(style="ink and watercolour")
    generations = [e for e in fake.log if e["path"].endswith("/generations")]
    edits = [e for e in fake.log if e["path"].endswith("/edits")]
    assert len(generations) == 2 and len(edits) == 4 and len(fake.log) == 6
    assert all(max(g["t"] for g in generations) < e["t"] for e in edits)  # references first
    mira, tom = (sha(board.references[name][0].path) for name in ("Mira", "Tom"))
    by_panel = {e["prompt"].split("\n")[1]: e for e in edits}
    for panel in PANELS:
        edit = by_panel[panel]
        assert edit["prompt"].startswith("Style: ink and watercolour.")
        if panel == PANELS[1]:  # names Tom only: gets Tom only
            assert edit["image_sha256s"] == [tom] and "image 1 is Tom;" in edit["prompt"]
        else:
            assert edit["image_sha256s"] == [mira, tom]  # in cast order
            assert "image 1 is Mira, image 2 is Tom;" in edit["prompt"]
    assert [g["params"].get("size") for g in generations] == ["1024x1536"] * 2
    assert all(isinstance(p, ig.GeneratedImage) for p in board.panels)
    frame = board.frame
    assert list(frame["status"]) == ["ok"] * 4 and frame["cost_usd"].gt(0).all()
    assert list(frame["panel"]) == PANELS
    assert list(frame["characters"]) == ["Mira, Tom", "Tom", "Mira, Tom", "Mira, Tom"]

    (png,) = board.save(tmp_path / "page.png")
    with Image.open(png) as im:
        w, h = im.size
        assert abs(w - h) < 0.02 * w and w > 2 * storyboard_page.DEFAULT_PANEL_PX
    pdf = tmp_path / "comic.pdf"
    assert board.save(pdf, layout="1x2") == [pdf]  # a strip of two per page: two pages
    assert pdf.read_bytes().startswith(b"%PDF") and pdf_pages(pdf) == 2

    fake.reset()
    changed = [*PANELS[:2], "Mira and Tom fly a kite on a hill", PANELS[3]]
    again = make(changed, style="ink and watercolour")
    assert len(fake.log) == 1
    (entry,) = fake.log
    assert entry["path"].endswith("/edits") and "kite" in entry["prompt"]
    assert entry["image_sha256s"] == [mira, tom]
    assert list(again.frame["status"]) == ["cached", "cached", "ok", "cached"]
    assert again.frame["cost_usd"].iloc[[0, 1, 3]].eq(0).all()


def test_cost_is_shown_first_and_the_budget_covers_both_stages(fake, capsys):
    plan = storyboards.estimate(PANELS, characters=CAST, quality="low")
    assert plan.images == 6 and plan.requests == 6 and plan.cached_images == 0
    ig.configure(budget_usd=plan.usd * 0.9)
    with pytest.raises(BudgetExceeded):
        make()
    assert fake.log == [] and "2 character reference(s) + 4 panel(s)" in capsys.readouterr().out
    ig.configure(budget_usd=plan.usd * 1.1)
    make()
    assert len(fake.log) == 6
    again = storyboards.estimate(PANELS, characters=CAST, quality="low")
    assert again.images == 0 and again.usd == 0 and again.cached_images == 6


def test_estimate_counts_panels_behind_missing_references_with_their_input_size(fake):
    only_panels = storyboards.estimate(PANELS, quality="low")
    with_refs = storyboards.estimate(PANELS, characters=CAST, quality="low")
    refs = ig.estimate(
        [
            storyboard_script.reference_prompt(storyboards.Character(n, d), None)
            for n, d in CAST.items()
        ],
        quality="low",
        size="portrait",
    )
    # Each panel also reads two 1024x1536 references (input image tokens).
    assert with_refs.usd > only_panels.usd + refs.usd
    assert with_refs.input_tokens > only_panels.input_tokens + refs.input_tokens


def test_each_panel_gets_the_references_of_the_characters_it_shows(fake, tmp_path):
    ref = tmp_path / "tom.png"
    Image.new("RGB", (64, 96), "steelblue").save(ref)
    other = tmp_path / "tom-side.png"
    Image.new("RGB", (64, 96), "navy").save(other)
    frame = pd.DataFrame(
        {
            "panel": ["Mira alone on a hill", "a robot arrives", "an empty street", "the end"],
            "dialogue": [None, "Tom: Hello, small human.", None, None],
            "characters": [None, None, "none", "Mira, Tom"],
        },
        index=pd.Index(["a", "b", "c", "d"], name="shot"),
    )
    board = make(frame, characters={"Mira": CAST["Mira"], "Tom": [ref, other]})
    references = [e for e in fake.log if e["prompt"].startswith("Character reference")]
    assert [r["prompt"].split(",")[0] for r in references] == [
        "Character reference for a comic: Mira"
    ]  # Tom's images were given
    mira = sha(board.references["Mira"][0].path)
    by_prompt = {e["prompt"].split("\n")[0]: e for e in fake.log if e["path"].endswith("/edits")}
    assert by_prompt["Mira alone on a hill"]["image_sha256s"] == [mira]
    assert by_prompt["a robot arrives"]["image_sha256s"] == [sha(ref), sha(other)]
    assert "images 1-2 are Tom" in by_prompt["a robot arrives"]["prompt"]
    assert "Draw no text" in by_prompt["a robot arrives"]["prompt"]  # imagenb letters it
    assert by_prompt["the end"]["image_sha256s"] == [mira, sha(ref), sha(other)]
    street = [e for e in fake.log if e["prompt"].startswith("an empty street")]
    assert street[0]["path"].endswith("/generations")  # "none": no references at all
    out = board.frame
    assert list(out.index) == ["a", "b", "c", "d"] and out.index.name == "shot"
    assert list(out["characters"]) == ["Mira", "Tom", "", "Mira, Tom"]
    assert board.references["Tom"] == [ref, other]


def test_chained_panels_continue_from_the_one_before(fake):
    board = make(chain=True)
    edits = [e for e in fake.log if e["path"].endswith("/edits")]
    assert [len(e["image_sha256s"]) for e in edits] == [2, 2, 3, 3]  # panel 2: Tom only
    panels = board.panels
    for before, edit in zip(panels, edits[1:], strict=False):
        assert before is not None and edit["image_sha256s"][-1] == sha(before.path)
        count = len(edit["image_sha256s"])
        assert f"Image {count} is the previous panel" in edit["prompt"]
    assert edits[0]["t"] < edits[1]["t"] < edits[2]["t"] < edits[3]["t"]  # one by one
    fake.reset()
    storyboards.estimate(PANELS, characters=CAST, chain=True, quality="low")
    changed = [*PANELS[:2], "Mira and Tom fly a kite", PANELS[3]]
    plan = storyboards.estimate(changed, characters=CAST, chain=True, quality="low")
    assert plan.images == 2 and plan.cached_images == 4  # panel 4 depends on panel 3
    make(changed, chain=True)
    assert len(fake.log) == 2


def test_a_failing_panel_shows_its_error_and_the_others_finish(fake, tmp_path):
    fake.faults = Faults(moderation_words=("explosion",))
    panels = [PANELS[0], "Tom causes an explosion", PANELS[2]]
    board = make(panels)
    frame = board.frame
    assert list(frame["status"]) == ["ok", "error", "ok"]
    assert "ModerationBlocked" in frame["error"].iloc[1] and board.panels[1] is None
    (png,) = board.save(tmp_path / "page.png")
    assert png.stat().st_size > 1000
    assert "1 failed" in board.progress_line()


def test_a_failed_reference_blocks_only_the_panels_that_need_it(fake):
    fake.faults = Faults(moderation_words=("rusty",))
    board = make(["Mira reads a book", "Tom stands guard", "Mira and Tom laugh"])
    statuses = list(board.frame["status"])
    assert statuses == ["ok", "error", "error"]
    assert "the reference image of Tom failed" in board.frame["error"].iloc[1]
    assert board.references["Tom"] == []
    assert len([e for e in fake.log if e["path"].endswith("/edits")]) == 1


def test_identical_panels_are_sent_once(fake):
    board = make([PANELS[0], PANELS[0], PANELS[1]])
    assert len([e for e in fake.log if e["path"].endswith("/edits")]) == 2
    assert board.panels[0] is board.panels[1]


# --- validation before anything is sent ---------------------------------------------------------


@pytest.mark.parametrize(
    ("panels", "kwargs", "message"),
    [
        ([], {}, "no panels"),
        (pd.DataFrame({"prompt": ["x"]}), {}, "no 'panel' column"),
        ([{"panel": None}], {}, "panel 1 has no description"),
        (PANELS, {"n": 2}, "one image per panel"),
        ([{"panel": "a", "n": 3}], {}, "panel 1: n=3"),
        (PANELS, {"size": "1920x1080"}, "divisible by 16"),
        (PANELS, {"layout": "2by2"}, "ROWSxCOLS"),
        (PANELS, {"layout": "0x2"}, "ROWSxCOLS"),
        (PANELS, {"temperature": 1}, "unknown keyword"),
        (PANELS, {"characters": ["Mira"]}, "dict of name"),
        (PANELS, {"characters": {"Mira": "  "}}, "empty description"),
        (PANELS, {"characters": {"Mira": "a", "mira": "b"}}, "given twice"),
        (PANELS, {"characters": {"Mira": "missing.png"}}, "no such file"),
        (PANELS, {"characters": {"Mira": []}}, "no reference images"),
        ([{"panel": "x", "characters": "Bob"}], {}, "lists bob, not among"),
    ],
)
def test_mistakes_raise_before_anything_is_sent(fake, panels, kwargs, message):
    kwargs.setdefault("characters", CAST)
    with pytest.raises(InvalidRequest, match=message):
        ig.storyboard(panels, **kwargs)
    assert fake.log == []


def test_too_many_inputs_for_a_panel_names_the_panel(fake, tmp_path):
    ref = tmp_path / "r.png"
    Image.new("RGB", (32, 32), "red").save(ref)
    cast = {"Mira": [ref] * 9, "Tom": [ref] * 8}
    with pytest.raises(InvalidRequest, match=r"panel 1: 17 input images .* fewer"):
        ig.storyboard(["Mira meets Tom"], characters=cast)
    assert fake.log == []


# --- text input, prompts --------------------------------------------------------------------------


def test_panels_from_text_one_per_line():
    rows = storyboards.parse_panels(
        "# act one\n\n"
        "1. Mira finds Tom | caption: One morning... | Mira: Hello? | Tom: BEEP.\n"
        "- Tom wakes up |  | Caption: It rained.\n"
        f"  ミラはトムと歩く | ミラ{COLON}こんにちは\n"
    )
    assert rows == [
        {"panel": "Mira finds Tom", "caption": "One morning...",
         "dialogue": "Mira: Hello?\nTom: BEEP."},
        {"panel": "Tom wakes up", "caption": "It rained.", "dialogue": ""},
        {"panel": "ミラはトムと歩く", "caption": None, "dialogue": f"ミラ{COLON}こんにちは"},
    ]  # fmt: skip
    assert storyboard_script.dialogue("Mira: Hello?\nA long sentence: with a colon\nHi") == (
        ("Mira", "Hello?"),
        (None, "A long sentence: with a colon"),
        (None, "Hi"),
    )
    assert storyboard_script.dialogue(f"ミラ{COLON}こんにちは") == (("ミラ", "こんにちは"),)


def test_who_is_in_a_panel_is_read_from_its_words():
    board = storyboards.prepare(
        ["Mira's kite", "Also a tree", "ミラ走る", "Someone: hi"],
        characters={"Mira": "a girl", "Al": "a man", "ミラ": "a girl"},
    )
    names = [", ".join(c.name for c in who) for who in board.script.shown]
    assert names == ["Mira", "Mira, Al, ミラ", "ミラ", "Mira, Al, ミラ"]


def test_panel_prompt_does_not_depend_on_the_panel_position():
    one = storyboards.prepare(["a", "b"], characters=CAST)
    two = storyboards.prepare(["z", "a", "b", "c"], characters=CAST)
    assert one.script.drafts[0].prompt == two.script.drafts[1].prompt


# --- notebook view ----------------------------------------------------------------------------


def test_live_view_shows_the_cast_and_pages_then_fills_in(fake, monkeypatch):
    view = RecordingView()
    monkeypatch.setattr(storyboards, "_open_view", lambda: view)
    fake.latency = 0.05
    board = make([*PANELS, f"Mira reads {EVIL}"])
    (first,) = view.shown
    assert first.count("waiting…") == 7 and "storyboard: 2 character reference(s)" in first
    assert ">cast<" in first and ">page 1<" in first and ">page 2<" in first
    assert EVIL not in first and "&lt;script&gt;" in first
    final = view.updates[-1]
    assert "waiting…" not in final and final.count("<img ") == 7
    assert any(0 < text.count("<img ") < 7 for text in view.updates[:-1])
    assert board._repr_mimebundle_()["text/html"].count("<img ") == 7


def test_streamed_partials_show_while_panels_render(fake, monkeypatch):
    view = RecordingView()
    monkeypatch.setattr(storyboards, "_open_view", lambda: view)
    fake.latency = 1.2  # two partials and the final image, 0.4 s apart
    board = make(PANELS[:1], characters=None, stream=True)
    assert fake.stats.streams == 1 and list(board.frame["status"]) == ["ok"]
    assert any('alt="partial image"' in text for text in view.updates[:-1])
    assert 'alt="partial image"' not in view.updates[-1]


def test_preview_storyboard_is_marked_and_saves_every_format(tmp_path):
    board = make(
        [{"panel": p, "caption": f"Caption {i}", "dialogue": "Mira: Hi!\nTom: BEEP."}
         for i, p in enumerate(PANELS)]
    )  # fmt: skip
    assert "PREVIEW" in board._repr_mimebundle_()["text/html"]
    assert "4 panels, 2 characters, 1 page of 2x2: 4 ok" in repr(board)
    for name in ("s.png", "s.jpg", "s.webp", "s.pdf", "s.html"):
        (written,) = board.save(tmp_path / name)
        assert written.stat().st_size > 1000
    written = board.save(tmp_path / "strip.png", layout="1x3", title="Mira and Tom")
    assert [p.name for p in written] == ["strip.png", "strip-2.png"]
    with pytest.raises(InvalidRequest, match=r"\.png"):
        board.save(tmp_path / "s.gif")


def test_polars_frames_work_like_pandas():
    board = make(pl.DataFrame({"panel": PANELS[:2], "quality": ["low", "medium"]}))
    assert list(board.frame["status"]) == ["ok", "ok"]
    assert [p.params["quality"] for p in board.panels if p] == ["low", "medium"]


# --- pages ------------------------------------------------------------------------------------


def test_page_letters_panels_and_marks_missing_ones(tmp_path):
    art = tmp_path / "art.png"
    Image.new("RGBA", (400, 300), (0, 128, 0, 0)).save(art)  # transparent: drawn on paper
    panels = [
        storyboard_page.Panel(art, 400, 300, caption="Meanwhile… 一方その頃",
                              dialogue=(("Mira", "Hello there!"), (None, "…"))),
        storyboard_page.Panel(None, 400, 300, note="not made: ModerationBlocked"),
        storyboard_page.Panel(art, 400, 300, dialogue=(("Tom", "word " * 200),)),
    ]  # fmt: skip
    (page,) = storyboard_page.render(panels, rows=2, cols=2, panel_px=400)
    geo_gutter = max(6, round(400 / 28))
    assert page.size == (2 * 400 + 3 * geo_gutter, 2 * 300 + 3 * geo_gutter)
    rgb = page.convert("RGB")
    x0 = y0 = geo_gutter
    assert rgb.getpixel((x0 + 200, y0 + 290)) == (255, 255, 255)  # transparent art on paper
    assert rgb.getpixel((x0 + 20, y0 + 20)) != (255, 255, 255)  # the caption box
    blank = rgb.getpixel((x0 + 400 + geo_gutter + 5, y0 + 5))
    assert blank == (232, 232, 232)  # the missing panel
    (unlettered,) = storyboard_page.render(panels, rows=2, cols=2, panel_px=400, lettering=False)
    assert unlettered.convert("RGB").getpixel((x0 + 20, y0 + 20)) == (255, 255, 255)


def test_page_pdf_has_one_page_per_page(tmp_path):
    art = tmp_path / "art.png"
    Image.new("RGB", (64, 64), "teal").save(art)
    panels = [storyboard_page.Panel(art, 64, 64)] * 5
    pdf = tmp_path / "p.pdf"
    storyboard_page.save(panels, pdf, rows=2, cols=2, panel_px=128)
    assert pdf_pages(pdf) == 2


# --- %%storyboard ---------------------------------------------------------------------------


@pytest.fixture
def shell():
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "imagenb")
    yield ip
    InteractiveShell.clear_instance()


def run(ip: InteractiveShell, code: str, shown: list[str] | None = None) -> tuple[str, str, bool]:
    """stdout, stderr and success of one cell; its displays' HTML go to `shown`."""
    with capture_output() as cap:
        result = ip.run_cell(code, store_history=False)
    if shown is not None:
        shown += [o.data.get("text/html", "") for o in cap.outputs]
    return cap.stdout, cap.stderr, result.success


def test_storyboard_magic_one_panel_per_line(shell, fake, tmp_path):
    shell.user_ns["mira"] = CAST["Mira"]
    shell.user_ns["where"] = "junkyard"
    page = tmp_path / "comic.png"
    out, err, ok = run(
        shell,
        f'%%storyboard -c Mira=mira -c Tom="{CAST["Tom"]}" --style "ink" -q low -o comic '
        f"--save {page}\n"
        "1. Mira finds Tom in a {where} | caption: One morning | Mira: Hello?\n"
        "2. Tom wakes up | Tom: BEEP.\n",
    )
    assert ok and err == "", err
    board = shell.user_ns["comic"]
    assert isinstance(board, ig.Storyboard) and list(board.frame["status"]) == ["ok", "ok"]
    assert board.frame["panel"].iloc[0] == "Mira finds Tom in a junkyard"
    assert board.frame["caption"].iloc[0] == "One morning"
    assert len(fake.log) == 4 and page.is_file() and f"saved {page}" in out
    assert board.table.rows[0]["dialogue"] == "Mira: Hello?"

    fake.reset()
    out, err, ok = run(shell, "%%storyboard -c Mira=mira --estimate\nMira runs\n")
    assert "estimate: 2 image(s)" in out and "nothing sent" in out and fake.log == []
    out, err, ok = run(shell, "%%storyboard -c Mira=mira -n 2\nMira runs\n")
    assert err.startswith("imagenb: n=2") and err.count("\n") == 1 and fake.log == []
    out, err, ok = run(shell, "%%storyboard -c Mira\nMira runs\n")
    assert "write NAME=WHO" in err and fake.log == []
    out, err, ok = run(shell, f"%%storyboard --save {tmp_path}/pages\nMira runs\n")
    assert "cannot save a storyboard as 'a file without suffix'" in err and fake.log == []


def test_storyboard_magic_takes_images_and_a_cast_dict(shell, tmp_path):
    ref = tmp_path / "tom.png"
    Image.new("RGB", (64, 64), "navy").save(ref)
    shell.user_ns["cast"] = {"Mira": CAST["Mira"]}
    shown: list[str] = []
    out, err, ok = run(
        shell,
        f"%%storyboard --cast cast -c Tom={ref} --layout 1x2 --chain -q low -o b\n"
        "Mira meets Tom\nTom waves\nMira waves back\n",
        shown,
    )
    assert ok and err == "", err
    board = shell.user_ns["b"]
    assert board.layout == (1, 2) and board.chain and board.pages() == 2
    assert board.references["Tom"] == [str(ref)]
    assert repr(board).startswith("Storyboard(3 panels, 2 characters, 2 pages of 1x2")
    assert "storyboard: 1 character reference(s) + 3 panel(s)" in out
    (html,) = shown  # no notebook: the storyboard is displayed once, when done
    assert html.count("<img ") == 4 and "PREVIEW" in html


def test_rerun_is_fast_and_free(fake):
    make()
    fake.reset()
    started = time.perf_counter()
    again = make()
    assert fake.log == [] and again.cost_usd == 0
    assert time.perf_counter() - started < 2.0
    buf = io.BytesIO()
    again.panels[0].image.save(buf, "PNG")  # type: ignore[union-attr]
    assert buf.tell() > 0
