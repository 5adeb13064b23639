"""Incremental crawls: nothing new costs ≤2 requests per entry point; after /_advance, only the new posts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import func, select

from crawlers.incremental import SeenContent, parse_mark
from crawlers.items import PostItem
from crawlers.runner import run_crawl
from fixtures.serving import serve_in_thread
from fixtures.simulator.app import create_app
from settings import Settings, load_settings
from storage.db import make_engine, make_session_factory, session_scope
from storage.models import Post


@pytest.fixture
def simulator() -> Iterator[str]:
    # Its own simulator: advancing the clock must not leak into other tests' worlds.
    with serve_in_thread(create_app(42)) as base:
        yield base


@pytest.fixture
def settings(simulator: str, sqlite_url: str) -> Settings:
    return load_settings(env={"WEISU_SIMULATOR_URL": simulator, "WEISU_DATABASE_URL": sqlite_url})


def _entry_points(settings: Settings, key: str) -> int:
    return sum(len(e.keywords) or 1 for e in settings.platforms[key].entry_points)


def test_repeat_crawl_with_nothing_new_sends_at_most_two_requests_per_entry_point(settings: Settings) -> None:
    first = run_crawl(settings, None)
    assert sum(r.posts_stored for r in first) == 479
    again = run_crawl(settings, None)
    assert [r.posts_stored for r in again] == [0] * len(again)
    # robots.txt plus one page per entry point (an HTML board also skips every stored thread's page)
    assert {r.platform_id: r.requests for r in again} == {
        key: 1 + _entry_points(settings, key) for key in settings.enabled_platforms()
    }
    assert all(r.requests <= 2 * _entry_points(settings, r.platform_id) for r in again)


def test_after_advance_an_incremental_crawl_stores_exactly_the_new_posts(
    settings: Settings, simulator: str
) -> None:
    run_crawl(settings, None)
    factory = make_session_factory(make_engine(settings.database_url))
    with session_scope(factory) as session:
        before = session.scalar(select(func.max(Post.id)))
    appeared = httpx.post(f"{simulator}/_advance", params={"minutes": 330}).json()["appeared"]
    assert Counter(p["platform"] for p in appeared) == {key: 3 for key in settings.enabled_platforms()}
    results = run_crawl(settings, None)
    assert {r.platform_id: r.posts_stored for r in results} == {
        key: 3 for key in settings.enabled_platforms()
    }
    assert all(r.status == "ok" for r in results)
    with session_scope(factory) as session:
        stored = {
            (p.platform_id, p.external_id, p.parent_external_id)
            for p in session.scalars(select(Post).where(Post.id > before))
        }
    assert stored == {(p["platform"], p["external_id"], p["parent_external_id"]) for p in appeared}
    truth = httpx.get(f"{simulator}/_truth").json()["posts"]
    assert len(truth) == 479 + 33


def test_advance_refuses_to_turn_the_clock_back(simulator: str) -> None:
    assert httpx.post(f"{simulator}/_advance", params={"minutes": -5}).status_code == 400
    assert httpx.get(f"{simulator}/_advance", params={"minutes": 0}).json()["appeared"] == []


def test_feed_page_reaches_the_mark_when_any_post_is_at_or_below_it() -> None:
    from datetime import UTC, datetime

    seen = SeenContent(parse_mark("2026-11-28T02:43:00+00:00 9222034125856492"))

    def item(when: str, external_id: str) -> PostItem:
        return PostItem(
            "weibo", external_id, "u", "t", published_at=datetime.fromisoformat(when).astimezone(UTC)
        )

    assert not seen.reached([item("2026-11-28T03:00:00+00:00", "1")])
    assert seen.reached(
        [item("2026-11-28T03:00:00+00:00", "1"), item("2026-11-28T02:43:00+00:00", "9222034125856492")]
    )
    assert not SeenContent().reached([item("2020-01-01T00:00:00+00:00", "1")])
    assert parse_mark(None) is None
