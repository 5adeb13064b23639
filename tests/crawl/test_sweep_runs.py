"""A distributed sweep's crawl_runs shares are settled once every one has closed: each learns how many
shares its platform's sweep had, and the high-water mark moves to the newest post of any share only
when every share closed clean (the gap rule at the sweep's level)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from crawlers.extensions.run_owner import OWNER_KEY, current_owner
from crawlers.sweep_runs import settle_sweep
from storage.models import CrawlRun, CrawlRunStatus, Platform
from storage.queries import sync_platforms


def _shares(session: Session, *states: tuple[str, str | None]) -> list[int]:
    sync_platforms(session, {"heimao": ("黑猫投诉", "json_feed", True)})
    runs = [
        CrawlRun(platform_id="heimao", status=status, cursor=cursor, stats={"weisu/sweep": "s1"})
        for status, cursor in states
    ]
    session.add_all(runs)
    session.flush()
    return [run.id for run in runs]


def _mark(session: Session) -> str | None:
    return session.scalar(select(Platform.high_water_mark).where(Platform.id == "heimao"))


def test_a_sweep_with_a_share_still_running_is_not_settled(session: Session) -> None:
    ids = _shares(session, (CrawlRunStatus.OK, "2026-11-30 b"), (CrawlRunStatus.RUNNING, None))
    running = session.get(CrawlRun, ids[1])
    assert running is not None
    running.stats = {"weisu/sweep": "s1", OWNER_KEY: current_owner()}  # this live process runs it
    assert (settle_sweep(session, ids), _mark(session)) == (False, None)


def test_a_clean_sweep_moves_the_mark_to_its_newest_share_and_counts_its_shares(session: Session) -> None:
    ids = _shares(session, (CrawlRunStatus.OK, "2026-11-30 b"), (CrawlRunStatus.OK, "2026-11-30 c"))
    assert settle_sweep(session, ids) is True
    shares = [session.get(CrawlRun, run_id) for run_id in ids]
    assert [run.stats["weisu/sweep_shares"] for run in shares if run is not None] == [2, 2]
    assert _mark(session) == "2026-11-30 c"


def test_a_sweep_with_a_share_that_lost_a_page_moves_no_mark(session: Session) -> None:
    ids = _shares(session, (CrawlRunStatus.OK, "2026-11-30 c"), (CrawlRunStatus.PARTIAL, "2026-11-30 b"))
    assert (settle_sweep(session, ids), _mark(session)) == (True, None)
