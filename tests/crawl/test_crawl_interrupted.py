"""A crawl killed before it closed its runs: the next crawl start closes them as interrupted, only them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import psutil
from sqlalchemy import select

from crawlers.extensions.run_owner import UNKNOWN_OWNER_GRACE, current_owner
from settings import PROJECT_ROOT, load_settings
from storage.db import make_engine, make_session_factory, session_scope
from storage.models import CrawlRun, CrawlRunStatus
from storage.queries import previous_runs, sync_platforms

#: A crawl process that opens its runs the way a sweep does, then is killed before any spider closes.
KILLED_CRAWL = """
import os, signal
from crawlers.extensions.crawl_runs import open_runs
from settings import load_settings
open_runs(load_settings(), ["tieba", "weibo"])
os.kill(os.getpid(), signal.SIGKILL)
"""


def _kill_a_crawl_after_it_opened_its_runs(database_url: str) -> int:
    env = dict(os.environ, WEISU_DATABASE_URL=database_url)
    process = subprocess.run([sys.executable, "-c", KILLED_CRAWL], cwd=PROJECT_ROOT, env=env, check=False)
    assert process.returncode == -signal.SIGKILL
    return process.returncode


def _runs(database_url: str) -> dict[int, CrawlRun]:
    with session_scope(make_session_factory(make_engine(database_url))) as session:
        runs = {run.id: run for run in session.scalars(select(CrawlRun))}
        session.expunge_all()
    return runs


def _insert_running(database_url: str, owner: Any, started_at: datetime | None = None) -> int:
    """A run left "running" with this owner entry in its stats (None: a row from before owners)."""
    with session_scope(make_session_factory(make_engine(database_url))) as session:
        sync_platforms(session, {"weibo": ("微博", "json_feed", True)})
        run = CrawlRun(platform_id="weibo", status="running", stats={} if owner is None else {"owner": owner})
        if started_at is not None:
            run.started_at = started_at
        session.add(run)
        session.flush()
        return run.id


def _start_a_crawl(database_url: str) -> None:
    from crawlers.extensions.crawl_runs import open_runs

    open_runs(load_settings(env={"WEISU_DATABASE_URL": database_url}), ["tieba"])


def test_a_killed_crawls_runs_are_closed_as_interrupted_with_an_end_time_when_the_next_crawl_starts(
    database_url: str,
) -> None:
    _kill_a_crawl_after_it_opened_its_runs(database_url)
    killed = _runs(database_url)
    assert sorted(run.status for run in killed.values()) == ["running", "running"]
    before = datetime.now(UTC)

    _start_a_crawl(database_url)

    runs = _runs(database_url)
    assert {i: runs[i].status for i in killed} == dict.fromkeys(killed, "interrupted")
    assert all(before <= runs[i].finished_at <= datetime.now(UTC) for i in killed)  # type: ignore[operator]
    assert all(runs[i].stats["finish_reason"] == "interrupted" for i in killed)
    assert [run.status for i, run in runs.items() if i not in killed] == ["running"]  # the new crawl's own


def test_a_run_whose_owner_still_runs_is_left_running(database_url: str) -> None:
    live = _insert_running(database_url, current_owner())  # this test process: alive

    _start_a_crawl(database_url)

    assert (_runs(database_url)[live].status, _runs(database_url)[live].finished_at) == ("running", None)


def test_a_pid_now_held_by_a_later_process_does_not_keep_a_run_open(database_url: str) -> None:
    reused = current_owner() | {"started": psutil.Process().create_time() - 3600}

    run_id = _insert_running(database_url, reused)
    _start_a_crawl(database_url)

    assert _runs(database_url)[run_id].status == "interrupted"


def test_a_run_owned_by_another_host_is_closed_only_after_the_grace_period(database_url: str) -> None:
    elsewhere = {"host": f"not-{socket.gethostname()}", "pid": os.getpid(), "started": 0.0}
    now = datetime.now(UTC)
    recent = _insert_running(database_url, elsewhere, now - UNKNOWN_OWNER_GRACE + timedelta(minutes=5))
    old = _insert_running(database_url, elsewhere, now - UNKNOWN_OWNER_GRACE - timedelta(minutes=5))
    legacy = _insert_running(database_url, None, now - UNKNOWN_OWNER_GRACE - timedelta(minutes=5))

    _start_a_crawl(database_url)

    runs = _runs(database_url)
    assert [runs[i].status for i in (recent, old, legacy)] == ["running", "interrupted", "interrupted"]


def test_an_interrupted_run_is_not_an_earlier_run_to_compare_layouts_with(database_url: str) -> None:
    _kill_a_crawl_after_it_opened_its_runs(database_url)
    _start_a_crawl(database_url)
    with session_scope(make_session_factory(make_engine(database_url))) as session:
        query = select(CrawlRun.id, CrawlRun.status).where(CrawlRun.platform_id == "tieba")
        statuses = {run_id: status for run_id, status in session.execute(query)}
        assert sorted(statuses.values()) == [CrawlRunStatus.INTERRUPTED, CrawlRunStatus.RUNNING]
        assert previous_runs(session, "tieba", max(statuses) + 1, 5) == []
