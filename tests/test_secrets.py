"""Issue 9 §5: the API key appears in no log, exception text or traceback, even when the
service echoes it back; what every notebook and the panel save is checked elsewhere
(tests/test_notebooks.py, tests/test_panel*.py, tests/test_api_openai.py)."""

from __future__ import annotations

import logging
import traceback

import pytest
from conftest import TEST_KEY

import imagenb as ig
from imagenb import config
from imagenb.backends.openai_backend import error_from
from imagenb.errors import BackendError, ModerationBlocked, TransientError
from imagenb.panel_controls import explain
from imagenb.testing import FakeImagesServer, Faults

WRONG_KEY = "sk-fake-wrong-imagenb-1111111111111111111"  # a test key, not a real one


def _texts(exc: BaseException) -> str:
    return "\n".join([str(exc), repr(exc), *traceback.format_exception(exc), explain(exc)])


def test_no_log_error_or_traceback_shows_the_key(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # openai, httpx and imagenb at their chattiest
    faults = Faults(moderation_words=("forbidden",))
    with FakeImagesServer(api_key=TEST_KEY, faults=faults) as server:
        config.configure(backend="openai", base_url=server.base_url, max_attempts=1)
        config.configure(api_key=TEST_KEY)
        ig.generate("a quiet harbour", size="square", quality="low")
        with pytest.raises(ModerationBlocked) as blocked:
            ig.generate("a forbidden harbour", size="square", quality="low")
        config.configure(api_key=WRONG_KEY)
        with pytest.raises(BackendError) as refused:
            ig.generate("a quiet harbour at dusk", size="square", quality="low")
        port = server.port
    assert refused.value.status == 401 and "Incorrect API key" in str(refused.value)
    config.configure(base_url=f"http://127.0.0.1:{port}/v1")  # nobody listens there now
    with pytest.raises(TransientError) as unreachable:
        ig.generate("a harbour nobody answers", size="square", quality="low")

    seen = caplog.text + "".join(_texts(e.value) for e in (blocked, refused, unreachable))
    assert "POST" in caplog.text  # the SDK's debug log was really captured
    for key in (TEST_KEY, WRONG_KEY):
        assert key not in seen and key[-12:] not in seen


def test_a_service_that_echoes_the_key_is_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
    config.configure(api_key=WRONG_KEY)
    message = f"key {TEST_KEY} is not valid here; nor is {WRONG_KEY}; sk-other-123456789 either"
    error = error_from(401, {"message": message, "code": "invalid_api_key"})
    assert error.status == 401
    for key in (TEST_KEY, WRONG_KEY, "sk-other-123456789"):
        assert key not in _texts(error)
    assert "<OPENAI_API_KEY>" in str(error)
