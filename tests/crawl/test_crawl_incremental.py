"""Incremental crawling: the high-water mark, and a simulator clock that only moves forward.

The sweeps themselves (a repeat sweep costs at most two requests per entry point; after /_advance
only the new posts are stored) run over every platform in test_crawl_end_to_end.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from crawlers.incremental import SeenContent, parse_mark
from crawlers.items import PostItem
from fixtures.serving import serve_in_thread
from fixtures.simulator.app import create_app


@pytest.fixture
def simulator() -> Iterator[str]:
    # Its own simulator: advancing the clock must not leak into other tests' worlds.
    with serve_in_thread(create_app(42)) as base:
        yield base


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
