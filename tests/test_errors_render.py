"""Issue 17 §2: an imagenb error renders in a few lines in a real IPython shell (SPEC §7.12),
still stops the cell, and the full trace is one `%tb` away."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conftest import TEST_KEY
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from imagenb import errors
from imagenb.core import config
from imagenb.testing import FakeImagesServer, Faults


@pytest.fixture
def shell() -> Iterator[InteractiveShell]:
    ip = InteractiveShell.instance()
    ip.run_cell("import imagenb as ig", store_history=False)
    yield ip
    ip.user_ns.pop("images", None)


def lines_of(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_a_moderation_block_renders_in_a_few_lines_and_still_stops_the_cell(shell):
    faults = Faults(moderation_words=("forbidden",))
    with FakeImagesServer(faults=faults) as server:
        config.configure(backend="openai", api_key=TEST_KEY, base_url=server.base_url)
        with capture_output() as cap:
            result = shell.run_cell(
                'images = ig.generate("a forbidden harbour", quality="low")\nafter = 1',
                store_history=False,
            )
        assert server.stats.moderation_blocked == 1
    assert isinstance(result.error_in_exec, errors.ModerationBlocked)  # it propagated
    assert "after" not in shell.user_ns  # and the rest of the cell did not run
    shown = lines_of(cap.stdout + cap.stderr)
    assert 1 <= len(shown) <= 5, shown
    assert shown[0].startswith("ModerationBlocked: blocked by the safety system")
    assert "categories:" in shown[0]
    assert any("rephrase the prompt" in line for line in shown)
    assert "%tb" in shown[-1]
    text = "\n".join(shown)
    assert "Traceback" not in text and "runner.py" not in text and "calls.py" not in text

    with capture_output() as full:
        shell.run_line_magic("tb", "")
    assert "Traceback" in full.stdout and "calls.py" in full.stdout
    assert full.stdout.rstrip().splitlines()[-1].startswith("imagenb.errors.ModerationBlocked")


def test_every_imagenb_error_is_brief_and_long_messages_are_clipped(shell):
    shell.user_ns["errors"] = errors
    with capture_output() as cap:
        shell.run_cell(
            "raise errors.InvalidRequest('size=\"99x99\" is not available\\n' + 'x' * 5000)",
            store_history=False,
        )
    shown = lines_of(cap.stdout + cap.stderr)
    assert len(shown) == 2, shown  # no hint for a message that says what to do
    assert shown[0].startswith('InvalidRequest: size="99x99" is not available x')
    assert len(shown[0]) <= errors.BRIEF_MAX_CHARS + 20


def test_the_brief_form_is_redacted(shell, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
    shell.user_ns["errors"] = errors
    with capture_output() as cap:
        shell.run_cell(f"raise errors.BackendError('echo {TEST_KEY}', status=401)")
        shell.run_line_magic("tb", "")
    assert "echo <OPENAI_API_KEY>" in cap.stdout
    assert TEST_KEY[3:15] not in cap.stdout + cap.stderr
