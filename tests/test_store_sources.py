"""Where an image came from is part of what it answers (SPEC §7.3): a request to a real model
is never served a preview or a test server's image, test servers keep to their own store, and
a store written before sources were recorded is migrated so its test rows stop being money."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from conftest import TEST_KEY
from test_store import png, put

import imagenb as ig
from imagenb.core import config
from imagenb.core.config import Config
from imagenb.engine import session
from imagenb.store import schema as store_schema
from imagenb.store import sources
from imagenb.store.index import Store
from imagenb.testing import FakeImagesServer


def image_requests(server: FakeImagesServer) -> int:
    return int(server.stats.snapshot()["image_requests"])


def quickstart_calls() -> tuple[ig.ImageSet, Any]:
    """What notebook 01 makes: two foxes, then a 2x3 grid."""
    foxes = ig.generate(
        "a red fox in the snow, watercolour", size="16:9", quality="low", n=2,
        output_format="webp",
    )  # fmt: skip
    frame = ig.prompt_matrix(
        "a {animal}, {style}", animal=["red fox", "snowy owl"],
        style=["watercolour", "linocut", "pixel art"],
    )  # fmt: skip
    grid = ig.grid(frame, rows="animal", cols="style", size="landscape", quality="low")
    return foxes, grid


def test_quickstart_without_then_with_a_key_sends_every_request(
    capsys: pytest.CaptureFixture[str],
) -> None:
    foxes, grid = quickstart_calls()  # no key: preview
    assert {img.backend for img in foxes} == {"preview"}
    assert (grid.frame["status"] == "ok").all()
    assert "PREVIEW" in grid._repr_mimebundle_()["text/html"]  # what the check below looks for
    with FakeImagesServer() as server:
        config.configure(backend="openai", api_key=TEST_KEY, base_url=server.base_url)
        foxes, grid = quickstart_calls()  # same store (IMAGENB_STORE), now "a key"
        assert image_requests(server) == 1 + 6  # the foxes in one call, six grid cells
    assert not any(img.cached for img in foxes) and {img.backend for img in foxes} == {"openai"}
    assert set(grid.frame["status"]) == {"ok"}
    rows = ig.history()
    assert set(rows["source"]) == {"preview", "test"}  # both kept, side by side
    source_of = {str(p): s for p, s in zip(rows["path"], rows["source"], strict=True)}
    shown = [str(img.path) for img in foxes] + [str(p) for p in grid.frame["path"]]
    assert [source_of[p] for p in shown] == ["test"] * 8  # no PREVIEW image among them
    assert "PREVIEW" not in grid._repr_mimebundle_()["text/html"]
    assert "6 preview images in the store were not reused" in grid.plan_line
    capsys.readouterr()


def test_a_real_request_never_gets_a_preview_or_test_image(tmp_path: Path) -> None:
    with Store(tmp_path) as bare:
        put(bare, "k", png(seed=1), backend="preview", source="preview")
        put(bare, "k", png(seed=2), backend="openai", source="test")
        real = bare.serving(sources.policy_for(Config(), "openai"))
        assert real.get("k") is None
        assert real.lookup(["k"]).passed_over == {"preview": 1, "test": 1}
        proxy = sources.policy_for(Config(base_url="https://llm.example.org/v1"), "openai")
        assert proxy.writes == "openai@llm.example.org/v1"
        assert bare.serving(proxy).get("k") is None
        preview = bare.serving(sources.policy_for(Config(), "preview")).get("k")
        assert preview is not None and preview.source == "preview"
        put(bare, "k", png(seed=3), source="openai")
        replay = bare.serving(sources.policy_for(Config(), "replay")).get("k")
        assert replay is not None and replay.source == "openai"  # real first
        assert bare.spent()["images"] == 1  # only the real one is money
        # a test image and a real one of the same request live side by side
        assert {r.source for r in bare.history()} == {"preview", "test", "openai"}


@pytest.mark.parametrize(
    "url, source",
    [
        (None, "openai"),
        ("https://api.openai.com/v1", "openai"),
        ("http://127.0.0.1:5123/v1", "test"),
        ("http://localhost:8000/v1", "test"),
        ("http://[::1]:8000/v1", "test"),
        ("https://myco.openai.azure.com/openai/", "openai@myco.openai.azure.com/openai"),
    ],
)
def test_source_per_base_url(url: str | None, source: str) -> None:
    assert sources.openai_source(url) == source


def test_test_servers_keep_to_their_own_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("IMAGENB_STORE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    default = session.store_for(config.current())  # the user's default store (preview view)
    put(default, "mine", png(seed=9), source="openai", cost_usd=0.5)
    before = (ig.spent().all_time_usd, list(ig.history()["key"]))
    with FakeImagesServer() as server:
        config.configure(backend="openai", api_key=TEST_KEY, base_url=server.base_url)
        made = ig.generate("a test-only image", quality="low")
        assert not made[0].cached and image_requests(server) == 1
        assert not made[0].path.is_relative_to(default.root)
        assert ig.spent().all_time_usd == 0  # fake money is not real money
    config.reset()
    assert (ig.spent().all_time_usd, list(ig.history()["key"])) == before


def _old_store(root: Path) -> None:
    """A store at the schema before sources holding one real and one test-server image."""
    root.mkdir(parents=True)
    conn = sqlite3.connect(root / "index.sqlite", isolation_level=None)
    before = store_schema.MIGRATIONS.index(store_schema._add_sources)
    for step in store_schema.MIGRATIONS[:before]:
        step(conn)
    conn.execute(f"PRAGMA user_version = {before}")
    for key, data in (("real", png(seed=1)), ("fake", png(seed=2) + sources.FAKE_IMAGE_MARK)):
        from imagenb.store.verify import file_sha256

        path = root / "tmp.png"
        path.write_bytes(data)
        sha = file_sha256(path)
        target = root / "objects" / sha[:2] / f"{sha}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        path.rename(target)
        conn.execute(
            "INSERT INTO images (key, sha256, ext, width, height, prompt, model, backend, "
            "params, created, cost_usd, nbytes) VALUES (?, ?, 'png', 8, 6, ?, 'gpt-image-2', "
            "'openai', '{}', 1.0, 0.25, ?)",
            (key, sha, f"prompt {key}", len(data)),
        )
    conn.close()


def test_migration_keeps_keys_and_unmasks_test_rows(tmp_path: Path) -> None:
    _old_store(tmp_path / "old")
    with Store(tmp_path / "old") as store:
        assert {r.key: r.source for r in store.history()} == {"real": "openai", "fake": "test"}
        assert store.spent()["usd"] == 0.25  # the test server's $0.25 no longer counts
        real = store.serving(sources.policy_for(Config(), "openai"))
        assert set(real.get_many(["real", "fake"])) == {"real"}
        assert store.check().ok
