"""Requests lost after their retries are recorded once, fetched again by later runs, recovered — or
aged out and reported — and the high-water mark never moves past a lost page.

heimao is a newest-first feed of 10-post pages; among the issue's fault mix (seed 7) its page 3 is
cut off on every try (the simulator's ``cut_off``), so neither its retry nor its second chance at the
end of the run gets it. Expected posts come from ``/_truth``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from simulated import crawl_logged, crawl_runs, crawl_settings, migrated_sqlite, simulator, stored_posts
from sqlalchemy import select

from crawlers.extensions.crawl_runs import open_runs
from crawlers.extensions.health import gaps_reason, platform_overview
from crawlers.gaps import GapBook, OpenGap, kept_meta
from crawlers.runner import run_crawl
from fixtures.samples.replay import first_request, make_spider
from settings import Settings, load_settings
from storage.db import session_factory_for, session_scope
from storage.models import CrawlGap, CrawlRun, GapKind, GapState, Platform
from storage.queries import (
    crawl_gaps,
    insert_posts,
    latest_runs,
    record_gap_failure,
    stored_threads,
    sync_platforms,
)

#: The fault plan of the lost-page runs: heimao's page 3 is cut off on every try; with seed 7 the
#: rest of the mix loses nothing else.
CUT_PAGE_3 = {
    "error_rate": 0.10,
    "throttle_rate": 0.05,
    "malformed_rate": 0.02,
    "retry_after_seconds": 1,
    "cut_off": "/heimao/api/index/feed?type=1&page_size=10&page=3",
}


def _gaps(settings: Settings) -> list[CrawlGap]:
    with session_scope(session_factory_for(settings.database_url)) as session:
        gaps = crawl_gaps(session)
        session.expunge_all()
    return gaps


def _mark(settings: Settings, platform: str) -> str | None:
    with session_scope(session_factory_for(settings.database_url)) as session:
        return session.scalar(select(Platform.high_water_mark).where(Platform.id == platform))


def _page_url(settings: Settings, page: int) -> str:
    return f"{settings.platforms['heimao'].base_url}/api/index/feed?type=1&page_size=10&page={page}"


@dataclass(frozen=True)
class LostPage:
    settings: Settings
    heimao: list[str]  # truth's external ids, newest first
    first_log: str
    first_stored: set[str]
    gaps_after_first: list[CrawlGap]
    mark_after_first: str | None
    second_stored: list[str]
    gaps_after_second: list[CrawlGap]
    runs: list[CrawlRun]


@pytest.fixture(scope="module")
def lost_page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LostPage]:
    with simulator() as sim:
        settings = crawl_settings(sim.base, migrated_sqlite(tmp_path_factory.mktemp("lost")))
        heimao = [p["external_id"] for p in sim.truth() if p["platform"] == "heimao"]
        sim.set_faults(**CUT_PAGE_3, seed=7)
        first_log = crawl_logged(settings, ["heimao"])
        first_stored = stored_posts(settings)
        gaps_after_first, mark_after_first = _gaps(settings), _mark(settings, "heimao")
        sim.set_faults()  # the next run meets no fault
        run_crawl(settings, ["heimao"])
        yield LostPage(
            settings,
            heimao,
            first_log,
            {p.external_id for p in first_stored},
            gaps_after_first,
            mark_after_first,
            [p.external_id for p in stored_posts(settings, after_id=max(p.id for p in first_stored))],
            _gaps(settings),
            crawl_runs(settings),
        )


def test_a_page_cut_off_twice_is_logged_and_only_its_posts_are_lost_in_that_run(lost_page: LostPage) -> None:
    assert set(lost_page.heimao) - lost_page.first_stored == set(lost_page.heimao[20:30])
    first = lost_page.runs[0]
    assert (first.status, first.posts_stored) == ("partial", len(lost_page.heimao) - 10)
    page = _page_url(lost_page.settings, 3)
    assert f"malformed page skipped: platform=heimao url={page} error=JSONDecodeError" in lost_page.first_log


def test_the_lost_page_is_recorded_once_as_an_open_listing_gap(lost_page: LostPage) -> None:
    [gap] = lost_page.gaps_after_first
    assert (gap.platform_id, gap.kind, gap.state, gap.attempts) == ("heimao", GapKind.LISTING, "open", 1)
    assert (gap.url, gap.method, gap.body) == (_page_url(lost_page.settings, 3), "GET", None)
    assert gap.last_reason == "malformed: JSONDecodeError"
    label = lost_page.settings.platforms["heimao"].entry_points[0].label
    assert gap.meta == {"entry": 0, "keyword": None, "page": 3, "label": label, "callback": "parse_page"}


def test_a_run_with_a_lost_page_leaves_the_high_water_mark_where_it_was(lost_page: LostPage) -> None:
    assert lost_page.mark_after_first is None  # the platform's first run: no mark before it either


def test_the_next_run_stores_exactly_the_posts_the_lost_page_held(lost_page: LostPage) -> None:
    assert sorted(lost_page.second_stored) == sorted(lost_page.heimao[20:30])
    assert (lost_page.runs[1].status, lost_page.runs[1].posts_stored) == ("ok", 10)


def test_the_gap_is_fetched_again_first_and_recovered(lost_page: LostPage) -> None:
    [gap] = lost_page.gaps_after_second
    assert (gap.state, gap.attempts, gap.closed_at is not None) == (GapState.RECOVERED, 1, True)
    stats = lost_page.runs[-1].stats
    assert (stats["weisu/gaps_recovered"], stats.get("weisu/gaps_recorded", 0)) == (1, 0)


def test_a_clean_run_moves_the_mark_to_the_newest_post(lost_page: LostPage) -> None:
    newest = lost_page.heimao[0]
    assert (lost_page.runs[-1].cursor or "").endswith(f" {newest}")
    assert _mark(lost_page.settings, "heimao") == lost_page.runs[-1].cursor


# --- a page that comes through on its second chance, at the end of its own run ----------------------


def test_a_page_failing_its_retries_is_fetched_again_at_the_end_of_the_run_and_leaves_no_gap(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    with simulator() as sim:
        settings = crawl_settings(sim.base, migrated_sqlite(tmp_path_factory.mktemp("second")))
        heimao = [p["external_id"] for p in sim.truth() if p["platform"] == "heimao"]
        # Page 3 is cut off on its try and its immediate retry, and answers on the third try.
        sim.set_faults(cut_off=CUT_PAGE_3["cut_off"], cut_off_tries=2)
        run_crawl(settings, ["heimao"])
        stored = {p.external_id for p in stored_posts(settings)}
        [run] = crawl_runs(settings)
    assert stored == set(heimao)
    assert (run.status, run.stats["weisu/second_chances"], run.stats.get("weisu/gaps_recorded", 0)) == (
        "ok",
        1,
        0,
    )
    assert _gaps(settings) == []
    assert run.cursor is not None and _mark(settings, "heimao") == run.cursor


# --- a gap that keeps failing ages out, is reported once ------------------------------------------


@dataclass(frozen=True)
class Failing:
    settings: Settings
    urls: list[str]
    gaps: list[list[CrawlGap]]  # after each of three runs
    runs: list[CrawlRun]
    logs: list[str]


@pytest.fixture(scope="module")
def failing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Failing]:
    with simulator() as sim:
        settings = crawl_settings(sim.base, migrated_sqlite(tmp_path_factory.mktemp("failing")))
        settings = settings.changed(
            platforms={
                **settings.platforms,
                "heimao": settings.platforms["heimao"].changed(pagination={"max_pages": 2}),
            }
        )
        settings = settings.changed(crawl_gaps={"max_attempts": 2})
        sim.set_faults(error_rate=1.0)  # every answer a 503: nothing is ever recovered
        gaps, logs = [], []
        for _ in range(3):
            logs.append(crawl_logged(settings, ["heimao"]))
            gaps.append(_gaps(settings))
        yield Failing(
            settings, [_page_url(settings, 1), _page_url(settings, 2)], gaps, crawl_runs(settings), logs
        )


def test_a_request_failing_after_its_retries_is_recorded_once_per_page(failing: Failing) -> None:
    first = failing.gaps[0]
    assert sorted((g.url, g.state, g.attempts, g.last_reason) for g in first) == [
        (url, GapState.OPEN, 1, "HTTP 503") for url in failing.urls
    ]


def test_a_gap_that_keeps_failing_ages_out_after_max_attempts(failing: Failing) -> None:
    second = failing.gaps[1]
    assert sorted((g.url, g.state, g.attempts) for g in second) == [
        (url, GapState.AGED_OUT, 2) for url in failing.urls
    ]


def test_an_aged_out_gap_is_reported_in_the_log_the_stats_and_the_health_reason(failing: Failing) -> None:
    for url in failing.urls:
        assert f"crawl gap aged out, given up: platform=heimao url={url} attempts=2" in failing.logs[1]
    run = failing.runs[1]
    assert (run.stats["weisu/gaps_aged_out"], run.health_reason) == (2, gaps_reason(2))


def test_an_aged_out_gap_is_reported_once_and_not_fetched_again(failing: Failing) -> None:
    assert "crawl gap aged out" not in failing.logs[2]
    third = failing.runs[2]
    assert ("weisu/gaps_aged_out" in third.stats, third.health_reason) == (False, None)
    assert [(g.state, g.attempts) for g in failing.gaps[2]] == [(GapState.AGED_OUT, 2)] * 2
    # The second run asked each open gap again (a try and three retries), the third asks none.
    first, second = failing.runs[0].requests, failing.runs[1].requests
    assert (second, third.requests) == (first + 2 * 4, first)


def test_weisu_platforms_shows_the_gaps_a_run_gave_up(failing: Failing) -> None:
    with session_scope(session_factory_for(failing.settings.database_url)) as session:
        runs = latest_runs(session)
        runs["heimao"] = next(r for r in session.scalars(select(CrawlRun)) if r.id == failing.runs[1].id)
        [row] = [r for r in platform_overview(failing.settings, runs) if r.platform_id == "heimao"]
    assert (row.gaps_aged_out, row.reason) == (2, gaps_reason(2))
    assert row.cells(UTC)[-1] == f"[bold red]缺口已放弃[/]：{gaps_reason(2)}"


# --- the gap table's own rules ----------------------------------------------------------------------


def _record(session: Any, fingerprint: str, now: datetime, gap_id: int | None = None) -> CrawlGap:
    return record_gap_failure(
        session,
        platform_id="tieba",
        fingerprint=fingerprint,
        kind=GapKind.DETAIL,
        url=f"https://tieba.baidu.com/p/{fingerprint}",
        method="GET",
        body=None,
        meta={"external_id": fingerprint, "callback": "parse_detail"},
        reason="TimeoutError",
        now=now,
        gap_id=gap_id,
    )


def test_the_same_request_failing_again_is_one_gap_tried_once_more(database_url: str) -> None:
    now = datetime.now(UTC)
    with session_scope(session_factory_for(database_url)) as session:
        sync_platforms(session, {"tieba": ("贴吧", "html_board", True)})
        first = _record(session, "a1", now - timedelta(hours=1))
        again = _record(session, "a1", now)
        rows = list(session.scalars(select(CrawlGap)))
        assert (again.id, len(rows)) == (first.id, 1)
        assert (again.attempts, again.first_failed_at, again.last_tried_at) == (
            2,
            now - timedelta(hours=1),
            now,
        )


def test_a_gap_older_than_max_age_is_aged_out_when_a_run_opens(database_url: str) -> None:
    settings = load_settings(env={"WEISU_DATABASE_URL": database_url})
    now = datetime.now(UTC)
    max_age = timedelta(hours=settings.crawl_gaps.max_age_hours)
    with session_scope(session_factory_for(database_url)) as session:
        sync_platforms(session, {"tieba": ("贴吧", "html_board", True)})
        old = _record(session, "old", now - max_age - timedelta(minutes=1)).id
        recent = _record(session, "new", now - max_age + timedelta(minutes=5)).id

    opened = open_runs(settings, ["tieba"])["tieba"]

    assert [gap.id for gap in opened.gaps] == [recent]
    assert [gap.url for gap in opened.aged_out] == ["https://tieba.baidu.com/p/old"]
    with session_scope(session_factory_for(database_url)) as session:
        states = {gap.id: gap.state for gap in crawl_gaps(session, "tieba")}
    assert states == {old: GapState.AGED_OUT, recent: GapState.OPEN}


def test_a_lost_page_is_recorded_and_recovered_on_either_database(database_url: str) -> None:
    with simulator() as sim:
        settings = crawl_settings(sim.base, database_url)
        heimao = [p["external_id"] for p in sim.truth() if p["platform"] == "heimao"]
        sim.set_faults(**CUT_PAGE_3, seed=7)
        run_crawl(settings, ["heimao"])
        [lost] = _gaps(settings)
        sim.set_faults()
        run_crawl(settings, ["heimao"])
    [gap] = _gaps(settings)
    assert (lost.state, gap.id, gap.state) == (GapState.OPEN, lost.id, GapState.RECOVERED)
    assert sorted(p.external_id for p in stored_posts(settings)) == sorted(heimao)


def test_only_posts_a_clean_run_stored_are_settled(database_url: str) -> None:
    with session_scope(session_factory_for(database_url)) as session:
        sync_platforms(session, {"tieba": ("贴吧", "html_board", True)})
        statuses = ("ok", "partial", "interrupted")
        runs = {status: CrawlRun(platform_id="tieba", status=status) for status in statuses}
        session.add_all(runs.values())
        session.flush()
        rows = [_post_row(f"by-{status}", run.id) for status, run in runs.items()]
        insert_posts(session, [*rows, _post_row("by-none", None)])
        ids = ["by-ok", "by-partial", "by-interrupted", "by-none", "never"]
        assert {key: thread.settled for key, thread in stored_threads(session, "tieba", ids).items()} == {
            "by-ok": True,
            "by-partial": False,
            "by-interrupted": False,
            "by-none": True,
        }


def _post_row(external_id: str, run_id: int | None) -> dict[str, Any]:
    return {
        "platform_id": "tieba",
        "external_id": external_id,
        "url": f"https://tieba.baidu.com/p/{external_id}",
        "text": "路灯坏了",
        "content_hash": "0" * 64,
        "crawl_run_id": run_id,
    }


def test_an_open_gap_is_the_first_request_rebuilt_as_one_page_with_the_entry_headers() -> None:
    settings = load_settings()
    spider = make_spider(settings, "ctrip")
    request = first_request(spider)  # the entry point's own first page: a JSON POST
    gap = OpenGap(7, GapKind.LISTING, request.url, "POST", request.body.decode(), kept_meta(request))
    spider.gaps = GapBook(pending=[gap])

    again = first_request(spider)

    assert (again.url, again.method, again.body) == (request.url, "POST", request.body)
    assert again.dont_filter  # the run's own paging may ask for the same page: neither is dropped
    assert again.headers.get("Content-Type") == b"application/json"
    assert again.callback == spider.parse_page and again.errback == spider.failed
    pages = settings.platforms["ctrip"].pagination.max_pages
    assert {k: again.meta[k] for k in ("gap_id", "page", "pages_seen", "keyword")} == {
        "gap_id": 7,
        "page": settings.platforms["ctrip"].pagination.start,
        "pages_seen": pages,  # one page: it does not page on
        "keyword": "10558614",
    }
