"""Scheduled jobs in the database: per-job leases (one runner at a time), run history, next runs."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import false, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from storage.models import JobLease, JobOutcome, JobRun, apscheduler_jobs

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
