"""The shared Redis frontier of a distributed crawl, as Redis sees it: the keys, the sweep's start and
end, the leases of popped requests and their return when a worker's heartbeat expires, each platform's
seed flag, and the requests waiting for their second chance. Every step that must not be split (open a
sweep and clear it, pop and lease, give back, move second chances into the queue) is one Lua script, so
workers racing each other cannot interleave inside it. crawlers/distributed.py builds the Scrapy side
on these; the reasons are in its docstring.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import cast

import redis

from settings import PlatformSettings, Settings

WORKER_ID = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
#: A worker silent for this long is taken for dead and its leases go back to the queue. Generous,
#: since a worker's reactor also waits on the database: a live worker taken for dead only costs a
#: request crawled twice.
HEARTBEAT_TTL_SECONDS = 10.0
#: How often a worker renews its heartbeat, releases finished leases and looks for orphaned ones.
TICK_SECONDS = 0.5
#: The request meta key holding a popped request's lease token (never written to the queue).
LEASE = "weisu_lease"
#: Scrapy settings read by the components below.
PREFIX_SETTING = "WEISU_REDIS_PREFIX"


def fingerprints_outlive_sweep(platform: PlatformSettings) -> bool:
    """Whether a platform's request fingerprints are kept from one sweep to the next.

    Only for a platform crawled by a full walk with no incremental rule could a request seen before
    be skipped; every kind here pages from the top each run and stops by crawlers/incremental.py's
    rules (the high-water mark, settled threads), which need the listing pages and unsettled threads
    fetched again: a kept fingerprint would hide new posts. So fingerprints are kept within a sweep
    (a resumed sweep keeps them) and cleared when a new sweep opens.
    """
    del platform  # the rule holds for every kind today; a kind with a full walk would say so here
    return False


@dataclass(frozen=True)
class Keys:
    """The Redis keys of one platform's frontier."""

    prefix: str
    platform_id: str

    def _key(self, name: str) -> str:
        return f"{self.prefix}{self.platform_id}:{name}"

    @property
    def requests(self) -> str:
        return self._key("requests")

    @property
    def fingerprints(self) -> str:
        return self._key("dupefilter")

    @property
    def leases(self) -> str:
        return self._key("leases")

    @property
    def seed(self) -> str:
        return self._key("seed")

    @property
    def second(self) -> str:
        """Requests lost after their retries, waiting for their second chance (a set of encoded requests)."""
        return self._key("second")

    @property
    def polite_slots(self) -> str:
        return self._key("polite:slots")

    @property
    def polite_next(self) -> str:
        return self._key("polite:next")


def sweep_key(prefix: str) -> str:
    return f"{prefix}sweep"


def heartbeat_key(prefix: str, worker: str = WORKER_ID) -> str:
    return f"{prefix}worker:{worker}"


# KEYS[1]: the sweep key; KEYS[2..]: keys to delete when this call opens the sweep. ARGV[1]: new id.
_OPEN_SWEEP = """
local current = redis.call('GET', KEYS[1])
if current then return {0, current} end
redis.call('SET', KEYS[1], ARGV[1])
for i = 2, #KEYS do redis.call('DEL', KEYS[i]) end
return {1, ARGV[1]}
"""
# KEYS[1]: the sweep key; then per platform: seed, requests, leases, second chances. ARGV[1]: sweep id.
_END_SWEEP = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
for i = 2, #KEYS, 4 do
  if redis.call('GET', KEYS[i]) ~= 'done' then return 0 end
  if redis.call('ZCARD', KEYS[i + 1]) > 0 then return 0 end
  if redis.call('HLEN', KEYS[i + 2]) > 0 then return 0 end
  if redis.call('SCARD', KEYS[i + 3]) > 0 then return 0 end
end
redis.call('DEL', KEYS[1])
return 1
"""
# KEYS: seed flag, requests zset, leases hash, second-chance set. When the platform's part of the sweep
# is otherwise over (seeded, nothing queued, nothing leased at any worker), its second chances move
# into the queue, all at once: how many moved.
_DUE_SECOND = """
if redis.call('GET', KEYS[1]) ~= 'done' then return 0 end
if redis.call('ZCARD', KEYS[2]) > 0 or redis.call('HLEN', KEYS[3]) > 0 then return 0 end
local waiting = redis.call('SMEMBERS', KEYS[4])
for _, data in ipairs(waiting) do redis.call('ZADD', KEYS[2], 0, data) end
redis.call('DEL', KEYS[4])
return #waiting
"""
# KEYS: fingerprint set, requests zset. ARGV: fingerprint ('' when the request is not filtered), score,
# encoded request. Record the fingerprint and queue the request in one step, or neither: 1 if queued.
_PUSH_UNSEEN = """
if ARGV[1] ~= '' and redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
return 1
"""
# KEYS: requests zset, leases hash. ARGV: lease token. Pop the first request and lease it, atomically.
_POP_LEASED = """
local first = redis.call('ZRANGE', KEYS[1], 0, 0)
if #first == 0 then return false end
redis.call('ZREM', KEYS[1], first[1])
redis.call('HSET', KEYS[2], ARGV[1], first[1])
return first[1]
"""
# KEYS: requests zset, leases hash. ARGV: lease token. A lease goes back to the queue's front.
_REQUEUE = """
local data = redis.call('HGET', KEYS[2], ARGV[1])
if not data then return 0 end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[1], -1000000, data)
return 1
"""
# KEYS: seed flag, then the prefix's heartbeat key of its holder is checked by name. ARGV: worker, prefix.
_CLAIM_SEED = """
local holder = redis.call('GET', KEYS[1])
if holder == 'done' then return 'done' end
if (not holder) or holder == ARGV[1] or redis.call('EXISTS', ARGV[2] .. 'worker:' .. holder) == 0 then
  redis.call('SET', KEYS[1], ARGV[1])
  return 'mine'
end
return 'busy'
"""


def client_for(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


def open_sweep(client: redis.Redis, settings: Settings, platform_ids: Sequence[str]) -> tuple[str, bool]:
    """Join the open sweep, or open one (clearing what a new sweep must not inherit): (id, opened)."""
    prefix = settings.redis_prefix
    cleared: list[str] = []
    for key in platform_ids:
        keys = Keys(prefix, key)
        cleared += [keys.requests, keys.leases, keys.seed, keys.second]
        if not fingerprints_outlive_sweep(settings.platforms[key]):
            cleared.append(keys.fingerprints)
    new_id = uuid.uuid4().hex
    opened, sweep = client.eval(_OPEN_SWEEP, 1 + len(cleared), sweep_key(prefix), *cleared, new_id)
    return (sweep.decode() if isinstance(sweep, bytes) else str(sweep)), bool(opened)


def end_sweep(client: redis.Redis, prefix: str, sweep: str, platform_ids: Sequence[str]) -> bool:
    """End the sweep if every platform of it is seeded, empty and unleased; True when this call did."""
    platforms = [Keys(prefix, key) for key in platform_ids]
    keys = [k for p in platforms for k in (p.seed, p.requests, p.leases, p.second)]
    return bool(client.eval(_END_SWEEP, 1 + len(keys), sweep_key(prefix), *keys, sweep))


def beat(client: redis.Redis, prefix: str) -> None:
    """Say this worker is alive for the next HEARTBEAT_TTL_SECONDS."""
    client.set(heartbeat_key(prefix), "1", px=int(HEARTBEAT_TTL_SECONDS * 1000))


def _held_by_the_dead(client: redis.Redis, prefix: str, tokens: Iterable[bytes | str]) -> list[bytes | str]:
    """The tokens (``<worker>|<n>``) whose worker's heartbeat has expired."""
    alive: dict[str, bool] = {}
    dead = []
    for token in tokens:
        worker = (token.decode() if isinstance(token, bytes) else token).rpartition("|")[0]
        if worker not in alive:
            alive[worker] = bool(client.exists(heartbeat_key(prefix, worker)))
        if not alive[worker]:
            dead.append(token)
    return dead


def requeue_orphans(client: redis.Redis, keys: Keys) -> int:
    """Put back in the queue every lease whose worker's heartbeat has expired; how many."""
    return sum(
        int(requeue(client, keys, token))
        for token in _held_by_the_dead(client, keys.prefix, client.hkeys(keys.leases))
    )


def free_orphaned_slots(client: redis.Redis, keys: Keys) -> int:
    """Give back every politeness slot (crawlers/middlewares/shared_politeness.py) whose worker's
    heartbeat has expired; how many. A killed worker's slot would otherwise keep its platform's
    concurrency taken until the slot's own lease ran out."""
    slots = cast(list[bytes], client.zrange(keys.polite_slots, 0, -1))
    dead = _held_by_the_dead(client, keys.prefix, slots)
    return int(client.zrem(keys.polite_slots, *dead)) if dead else 0


def current_sweep(client: redis.Redis, prefix: str) -> str | None:
    """The id of the open sweep, None when there is none (ended, or Redis flushed or expired)."""
    sweep = client.get(sweep_key(prefix))
    return None if sweep is None else (sweep.decode() if isinstance(sweep, bytes) else str(sweep))


def platform_busy(client: redis.Redis, keys: Keys) -> bool:
    """Whether a platform's part of the sweep can still produce requests: not seeded yet, queued, leased,
    or a request waiting for its second chance."""
    return (
        client.get(keys.seed) != b"done"
        or client.zcard(keys.requests) > 0
        or client.hlen(keys.leases) > 0
        or client.scard(keys.second) > 0
    )


def keep_second_chance(client: redis.Redis, keys: Keys, data: str) -> None:
    """Keep an encoded request for its second chance, in Redis: a worker that dies loses none."""
    client.sadd(keys.second, data)


def due_second_chances(client: redis.Redis, keys: Keys) -> int:
    """Move the platform's second chances into its queue if nothing else of it is left; how many."""
    return int(client.eval(_DUE_SECOND, 4, keys.seed, keys.requests, keys.leases, keys.second))


def push_unseen(
    client: redis.Redis, keys: Keys, fingerprint: str | None, score: float, data: str | bytes
) -> bool:
    """Queue an encoded request in ``keys.requests`` unless its fingerprint is in ``keys.fingerprints``
    (``None``: a request never filtered); True when queued. The fingerprint is recorded in the same
    step as the push: a worker killed between the two would leave the request marked seen but never
    queued, and whoever produced it again (the killed worker's leased request, crawled once more)
    would drop it as a duplicate — lost for the sweep.
    """
    queued = client.eval(_PUSH_UNSEEN, 2, keys.fingerprints, keys.requests, fingerprint or "", score, data)
    return bool(queued)


def pop_leased(client: redis.Redis, queue_key: str, keys: Keys, token: str) -> bytes | None:
    """Pop the first queued request and lease it under ``token``, in one step; None when none is queued."""
    data = client.eval(_POP_LEASED, 2, queue_key, keys.leases, token)
    return data if data else None


def requeue(client: redis.Redis, keys: Keys, token: str | bytes) -> bool:
    """Put a lease back at the front of the queue; False when it was released meanwhile."""
    return bool(client.eval(_REQUEUE, 2, keys.requests, keys.leases, token))


def claim_seed(client: redis.Redis, keys: Keys, prefix: str) -> str:
    """``mine``: this worker seeds the platform; ``done``: it is seeded; ``busy``: a live worker is at it."""
    claim = client.eval(_CLAIM_SEED, 1, keys.seed, WORKER_ID, prefix)
    return claim.decode() if isinstance(claim, bytes) else str(claim)
