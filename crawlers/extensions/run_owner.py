"""The process that owns a running crawl_runs row, and closing rows whose owner is gone.

A crawl killed outright (SIGKILL, a power cut) never reaches ``spider_closed``: its rows would read
"running" for ever. Crawls of one platform may overlap (the nightly sweep and an incremental crawl,
or a `weisu crawl` by hand), so a row still running is closed only when the process that opened it
is known to be gone: same host, and that pid is not alive or belongs to a later process.
"""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta
from typing import Any

import psutil
from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.base import utcnow
from storage.models import CrawlRun, CrawlRunStatus

#: Key of crawl_runs.stats naming the owner while the run is open (the closing stats replace it).
OWNER_KEY = "owner"
#: A row nobody on this host can vouch for (another host, or opened before owners were recorded) is
#: closed once it is older than this: the runner kills a crawl child after an hour (CRAWL_TIMEOUT_SECONDS).
UNKNOWN_OWNER_GRACE = timedelta(hours=2)
#: Process start times are compared with this slack (the recorded value is rounded).
_START_SLACK_SECONDS = 1.0


def current_owner() -> dict[str, Any]:
    """This process as a run's owner: host name, pid, and start time (a reused pid has a later one)."""
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started": round(psutil.Process().create_time(), 3),
    }


def owner_is_gone(owner: Any, opened_at: datetime, now: datetime) -> bool:
    """Whether the process that opened a run is certainly no longer running it."""
    if not isinstance(owner, dict) or owner.get("host") != socket.gethostname():
        return now - opened_at > UNKNOWN_OWNER_GRACE
    try:
        process = psutil.Process(int(owner["pid"]))
        started = process.create_time()
        zombie = process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
    except psutil.AccessDenied:
        return False  # someone else's live process holds that pid: assume it is ours
    return zombie or abs(started - float(owner.get("started", started))) > _START_SLACK_SECONDS


def close_interrupted(session: Session, now: datetime | None = None) -> list[int]:
    """Mark every running run whose owner is gone ``interrupted`` with an end time; their ids."""
    now = now or utcnow()
    closed = []
    for run in session.scalars(select(CrawlRun).where(CrawlRun.status == CrawlRunStatus.RUNNING)):
        if owner_is_gone((run.stats or {}).get(OWNER_KEY), run.started_at, now):
            run.status = CrawlRunStatus.INTERRUPTED
            run.finished_at = now
            run.stats = (run.stats or {}) | {"finish_reason": "interrupted"}
            closed.append(run.id)
    session.flush()
    return closed
