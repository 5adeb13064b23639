"""A platform's download delay and concurrency hold across every worker of a distributed crawl: three
workers crawling one platform with a 0.4 s delay start its requests at least 0.4 s apart, one at a time,
as the platform sees them (the simulator's side: a recording wrapper around its ASGI app).

The simulator's own convenience — every delay dropped (crawlers/config.py) — is turned off here by
crawling the platform alone at its rebased URL without naming the simulator. The requests seen at the
server are compared with an allowance for the trip from the limiter's grant to the server (a worker's
first request also opens its connection): no k requests in a row at the server span less than k
delays, give or take that allowance.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from distributed_helpers import RedisSpace, clean_redis, start_worker, wait_all
from shared_databases import MigratedDatabases
from simulated import crawl_runs, crawl_settings

from fixtures.serving import serve_in_thread
from fixtures.simulator.app import create_app
from settings import Settings

PLATFORM = "weibo"
DELAY = 0.4
#: How much later than its grant a request may reach the server (a fresh connection, a busy worker).
TRANSIT_ALLOWANCE = 0.25
SEEDS = [42, 43, 7]


@dataclass
class Recorder:
    """An ASGI wrapper noting when each request to the platform started and ended, at the server."""

    app: Any
    spans: list[tuple[float, float]] = field(default_factory=list)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(f"/p/{PLATFORM}/"):
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        try:
            await self.app(scope, receive, send)
        finally:
            self.spans.append((started, time.monotonic()))


@dataclass(frozen=True)
class Crawled:
    spans: list[tuple[float, float]]
    requests_by_worker: list[int]
    codes: list[int]


def polite(settings: Settings) -> Settings:
    platform = settings.platforms[PLATFORM]
    politeness = platform.politeness.changed(download_delay=DELAY, concurrency=1)
    # Off the simulator, every platform would share the loopback host and so split its delay budget
    # (crawlers.config.platforms_sharing_host): the others are switched off.
    platforms = {key: other.changed(enabled=False) for key, other in settings.platforms.items()}
    platforms[PLATFORM] = platform.changed(politeness=politeness)
    return settings.changed(simulator_url=None, platforms=platforms)


def crawl_with_three_workers(seed: int, database_url: str, space: RedisSpace) -> Crawled:
    recorder = Recorder(create_app(seed))
    with serve_in_thread(recorder) as base:
        settings = polite(space.distributed(crawl_settings(base, database_url)))
        workers = [start_worker(settings, [PLATFORM]) for _ in range(3)]
        logs = wait_all(workers)
        assert [w.returncode for w in workers] == [0, 0, 0], logs
    runs = [run.requests for run in crawl_runs(settings) if run.platform_id == PLATFORM]
    return Crawled(sorted(recorder.spans), runs, [w.returncode for w in workers])


@pytest.fixture(scope="module", params=SEEDS, ids=[f"seed-{seed}" for seed in SEEDS])
def crawled(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    migrated_databases: MigratedDatabases,
) -> Crawled:
    """One polite three-worker crawl per seed, which both tests read. On SQLite only: what is tested is
    kept in Redis, and the database (the workers' own commits) plays no part in it."""
    database_url = migrated_databases.sqlite_copy(tmp_path_factory.mktemp("polite") / "weisu.db")
    with clean_redis() as space:
        return crawl_with_three_workers(request.param, database_url, space)


def test_requests_to_a_platform_are_spaced_by_its_delay_across_workers(crawled: Crawled) -> None:
    starts = [start for start, _ in crawled.spans]
    assert len(starts) >= 5
    shortfalls = [
        (i, k)
        for i in range(len(starts))
        for k in range(1, len(starts) - i)
        if starts[i + k] - starts[i] < k * DELAY - TRANSIT_ALLOWANCE
    ]
    assert shortfalls == []
    # Over the whole crawl the platform saw no more than one request per delay.
    assert starts[-1] - starts[0] >= (len(starts) - 1) * DELAY - TRANSIT_ALLOWANCE
    # The platform's requests were indeed shared: more than one worker sent some.
    assert sum(1 for n in crawled.requests_by_worker if n > 0) >= 2


def test_no_two_requests_to_a_concurrency_one_platform_overlap_across_workers(crawled: Crawled) -> None:
    overlapping = [
        (first, second)
        for first, second in zip(crawled.spans, crawled.spans[1:], strict=False)
        if second[0] < first[1] - TRANSIT_ALLOWANCE
    ]
    assert overlapping == []
