"""What the crawl acceptance tests share: a simulator in a thread, a migrated database, the stored posts.

The expected figures always come from the simulator's ``/_truth`` and from config.yaml, never from
counts written into a test, so the tests grow with every platform added.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import func, select
from starlette.applications import Starlette

from crawlers.crawl_process import STDIN_AUTHOR_KEY, STDIN_SETTINGS
from crawlers.runner import child_env
from fixtures.serving import serve_in_thread
from fixtures.simulator.app import create_app
from settings import PROJECT_ROOT, Settings, load_settings
from storage.db import session_factory_for, session_scope, upgrade
from storage.models import CrawlRun, Post


@dataclass(frozen=True)
class Simulator:
    app: Starlette
    base: str

    def truth(self) -> list[dict[str, Any]]:
        return list(httpx.get(f"{self.base}/_truth", timeout=30).json()["posts"])

    def set_faults(self, **params: object) -> dict[str, Any]:
        response = httpx.post(f"{self.base}/_faults", params=params, timeout=10)  # type: ignore[arg-type]
        response.raise_for_status()
        return dict(response.json())

    def advance(self, minutes: int) -> list[dict[str, Any]]:
        """Move the world's clock on; the posts that appeared."""
        response = httpx.post(f"{self.base}/_advance", params={"minutes": minutes}, timeout=10)
        response.raise_for_status()
        return list(response.json()["appeared"])

    def injected(self) -> dict[str, int]:
        return dict(httpx.get(f"{self.base}/_faults", timeout=10).json()["injected"])

    @property
    def request_log(self) -> list[str]:
        return list(self.app.state.request_log)


@contextmanager
def simulator(seed: int = 42) -> Iterator[Simulator]:
    app = create_app(seed)
    with serve_in_thread(app) as base:
        yield Simulator(app, base)


def migrated_sqlite(folder: Path) -> str:
    url = f"sqlite:///{folder / 'weisu.db'}"
    upgrade(url)
    return url


def crawl_settings(base: str, database_url: str) -> Settings:
    return load_settings(env={"WEISU_SIMULATOR_URL": base, "WEISU_DATABASE_URL": database_url})


def stored_posts(settings: Settings, after_id: int = 0) -> list[Post]:
    """Every stored post (detached, loaded), oldest row first; ``after_id`` keeps only later rows."""
    with session_scope(session_factory_for(settings.database_url)) as session:
        posts = list(session.scalars(select(Post).where(Post.id > after_id).order_by(Post.id)))
        session.expunge_all()
    return posts


def crawl_runs(settings: Settings) -> list[CrawlRun]:
    with session_scope(session_factory_for(settings.database_url)) as session:
        runs = list(session.scalars(select(CrawlRun).order_by(CrawlRun.id)))
        session.expunge_all()
    return runs


def platform_of(url: str) -> str:
    """The platform key of a simulator URL (/p/KEY/…, /_moved/p/KEY/…)."""
    parts = urlsplit(url).path.removeprefix("/_moved").split("/")
    return parts[2] if len(parts) > 2 and parts[1] == "p" else ""


def entry_point_count(settings: Settings, key: str) -> int:
    """How many start requests a platform's entry points make (one per keyword, or one)."""
    return sum(len(entry.keywords) or 1 for entry in settings.platforms[key].entry_points)


def keys_of(posts: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(p["platform"], p["external_id"]) for p in posts}


def with_sources(settings: Settings, keys: list[str] | tuple[str, ...]) -> list[str]:
    """``keys`` and the platforms their comment platforms discover threads from (discover.from):
    a crawl of a comment platform reads its found threads only after its sources were crawled."""
    sources = [s for key in keys if (d := settings.platforms[key].discover) is not None for s in d.sources]
    return [*keys, *dict.fromkeys(s for s in sources if s not in keys)]


def _crawl_child(settings: Settings, platforms: list[str]) -> tuple[list[str], bytes, dict[str, str]]:
    """The command, stdin and environment of the crawl child `weisu crawl` runs in its spawned form
    (``crawl_process --settings -``), with these exact settings."""
    dump = settings.model_dump(mode="json")
    dump["database"]["url"] = settings.database_url
    message = json.dumps({STDIN_SETTINGS: dump, STDIN_AUTHOR_KEY: settings.author_hash_key})
    command = [sys.executable, "-m", "crawlers.crawl_process", "--settings", "-", *platforms]
    return command, message.encode("utf-8"), child_env(settings)


def start_crawl_child(
    settings: Settings, platforms: list[str], options: Sequence[str] = (), keep_log: bool = False
) -> subprocess.Popen[bytes]:
    """Start a crawl child with ``options`` (its log on a pipe when ``keep_log``, else dropped); the caller
    waits for it or kills it."""
    command, message, env = _crawl_child(settings, platforms)
    at = command.index("--settings")
    command[at:at] = options
    stderr = subprocess.PIPE if keep_log else subprocess.DEVNULL
    child = subprocess.Popen(command, stdin=subprocess.PIPE, stderr=stderr, env=env, cwd=PROJECT_ROOT)

    def send() -> None:
        assert child.stdin is not None
        try:
            child.stdin.write(message)
            child.stdin.close()
        except BrokenPipeError:
            pass  # killed by its test before it read them (its peers did the work): nothing to tell it

    # The settings outgrow a pipe's buffer, so the write waits for the child to read them, seconds into
    # its start-up: written beside it, so that children started one after another start together.
    threading.Thread(target=send, daemon=True).start()
    return child


def crawl_logged(settings: Settings, platforms: list[str]) -> str:
    """Crawl in a crawl child to its end; its log (stderr)."""
    command, message, env = _crawl_child(settings, platforms)
    done = subprocess.run(command, input=message, capture_output=True, env=env, cwd=PROJECT_ROOT, check=False)
    log = done.stderr.decode("utf-8", errors="replace")
    assert done.returncode == 0, log
    return log


def stored_counts(settings: Settings) -> dict[str, int]:
    """{platform: posts stored}, read while a crawl may be writing."""
    with session_scope(session_factory_for(settings.database_url)) as session:
        query = select(Post.platform_id, func.count()).group_by(Post.platform_id)
        return {platform: count for platform, count in session.execute(query)}


def pages_and_robots(requests: dict[str, int], pages: dict[str, int]) -> list[int]:
    """Each platform's requests less its expected pages, sorted: all 0 but at most one 1. robots.txt is
    fetched once per host for the whole crawl (crawlers/robots.py), by the platform that asks first."""
    return sorted(requests[key] - pages[key] for key in pages)


def robots_fetched_at_most_once(requests: dict[str, int], pages: dict[str, int]) -> bool:
    beyond = pages_and_robots(requests, pages)
    return beyond in ([0] * len(pages), [0] * (len(pages) - 1) + [1])
