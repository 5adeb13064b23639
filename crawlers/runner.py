"""Run a crawl from any Python process: start a child process, then read its crawl_runs rows.

The child is forked where the platform allows it: it starts with weisu, SQLAlchemy and pydantic
already imported and the settings already validated, about 0.4 s of a 2.5 s sweep. A parent that has
already installed a Twisted reactor (the child needs a fresh one), or ``WEISU_CRAWL_SPAWN=1``, gets
a fresh interpreter instead (``python -m crawlers.crawl_process --settings -``), which reads the
settings and the author-hash key from a pipe: the key never reaches a file, an environment or a log.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from crawlers.crawl_process import STDIN_AUTHOR_KEY, STDIN_SETTINGS
from settings import PROJECT_ROOT, SECRET_VARIABLES, Settings
from storage.db import make_engine, make_session_factory, session_scope
from storage.models import CrawlRun, CrawlRunStatus
from storage.queries import paused_platform_ids, sync_platforms

CRAWL_TIMEOUT_SECONDS = 3600


@dataclass(frozen=True)
class CrawlResult:
    platform_id: str
    status: str
    requests: int
    items: int
    posts_stored: int
    errors: int


def child_env(settings: Settings) -> dict[str, str]:
    """The environment a crawl child runs with: this one without the secrets it must not see."""
    env = dict(os.environ)
    # The child gets the author-hash key on its stdin (see _spawn_crawl) and needs no other secret.
    for variable in SECRET_VARIABLES.values():
        env.pop(variable, None)
    env["WEISU_DATABASE_URL"] = settings.database_url
    env["WEISU_CONFIG"] = str(settings.config_path)
    if settings.simulator_url:
        env["WEISU_SIMULATOR_URL"] = settings.simulator_url
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
    return env


#: Told how many of the crawl's platforms have finished, and of how many (e.g. a progress bar's update).
Progress = Callable[[int, int], None]
#: How often the parent looks at the database for finished runs while the child crawls.
PROGRESS_SECONDS = 1.0


def run_crawl(
    settings: Settings,
    platform_ids: list[str] | None = None,
    timeout: float = CRAWL_TIMEOUT_SECONDS,
    on_progress: Progress | None = None,
) -> list[CrawlResult]:
    """Crawl ``platform_ids`` (None: every enabled, unpaused platform) in a child process; one result each.

    ``on_progress`` is told, about once a second while the child runs, how many platforms have finished
    (their runs closed in the database: the only place the child tells anything)."""
    keys = list(settings.enabled_platforms()) if platform_ids is None else list(platform_ids)
    unknown = sorted(set(keys) - set(settings.platforms))
    if unknown:
        raise ValueError(f"unknown platform(s): {', '.join(unknown)}")
    if not keys:
        return []
    engine = make_engine(settings.database_url)
    factory = make_session_factory(engine)
    try:
        with session_scope(factory) as session:
            sync_platforms(session, {k: (p.name, p.kind, p.enabled) for k, p in settings.platforms.items()})
            if platform_ids is None:
                # A whole sweep leaves out what an admin paused; naming a platform crawls it anyway.
                paused = paused_platform_ids(session)
                keys = [key for key in keys if key not in paused]
            last_run = session.scalar(select(func.max(CrawlRun.id))) or 0
        if not keys:
            return []
        tick = _progress_reader(factory, keys, last_run, on_progress)
        if can_fork():
            _fork_crawl(settings, keys, timeout, tick)
        else:
            _spawn_crawl(settings, keys, timeout, tick)
        return _collect(factory, keys, last_run)
    finally:
        engine.dispose()


def can_fork() -> bool:
    """Whether the crawl child can be forked from this process (see the module docstring)."""
    return (
        "fork" in multiprocessing.get_all_start_methods()
        and "twisted.internet.reactor" not in sys.modules
        and os.environ.get("WEISU_CRAWL_SPAWN") != "1"
    )


def _progress_reader(
    factory: sessionmaker[Session], keys: list[str], last_run: int, on_progress: Progress | None
) -> Callable[[], None]:
    """What the parent does while it waits: count this crawl's finished runs and report them."""

    def tick() -> None:
        if on_progress is None:
            return
        try:
            with session_scope(factory) as session:
                finished = session.scalar(
                    select(func.count(func.distinct(CrawlRun.platform_id))).where(
                        CrawlRun.id > last_run,
                        CrawlRun.finished_at.is_not(None),
                        CrawlRun.platform_id.in_(keys),
                    )
                )
        except OperationalError:  # SQLite busy with the child's write: the next tick reads it
            return
        on_progress(finished or 0, len(keys))

    return tick


def _wait(alive: Callable[[float], bool], timeout: float, tick: Callable[[], None]) -> bool:
    """Wait up to ``timeout`` for the child, ticking between slices; True when it ended in time."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        if not alive(min(PROGRESS_SECONDS, left)):
            tick()
            return True
        tick()
    return False


def _fork_crawl(settings: Settings, keys: list[str], timeout: float, tick: Callable[[], None]) -> None:
    from crawlers.crawl_process import run_forked

    # Whatever the parent buffered would be written twice: once by each process.
    sys.stdout.flush()
    sys.stderr.flush()
    child = multiprocessing.get_context("fork").Process(
        target=run_forked, args=(settings, keys), name="weisu-crawl", daemon=False
    )
    child.start()

    def alive(seconds: float) -> bool:
        child.join(seconds)
        return child.is_alive()

    if not _wait(alive, timeout, tick):  # on timeout the runs left "running" are marked failed by _collect
        child.kill()
        child.join()


def _spawn_crawl(settings: Settings, keys: list[str], timeout: float, tick: Callable[[], None]) -> None:
    # Settings and the author-hash key go through a pipe: the key is never written to a file, the
    # child's environment or its command line (which other local users can read).
    dump = settings.model_dump(mode="json")
    dump["database"]["url"] = settings.database_url
    message = json.dumps({STDIN_SETTINGS: dump, STDIN_AUTHOR_KEY: settings.author_hash_key})
    command = [sys.executable, "-m", "crawlers.crawl_process", "--settings", "-", *keys]
    child = subprocess.Popen(command, stdin=subprocess.PIPE, env=child_env(settings), cwd=PROJECT_ROOT)
    assert child.stdin is not None  # stdin=PIPE
    with child.stdin:
        child.stdin.write(message.encode("utf-8"))

    def alive(seconds: float) -> bool:
        try:
            child.wait(seconds)
        except subprocess.TimeoutExpired:
            return True
        return False

    if not _wait(alive, timeout, tick):  # on timeout the runs left "running" are marked failed by _collect
        child.kill()
        child.wait()


def _collect(factory: sessionmaker[Session], keys: list[str], last_run: int) -> list[CrawlResult]:
    results = []
    with session_scope(factory) as session:
        runs = session.scalars(select(CrawlRun).where(CrawlRun.id > last_run).order_by(CrawlRun.id))
        latest = {run.platform_id: run for run in runs}
        for key in keys:
            run = latest.get(key)
            if run is None:
                results.append(CrawlResult(key, "failed", 0, 0, 0, 1))
                continue
            if run.status == CrawlRunStatus.RUNNING:  # the child died before the spider closed
                run.status, run.finished_at = CrawlRunStatus.FAILED, datetime.now(UTC)
            results.append(
                CrawlResult(key, run.status, run.requests, run.items, run.posts_stored, run.errors)
            )
    return results
