"""config.yaml loading: typed values, one-line errors naming file/key/reason, environment overrides."""

from __future__ import annotations

from pathlib import Path

import pytest
from keys_for_tests import TEST_AUTHOR_HASH_KEY, TEST_SECRET_ENV, TEST_SECRET_KEY

from settings import PROJECT_ROOT, ConfigError, load_settings, rebase_url

PLATFORM = """
platforms:
  weibo:
    name: 微博
    kind: json_feed
    base_url: https://m.weibo.cn
    entry_points:
      - url: /api/container/getIndex?page={page}
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_shipped_config_loads() -> None:
    settings = load_settings(PROJECT_ROOT / "config.yaml", env={})
    assert settings.city.name == "深圳"
    assert settings.enabled_platforms()


def test_unknown_key_names_file_key_path_and_reason(tmp_path: Path) -> None:
    path = _write(tmp_path, PLATFORM.replace("kind: json_feed", "kind: json_feed\n    knd: typo"))
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    assert str(caught.value) == f"{path}: platforms.weibo.knd: Extra inputs are not permitted"


def test_wrong_kind_is_refused_with_the_allowed_values(tmp_path: Path) -> None:
    path = _write(tmp_path, PLATFORM.replace("kind: json_feed", "kind: jsonfeed"))
    with pytest.raises(ConfigError, match=r"platforms\.weibo\.kind: Input should be 'json_feed'"):
        load_settings(path, env={})


def test_relative_base_url_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, PLATFORM.replace("https://m.weibo.cn", "m.weibo.cn"))
    with pytest.raises(ConfigError, match=r"platforms\.weibo\.base_url: Value error, must be an absolute"):
        load_settings(path, env={})


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "database:\n  url: [unclosed\n")
    with pytest.raises(ConfigError, match=r": line \d+: not valid YAML$"):
        load_settings(path, env={})


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "absent.yaml", env={})


def test_environment_overrides_database_dispatch_and_secrets(tmp_path: Path) -> None:
    env = {
        "WEISU_DATABASE_URL": "postgresql://u@db/weisu",
        "WEISU_DISPATCH_URL": "http://dispatch.invalid",
        "WEISU_DISPATCH_API_KEY": "k-123",
        "WEISU_AUTHOR_HASH_KEY": TEST_AUTHOR_HASH_KEY,
    }
    settings = load_settings(_write(tmp_path, PLATFORM), env=env)
    assert settings.database_url == "postgresql://u@db/weisu"
    assert settings.dispatch.base_url == "http://dispatch.invalid"
    assert settings.dispatch.api_key == "k-123"
    assert settings.author_hash_key == TEST_AUTHOR_HASH_KEY


def test_secrets_are_not_dumped_with_the_settings(tmp_path: Path) -> None:
    env = {"WEISU_DISPATCH_API_KEY": "k-123", **TEST_SECRET_ENV}
    dumped = str(load_settings(_write(tmp_path, PLATFORM), env=env).model_dump())
    assert "k-123" not in dumped and "author_hash_key" not in dumped and "secret_key" not in dumped
    assert TEST_AUTHOR_HASH_KEY not in dumped and TEST_SECRET_KEY not in dumped


def test_simulator_url_rebases_every_platform(tmp_path: Path) -> None:
    env = {"WEISU_SIMULATOR_URL": "http://127.0.0.1:8010"}
    settings = load_settings(_write(tmp_path, PLATFORM), env=env)
    assert settings.platforms["weibo"].base_url == "http://127.0.0.1:8010/p/weibo"


def test_rebase_keeps_path_and_query() -> None:
    assert (
        rebase_url("https://tieba.baidu.com/f?kw=深圳", "http://127.0.0.1:9/", "tieba")
        == "http://127.0.0.1:9/p/tieba/f?kw=深圳"
    )


def test_relative_sqlite_path_is_anchored_at_the_project_root(tmp_path: Path) -> None:
    settings = load_settings(_write(tmp_path, PLATFORM), env={})
    assert settings.database_url == f"sqlite:///{PROJECT_ROOT / 'var/weisu.db'}"


def test_review_session_cookie_and_proxy_defaults() -> None:
    review = load_settings(PROJECT_ROOT / "config.yaml", env={}).review
    assert (review.session_idle_minutes, review.session_absolute_hours) == (30, 12)
    assert (review.cookie_secure, review.trusted_proxies) == (True, [])
