"""A crawl killed outright (SIGKILL of the crawl child) at any point leaves no permanent gap: the next
run stores exactly the posts the killed one did not, on a board (tieba) and a feed (weibo).

Each case kills the child of a first crawl — before any batch was committed, after the first batches
were, and once 60% was — then crawls again and compares with ``/_truth``. Posts are stored in batches of
ten here (``crawl_gaps.store_batch``) and every answer is a little slow, so the kill lands mid-crawl.
Then a whole sweep under faults is killed, and the next sweep, under the same faults, completes the set.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from simulated import (
    Simulator,
    crawl_runs,
    crawl_settings,
    keys_of,
    migrated_sqlite,
    simulator,
    start_crawl_child,
    stored_counts,
    stored_posts,
)
from sqlalchemy import select
from waiting import wait_until

from crawlers.runner import run_crawl
from settings import Settings
from storage.db import session_factory_for, session_scope
from storage.models import CrawlRun, GapState, Platform
from storage.queries import crawl_gaps

PLATFORMS = ["tieba", "weibo"]
SLOW = {"slow_rate": 1.0, "slow_seconds": 0.1}
#: The issue's fault mix for the killed sweep (cut-off bodies, 5xx, 429 with Retry-After).
FAULTS: dict[str, Any] = {
    "error_rate": 0.10,
    "throttle_rate": 0.05,
    "malformed_rate": 0.02,
    "retry_after_seconds": 1,
    "seed": 15,
}


@dataclass(frozen=True)
class Resumed:
    settings: Settings
    expected: set[tuple[str, str]]
    at_kill: dict[str, int]
    killed_runs: list[CrawlRun]
    marks_at_kill: dict[str, str | None]
    injected: dict[str, int]  # the faults the killed crawl met
    stored_before: set[tuple[str, str]]
    stored_after: list[tuple[str, str]]
    runs: list[CrawlRun]
    marks: dict[str, str | None]


def _marks(settings: Settings) -> dict[str, str | None]:
    with session_scope(session_factory_for(settings.database_url)) as session:
        return {key: mark for key, mark in session.execute(select(Platform.id, Platform.high_water_mark))}


def kill_and_resume(
    sim: Simulator,
    folder: Any,
    platforms: list[str],
    faults: dict[str, Any],
    kill_when: Callable[[Settings, int], bool],
    then: dict[str, Any] | None = None,
) -> Resumed:
    """Crawl ``platforms`` in a child, SIGKILL it once ``kill_when(settings, expected)`` holds, then
    crawl them again with the faults ``then``; what was stored before and by the resuming run."""
    settings = crawl_settings(sim.base, migrated_sqlite(folder))
    settings = settings.changed(crawl_gaps={"store_batch": 10})
    obeys = {key for key in platforms if settings.platforms[key].politeness.obey_robots}
    sim.set_faults(**faults)  # first: which posts robots.txt disallows depends on the traps laid
    truth = [p for p in sim.truth() if p["platform"] in platforms]
    expected = keys_of([p for p in truth if not (p["robots_disallowed"] and p["platform"] in obeys)])
    child = start_crawl_child(settings, platforms)
    try:
        wait_until(lambda: kill_when(settings, len(expected)), 60, "the crawl child to reach its kill point")
        assert child.poll() is None, "the crawl finished before it could be killed"
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    assert child.returncode == -signal.SIGKILL
    at_kill = stored_counts(settings)
    killed_runs, marks_at_kill, injected = crawl_runs(settings), _marks(settings), sim.injected()
    before = stored_posts(settings)
    sim.set_faults(**(then or {}))
    run_crawl(settings, platforms)
    after = stored_posts(settings, after_id=max((p.id for p in before), default=0))
    return Resumed(
        settings,
        expected,
        at_kill,
        killed_runs,
        marks_at_kill,
        injected,
        {(p.platform_id, p.external_id) for p in before},
        [(p.platform_id, p.external_id) for p in after],
        crawl_runs(settings),
        _marks(settings),
    )


def _before_any_batch(settings: Settings, _expected: int) -> bool:
    return bool(crawl_runs(settings))  # the run is open


def _after_the_first_batch(settings: Settings, _expected: int) -> bool:
    return sum(stored_counts(settings).values()) > 0


def _late(settings: Settings, expected: int) -> bool:
    return sum(stored_counts(settings).values()) >= 0.6 * expected


KILL_POINTS = {
    # Every answer held back a second: the run is open, no response has come, nothing is stored.
    "before_any_batch": ({"slow_rate": 1.0, "slow_seconds": 1.0}, _before_any_batch),
    "after_the_first_batch": (SLOW, _after_the_first_batch),
    "late": (SLOW, _late),
}
CASES = [(platform, point) for platform in PLATFORMS for point in KILL_POINTS]


@pytest.fixture(scope="module", params=CASES, ids=[f"{platform}-{point}" for platform, point in CASES])
def resumed(
    request: pytest.FixtureRequest, sim: Simulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Resumed]:
    platform, point = request.param
    faults, kill_when = KILL_POINTS[point]
    folder = tmp_path_factory.mktemp(f"{platform}-{point}")
    yield kill_and_resume(sim, folder, [platform], faults, kill_when)
    sim.set_faults()


def test_the_kill_landed_where_the_case_says(resumed: Resumed, request: pytest.FixtureRequest) -> None:
    _, point = request.node.callspec.params["resumed"]
    stored = sum(resumed.at_kill.values())
    if point == "before_any_batch":
        assert stored == 0
    elif point == "after_the_first_batch":
        assert 0 < stored < len(resumed.expected)
    else:
        assert 0.6 * len(resumed.expected) <= stored < len(resumed.expected)


def test_the_killed_crawl_wrote_no_high_water_mark_and_closed_no_run(resumed: Resumed) -> None:
    [killed] = resumed.killed_runs
    assert (killed.status, resumed.marks_at_kill.get(killed.platform_id)) == ("running", None)
    assert resumed.runs[0].status in ("interrupted", "failed")  # closed by the next crawl or the runner


def test_the_next_run_stores_exactly_the_posts_the_killed_one_did_not(resumed: Resumed) -> None:
    assert sorted(resumed.stored_after) == sorted(resumed.expected - resumed.stored_before)
    assert resumed.stored_before | set(resumed.stored_after) == resumed.expected


def test_the_resuming_run_is_clean_and_moves_the_mark(resumed: Resumed) -> None:
    resuming = resumed.runs[-1]
    assert resuming.status == "ok"
    # A feed's mark is its newest post; a board's detail pages carry times too, so it has one as well.
    assert resumed.marks[resuming.platform_id] == resuming.cursor is not None


# --- a whole sweep under faults, killed once ------------------------------------------------------


@pytest.fixture(scope="module")
def faulty_sweep(sim: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Resumed]:
    settings = crawl_settings(sim.base, "sqlite://")  # only to list the platforms
    platforms = list(settings.enabled_platforms())
    boards = ",".join(k for k, p in settings.enabled_platforms().items() if p.kind == "html_board")
    traps = {"robots_traps": boards}

    def half_stored(current: Settings, expected: int) -> bool:
        return sum(stored_counts(current).values()) >= expected // 2

    folder = tmp_path_factory.mktemp("faulty")
    # The resuming sweep meets the same fault mix: it must complete the set through it.
    yield kill_and_resume(sim, folder, platforms, FAULTS | traps, half_stored, then=FAULTS | traps)
    sim.set_faults()


def test_after_a_faulty_sweep_killed_once_the_next_sweep_completes_the_set_exactly(
    faulty_sweep: Resumed,
) -> None:
    assert {"error", "throttle"} <= {k for k, n in faulty_sweep.injected.items() if n > 0}
    assert 0 < len(faulty_sweep.stored_before) < len(faulty_sweep.expected)
    assert faulty_sweep.stored_before | set(faulty_sweep.stored_after) == faulty_sweep.expected
    assert len(faulty_sweep.stored_after) == len(set(faulty_sweep.stored_after))


def test_no_gap_the_faulty_sweep_left_is_still_open(faulty_sweep: Resumed) -> None:
    with session_scope(session_factory_for(faulty_sweep.settings.database_url)) as session:
        left = [gap.url for gap in crawl_gaps(session) if gap.state != GapState.RECOVERED]
    assert left == []


# --- an incremental board crawl killed: the resume stops again at what the clean crawl stored ---------


def test_a_killed_incremental_board_crawl_is_resumed_down_to_the_threads_a_clean_run_stored(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    with simulator() as sim:  # its own world: the clock moves
        settings = crawl_settings(sim.base, migrated_sqlite(tmp_path_factory.mktemp("incremental")))
        settings = settings.changed(crawl_gaps={"store_batch": 1})
        run_crawl(settings, ["tieba"])
        last_clean = stored_posts(settings)[-1].id
        new_posts = [p for p in sim.advance(minutes=24 * 60) if p["platform"] == "tieba"]
        appeared = {p["external_id"] for p in new_posts}
        # New threads, and old ones new floors landed under (the list bumps them to its top).
        touched = {p["parent_external_id"] or p["external_id"] for p in new_posts}
        sim.set_faults(slow_rate=1.0, slow_seconds=0.5)
        child = start_crawl_child(settings, ["tieba"])
        try:
            wait_until(lambda: len(stored_posts(settings, after_id=last_clean)) > 0, 60, "a new post stored")
        finally:
            child.kill()
            child.wait()
        killed = {p.external_id for p in stored_posts(settings, after_id=last_clean)}
        sim.set_faults()
        before = len(sim.request_log)
        run_crawl(settings, ["tieba"])
        asked = sim.request_log[before:]
    resumed = {p.external_id for p in stored_posts(settings, after_id=last_clean)} - killed
    assert 0 < len(killed) < len(appeared)
    assert (killed | resumed, len(resumed)) == (appeared, len(appeared) - len(killed))
    # The touched threads sit on the first page beside settled ones: that page and the pages of every
    # touched thread, the killed run's own too (its reply floors may be only partly stored).
    assert "/f?" in asked[0] and all("/p/" in url for url in asked[1:])
    assert {url.rsplit("/", 1)[-1].split("?")[0] for url in asked[1:]} == touched
