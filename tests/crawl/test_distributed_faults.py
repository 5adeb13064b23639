"""Distributed workers under faults: a page lost after its retries waits for its second chance in Redis,
so killing every worker while it waits loses nothing (the next worker resumes the sweep and stores
exactly ``/_truth``); and a worker whose sweep vanishes from Redis stops with one line instead of
waiting forever.

heimao is a newest-first feed of 10-post pages; its page 3 is cut off on its try and its immediate
retry and answers on the third try (the simulator's ``cut_off`` with ``cut_off_tries``), among the
issue's fault mix of 5xx, 429 and cut-off bodies.
"""

from __future__ import annotations

import signal

from distributed_helpers import RedisSpace, start_worker, text, wait_all
from simulated import crawl_settings, keys_of, simulator, stored_counts, stored_posts
from sqlalchemy import select
from waiting import wait_until

from crawlers.frontier import Keys, current_sweep
from storage.db import session_factory_for, session_scope
from storage.models import CrawlGap

PLATFORMS = ["heimao", "weibo", "tieba"]
FAULTS = {
    "error_rate": 0.10,
    "throttle_rate": 0.05,
    "malformed_rate": 0.02,
    "retry_after_seconds": 1,
    "seed": 7,
    "cut_off": "/heimao/api/index/feed?type=1&page_size=10&page=3",
    "cut_off_tries": 2,
}


def test_every_worker_killed_while_a_second_chance_waits_loses_nothing(
    committed_database: str, space: RedisSpace
) -> None:
    with simulator(42) as sim:
        settings = space.distributed(crawl_settings(sim.base, committed_database))
        expected = keys_of([p for p in sim.truth() if p["platform"] in PLATFORMS])
        sim.set_faults(**FAULTS)
        second = Keys(settings.redis_prefix, "heimao").second
        workers = [start_worker(settings, PLATFORMS) for _ in range(3)]
        try:
            waits = "heimao's page 3 to wait for its second chance"
            wait_until(lambda: space.client.scard(second) > 0, 120, waits)
            for worker in workers:
                worker.send_signal(signal.SIGKILL)
            killed = [worker.wait() for worker in workers]
            waiting = space.client.scard(second)
            stored_when_killed = sum(stored_counts(settings).values())
            # The next worker resumes the open sweep: the dead workers' leases, once their heartbeats
            # expire, and the second chance, once nothing else of heimao is left.
            [resumed] = workers = [start_worker(settings, PLATFORMS)]
            [log] = wait_all(workers)
        finally:
            for worker in workers:
                worker.kill()
                worker.wait()
        with session_scope(session_factory_for(settings.database_url)) as session:
            gaps = list(session.scalars(select(CrawlGap.url)))
    stored = [(p.platform_id, p.external_id) for p in stored_posts(settings)]
    assert killed == [-signal.SIGKILL] * 3
    assert (waiting, stored_when_killed < len(expected)) == (1, True)
    assert resumed.returncode == 0, log
    assert set(stored) == expected
    assert len(stored) == len(expected)
    assert gaps == []  # page 3 came through on its second chance, fetched by the resumed worker
    assert [text(k) for k in space.client.keys(f"{settings.redis_prefix}*sweep")] == []


def test_a_worker_whose_sweep_vanishes_from_redis_stops_with_one_line(
    committed_database: str, space: RedisSpace
) -> None:
    with simulator(42) as sim:
        settings = space.distributed(crawl_settings(sim.base, committed_database))
        sim.set_faults(slow_rate=1.0, slow_seconds=0.2)  # the sweep lasts while Redis is flushed
        leases = Keys(settings.redis_prefix, "heimao").leases
        [worker] = workers = [start_worker(settings, ["heimao"])]
        try:
            wait_until(lambda: space.client.hlen(leases) > 0, 120, "the worker to hold a lease")
            sweep = current_sweep(space.client, settings.redis_prefix)
            for key in space.client.scan_iter(match=f"{settings.redis_prefix}*"):
                space.client.delete(key)  # what FLUSHDB or expired keys leave
            [log] = wait_all(workers, timeout=60)
        finally:
            worker.kill()
            worker.wait()
    assert worker.returncode == 1
    assert [line for line in log.splitlines() if line.startswith("crawl: ")] == [
        f"crawl: sweep {sweep} vanished from Redis (flushed, expired, or ended elsewhere) before 1 "
        "platform(s) were done (heimao); this worker stopped"
    ]
