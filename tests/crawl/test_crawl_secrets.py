"""The crawl child gets the author-hash key from its parent through memory (fork) or a pipe (spawn),
never through a file or its environment."""

from __future__ import annotations

from pathlib import Path

import pytest
from keys_for_tests import TEST_AUTHOR_HASH_KEY
from simulated import Simulator, crawl_settings, stored_posts

from crawlers.runner import child_env, run_crawl
from storage.db import upgrade

OTHER_KEY = "another-author-hash-key-0123456789abcdef"


def _author_keys(
    sim: Simulator, folder: Path, spawn: str, key: str, monkeypatch: pytest.MonkeyPatch
) -> set[str]:
    monkeypatch.setenv("WEISU_CRAWL_SPAWN", spawn)
    folder.mkdir()
    url = f"sqlite:///{folder / 'weisu.db'}"
    upgrade(url)
    settings = crawl_settings(sim.base, url)
    settings = settings.changed(author_hash_key=key)
    [result] = run_crawl(settings, ["weibo"])
    assert result.status == "ok"
    return {post.author_key for post in stored_posts(settings) if post.author_key}


def test_a_spawned_child_hashes_authors_with_the_parents_key_not_the_environments(
    sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEISU_AUTHOR_HASH_KEY", OTHER_KEY)
    forked = _author_keys(sim, tmp_path / "forked", "0", TEST_AUTHOR_HASH_KEY, monkeypatch)
    spawned = _author_keys(sim, tmp_path / "spawned", "1", TEST_AUTHOR_HASH_KEY, monkeypatch)
    other = _author_keys(sim, tmp_path / "other", "1", OTHER_KEY, monkeypatch)
    assert forked and spawned == forked
    assert not other & forked


def test_the_spawned_childs_environment_carries_no_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEISU_AUTHOR_HASH_KEY", TEST_AUTHOR_HASH_KEY)
    monkeypatch.setenv("WEISU_SECRET_KEY", OTHER_KEY)
    settings = crawl_settings("http://127.0.0.1:9", f"sqlite:///{tmp_path / 'weisu.db'}")
    settings = settings.changed(author_hash_key=TEST_AUTHOR_HASH_KEY)
    env = child_env(settings)
    assert "WEISU_AUTHOR_HASH_KEY" not in env and "WEISU_SECRET_KEY" not in env
    assert not [name for name, value in env.items() if TEST_AUTHOR_HASH_KEY in value or OTHER_KEY in value]
