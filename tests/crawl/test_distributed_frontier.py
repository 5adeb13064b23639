"""The shared frontier's rules, one Redis call at a time: a sweep opens once and ends once, a new sweep
clears what the last one left (a resumed one keeps it), a dead worker's leases go back to the queue,
queued requests are JSON, and the Redis URL comes only from the environment."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
import redis
import scrapy
from distributed_helpers import RedisSpace
from scrapy.utils.request import request_from_dict
from scrapy.utils.test import get_crawler
from typer.testing import CliRunner

from cli import app
from crawlers import frontier_codec
from crawlers.distributed import LeasedScheduler, distributed_settings
from crawlers.frontier import (
    HEARTBEAT_TTL_SECONDS,
    WORKER_ID,
    Keys,
    beat,
    end_sweep,
    fingerprints_outlive_sweep,
    free_orphaned_slots,
    heartbeat_key,
    open_sweep,
    push_unseen,
    requeue_orphans,
    sweep_key,
)
from settings import PROJECT_ROOT, ConfigError, Settings, load_settings

PLATFORMS = ["weibo", "tieba"]
runner = CliRunner()


@pytest.fixture
def settings(space: RedisSpace) -> Settings:
    return space.distributed(load_settings(env={}))


def _leave_a_sweep_behind(space: RedisSpace, settings: Settings) -> Keys:
    keys = Keys(settings.redis_prefix, "weibo")
    space.client.sadd(keys.fingerprints, "f1")
    space.client.zadd(keys.requests, {"r1": 0})
    space.client.set(keys.seed, "done")
    return keys


def test_a_second_worker_joins_the_open_sweep_and_clears_nothing(
    space: RedisSpace, settings: Settings
) -> None:
    first, opened = open_sweep(space.client, settings, PLATFORMS)
    keys = _leave_a_sweep_behind(space, settings)
    second, joined_opened = open_sweep(space.client, settings, PLATFORMS)
    assert (opened, joined_opened, second) == (True, False, first)
    assert space.client.smembers(keys.fingerprints) == {b"f1"}
    assert space.client.zcard(keys.requests) == 1


def test_a_sweep_ends_only_when_every_platform_is_seeded_empty_and_unleased(
    space: RedisSpace, settings: Settings
) -> None:
    sweep, _ = open_sweep(space.client, settings, PLATFORMS)
    weibo, tieba = (Keys(settings.redis_prefix, key) for key in PLATFORMS)
    space.client.set(weibo.seed, "done")
    assert end_sweep(space.client, settings.redis_prefix, sweep, PLATFORMS) is False  # tieba unseeded
    space.client.set(tieba.seed, "done")
    space.client.hset(tieba.leases, "w|1", "r")
    assert end_sweep(space.client, settings.redis_prefix, sweep, PLATFORMS) is False  # a lease is out
    space.client.hdel(tieba.leases, "w|1")
    assert end_sweep(space.client, settings.redis_prefix, sweep, PLATFORMS) is True
    assert space.client.exists(sweep_key(settings.redis_prefix)) == 0


def test_a_new_sweep_clears_the_last_sweeps_queue_seed_and_fingerprints(
    space: RedisSpace, settings: Settings
) -> None:
    sweep, _ = open_sweep(space.client, settings, PLATFORMS)
    keys = _leave_a_sweep_behind(space, settings)
    space.client.delete(sweep_key(settings.redis_prefix))  # the last sweep ended
    new_sweep, opened = open_sweep(space.client, settings, PLATFORMS)
    assert opened and new_sweep != sweep
    assert [space.client.exists(k) for k in (keys.fingerprints, keys.requests, keys.seed)] == [0, 0, 0]


def test_no_configured_platform_keeps_fingerprints_past_its_sweep() -> None:
    settings = load_settings(PROJECT_ROOT / "config.yaml", env={})
    assert [key for key, p in settings.platforms.items() if fingerprints_outlive_sweep(p)] == []


def test_a_heartbeat_lives_ten_seconds_unless_renewed(space: RedisSpace, settings: Settings) -> None:
    beat(space.client, settings.redis_prefix)
    key = heartbeat_key(settings.redis_prefix)
    assert (key, HEARTBEAT_TTL_SECONDS) == (f"{settings.redis_prefix}worker:{WORKER_ID}", 10.0)
    assert 9_000 < space.client.pttl(key) <= 10_000


def test_a_dead_workers_lease_goes_back_to_the_queue_and_a_live_ones_stays(
    space: RedisSpace, settings: Settings
) -> None:
    keys = Keys(settings.redis_prefix, "weibo")
    space.client.set(heartbeat_key(settings.redis_prefix, "alive"), "1")
    space.client.hset(keys.leases, mapping={"alive|1": "kept", "gone|7": "orphan"})
    assert requeue_orphans(space.client, keys) == 1
    assert space.client.hgetall(keys.leases) == {b"alive|1": b"kept"}
    assert space.client.zrange(keys.requests, 0, -1) == [b"orphan"]


def test_a_dead_workers_politeness_slots_are_given_back_and_a_live_ones_kept(
    space: RedisSpace, settings: Settings
) -> None:
    keys = Keys(settings.redis_prefix, "weibo")
    space.client.set(heartbeat_key(settings.redis_prefix, "alive"), "1")
    space.client.zadd(keys.polite_slots, {"alive|1": 1e13, "gone|7": 1e13, "gone|8": 1e13})
    assert free_orphaned_slots(space.client, keys) == 2
    assert space.client.zrange(keys.polite_slots, 0, -1) == [b"alive|1"]


def test_a_request_is_queued_together_with_its_fingerprint_and_a_seen_one_not_at_all(
    space: RedisSpace, settings: Settings
) -> None:
    keys = Keys(settings.redis_prefix, "weibo")
    pushed = [push_unseen(space.client, keys, "f1", 0, "r1"), push_unseen(space.client, keys, "f1", 0, "r1b")]
    assert pushed == [True, False]
    assert space.client.smembers(keys.fingerprints) == {b"f1"}
    assert space.client.zrange(keys.requests, 0, -1) == [b"r1"]


def test_a_request_never_filtered_is_queued_each_time_and_leaves_no_fingerprint(
    space: RedisSpace, settings: Settings
) -> None:
    keys = Keys(settings.redis_prefix, "weibo")
    pushed = [push_unseen(space.client, keys, None, 0, "r1"), push_unseen(space.client, keys, None, -1, "r2")]
    assert pushed == [True, True]
    assert space.client.exists(keys.fingerprints) == 0
    assert space.client.zrange(keys.requests, 0, -1) == [b"r2", b"r1"]  # higher priority first


class _Killed(BaseException):
    """The worker's process ends here (SIGKILL): nothing after this Redis call runs."""


def test_a_worker_killed_at_any_redis_call_of_an_enqueue_never_leaves_a_request_seen_but_unqueued(
    space: RedisSpace, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = Keys(settings.redis_prefix, _Spider.name)
    crawler = get_crawler(_Spider, distributed_settings(settings, _Spider.name, _CRAWLER_VALUES, "sweep"))
    spider = _Spider.from_crawler(crawler)
    scheduler = LeasedScheduler.from_crawler(crawler)
    scheduler.open(spider)
    send = redis.Redis.execute_command
    outcomes = []
    for dies_at in (1, 2, 3):
        space.client.delete(keys.fingerprints, keys.requests)
        calls = iter(range(1, 100))

        def execute(client: redis.Redis, *args: object, **options: object) -> object:
            if next(calls) == dies_at:  # noqa: B023 - each pass installs its own
                raise _Killed
            return send(client, *args, **options)

        with monkeypatch.context() as patched:
            patched.setattr(redis.Redis, "execute_command", execute)
            with contextlib.suppress(_Killed):
                scheduler.enqueue_request(scrapy.Request("http://127.0.0.1/p/weibo/api?page=2"))
        outcomes.append((space.client.scard(keys.fingerprints), space.client.zcard(keys.requests)))
    # Seen and queued together, or neither (scrapy-redis's own enqueue left (1, 0) when killed at call 2).
    assert outcomes == [(0, 0), (1, 1), (1, 1)]


#: The crawler settings distributed_settings extends (only the keys it reads).
_CRAWLER_VALUES = {
    "DOWNLOAD_DELAY": 0.0,
    "CONCURRENT_REQUESTS_PER_DOMAIN": 1,
    "DOWNLOADER_MIDDLEWARES": {},
    "SPIDER_MIDDLEWARES": {},
    "EXTENSIONS": {},
}


class _Spider(scrapy.Spider):
    name = "weibo"

    def parse_page(self, response: object) -> None:
        return None


def test_a_queued_request_is_json_and_comes_back_whole() -> None:
    spider = _Spider()
    request = scrapy.Request(
        "http://127.0.0.1/p/weibo/api?page=2",
        method="POST",
        body='{"q":"噪音"}',
        headers={"Content-Type": "application/json"},
        callback=spider.parse_page,
        meta={"page": 2, "keyword": "噪音"},
    )
    encoded = frontier_codec.dumps(request.to_dict(spider=spider))
    decoded = request_from_dict(frontier_codec.loads(encoded), spider=spider)
    assert encoded.startswith("{")
    assert (decoded.url, decoded.method, decoded.body, decoded.meta) == (
        request.url,
        "POST",
        '{"q":"噪音"}'.encode(),
        {"page": 2, "keyword": "噪音"},
    )
    assert decoded.headers.get("Content-Type") == b"application/json"


def test_crawl_distributed_without_a_redis_url_stops_with_one_line(tmp_path: Path) -> None:
    env = {
        "WEISU_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "WEISU_AUTHOR_HASH_KEY": "k" * 48,
        "WEISU_REDIS_URL": "",
    }
    result = runner.invoke(app, ["crawl", "--distributed", "weibo"], env=env)
    assert result.exit_code == 2
    assert result.stderr == (
        "weisu crawl: WEISU_REDIS_URL is not set; a distributed crawl needs the Redis its workers share\n"
    )


def test_a_redis_url_in_config_yaml_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("redis_url: redis://127.0.0.1:6379/0\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="set WEISU_REDIS_URL in the environment instead"):
        load_settings(config, env={})
