"""The admins' platform page draws each platform's recent volume as an inline SVG sparkline (the expected
level dashed) and says, as the health alert does, what a quiet platform's last runs are missing."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from review_client import NOW, review_app, submit_login

from storage.models import CrawlRun, Platform

pytestmark = pytest.mark.usefixtures("cheap_hashing")
VOLUMES = [20, 22, 18, 21, 19, 20, 5]


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """The page does not depend on the database: SQLite only."""
    return sqlite_url


@pytest.fixture
def page(settings, session) -> str:
    session.add(Platform(id="heimao", name="黑猫投诉", kind="json_feed"))
    session.flush()
    for index, items in enumerate(VOLUMES):
        started = NOW - timedelta(hours=len(VOLUMES) - index)
        session.add(
            CrawlRun(platform_id="heimao", started_at=started, finished_at=started + timedelta(minutes=5),
                     status="ok", items=items)
        )  # fmt: skip
    session.commit()
    with review_app(settings, session, [("ada", "ada-pw-123", "admin")]) as app, TestClient(app) as client:
        submit_login(client, "ada", "ada-pw-123")
        return client.get("/admin/platforms").text


def _row(html: str, key: str) -> str:
    match = re.search(rf'<tr id="platform-{key}"[^>]*>(.*?)</tr>', html, re.S)
    assert match is not None
    return match.group(0)


def test_the_platform_page_draws_the_recent_volume_as_a_sparkline(page: str) -> None:
    row = _row(page, "heimao")
    assert (
        '<svg xmlns="http://www.w3.org/2000/svg" class="sparkline" role="img" width="160" height="32" '
        'viewBox="0 0 160 32"><title>黑猫投诉：最近 7 次抓取的条目数 20、22、18、21、19、20、5，'
        "预期约 20 条</title>"
    ) in row
    assert '<line x1="0" x2="160" y1="5.4" y2="5.4" stroke="#b0bec5" stroke-dasharray="3 2"/>' in row
    assert 'points="3.0,5.4 28.7,3.0 54.3,7.7 80.0,4.2 105.7,6.5 131.3,5.4 157.0,23.1"' in row
    assert '<circle cx="157.0" cy="23.1" r="2.5" fill="#c62828"/>' in row


def test_the_platform_page_says_what_a_quiet_platform_misses(page: str) -> None:
    assert (
        '<span class="flag">黑猫投诉：最近一次抓取只有 5 条，远低于近 6 次正常抓取的中位数 20 条'
        "（泊松下尾概率 7.2e-05），"
        "自 2026-11-29 13:00 起每次约少看到 15 条帖子。</span>"
    ) in _row(page, "heimao")


def test_a_platform_never_crawled_has_no_sparkline(page: str) -> None:
    assert '<td class="volume">—</td>' in _row(page, "weibo")
