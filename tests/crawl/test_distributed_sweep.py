"""Three `crawl --distributed` worker processes share one sweep of the simulator through Redis and store
exactly ``/_truth``, each post once — also when one worker is SIGKILLed mid-sweep, its leased requests
then being crawled by the others once its heartbeat expires.

The swept platforms are one of each spider kind and the sources of the comment platform among them
(crawl_phases starts it after them), so every path through the frontier is crossed: feeds, boards,
RSS, and thread discovery; one sweep (seed 42) takes every enabled platform. Each test has its own
database (processes commit) and a clean key space. The victim's heartbeat is expired as soon as it is
dead (test_distributed_faults.py waits one out for real).
"""

from __future__ import annotations

import signal
from collections import Counter
from dataclasses import dataclass

import pytest
from distributed_helpers import RedisSpace, expire_heartbeat, start_worker, text, wait_all, worker_id_prefix
from simulated import Simulator, crawl_settings, keys_of, simulator, stored_counts, stored_posts, with_sources
from waiting import wait_until

from crawlers.distributed import Keys
from settings import Settings

SEEDS = [42, 43, 7]
#: A feed (page numbers), a feed (offsets), a board, an RSS feed and a comment platform with its source.
PLATFORMS = ["weibo", "zhihu", "tieba", "szgov", "weibo_comments"]
WORKERS = 3


@dataclass(frozen=True)
class Swept:
    settings: Settings
    expected: set[tuple[str, str]]
    stored: list[tuple[str, str]]
    codes: list[int]
    logs: list[str]
    leftover: list[str]


def _platforms(settings: Settings) -> list[str]:
    return with_sources(settings, PLATFORMS)


def sweep(
    sim: Simulator, database_url: str, space: RedisSpace, kill_one: bool = False, every: bool = False
) -> Swept:
    client = space.client
    settings = space.distributed(crawl_settings(sim.base, database_url))
    platforms = list(settings.enabled_platforms()) if every else _platforms(settings)
    expected = keys_of([p for p in sim.truth() if p["platform"] in platforms])
    workers = [start_worker(settings, platforms) for _ in range(WORKERS)]
    try:
        if kill_one:
            victim = workers[0]
            owner = worker_id_prefix(victim)

            def victim_holds_a_lease() -> bool:
                leases = [
                    t for key in platforms for t in client.hkeys(Keys(settings.redis_prefix, key).leases)
                ]
                stored = sum(stored_counts(settings).values())
                return 0 < stored < len(expected) and any(text(t).startswith(owner) for t in leases)

            wait_until(victim_holds_a_lease, 120, "the first worker to hold a lease mid-sweep")
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            assert expire_heartbeat(space, victim) == 1
        logs = wait_all(workers)
    finally:
        for worker in workers:
            worker.kill()
            worker.wait()
    keys = [text(k) for k in client.keys(f"{settings.redis_prefix}*")]
    leftover = sorted(k for k in keys if k.endswith((":leases", ":requests", "sweep")))
    stored = [(p.platform_id, p.external_id) for p in stored_posts(settings)]
    return Swept(
        settings,
        expected,
        stored,
        [w.returncode for w in workers],
        logs,
        leftover,
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_three_workers_store_exactly_the_posts_truth_lists_once_and_end_the_sweep(
    seed: int, committed_database: str, space: RedisSpace
) -> None:
    with simulator(seed) as sim:
        swept = sweep(sim, committed_database, space)
    assert swept.codes == [0, 0, 0], swept.logs
    assert set(swept.stored) == swept.expected
    assert [key for key, n in Counter(swept.stored).items() if n > 1] == []
    assert len(swept.stored) == len(swept.expected)
    assert swept.leftover == []  # no request queued or leased, and the sweep closed


def test_three_workers_sweep_every_platform_of_every_kind_into_exactly_the_posts_truth_lists(
    committed_database: str, space: RedisSpace
) -> None:
    # Every enabled platform: each pagination style, encoding, request body, board and comment thread
    # the simulator serves, not only one of each kind.
    with simulator(42) as sim:
        swept = sweep(sim, committed_database, space, every=True)
    assert swept.codes == [0, 0, 0], swept.logs
    assert set(swept.stored) == swept.expected
    assert len(swept.stored) == len(swept.expected)
    assert swept.leftover == []


@pytest.mark.parametrize("seed", SEEDS)
def test_a_worker_killed_mid_sweep_loses_nothing_and_nothing_is_stored_twice(
    seed: int, committed_database: str, space: RedisSpace
) -> None:
    with simulator(seed) as sim:
        # Every answer a little slow, so the kill lands while the victim has requests leased.
        sim.set_faults(slow_rate=1.0, slow_seconds=0.05)
        swept = sweep(sim, committed_database, space, kill_one=True)
    assert swept.codes == [-signal.SIGKILL, 0, 0], swept.logs[1:]
    assert set(swept.stored) == swept.expected
    assert len(swept.stored) == len(swept.expected)
    assert swept.leftover == []
