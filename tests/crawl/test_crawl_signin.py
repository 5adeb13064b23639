"""A platform's credential (``credentials_env``) reaches that platform only, in the header it names, and
is never logged or stored.

One sweep of every enabled platform, in a crawl child started as the runner starts one but logging at
DEBUG, against a simulator that records every request's headers: 聚投诉 behind a login wall it passes
with its cookie, 今日头条 with a token (in Authorization) it refuses, 大众点评 with its variable unset.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from simulated import crawl_settings, keys_of, migrated_sqlite, platform_of, stored_posts
from sqlalchemy import select
from starlette.types import ASGIApp, Receive, Scope, Send

from crawlers.crawl_process import STDIN_AUTHOR_KEY, STDIN_SETTINGS
from crawlers.middlewares.credentials import credential_from_env, within
from crawlers.runner import child_env, run_crawl
from fixtures.serving import serve_in_thread
from fixtures.simulator.app import create_app
from fixtures.simulator.walls import VALID_CREDENTIAL
from settings import PLATFORM, PROJECT_ROOT, Settings, load_settings
from storage.base import Base
from storage.db import session_factory_for, session_scope
from storage.models import AccessStatus, Platform, RawResponse

TOKEN = "Bearer weisu-test-token-3d8f61a2"
TOKEN_HEADER = "Authorization"


@dataclass(frozen=True)
class Seen:
    """A request as the simulator received it: its path and its headers (names lower-cased)."""

    path: str
    headers: dict[str, str]

    @property
    def platform(self) -> str:
        return platform_of(self.path)

    def carries(self, secret: str) -> bool:
        return any(secret in value for value in self.headers.values())


class Recording:
    """ASGI wrapper that keeps every request's path and headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.seen: list[Seen] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            self.seen.append(Seen(scope["path"], headers))
        await self.app(scope, receive, send)


@dataclass(frozen=True)
class Sweep:
    settings: Settings
    seen: list[Seen]
    log: str
    truth: list[dict[str, Any]]


def _crawl_child(settings: Settings, keys: list[str], env: dict[str, str]) -> str:
    """Run the crawl child as runner._spawn_crawl does, at DEBUG; its whole log."""
    dump = settings.model_dump(mode="json")
    dump["database"]["url"] = settings.database_url
    message = json.dumps({STDIN_SETTINGS: dump, STDIN_AUTHOR_KEY: settings.author_hash_key})
    command = [
        sys.executable,
        "-m",
        "crawlers.crawl_process",
        "--settings",
        "-",
        "--log-level",
        "DEBUG",
        *keys,
    ]
    done = subprocess.run(
        command,
        input=message.encode(),
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode("utf-8", "replace")[-2000:]
    return (done.stdout + done.stderr).decode("utf-8", "replace")


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sweep]:
    recording = Recording(create_app(42))
    with serve_in_thread(recording) as base:
        httpx.post(f"{base}/_walls", params={"jutousu": "login_redirect", "toutiao": "expired_cookie"})
        settings = crawl_settings(base, migrated_sqlite(tmp_path_factory.mktemp("signin")))
        settings = settings.changed(
            platforms={
                **settings.platforms,
                "toutiao": settings.platforms["toutiao"].changed(credentials_header=TOKEN_HEADER),
            }
        )
        env = child_env(settings) | {"WEISU_JUTOUSU_COOKIE": VALID_CREDENTIAL, "WEISU_TOUTIAO_COOKIE": TOKEN}
        for platform in settings.platforms.values():
            if platform.credentials_env not in (None, "WEISU_JUTOUSU_COOKIE", "WEISU_TOUTIAO_COOKIE"):
                env.pop(platform.credentials_env, None)
        log = _crawl_child(settings, list(settings.enabled_platforms()), env)
        truth = httpx.get(f"{base}/_truth", timeout=30).json()["posts"]
        yield Sweep(settings, list(recording.seen), log, truth)


def _platform_requests(sweep: Sweep, key: str) -> list[Seen]:
    return [s for s in sweep.seen if s.platform == key and not s.path.endswith("/robots.txt")]


def test_the_cookie_goes_on_every_request_of_its_platform(sweep: Sweep) -> None:
    cookies = [s.headers.get("cookie") for s in _platform_requests(sweep, "jutousu")]
    assert len(cookies) >= 2  # a listing page and the page after it
    assert set(cookies) == {VALID_CREDENTIAL}


def test_the_cookie_reaches_no_other_platform(sweep: Sweep) -> None:
    carrying = [s for s in sweep.seen if s.carries(VALID_CREDENTIAL)]
    assert {s.platform for s in carrying} == {"jutousu"}
    assert len(carrying) == len(_platform_requests(sweep, "jutousu"))


def test_a_token_goes_in_the_header_the_platform_names(sweep: Sweep) -> None:
    requests = _platform_requests(sweep, "toutiao")
    assert [s.headers.get("authorization") for s in requests] == [TOKEN] * 2  # one per keyword
    assert [s.headers.get("cookie") for s in requests] == [None, None]
    assert {s.platform for s in sweep.seen if s.carries(TOKEN)} == {"toutiao"}


def test_a_platform_without_its_variable_sends_no_credential(sweep: Sweep) -> None:
    dianping = _platform_requests(sweep, "dianping")
    assert dianping and [s.headers.get("cookie") for s in dianping] == [None] * len(dianping)


def test_an_unset_variable_is_named_once_in_the_log(sweep: Sweep) -> None:
    lines = [line for line in sweep.log.splitlines() if "WEISU_DIANPING_COOKIE" in line]
    assert len(lines) == 1
    assert lines[0].endswith(
        "[crawlers.middlewares.credentials] WARNING: platform dianping: WEISU_DIANPING_COOKIE is not set; "
        "crawling without credentials"
    )


def test_the_credentials_appear_in_no_log_line(sweep: Sweep) -> None:
    assert "DEBUG: Crawled (200) <GET" in sweep.log  # the log holds every request
    assert VALID_CREDENTIAL not in sweep.log
    assert TOKEN not in sweep.log and TOKEN.split()[1] not in sweep.log


def _stored_text(settings: Settings) -> str:
    """Every column of every table as text, and every raw body decompressed."""
    parts: list[str] = []
    with session_scope(session_factory_for(settings.database_url)) as session:
        for table in Base.metadata.sorted_tables:
            for row in session.execute(select(table)):
                parts.extend(repr(value) for value in row)
                parts.extend(json.dumps(value, ensure_ascii=False, default=str) for value in row)
        for body in session.scalars(select(RawResponse.body_gz)):
            parts.append(gzip.decompress(body).decode("utf-8", "replace"))
    return "\n".join(parts)


def test_the_credentials_are_stored_nowhere(sweep: Sweep) -> None:
    stored = _stored_text(sweep.settings)
    assert "jutousu" in stored and len(stored) > 100_000  # the sweep's posts, runs and bodies are there
    assert VALID_CREDENTIAL not in stored
    assert TOKEN.split()[1] not in stored


def test_a_signed_in_platform_passes_its_login_wall(sweep: Sweep) -> None:
    expected = keys_of([p for p in sweep.truth if p["platform"] == "jutousu" and not p["robots_disallowed"]])
    stored = {("jutousu", p.external_id) for p in stored_posts(sweep.settings) if p.platform_id == "jutousu"}
    assert stored == expected and expected
    with session_scope(session_factory_for(sweep.settings.database_url)) as session:
        assert session.get(Platform, "jutousu").access_status == AccessStatus.OK  # type: ignore[union-attr]


def test_a_refused_token_is_an_expired_credential_named_by_its_header(sweep: Sweep) -> None:
    with session_scope(session_factory_for(sweep.settings.database_url)) as session:
        row = session.get(Platform, "toutiao")
        assert row is not None
        assert (row.access_status, row.access_reason) == (
            AccessStatus.COOKIE_EXPIRED,
            "Authorization 凭据 已失效：入口 toutiao-search 接口返回未登录（message：用户未登录），"
            "请更新环境变量 WEISU_TOUTIAO_COOKIE 中的 Authorization 凭据",
        )


# --- redirects and hosts ----------------------------------------------------------------------------


def test_a_redirect_out_of_the_platform_does_not_carry_the_cookie(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEISU_JUTOUSU_COOKIE", VALID_CREDENTIAL)
    recording = Recording(create_app(42))
    with serve_in_thread(recording) as base:
        # Every first request is redirected to /_moved/p/jutousu/…: outside the platform's base URL.
        httpx.post(f"{base}/_faults", params={"redirect_rate": 1.0}).raise_for_status()
        settings = crawl_settings(base, migrated_sqlite(tmp_path))
        [result] = run_crawl(settings, ["jutousu"])
    moved = [s for s in recording.seen if s.path.startswith("/_moved/p/jutousu/")]
    direct = [s for s in recording.seen if s.path.startswith("/p/jutousu/") and "robots" not in s.path]
    assert result.posts_stored > 0 and moved and len(moved) == len(direct)
    assert [s.headers.get("cookie") for s in moved] == [None] * len(moved)
    assert [s.headers.get("cookie") for s in direct] == [VALID_CREDENTIAL] * len(direct)


@pytest.mark.parametrize(
    ("url", "inside"),
    [
        ("https://ts.21cn.com/front/api/search?x=1", True),
        ("https://ts.21cn.com", True),
        ("https://TS.21cn.com:443/a", True),
        ("http://ts.21cn.com/front/api/search", False),  # never downgraded to plain http
        ("https://passport.21cn.com/login", False),
        ("https://ts.21cn.com.evil.example/", False),
        ("https://ts.21cn.com:8443/a", False),
        ("https://evil.example/?u=https://ts.21cn.com/", False),
    ],
)
def test_a_credential_goes_only_under_the_platforms_base_url(url: str, inside: bool) -> None:
    assert within(url, "https://ts.21cn.com") is inside


@pytest.mark.parametrize(
    ("url", "inside"),
    [
        ("http://127.0.0.1:8010/p/jutousu/front/api", True),
        ("http://127.0.0.1:8010/p/jutousu", True),
        ("http://127.0.0.1:8010/p/jutousu2/front/api", False),
        ("http://127.0.0.1:8010/p/weibo/api", False),
        ("http://127.0.0.1:8010/_moved/p/jutousu/front/api", False),
        ("http://127.0.0.1:8010/robots.txt", False),
    ],
)
def test_on_the_simulator_a_credential_goes_only_under_its_platforms_prefix(url: str, inside: bool) -> None:
    assert within(url, "http://127.0.0.1:8010/p/jutousu") is inside


def test_a_value_with_a_line_break_is_not_sent_and_not_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("WEISU_JUTOUSU_COOKIE", "a=1\r\nX-Injected: yes")
    platform = load_settings(env={}).platforms["jutousu"]
    assert credential_from_env("jutousu", platform) is None
    assert [r.getMessage() for r in caplog.records] == [
        "platform jutousu: WEISU_JUTOUSU_COOKIE holds a line break or NUL; crawling without credentials"
    ]


def _platform(**values: Any) -> dict[str, Any]:
    return {
        "name": "X",
        "kind": "rss",
        "base_url": "https://x.example",
        "entry_points": [{"url": "/"}],
    } | values


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"credentials_header": "Authorization"}, "credentials_header needs credentials_env"),
        ({"credentials_env": "X", "credentials_header": "Host"}, "Host is set by the HTTP client"),
        (
            {"credentials_env": "X", "credentials_header": "Bad Header"},
            "'Bad Header' is not an HTTP header name",
        ),
        ({"credentials_env": "WEISU X"}, "must be the name of an environment variable"),
    ],
)
def test_a_bad_credentials_setting_is_refused(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PLATFORM.validate_python(_platform(**values))


def test_the_credential_value_is_not_part_of_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEISU_JUTOUSU_COOKIE", VALID_CREDENTIAL)
    settings = load_settings(env=dict(os.environ))
    assert VALID_CREDENTIAL not in json.dumps(settings.model_dump(mode="json"), ensure_ascii=False)
