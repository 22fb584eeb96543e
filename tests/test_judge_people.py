"""People's stars (`ig.rate`, `ig.ratings`) and `ig.agreement` between judge and people, with
the OCR check beside the judge's text verdicts. Offline: the preview backend judges."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import imagenb as ig
from imagenb.core import config
from imagenb.engine import session
from imagenb.errors import InvalidRequest

PROMPTS = ['a shop sign that says "OPEN"', 'a poster that says "JAZZ"', 'a mug that says "TEA"']


@pytest.fixture
def images():
    config.configure(backend="preview")
    return [ig.generate(p, quality="low", size="square")[0] for p in PROMPTS]


def test_stars_are_stored_with_the_image_and_survive_a_restart(images, isolated):
    ig.rate(images[0], 5)
    ig.rate(images[1], 2)
    ig.rate(images[1], 3)  # a second rating replaces the first
    session.reset()  # what a kernel restart forgets
    rated = ig.ratings()
    assert dict(zip(rated["key"], rated["stars"], strict=True)) == {
        images[0].key: 5,
        images[1].key: 3,
    }
    assert set(rated["prompt"]) == set(PROMPTS[:2]) and rated["path"].notna().all()
    code = "import imagenb as ig; print(sorted(ig.ratings()['stars']))"
    env = {**os.environ, "IMAGENB_STORE": str(isolated)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "[3, 5]", out.stderr
    ig.rate(images[0], None)
    assert list(ig.ratings()["key"]) == [images[1].key]


def test_ratings_name_the_image_whatever_backend_is_live_now(images, fake):
    """A star given to a preview image keeps its prompt and file after a key is set: the
    rating is of that image, and the store's serving rules are for answering requests."""
    ig.rate(images[0], 4)
    config.configure(backend="openai", api_key="sk-test-people-000", base_url=fake.base_url)
    rated = ig.ratings()
    assert list(rated["prompt"]) == [images[0].prompt]
    assert list(rated["path"]) == [images[0].path]


@pytest.mark.parametrize("stars", [6, -1, 2.5, True, "5"])
def test_stars_must_be_one_to_five(images, stars):
    with pytest.raises(InvalidRequest, match="1 to 5"):
        ig.rate(images[0], stars)


def test_a_file_that_is_not_stored_is_rated_by_its_content(tmp_path, images):
    copy = tmp_path / "copy.png"
    copy.write_bytes(images[0].path.read_bytes())
    ig.rate(copy, 4)
    assert ig.ratings()["key"].iloc[0] == ig.judging.subjects.one(copy).sha256
    assert ig.ratings()["prompt"].isna().all()


def test_agreement_lists_disagreements_and_reads_the_text_beside_the_judge(images):
    judged = ig.judge(images, "a sign that reads exactly what the prompt quotes")
    scores = judged.groupby("key")["score"].mean()
    best, worst = scores.idxmax(), scores.idxmin()
    by_key = {img.key: img for img in images}
    ig.rate(by_key[best], 1)  # the person disagrees with the judge's favourite
    ig.rate(by_key[worst], 5)
    middle = next(k for k in by_key if k not in (best, worst))
    ig.rate(by_key[middle], round(1 + 4 * scores[middle] / 5))
    result = ig.agreement(judged)
    assert result.n == 3
    assert best in set(result.disagreements["key"]) or scores[best] - scores[worst] < 1.25
    assert -1 <= result.spearman <= 1 or result.spearman != result.spearman
    assert set(result.frame.columns) >= {
        "key", "judge_score", "judge_stars", "stars", "agree", "judge_text_pass",
        "expected_text", "ocr_text", "ocr_pass",
    }  # fmt: skip
    assert set(result.frame["expected_text"]) == {"OPEN", "JAZZ", "TEA"}
    assert result.frame["ocr_pass"].notna().all()  # OCR read every preview's quoted text
    assert result.text_agreement is not None
    assert "Spearman" in str(result)


def test_agreement_needs_two_rated_images(images):
    judged = ig.judge(images, "a sign")
    ig.rate(images[0], 3)
    with pytest.raises(InvalidRequest, match="rate at least two"):
        ig.agreement(judged)


def test_hostile_prompts_and_reasons_are_escaped_in_the_agreement(images, monkeypatch):
    hostile = '<img src=x onerror=alert(1)> "<b>BOO</b>"'
    config.configure(backend="preview")
    bad = ig.generate(hostile, quality="low", size="square")[0]
    judged = ig.judge([bad, images[0]], "<script>alert('rubric')</script>")
    judged["reason"] = "<script>alert('reason')</script>"
    ig.rate(bad, 5)
    ig.rate(images[0], 1)
    monkeypatch.setattr("imagenb.judging.people.AGREE_WITHIN", -1.0)  # list every image
    html = ig.agreement(judged)._repr_html_()
    assert "<script" not in html and "<img" not in html and "<b>" not in html
    assert "&lt;script&gt;" in html and "&lt;img src=x" in html


def test_judge_takes_an_image_set_one_image_a_path_bytes_or_a_pil_image(images, tmp_path):
    from PIL import Image

    path = tmp_path / "copy.png"
    path.write_bytes(images[0].path.read_bytes())
    with Image.open(path) as im:
        pil = im.copy()
    for given in (images[0], path, str(path), path.read_bytes(), pil):
        judged = ig.judge(given, "a sign")
        assert len(judged) == 3 and judged["error"].isna().all()
    keys = set(ig.judge(images, "a sign")["key"])
    assert keys == {img.key for img in images}
    assert ig.judge(path, "a sign")["key"].iloc[0] == ig.judging.subjects.one(path).sha256


def test_judge_takes_a_storyboard():
    config.configure(backend="preview")
    board = ig.storyboard(["a fox walks to the river", "the fox drinks"], layout="1x2",
                          quality="low", size="square")  # fmt: skip
    judged = ig.judge(board, "a fox, the same fox in every panel")
    assert set(judged["key"]) == {img.key for img in board.frame["image"]}
