"""No built-in secrets: the commands that need one refuse to start without it (one line, exit 2), the
rest run without any, and only the demo makes its own, once, kept owner-only under var/."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from keys_for_tests import TEST_AUTHOR_HASH_KEY, TEST_SECRET_ENV, TEST_SECRET_KEY
from typer.testing import CliRunner

from cli import app
from demo import DEMO_SECRETS, demo_secrets, demo_settings
from settings import PROJECT_ROOT, ConfigError, SecretError, Settings, load_settings, require_secrets
from verify.web.app import create_app

runner = CliRunner()
MAKE = 'python -c "import secrets; print(secrets.token_urlsafe(48))"'
UNSET = f"weisu: WEISU_SECRET_KEY is not set; make one with {MAKE} and export it\n"
SHORT = "weisu: WEISU_SECRET_KEY is 11 bytes, at least 32 are needed; make one with " + MAKE + "\n"
AUTHOR_UNSET = f"weisu: WEISU_AUTHOR_HASH_KEY is not set; make one with {MAKE} and export it\n"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str | None]:
    """A database of its own and neither secret, whatever the developer's shell exports."""
    return {
        "WEISU_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "WEISU_SECRET_KEY": None,
        "WEISU_AUTHOR_HASH_KEY": None,
    }


def test_settings_carry_no_usable_secret_by_default() -> None:
    settings = Settings()
    assert (settings.secret_key, settings.author_hash_key) == ("", "")
    with pytest.raises(SecretError):
        require_secrets(settings, "secret_key")
    with pytest.raises(SecretError):
        require_secrets(settings, "author_hash_key")


def test_serve_without_a_secret_key_stops_with_one_line_and_touches_nothing(
    env: dict[str, str | None], tmp_path: Path
) -> None:
    result = runner.invoke(app, ["serve"], env=env)
    assert (result.exit_code, result.stderr) == (2, UNSET)
    assert not (tmp_path / "cli.db").exists()


def test_serve_refuses_a_secret_key_shorter_than_32_bytes(env: dict[str, str | None]) -> None:
    result = runner.invoke(app, ["serve"], env=env | {"WEISU_SECRET_KEY": "short-key-1"})
    assert (result.exit_code, result.stderr) == (2, SHORT)


def test_a_key_is_measured_in_bytes_not_characters() -> None:
    settings = Settings(secret_key="密" * 11)  # 11 characters, 33 bytes in UTF-8
    require_secrets(settings, "secret_key")


@pytest.mark.parametrize("command", [["crawl", "weibo"], ["crawl", "--all"], ["scheduler"]])
def test_crawling_commands_need_the_author_hash_key(env: dict[str, str | None], command: list[str]) -> None:
    result = runner.invoke(app, command, env=env | {"WEISU_SECRET_KEY": TEST_SECRET_KEY})
    assert (result.exit_code, result.stderr) == (2, AUTHOR_UNSET)


def test_crawling_commands_do_not_need_the_session_key(env: dict[str, str | None]) -> None:
    result = runner.invoke(
        app, ["crawl", "no-such-platform"], env=env | {"WEISU_AUTHOR_HASH_KEY": TEST_AUTHOR_HASH_KEY}
    )
    assert (result.exit_code, result.stderr) == (2, "weisu crawl: unknown platform(s): no-such-platform\n")


@pytest.mark.parametrize(
    "command",
    [["init"], ["status"], ["platforms", "--json"], ["users", "add", "bo", "--password", "bo-pw-1234"]],
)
def test_commands_that_need_no_secret_run_without_them(
    env: dict[str, str | None], command: list[str]
) -> None:
    assert runner.invoke(app, ["init"], env=env).exit_code == 0
    result = runner.invoke(app, command, env=env)
    assert (result.exit_code, result.stderr) == (0, "")


def test_the_review_app_refuses_to_build_without_a_secret_key(tmp_path: Path) -> None:
    settings = load_settings(env={"WEISU_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"})
    with pytest.raises(SecretError, match="^WEISU_SECRET_KEY is not set"):
        create_app(settings)


def test_secrets_come_from_the_environment(tmp_path: Path) -> None:
    settings = load_settings(env=TEST_SECRET_ENV)
    assert (settings.secret_key, settings.author_hash_key) == (TEST_SECRET_KEY, TEST_AUTHOR_HASH_KEY)
    assert TEST_SECRET_KEY not in repr(settings) and TEST_AUTHOR_HASH_KEY not in repr(settings)


def test_a_trusted_proxy_must_be_an_address_or_network(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("review:\n  trusted_proxies: [10.0.0.0/8, proxy.local]\n", encoding="utf-8")
    with pytest.raises(
        ConfigError, match=r"review\.trusted_proxies: Value error, 'proxy.local' is not an IP"
    ):
        load_settings(config, env={})


def test_the_demo_makes_its_secrets_once_owner_only_and_reuses_them(tmp_path: Path) -> None:
    path = tmp_path / "var" / "demo-secrets.json"
    first = demo_secrets(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(first) == ["author_hash_key", "secret_key"]
    assert all(len(value.encode()) >= 32 for value in first.values())
    assert first["author_hash_key"] != first["secret_key"]
    assert demo_secrets(path) == first


def test_the_demo_keeps_its_secrets_where_git_ignores_them() -> None:
    assert DEMO_SECRETS.parent == PROJECT_ROOT / "var"
    assert "var/" in (PROJECT_ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()


def test_the_demo_turns_the_secure_cookie_off_for_itself_and_fills_only_missing_secrets(
    tmp_path: Path,
) -> None:
    settings = load_settings(env={"WEISU_AUTHOR_HASH_KEY": TEST_AUTHOR_HASH_KEY})
    assert settings.review.cookie_secure is True
    path = tmp_path / "demo-secrets.json"
    demo = demo_settings(settings, path)
    assert demo.review.cookie_secure is False
    assert demo.author_hash_key == TEST_AUTHOR_HASH_KEY
    assert demo.secret_key == demo_secrets(path)["secret_key"]
    require_secrets(demo, "secret_key", "author_hash_key")
