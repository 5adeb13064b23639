"""Crawl health: each run's figures, and the layout-change flag when a run finds nothing or empty text."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from scrapy.utils.test import get_crawler
from sqlalchemy import select

from crawlers.extensions.crawl_runs import CrawlRunRecorder
from crawlers.extensions.health import (
    PlatformHealth,
    RunFigures,
    could_be_layout_change,
    dropped_reasons,
    layout_change,
    platform_overview,
    responses_by_status,
)
from crawlers.spiders import JsonFeedSpider
from settings import CrawlHealthSettings, Settings, load_settings
from storage.db import make_engine, make_session_factory, session_scope
from storage.models import CrawlRun
from storage.queries import latest_runs

RULES = CrawlHealthSettings(lookback_runs=3, min_previous_items=5, empty_text_jump=0.3, min_items_for_share=5)
STATS = {
    "downloader/response_status_count/200": 12,
    "downloader/response_status_count/503": 2,
    "downloader/request_count": 14,
    "item_scraped_count": 30,
    "weisu/dropped/empty_text": 3,
    "weisu/missing_field/text": 1,
    "weisu/missing_field/published_at": 4,
    "weisu/malformed_pages": 1,
}


def test_responses_are_counted_by_status() -> None:
    assert responses_by_status(STATS) == {"200": 12, "503": 2}


def test_dropped_items_are_counted_by_reason_and_a_missing_time_is_not_a_drop() -> None:
    assert dropped_reasons(STATS) == {"empty_text": 3, "missing_field/text": 1}


def test_run_figures_count_empty_text_and_ok_responses() -> None:
    figures = RunFigures.of(30, dropped_reasons(STATS), responses_by_status(STATS), reached_seen=False)
    assert figures == RunFigures(items=30, empty_text=4, ok_responses=12, reached_seen=False)
    assert (figures.found, round(figures.empty_share, 3)) == (34, 0.118)


@pytest.mark.parametrize(
    ("current", "previous", "reason"),
    [
        (RunFigures(0, ok_responses=3), [RunFigures(20), RunFigures(8)],
         "本次未解析出任何条目，此前2次运行最多 20 条"),
        (RunFigures(0, ok_responses=3), [RunFigures(4), RunFigures(2)], None),  # earlier runs found too few
        (RunFigures(0, ok_responses=0), [RunFigures(20)], None),  # no page answered: an outage, not a layout
        (RunFigures(0, ok_responses=3, reached_seen=True), [RunFigures(20)], None),  # nothing new on a board
        (RunFigures(0, ok_responses=3), [], None),  # the first run has nothing to compare with
        (RunFigures(6, empty_text=14), [RunFigures(20, empty_text=0), RunFigures(18, empty_text=2)],
         "空正文条目占比 70%，此前平均 5%"),
        (RunFigures(16, empty_text=4), [RunFigures(20, empty_text=0)], None),  # 20%: below the jump
        (RunFigures(1, empty_text=3), [RunFigures(20, empty_text=0)], None),  # 4 items: too few to judge
        # only the last lookback_runs (3) count: the 4th run back found 50 items
        (RunFigures(0, ok_responses=1), [RunFigures(0), RunFigures(0), RunFigures(1), RunFigures(50)], None),
    ],
)  # fmt: skip
def test_layout_change_rules(current: RunFigures, previous: list[RunFigures], reason: str | None) -> None:
    assert layout_change(current, previous, RULES) == reason


def _figures_grid() -> list[RunFigures]:
    return [
        RunFigures(items=items, empty_text=empty, ok_responses=ok, reached_seen=seen)
        for items in (0, 1, 4, 5, 20)
        for empty in (0, 1, 2, 5, 30)
        for ok in (0, 1)
        for seen in (False, True)
    ]


def test_a_run_that_could_not_be_a_layout_change_is_none_whatever_the_earlier_runs() -> None:
    grid = _figures_grid()
    histories = [[grid[i], grid[(i * 7) % len(grid)], grid[(i * 13) % len(grid)]] for i in range(len(grid))]
    ruled_out = [current for current in grid if not could_be_layout_change(current, RULES)]
    for current in ruled_out:
        assert [layout_change(current, history, RULES) for history in histories] == [None] * len(histories)
    # Not vacuous: the same histories flag some of the runs that could be a layout change.
    flagged = [c for c in grid if any(layout_change(c, history, RULES) for history in histories)]
    assert ruled_out and flagged
    assert not set(flagged) & set(ruled_out)


def test_a_run_that_found_nothing_or_many_empty_texts_could_be_a_layout_change() -> None:
    assert could_be_layout_change(RunFigures(items=0, ok_responses=1), RULES)
    assert could_be_layout_change(RunFigures(items=10, empty_text=5, ok_responses=1), RULES)
    assert not could_be_layout_change(RunFigures(items=0, ok_responses=1, reached_seen=True), RULES)
    assert not could_be_layout_change(RunFigures(items=10, empty_text=4, ok_responses=1), RULES)


def _run(settings: Settings, stats: dict[str, int]) -> None:
    """One crawl run of weibo through the recorder, as Scrapy would drive it, with these stats."""
    crawler = get_crawler(JsonFeedSpider, {"WEISU_SETTINGS": settings, "WEISU_PLATFORM": "weibo"})
    spider = JsonFeedSpider.from_crawler(crawler, platform_id="weibo")
    recorder = CrawlRunRecorder.from_crawler(crawler)
    recorder.spider_opened(spider)
    for key, value in stats.items():
        crawler.stats.set_value(key, value)
    recorder.spider_closed(spider, "finished")


def test_a_run_that_finds_nothing_after_runs_that_found_posts_is_flagged(database_url: str) -> None:
    settings = load_settings(env={"WEISU_DATABASE_URL": database_url})
    _run(
        settings,
        {"downloader/response_status_count/200": 5, "downloader/request_count": 5, "item_scraped_count": 40},
    )
    _run(
        settings,
        {"downloader/response_status_count/200": 2, "downloader/request_count": 2, "weisu/empty_pages": 2},
    )

    with session_scope(make_session_factory(make_engine(database_url))) as session:
        first, second = session.scalars(select(CrawlRun).order_by(CrawlRun.id))
        assert (first.layout_changed, first.health_reason) == (False, None)
        assert (second.layout_changed, second.health_reason) == (
            True,
            "本次未解析出任何条目，此前1次运行最多 40 条",
        )
        assert (second.requests, second.items, second.responses_by_status, second.dropped) == (
            2,
            0,
            {"200": 2},
            {},
        )
        assert second.duration_seconds is not None and second.duration_seconds >= 0


def test_a_run_whose_empty_text_share_jumps_is_flagged_with_its_drop_reasons(database_url: str) -> None:
    settings = load_settings(env={"WEISU_DATABASE_URL": database_url})
    _run(settings, {"downloader/response_status_count/200": 5, "item_scraped_count": 40})
    _run(
        settings,
        {"downloader/response_status_count/200": 5, "item_scraped_count": 10, "weisu/dropped/empty_text": 30},
    )

    with session_scope(make_session_factory(make_engine(database_url))) as session:
        run = latest_runs(session)["weibo"]
        assert (run.layout_changed, run.health_reason) == (True, "空正文条目占比 75%，此前平均 0%")
        assert run.dropped == {"empty_text": 30}


def test_platform_overview_lists_every_configured_platform_with_its_latest_run(sqlite_url: str) -> None:
    settings = load_settings(env={"WEISU_DATABASE_URL": sqlite_url})
    _run(
        settings,
        {"downloader/response_status_count/200": 5, "downloader/request_count": 6, "item_scraped_count": 40},
    )
    finished = datetime(2026, 11, 29, 1, 30, tzinfo=UTC)
    with session_scope(make_session_factory(make_engine(sqlite_url))) as session:
        run = latest_runs(session)["weibo"]
        run.finished_at, run.posts_stored, run.errors = finished, 38, 1
        session.flush()
        rows = platform_overview(settings, latest_runs(session))

    assert [row.platform_id for row in rows] == list(settings.platforms)
    assert rows[0] == PlatformHealth(
        platform_id="weibo",
        name="微博",
        kind="json_feed",
        priority="incremental",
        enabled=True,
        last_run_at=finished,
        status="ok",
        requests=6,
        items=40,
        stored=38,
        errors=1,
        access_status="ok",  # it had answers and met no wall
    )
    assert rows[1] == PlatformHealth("heimao", "黑猫投诉", "json_feed", "nightly", True)
