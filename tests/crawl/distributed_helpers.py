"""What the distributed-crawl tests share: a clean Redis key space, worker processes, the stored keys."""

from __future__ import annotations

import os
import socket
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import redis
from simulated import start_crawl_child

from crawlers.frontier import heartbeat_key
from settings import Settings

#: The tests' Redis: database 2, every key under this prefix (other suites use other numbers).
TEST_REDIS_URL = os.environ.get("WEISU_TEST_REDIS_URL", "redis://127.0.0.1:6379/2")
TEST_PREFIX = "weisu-test-dist18:"


def text(value: bytes | str) -> str:
    """A Redis key or value as text (redis-py types them bytes or str)."""
    return value.decode("utf-8") if isinstance(value, bytes) else value


def clear_prefix(client: redis.Redis, prefix: str = TEST_PREFIX) -> None:
    for key in client.scan_iter(match=f"{prefix}*", count=500):
        client.delete(key)


@dataclass(frozen=True)
class RedisSpace:
    """The tests' Redis and a key prefix of this test's own, under TEST_PREFIX (tests may run at once)."""

    client: redis.Redis
    prefix: str

    def distributed(self, settings: Settings) -> Settings:
        """``settings`` for workers of a sweep in this test's key space."""
        return settings.changed(redis_url=TEST_REDIS_URL, redis_prefix=self.prefix)


@contextmanager
def clean_redis() -> Iterator[RedisSpace]:
    """A key space of this test's own, empty before and removed after."""
    client = redis.Redis.from_url(TEST_REDIS_URL)
    prefix = f"{TEST_PREFIX}{uuid.uuid4().hex[:8]}:"
    clear_prefix(client, prefix)
    try:
        yield RedisSpace(client, prefix)
    finally:
        clear_prefix(client, prefix)
        client.close()


def start_worker(settings: Settings, platforms: list[str]) -> subprocess.Popen[bytes]:
    """Start one `crawl_process --distributed` worker (its log kept on a pipe); the caller waits or kills."""
    options = ["--distributed"]
    if os.environ.get("WEISU_TEST_WORKER_LOG"):
        options.append("--log-level=" + os.environ["WEISU_TEST_WORKER_LOG"])
    return start_crawl_child(settings, platforms, options, keep_log=True)


def worker_id_prefix(worker: subprocess.Popen[bytes]) -> str:
    """How a worker process's id begins (crawlers.frontier.WORKER_ID is host:pid:random), on its leases
    and heartbeat."""
    return f"{socket.gethostname()}:{worker.pid}:"


def expire_heartbeat(space: RedisSpace, worker: subprocess.Popen[bytes]) -> int:
    """Let a killed worker's heartbeat run out now; how many keys it had (1 while it lived).

    The heartbeat is a key with Redis's own PX expiry (its TTL is checked in
    test_distributed_frontier.py, and test_distributed_faults.py waits one out for real); waiting the
    seconds out in every kill test would prove nothing more.
    """
    assert worker.poll() is not None, "only a dead worker's heartbeat may be expired"
    pattern = heartbeat_key(space.prefix, f"{worker_id_prefix(worker)}*")
    keys = list(space.client.scan_iter(match=pattern, count=500))
    for key in keys:
        space.client.delete(key)
    return len(keys)


def wait_all(workers: list[subprocess.Popen[bytes]], timeout: float = 300) -> list[str]:
    """Wait for every worker to end; their logs. A worker that failed fails the test with its log."""
    logs = []
    for worker in workers:
        assert worker.stderr is not None
        worker.wait(timeout=timeout)
        logs.append(worker.stderr.read().decode("utf-8", errors="replace"))
    return logs
