"""Issue 10 acceptance: text that reads right. Pure comparison logic first (no OCR), then
Tesseract on text rendered with the project's fonts in all six scripts, the preview backend
drawing quoted text, and grids and `best_of` against the loopback fake."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image, ImageDraw

import imagenb as ig
from imagenb.api import calls as api
from imagenb.backends import preview
from imagenb.checks import ocr
from imagenb.checks import text as textcheck
from imagenb.core.request import build
from imagenb.errors import BudgetExceeded, InvalidRequest
from imagenb.grids import grid as grids
from imagenb.store.images import GeneratedImage
from imagenb.text import fonts
from imagenb.text import match as textmatch
from imagenb.text.match import TextCheck

# (language, text, a misspelling a model might make); each misspelling is > 10% CER away
SCRIPTS = [
    ("eng", "GRAND OPENING", "GRNAD OPENIGN"),
    ("jpn", "いらっしゃいませ", "いらっしやいまぜ"),
    ("kor", "영업 중입니다", "영엽 중입니디"),
    ("chi_sim", "欢迎光临本店", "欢迎光临木庄"),
    ("hin", "नमस्ते दोस्त", "नमसते दोसत"),
    ("ben", "স্বাগতম বন্ধু", "সাগতম বন্দু"),
]
IDS = [lang for lang, _, _ in SCRIPTS]


def render(text: str, size: int = 72, *, dark_on_light: bool = True) -> Image.Image:
    """`text` large and clear with imagenb's own fonts, on a sign on a coloured wall."""
    width = round(fonts.text_width(text, size, bold=True))
    im = Image.new("RGB", (width + 8 * size, 5 * size), (52, 84, 120))
    draw = ImageDraw.Draw(im)
    board, ink = (
        ((245, 240, 226), (24, 24, 24)) if dark_on_light else ((30, 30, 36), (250, 250, 240))
    )
    draw.rounded_rectangle((2 * size, size, width + 6 * size, 4 * size), 12, fill=board)
    fonts.draw_text(draw, (4 * size, 1.9 * size), text, size, ink, bold=True)
    return im


# --- comparing: no OCR --------------------------------------------------------------------------


def test_normalisation_is_nfkc_casefolded_and_spacing_blind_where_it_should_be() -> None:
    assert textmatch.normalize("\uff2f\uff30\uff25\uff2e  24\nHours") == "open 24 hours"
    assert textmatch.normalize("\u201cDon\u2019t\u201d \u2014 stop") == '"don\'t" - stop'
    assert textmatch.normalize("い ら っ しゃい", "jpn") == "いらっしゃい"  # OCR spacing
    assert textmatch.normalize("영업 중", "kor") == "영업중"
    assert textmatch.normalize("न\u200dम", "hin") == "नम"  # invisible joiners dropped
    assert textmatch.normalize("ｶﾀｶﾅ", "jpn") == "カタカナ"  # half-width kana


def test_levenshtein_and_best_matching_span() -> None:
    assert textmatch.levenshtein("kitten", "sitting") == 3
    assert textmatch.levenshtein("", "abc") == 3
    assert textmatch.align("open", "xx 0pen yy", anywhere=True) == (1, 3, 7)
    assert textmatch.cer("OPEN", "PREVIEW a sign that says OPEN now") == 0.0
    assert textmatch.cer("OPEN", "0PEN") == 0.25
    assert textmatch.cer("OPEN", "nothing here", match="exact") > 1
    assert textmatch.cer("Coffee\nTea", "TEA ... COFFEE") == 0.0  # each line anywhere


@given(st.text("abc", max_size=6), st.text("abcd", max_size=12))
def test_anywhere_alignment_is_the_closest_span(pattern: str, text: str) -> None:
    edits, start, end = textmatch.align(pattern, text, anywhere=True)
    spans = [text[i:j] for i in range(len(text) + 1) for j in range(i, len(text) + 1)]
    assert edits == min(textmatch.levenshtein(pattern, s) for s in spans)
    assert textmatch.levenshtein(pattern, text[start:end]) == edits


@pytest.mark.parametrize(("lang", "text", "typo"), SCRIPTS, ids=IDS)
def test_script_detection_and_the_misspellings_are_real(lang: str, text: str, typo: str) -> None:
    assert textmatch.detect_lang(text) == lang
    assert textmatch.cer(text, typo) > textcheck.DEFAULT_MAX_CER


def test_language_rules() -> None:
    assert textmatch.detect_lang("営業中") == "chi_sim"  # kanji alone reads as Chinese...
    assert textmatch.resolve_lang("ja", "営業中") == "jpn"  # ...unless told
    assert textmatch.detect_lang("OPEN 営業中です") == "jpn+eng"
    assert textmatch.detect_lang("2024 → 50%") == "eng"
    assert textmatch.resolve_lang("ko+en", "x") == "kor+eng"
    with pytest.raises(InvalidRequest, match=r"Cyrillic.*lang="):
        textmatch.detect_lang("ОТКРЫТО")


def test_quoted_text_is_what_the_prompt_asks_to_draw() -> None:
    prompt = 'a café with "Coffee" and “Tea”, a noren reading 「いらっしゃいませ」, «Entrée»'
    assert textmatch.quoted(prompt) == ["Coffee", "Tea", "いらっしゃいませ", "Entrée"]
    assert textmatch.quoted("a red fox") == []
    with pytest.raises(InvalidRequest, match="quoted text"):
        textmatch.expected_from("a red fox", True)


# --- OCR of rendered text ---------------------------------------------------------------------


@pytest.mark.parametrize(("lang", "text", "typo"), SCRIPTS, ids=IDS)
def test_rendered_text_passes_and_a_misspelling_fails(lang: str, text: str, typo: str) -> None:
    right, wrong = render(text), render(typo)
    frame = ig.check_text([right, wrong], text)
    assert list(frame.columns) == list(textcheck.COLUMNS)
    assert list(frame["lang"]) == [lang, lang]
    good, bad = frame.iloc[0], frame.iloc[1]
    assert bool(good["pass"]) and good["cer"] <= textcheck.DEFAULT_MAX_CER, good.to_dict()
    assert textmatch.normalize(good["ocr_text"], lang) == textmatch.normalize(text, lang)
    assert not bad["pass"] and bad["cer"] > textcheck.DEFAULT_MAX_CER, bad.to_dict()
    # the other way round: a correct image fails a check for the wrong text
    assert not ig.check_text(right, typo)["pass"].iloc[0]


@pytest.mark.parametrize(("lang", "text"), [(s[0], s[1]) for s in SCRIPTS], ids=IDS)
def test_light_text_on_a_dark_board_reads_too(lang: str, text: str) -> None:
    assert ig.check_text(render(text, dark_on_light=False), text)["pass"].iloc[0]


def test_inputs_of_every_kind_and_one_text_per_image(tmp_path: Path) -> None:
    im = render("GRAND OPENING")
    path = tmp_path / "sign.png"
    im.save(path)
    buffer = io.BytesIO()
    im.save(buffer, "JPEG", quality=90)
    frame = ig.check_text([str(path), path, buffer.getvalue(), im], "grand opening")
    assert frame["pass"].all() and frame["path"].iloc[0] == path and frame["path"].iloc[3] is None
    per_image = ig.check_text([im, im], ["GRAND OPENING", "CLOSED"])
    assert list(per_image["pass"]) == [True, False]
    exact = ig.check_text(im, "GRAND", match="exact")  # the whole reading must match
    assert not exact["pass"].iloc[0] and ig.check_text(im, "GRAND")["pass"].iloc[0]


def test_bad_arguments_are_refused_before_any_ocr() -> None:
    im = render("OPEN")
    with pytest.raises(InvalidRequest, match="one str per image"):
        ig.check_text([im, im], ["OPEN"])
    with pytest.raises(InvalidRequest, match="empty"):
        ig.check_text(im, "  \n ")
    with pytest.raises(InvalidRequest, match="max_cer"):
        ig.check_text(im, "OPEN", max_cer=-1)
    with pytest.raises(InvalidRequest, match="match="):
        ig.check_text(im, "OPEN", match="fuzzy")
    with pytest.raises(InvalidRequest, match="cannot read an image"):
        ig.check_text(b"not an image", "OPEN")


def test_missing_tesseract_names_the_packages(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no tesseract on it
    with pytest.raises(ocr.OCRUnavailable, match=r"tesseract-ocr-jpn.*tesseract-ocr-ben"):
        ig.check_text(render("OPEN"), "OPEN")


def test_missing_language_data_names_its_package() -> None:
    with pytest.raises(ocr.OCRUnavailable, match="apt-get install tesseract-ocr-xyz"):
        ocr.require(["eng", "xyz"])


# --- the preview backend draws the requested text ---------------------------------------------


def sign_area(im: Image.Image) -> Image.Image:
    """The middle of a preview: neither the banner nor the caption (which repeats the prompt)."""
    return im.crop((0, round(im.height * 0.12), im.width, round(im.height * 0.68)))


@pytest.mark.parametrize(("lang", "text"), [(s[0], s[1]) for s in SCRIPTS], ids=IDS)
@pytest.mark.parametrize("size", ["1024x1024", "1536x1024", "2560x1440"])
def test_preview_draws_the_quoted_text_legibly(lang: str, text: str, size: str) -> None:
    request = build(f'a shop sign that says "{text}"', size=size, quality="low")
    with preview.draw_image(request) as im:
        check = textcheck.check_image(sign_area(im), text)
    assert check.passed and check.lang == lang, check


def test_preview_draws_no_sign_without_quotes_and_several_with_several() -> None:
    board = (250, 247, 236)
    with preview.draw_image(build("a quiet street at night", size="1024x1024")) as plain:
        assert board not in {c for _, c in plain.getcolors(1 << 20) or []}
    prompt = 'a menu board with "Coffee 3" and "Tea 2"'
    with preview.draw_image(build(prompt, size="1024x1024")) as menu:
        assert textcheck.check_image(sign_area(menu), "Coffee 3\nTea 2").passed


# --- generate(best_of=k) ----------------------------------------------------------------------


def test_best_of_sends_k_requests_and_returns_k_scored_candidates(fake, capsys) -> None:
    images = ig.generate('a sign that says "OPEN"', best_of=3, size="1024x1024", quality="low")
    line = capsys.readouterr().out
    assert "best of 3: 3 image(s) in 3 request(s)" in line and "'OPEN'" in line
    assert fake.stats.image_requests == 3 and len(images) == 3
    checks = [i.text_check for i in images]
    assert all(isinstance(c, TextCheck) and c.expected == "OPEN" for c in checks)
    cers = [c.cer for c in checks if c is not None]
    assert cers == sorted(cers)  # flat test images hold no text: all score 1.0
    assert len({i.key for i in images}) == 3 and {i.variant for i in images} == {0, 1, 2}
    assert images.title is not None and images.title.startswith("best of 3")
    assert "text CER" in images._repr_mimebundle_()["text/html"]

    again = ig.generate('a sign that says "OPEN"', best_of=3, size="1024x1024", quality="low")
    assert fake.stats.image_requests == 3 and all(i.cached for i in again)  # from the store


def test_best_of_puts_the_best_reading_first(fake, monkeypatch: pytest.MonkeyPatch) -> None:
    rates = {0: 0.5, 1: 0.25, 2: 0.0}

    def scored(image: GeneratedImage, expected: str, lang: str, **_: object) -> TextCheck:
        rate = rates[image.variant]
        return TextCheck(expected, lang, "?", rate, rate <= 0.1)

    monkeypatch.setattr(textcheck, "check_image", scored)
    images = ig.generate("a poster", best_of=3, check_text="SALE", quality="low")
    assert [i.variant for i in images] == [2, 1, 0]
    assert [i.text_check.cer for i in images if i.text_check] == [0.0, 0.25, 0.5]


def test_best_of_costs_k_calls_and_is_refused_before_sending(fake, capsys) -> None:
    req = build('a sign that says "OPEN"', n=3, quality="high")
    one_call = api.plan([req], ig.configure())
    split = api.plan([req], ig.configure(), split=True)
    assert (one_call.requests, split.requests) == (1, 3) and split.usd > one_call.usd
    with pytest.raises(InvalidRequest, match="leave n out"):
        ig.generate('a sign that says "OPEN"', best_of=3, n=2)
    with pytest.raises(InvalidRequest, match="best_of=0"):
        ig.generate('a sign that says "OPEN"', best_of=0)
    with pytest.raises(InvalidRequest, match="no quoted text"):
        ig.generate("a sign", best_of=2)
    ig.configure(budget_usd=0.30)
    with pytest.raises(BudgetExceeded):  # one high-quality image fits; three do not
        ig.generate('a sign that says "OPEN"', best_of=3, quality="high", size="1024x1024")
    assert "best of 3" in capsys.readouterr().out and fake.stats.image_requests == 0


def test_best_of_without_tesseract_sends_nothing(
    fake, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ocr.OCRUnavailable):
        ig.generate('a sign that says "OPEN"', best_of=3)
    assert fake.stats.image_requests == 0


def test_best_of_on_the_preview_backend_reads_its_own_sign() -> None:
    images = ig.generate('a sign that says "いらっしゃいませ"', best_of=2, size="1536x1024")
    assert len(images) == 2 and all(i.text_check and i.text_check.passed for i in images)
    assert images[0].text_check is not None and images[0].text_check.lang == "jpn"


def test_check_text_alone_scores_and_sorts_n_images(fake) -> None:
    images = ig.generate("a poster", n=2, check_text="SALE", quality="low")
    assert fake.stats.image_requests == 1 and all(i.text_check for i in images)


# --- grids ------------------------------------------------------------------------------------


def sign_frame() -> pd.DataFrame:
    texts = [text for _, text, _ in SCRIPTS]
    return pd.DataFrame(
        {
            "script": IDS,
            "text": texts,
            "prompt": [f'a shop sign that says "{t}"' for t in texts],
        }
    )


def test_grid_check_text_fills_the_score_columns(fake) -> None:
    grid = ig.grid(sign_frame(), cols="script", check_text="text", quality="low")
    frame = grid.frame
    assert list(frame.columns[-3:]) == ["ocr_text", "cer", "pass"]
    assert frame["cer"].notna().all() and frame["pass"].notna().all()
    assert frame["ocr_text"].notna().all()
    assert (frame["cer"] > textcheck.DEFAULT_MAX_CER).all() and not frame["pass"].any()
    assert fake.stats.image_requests == len(SCRIPTS)
    html = grid._html(live=False)
    assert html.count('class="imagenb-ocr imagenb-ocr-fail"') == len(SCRIPTS)
    assert html.count("✗ text CER") == len(SCRIPTS)  # the fake draws no text
    # the frame can be fed back: the score columns are the grid's, not inputs
    again = ig.grid(frame, cols="script", check_text=True, quality="low")
    assert fake.stats.image_requests == len(SCRIPTS) and again.frame["cer"].notna().all()


def test_grid_check_text_reads_preview_signs_in_every_script(tmp_path: Path) -> None:
    grid = ig.grid(sign_frame(), cols="script", check_text="text", size="1536x1024")
    frame = grid.frame
    assert frame["pass"].all(), frame[["script", "ocr_text", "cer"]]
    assert grid._html(live=False).count('class="imagenb-ocr"') == len(SCRIPTS)
    (sheet,) = grid.save(tmp_path / "signs.png")
    assert sheet.stat().st_size > 0


def test_grid_check_text_is_validated_before_sending(fake) -> None:
    with pytest.raises(InvalidRequest, match=r"not a column.*columns: script, text, prompt"):
        ig.grid(sign_frame(), check_text="words")
    with pytest.raises(InvalidRequest, match="no prompt has any"):
        ig.grid(["a red fox", "a blue bird"], check_text=True)
    assert fake.stats.image_requests == 0


def test_rows_without_expected_text_are_not_checked(fake) -> None:
    rows = [{"prompt": "a sign", "text": "OPEN"}, {"prompt": "a fox", "text": None}]
    frame = ig.grid(rows, check_text="text", quality="low").frame
    assert frame["cer"].notna().tolist() == [True, False]
    assert frame["pass"].isna().tolist() == [False, True]


def test_checks_are_cached_per_stored_image(fake) -> None:
    grid = ig.grid(sign_frame().head(2), check_text="text", quality="low")
    items = [grid.items(i)[0] for i in range(2)]
    texts = list(sign_frame().head(2)["text"])
    again = [textcheck.check_image(i.image, t) for i, t in zip(items, texts, strict=True)]
    assert all(a is i.check for a, i in zip(again, items, strict=True))  # not read twice


def test_a_background_grid_draws_its_scores_when_they_land(fake, monkeypatch) -> None:
    class View:
        def __init__(self) -> None:
            self.last = ""

        def show(self, text: str, plain: str) -> None:
            self.last = text

        def update(self, text: str, plain: str) -> None:
            self.last = text

        def in_current_cell(self) -> bool:
            return False

    view = View()
    monkeypatch.setattr(grids, "_open_view", lambda: view)
    fake.latency = 0.2
    grid = ig.grid(sign_frame().head(3), check_text="text", quality="low", wait=False)
    deadline = time.monotonic() + 60
    while view.last.count("text CER") < 3 and time.monotonic() < deadline:
        time.sleep(0.05)  # nobody waits: the view thread and the OCR workers redraw
    assert view.last.count("text CER") == 3 and grid.finished
