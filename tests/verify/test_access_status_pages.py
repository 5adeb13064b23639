"""A platform's access status (login wall, captcha, expired cookie) is shown on the admins' platform page
and on the supervisors' crawl-health table, in Chinese, its reason escaped."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from review_client import review_app, submit_login

from storage.models import AccessStatus, CrawlRun, Platform

pytestmark = pytest.mark.usefixtures("cheap_hashing")
REASON = (
    "需要登录：入口 <b>jutousu-search</b> 跳转到登录页，请在环境变量 WEISU_JUTOUSU_COOKIE 中配置有效的 Cookie"
)
ESCAPED = REASON.replace("<", "&lt;").replace(">", "&gt;")


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """Pages do not depend on the database: SQLite only."""
    return sqlite_url


@pytest.fixture
def pages(settings, session) -> dict[str, str]:
    walled = {"access_status": AccessStatus.LOGIN_WALL, "access_reason": REASON}
    session.add(Platform(id="jutousu", name="聚投诉", kind="json_feed", **walled))
    session.add(Platform(id="heimao", name="黑猫投诉", kind="json_feed", access_status=AccessStatus.OK))
    session.flush()
    session.add(CrawlRun(platform_id="jutousu", status="ok", **walled))
    session.add(CrawlRun(platform_id="heimao", status="ok", access_status="ok"))
    session.commit()
    accounts = [("ada", "ada-pw-123", "admin")]
    with review_app(settings, session, accounts) as app, TestClient(app) as client:
        submit_login(client, "ada", "ada-pw-123")
        return {"platforms": client.get("/admin/platforms").text, "dashboard": client.get("/dashboard").text}


def _row(html: str, key: str) -> str:
    match = re.search(rf'<tr id="platform-{key}"[^>]*>(.*?)</tr>', html, re.S)
    assert match is not None
    return match.group(0)


def test_the_platform_page_shows_a_walled_platform_with_its_escaped_reason(pages: dict[str, str]) -> None:
    row = _row(pages["platforms"], "jutousu")
    assert row.startswith('<tr id="platform-jutousu" class="breach">')
    assert f'<td class="access">需要登录：{ESCAPED}</td>' in row
    assert "<b>jutousu-search</b>" not in pages["platforms"]


def test_the_platform_page_shows_an_open_platform_as_accessible(pages: dict[str, str]) -> None:
    row = _row(pages["platforms"], "heimao")
    assert row.startswith('<tr id="platform-heimao">') and '<td class="access">可访问</td>' in row


def test_the_dashboard_shows_the_runs_access(pages: dict[str, str]) -> None:
    html = pages["dashboard"]
    assert f'<td><span class="flag">需要登录</span>：{ESCAPED}</td></tr>' in html
    assert "<td>可访问</td></tr>" in html
