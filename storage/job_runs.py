"""Scheduled jobs in the database: per-job leases (one runner at a time), run history and its log line,
next runs."""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import false, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from storage.db import session_scope
from storage.models import JobLease, JobRun, apscheduler_jobs
from storage.vocabulary import JobOutcome

log = logging.getLogger("weisu.schedules")
#: The longest error text kept for a run (the column's size): the exception's last lines fit.
MAX_ERROR_CHARS = 2000
#: A lease row made for a job nobody ran yet: expired since the epoch, so the first taker gets it.
_NEVER = datetime(1970, 1, 1, tzinfo=UTC)


def take_lease(
    session: Session,
    job_id: str,
    *,
    holder: str,
    token: str,
    now: datetime,
    seconds: float,
    dead_holder: str | None = None,
) -> str | None:
    """Take ``job_id``'s lease for ``seconds`` unless another run holds it; None when taken, else the
    holder (HOST:PID) that has it.

    The row is made once (INSERT … ON CONFLICT DO NOTHING), then taken by one conditional UPDATE
    (expired, or already this run's, or held by ``dead_holder``, a process known to be gone): on
    PostgreSQL a second taker waits on the row lock and then finds it taken; on SQLite BEGIN
    IMMEDIATE serialises the two. The caller commits.
    """
    insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(
        insert(JobLease)
        .values(job_id=job_id, holder="", token="", expires_at=_NEVER)
        .on_conflict_do_nothing(index_elements=["job_id"])
    )
    taken = session.execute(
        update(JobLease)
        .where(
            JobLease.job_id == job_id,
            or_(
                JobLease.expires_at <= now,
                JobLease.token == token,
                JobLease.holder == dead_holder if dead_holder else false(),
            ),
        )
        .values(holder=holder, token=token, expires_at=now + timedelta(seconds=seconds), taken_at=now)
        .execution_options(synchronize_session=False)
    )
    if taken.rowcount == 1:  # type: ignore[attr-defined]
        return None
    return session.scalar(select(JobLease.holder).where(JobLease.job_id == job_id)) or "?"


def renew_lease(session: Session, job_id: str, *, token: str, now: datetime, seconds: float) -> bool:
    """Push the lease's expiry on while the run holding it still works; False when it was lost."""
    renewed = session.execute(
        update(JobLease)
        .where(JobLease.job_id == job_id, JobLease.token == token)
        .values(expires_at=now + timedelta(seconds=seconds))
        .execution_options(synchronize_session=False)
    )
    return bool(renewed.rowcount == 1)  # type: ignore[attr-defined]


def release_lease(session: Session, job_id: str, *, token: str, now: datetime) -> None:
    """Let the lease go at the end of a run, so the job's next run anywhere need not wait for expiry."""
    session.execute(
        update(JobLease)
        .where(JobLease.job_id == job_id, JobLease.token == token)
        .values(expires_at=now)
        .execution_options(synchronize_session=False)
    )


def record_run(
    session: Session,
    job_id: str,
    outcome: JobOutcome,
    *,
    started_at: datetime,
    finished_at: datetime | None,
    host: str,
    pid: int,
    scheduled_at: datetime | None = None,
    counts: dict[str, Any] | None = None,
    error: str | None = None,
) -> JobRun:
    """Add one run to the history; an error is cut to its last MAX_ERROR_CHARS (the end says most)."""
    run = JobRun(
        job_id=job_id,
        outcome=outcome,
        scheduled_at=scheduled_at,
        started_at=started_at,
        finished_at=finished_at,
        counts=counts or {},
        error=error[-MAX_ERROR_CHARS:] if error else None,
        host=host[:255],
        pid=pid,
    )
    session.add(run)
    session.flush()
    return run


@dataclass(frozen=True)
class JobStatus:
    """One job as `weisu jobs` and the jobs page show it."""

    job_id: str
    #: None: not in the job store (never scheduled, or disabled), or paused.
    next_run_at: datetime | None
    last_run: JobRun | None


def next_run_times(session: Session) -> dict[str, datetime | None]:
    """Each job in APScheduler's store with its next run (read from the plain column, nothing unpickled)."""
    rows = session.execute(select(apscheduler_jobs.c.id, apscheduler_jobs.c.next_run_time))
    return {job_id: None if stamp is None else datetime.fromtimestamp(stamp, UTC) for job_id, stamp in rows}


def last_runs(session: Session) -> dict[str, JobRun]:
    """The latest recorded run of every job that ever ran (rows are added as runs end: highest id)."""
    newest = select(func.max(JobRun.id)).group_by(JobRun.job_id)
    return {run.job_id: run for run in session.scalars(select(JobRun).where(JobRun.id.in_(newest)))}


def job_statuses(session: Session, job_ids: Iterable[str]) -> list[JobStatus]:
    """``job_ids`` (the configured jobs, in order), then any other job found in the store or history."""
    upcoming = next_run_times(session)
    latest = last_runs(session)
    ordered = list(dict.fromkeys([*job_ids, *sorted(upcoming), *sorted(latest)]))
    return [JobStatus(job_id, upcoming.get(job_id), latest.get(job_id)) for job_id in ordered]


def run_history(session: Session, job_id: str | None = None, limit: int = 50) -> list[JobRun]:
    """Past runs, newest first, of one job or all."""
    query = select(JobRun).order_by(JobRun.started_at.desc(), JobRun.id.desc()).limit(limit)
    if job_id is not None:
        query = query.where(JobRun.job_id == job_id)
    return list(session.scalars(query))


def holder_is_gone(holder: str, host: str) -> bool:
    """Whether ``holder`` (HOST:PID) is a process of this host that no longer exists."""
    holder_host, _, pid = holder.rpartition(":")
    if holder_host != host or not pid.isdigit():
        return False  # another machine's process cannot be checked from here: its lease must lapse
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, under another user
        return False
    return False


class LeaseKeeper:
    """Renews a running job's lease every third of its length, so a long crawl keeps it."""

    def __init__(self, factory: Any, job_id: str, token: str, seconds: float) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._renew, args=(factory, job_id, token, seconds), name=f"lease-{job_id}", daemon=True
        )

    def _renew(self, factory: Any, job_id: str, token: str, seconds: float) -> None:
        while not self._stop.wait(seconds / 3):
            try:
                with session_scope(factory) as session:
                    if not renew_lease(session, job_id, token=token, now=datetime.now(UTC), seconds=seconds):
                        log.warning("lease of %s was lost while it ran", job_id)
            except Exception:  # a database hiccup: the next renewal may succeed, the job goes on
                log.exception("could not renew the lease of %s", job_id)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_fields(run: JobRun) -> dict[str, Any]:
    """The fields of a recorded run's log line."""
    duration = (run.finished_at - run.started_at).total_seconds() if run.finished_at else None
    return {
        "event": "job_run",
        "job": run.job_id,
        "outcome": str(run.outcome),
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "seconds": None if duration is None else round(duration, 3),
        "counts": run.counts,
        "error": run.error,
        "host": run.host,
        "pid": run.pid,
    }


def key_value_line(fields: dict[str, Any]) -> str:
    """key=value pairs; a value with spaces, quotes or an equals sign is JSON-quoted (one line always)."""
    parts = []
    for key, value in fields.items():
        if value is None:
            continue
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        if not text or any(c in text for c in ' "=\n\r\t'):
            text = json.dumps(text, ensure_ascii=False)
        parts.append(f"{key}={text}")
    return " ".join(parts)
