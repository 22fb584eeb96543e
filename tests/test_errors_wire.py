"""Issue 17 §1: a request carries only what was asked (SPEC §7.11), against a fake as strict as
the SDK's signatures: a multipart edit with a field `images.edit()` does not send is refused,
as is a JSON body with an unknown field."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from conftest import TEST_KEY
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from PIL import Image

import imagenb as ig
from imagenb.core import request


def png(colour: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), colour).save(buf, "PNG")
    return buf.getvalue()


def sent(entry: dict[str, Any]) -> set[str]:
    """The body fields of one logged request (the fake logs image payloads apart)."""
    return set(entry["params"])


@pytest.fixture
def shell() -> Iterator[InteractiveShell]:
    ip = InteractiveShell.instance()
    ip.extension_manager.load_extension("imagenb")
    yield ip


def test_a_default_generate_and_edit_send_only_prompt_model_and_the_image(fake):
    ig.generate("a lighthouse at dawn")
    ig.edit("make it night", png())
    generate, edit = fake.log
    assert sent(generate) == {"prompt", "model"}, generate["params"]
    assert sent(edit) == {"prompt", "model"} and edit["image_count"] == 1, edit["params"]
    assert generate["params"]["model"] == edit["params"]["model"] == "gpt-image-2"


def test_what_the_user_set_goes_and_defaults_they_repeated_are_left_to_the_service(fake):
    ig.generate("a red kite", quality="low", size="1536x1024", n=2, output_format="webp")
    ig.generate("a blue kite", quality="auto", background="auto", moderation="auto")
    asked, defaults = fake.log
    assert asked["params"] == {
        "prompt": "a red kite",
        "model": "gpt-image-2",
        "quality": "low",
        "size": "1536x1024",
        "n": 2,
        "output_format": "webp",
    }
    assert sent(defaults) == {"prompt", "model"}


def test_moderation_low_on_an_edit_goes_in_the_json_body_that_takes_it(fake):
    images = ig.edit("make it night", [png(), png((0, 0, 200))], moderation="low", quality="low")
    (entry,) = fake.log
    assert len(images) == 1 and entry["image_count"] == 2
    assert entry["params"] == {"prompt": "make it night", "model": "gpt-image-2",
                               "quality": "low", "moderation": "low"}  # fmt: skip


def test_moderation_low_on_a_streamed_edit_with_a_mask(fake):
    mask = io.BytesIO()
    Image.new("RGBA", (64, 64), (0, 0, 0, 0)).save(mask, "PNG")
    images = ig.edit("add a moon", png(), mask=mask.getvalue(), moderation="low", stream=True)
    (entry,) = fake.log
    assert len(images) == 1 and entry["stream"] and entry["mask_sha256"] is not None
    assert entry["params"]["moderation"] == "low"


def test_the_fake_refuses_what_the_sdk_would_never_send(fake):
    client = openai.OpenAI(api_key=TEST_KEY, base_url=fake.base_url, max_retries=0)
    with pytest.raises(openai.BadRequestError) as multipart:
        client.images.edit(
            image=("a.png", png(), "image/png"),
            prompt="make it night",
            model="gpt-image-2",
            extra_body={"moderation": "auto"},
        )
    assert multipart.value.status_code == 400
    assert "Unknown parameter: 'moderation'" in multipart.value.message
    with pytest.raises(openai.BadRequestError) as json_body:
        client.images.generate(prompt="a cat", model="gpt-image-2", extra_body={"colour": "red"})
    assert json_body.value.code == "unknown_parameter"
    assert fake.stats.completed == 0 and fake.stats.by_status == {400: 2}


def test_imageedit_magic_and_a_four_panel_storyboard_pass_the_strict_fake(fake, shell, tmp_path):
    (tmp_path / "in.png").write_bytes(png())
    shell.user_ns["source"] = tmp_path / "in.png"
    with capture_output() as cap:
        result = shell.run_cell("%%imageedit -i source -q low -o edited\nmake it night")
    assert result.success and not cap.stderr, cap.stderr
    assert len(shell.user_ns.pop("edited")) == 1
    board = ig.storyboard(
        ["Mira finds Tom", "Tom wakes up", "Mira and Tom walk", "Tom carries Mira"],
        characters={"Mira": "a girl with a red scarf", "Tom": "a rusty robot"},
        quality="low",
    )
    assert list(board.frame["status"]) == ["ok"] * 4
    assert all(e["status"] == 200 for e in fake.log)
    assert not any("moderation" in e["params"] for e in fake.log)


def test_leaving_defaults_off_the_wire_changes_no_store_key():
    explicit = request.build(
        "a fox", quality="auto", size="auto", background="auto", moderation="auto"
    )
    implicit = request.build("a fox")
    assert explicit.key() == implicit.key()
    assert "quality" in implicit.canonical() and "quality" not in implicit.wire_params()
    assert implicit.wire_params() == {"model": "gpt-image-2"}
