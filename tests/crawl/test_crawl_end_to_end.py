"""A full crawl of the simulator stores exactly the posts it serves; a second crawl stores none."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC

import httpx
import pytest
from sqlalchemy import func, select

from crawlers.config import crawler_settings
from crawlers.runner import CrawlResult, run_crawl
from fixtures.serving import serve_in_thread
from fixtures.simulator.app import create_app
from settings import Settings, load_settings
from storage.db import make_engine, make_session_factory, session_scope
from storage.models import CrawlRun, Platform, Post


@pytest.fixture(scope="module")
def simulator() -> Iterator[str]:
    with serve_in_thread(create_app(42)) as base:
        yield base


@pytest.fixture
def settings(simulator: str, sqlite_url: str) -> Settings:
    return load_settings(env={"WEISU_SIMULATOR_URL": simulator, "WEISU_DATABASE_URL": sqlite_url})


def test_full_crawl_stores_every_served_post_once_and_a_second_crawl_adds_nothing(
    settings: Settings, simulator: str
) -> None:
    truth = httpx.get(f"{simulator}/_truth").json()["posts"]
    first = run_crawl(settings, None)
    assert [(r.platform_id, r.status, r.errors) for r in first] == [
        ("weibo", "ok", 0),
        ("heimao", "ok", 0),
        ("tieba", "ok", 0),
        ("bilibili", "ok", 0),
        ("bilibili_search", "ok", 0),
        ("douyin", "ok", 0),
        ("weibo_comments", "ok", 0),
        ("zhihu", "ok", 0),
        ("douban", "ok", 0),
        ("szgov", "ok", 0),
        ("sznews", "ok", 0),
    ]
    assert sum(r.posts_stored for r in first) == len(truth) == 479
    assert {r.platform_id: r.posts_stored for r in first} == {
        "weibo": 131,
        "heimao": 44,
        "tieba": 45,
        "bilibili": 60,
        "bilibili_search": 24,
        "douyin": 28,
        "weibo_comments": 35,
        "zhihu": 20,
        "douban": 30,
        "szgov": 16,
        "sznews": 46,
    }
    assert [r.posts_stored for r in run_crawl(settings, None)] == [0] * 11

    factory = make_session_factory(make_engine(settings.database_url))
    with session_scope(factory) as session:
        stored = {(p.platform_id, p.external_id, p.parent_external_id) for p in session.scalars(select(Post))}
        assert stored == {(p["platform"], p["external_id"], p["parent_external_id"]) for p in truth}
        runs = list(session.scalars(select(CrawlRun).order_by(CrawlRun.id)))
        assert [(r.platform_id, r.status, r.posts_stored) for r in runs[11:]] == [
            (key, "ok", 0)
            for key in (
                "weibo",
                "heimao",
                "tieba",
                "bilibili",
                "bilibili_search",
                "douyin",
                "weibo_comments",
                "zhihu",
                "douban",
                "szgov",
                "sznews",
            )
        ]
        assert all(r.finished_at is not None and r.requests > 0 for r in runs)
        marks = {key: mark for key, mark in session.execute(select(Platform.id, Platform.high_water_mark))}
        assert marks["weibo"] == "2026-11-28T02:43:00+00:00 9222034125856492"


def test_stored_posts_are_masked_pseudonymous_and_utc(settings: Settings, simulator: str) -> None:
    run_crawl(settings, ["weibo", "tieba"])
    factory = make_session_factory(make_engine(settings.database_url))
    with session_scope(factory) as session:
        posts = list(session.scalars(select(Post)))
        assert {p.platform_id for p in posts} == {"weibo", "tieba"}
        assert all(p.published_at is not None and p.published_at.tzinfo == UTC for p in posts)
        assert all(p.author_key and re.fullmatch(r"[0-9a-f]{64}", p.author_key) for p in posts)
        every_text = "\n".join(f"{p.title or ''} {p.text}" for p in posts)
        assert re.search(r"(?<!\d)1[3-9]\d{9}(?!\d)", every_text) is None
        assert "用户" not in {p.author_key for p in posts}
        assert "[手机号]" in every_text
        assert "<span" not in every_text and "&amp;" not in every_text
        assert "😡" in every_text  # GB18030 bytes from the GBK-labelled board decoded intact
        count = session.scalar(select(func.count()).select_from(CrawlRun))
        assert count == 2


def test_unknown_platform_is_refused_before_crawling(settings: Settings) -> None:
    with pytest.raises(ValueError, match="unknown platform"):
        run_crawl(settings, ["nope"])


def test_child_process_that_fails_is_reported_as_failed(settings: Settings) -> None:
    settings.platforms["sznews"].base_url = "http://127.0.0.1:9/p/sznews"  # nothing listens there
    [result] = run_crawl(settings, ["sznews"])
    assert result == CrawlResult("sznews", "failed", result.requests, 0, 0, result.errors)
    assert result.errors >= 1


def test_politeness_comes_from_config_and_is_dropped_only_for_the_simulator(settings: Settings) -> None:
    real = load_settings(env={})
    weibo = crawler_settings(real, "weibo")
    assert (weibo["DOWNLOAD_DELAY"], weibo["CONCURRENT_REQUESTS_PER_DOMAIN"], weibo["ROBOTSTXT_OBEY"]) == (
        3.0,
        1,
        True,
    )
    assert weibo["USER_AGENT"] == real.user_agent and weibo["AUTOTHROTTLE_ENABLED"] is True
    assert crawler_settings(settings, "weibo")["DOWNLOAD_DELAY"] == 0.0
