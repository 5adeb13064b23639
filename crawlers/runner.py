"""Run a crawl from any Python process: start a child process, then read its crawl_runs rows.

The child is forked where the platform allows it: it starts with weisu, SQLAlchemy and pydantic
already imported and the settings already validated, about 0.4 s of a 2.5 s sweep. A parent that has
already installed a Twisted reactor (the child needs a fresh one), or ``WEISU_CRAWL_SPAWN=1``, gets
a fresh interpreter instead (``python -m crawlers.crawl_process --settings -``), which reads the
settings and the author-hash key from a pipe: the key never reaches a file, an environment or a log.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
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


def run_crawl(
    settings: Settings, platform_ids: list[str] | None = None, timeout: float = CRAWL_TIMEOUT_SECONDS
) -> list[CrawlResult]:
    """Crawl ``platform_ids`` (None: every enabled, unpaused platform) in a child process; one result each."""
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
        if can_fork():
            _fork_crawl(settings, keys, timeout)
        else:
            _spawn_crawl(settings, keys, timeout)
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


def _fork_crawl(settings: Settings, keys: list[str], timeout: float) -> None:
    from crawlers.crawl_process import run_forked

    # Whatever the parent buffered would be written twice: once by each process.
    sys.stdout.flush()
    sys.stderr.flush()
    child = multiprocessing.get_context("fork").Process(
        target=run_forked, args=(settings, keys), name="weisu-crawl", daemon=False
    )
    child.start()
    child.join(timeout)
    if child.is_alive():  # on timeout the runs left "running" are marked failed by _collect
        child.kill()
        child.join()


def _spawn_crawl(settings: Settings, keys: list[str], timeout: float) -> None:
    # Settings and the author-hash key go through a pipe: the key is never written to a file, the
    # child's environment or its command line (which other local users can read).
    dump = settings.model_dump(mode="json")
    dump["database"]["url"] = settings.database_url
    message = json.dumps({STDIN_SETTINGS: dump, STDIN_AUTHOR_KEY: settings.author_hash_key})
    command = [sys.executable, "-m", "crawlers.crawl_process", "--settings", "-", *keys]
    # On timeout the runs the child left "running" are marked failed by _collect.
    with contextlib.suppress(subprocess.TimeoutExpired):
        subprocess.run(
            command,
            input=message.encode("utf-8"),
            env=child_env(settings),
            cwd=PROJECT_ROOT,
            timeout=timeout,
            check=False,
        )


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
