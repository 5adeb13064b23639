"""Acceptance (issue 17): fourteen simulated days on a controllable clock run every job of the shipped
job table at its times, exactly once each, through one scheduler crash and restart.

The scheduler is APScheduler 3's own (BaseScheduler with its real _process_jobs loop, the real
SQLAlchemy job store in the application database, the job table, triggers, grace times and coalescing
of config.yaml through ``schedules.configure``, and ``schedules.run_job`` with its lease and history).
Only two things are not the production ones: the clock, which time-machine stops and moves (APScheduler
3 reads ``datetime.now`` in its scheduler loop and in its executor's grace check; there is no other
seam), and the jobs' work, which recording stand-ins replace (a fortnight of real crawls is not a
test). The DebugExecutor runs each job in the loop's own step, so a step ends when its runs are
recorded.

The expected runs are counted here from the cron lines and intervals of config.yaml, never by asking
the scheduler.

Two runs, both through the same crash (the sixth night, 01:40 to 02:45): the fortnight runs the jobs
whose period is 15 minutes or more (cron jobs and the incremental sweep; the others disabled through
their ``enabled`` switch), and the crash night, 01:00 to 04:00, runs all nine. A fortnight of the
30-second jobs as well would be some 106,000 recorded runs, beyond a test's time here (see
docs/benchmarks.md, ninth session).
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from apscheduler.executors.debug import DebugExecutor
from apscheduler.schedulers.base import BaseScheduler
from shared_databases import BACKENDS, POSTGRES_URL, MigratedDatabases
from sqlalchemy import select

import schedules
from schedules import JobSpec
from settings import PROJECT_ROOT, Settings, load_settings
from storage.db import session_factory_for, session_scope, temporary_postgres_schema, upgrade
from storage.models import JobLease, JobOutcome, JobRun

ZONE = ZoneInfo("Asia/Shanghai")
#: The fortnight starts at local midnight on a Monday, so every interval's grid is on the minute.
START = datetime(2026, 11, 30, 0, 0, tzinfo=ZONE)
END = START + timedelta(days=14)
#: The scheduler dies on the sixth day at 01:40, just after that minute's runs, and comes back at
#: 02:45: the nightly sweep (02:00, grace one hour) fell in the gap, 45 minutes ago.
CRASH = START + timedelta(days=5, hours=1, minutes=40)
RESTART = START + timedelta(days=5, hours=2, minutes=45)
#: The crash night, 01:00 to 04:00, run with all nine jobs.
NIGHT = (START + timedelta(days=5, hours=1), START + timedelta(days=5, hours=4))
#: Jobs that fire every few seconds or minutes: in the crash night only.
FREQUENT = ("push_tickets", "sync_ticket_statuses", "expire_claims", "deliver_alerts")


class SteppedScheduler(BaseScheduler):
    """APScheduler 3's scheduler without a thread of its own: the test turns its loop, one step per
    wake-up (``_process_jobs`` is the loop's body in every scheduler kind)."""

    def wakeup(self) -> None:
        """Nothing to wake: the next step is taken by the test."""

    def step(self) -> float | None:
        """Run what is due at the clock's time; seconds until the next wake-up (None: no job left)."""
        wait: float | None = self._process_jobs()
        return wait

    def shutdown(self, wait: bool = True) -> None:
        """The base class's (abstract there only so that each kind stops its own thread; this has none)."""
        super().shutdown(wait=wait)


def cron_times(
    start: datetime, end: datetime, minute: int, hour: int, weekdays: set[int] | None
) -> list[datetime]:
    """Local times of a daily (or weekly, on ISO ``weekdays``) cron line in [start, end)."""
    days = [start + timedelta(days=n) for n in range((end - start).days + 1)]
    times = [day.replace(hour=hour, minute=minute) for day in days]
    return [t for t in times if start <= t < end and (weekdays is None or t.isoweekday() in weekdays)]


def interval_times(start: datetime, end: datetime, seconds: int) -> list[datetime]:
    """An interval job's fire times: every ``seconds`` from ``start`` (the first one interval after)."""
    step = timedelta(seconds=seconds)
    return list(itertools.takewhile(lambda t: t < end, (start + k * step for k in itertools.count(1))))


def expected_runs(start: datetime, end: datetime, jobs: Iterable[str]) -> dict[str, list[datetime]]:
    """Each of ``jobs``' runs in [start, end), as config.yaml's cron lines and intervals and the crash
    say: a time inside the gap is not run, except the nightly sweep's, which runs once at the restart
    (45 minutes late, within its hour of grace; the interval jobs' last missed time is the restart's
    own tick, so coalescing leaves them nothing more to run)."""
    planned = {
        "nightly_sweep": cron_times(start, end, 0, 2, None),  # 0 2 * * *
        "purge_expired": cron_times(start, end, 30, 3, None),  # 30 3 * * *
        "retrain_model": cron_times(start, end, 30, 4, {7}),  # 30 4 * * sun
        "weekly_report": cron_times(start, end, 0, 7, {1}),  # 0 7 * * mon
        "incremental_sweep": interval_times(start, end, 900),
        "push_tickets": interval_times(start, end, 30),
        "sync_ticket_statuses": interval_times(start, end, 300),
        "expire_claims": interval_times(start, end, 60),
        "deliver_alerts": interval_times(start, end, 30),
    }
    runs = {}
    for job_id in jobs:
        kept = [t for t in planned[job_id] if not CRASH < t < RESTART]
        if job_id == "nightly_sweep" and len(kept) < len(planned[job_id]):
            kept = sorted([*kept, RESTART])
        runs[job_id] = [t.astimezone(UTC) for t in kept]
    return runs


ALL_JOBS = [spec.id for spec in schedules.JOBS]
LONG_PERIOD = [job_id for job_id in ALL_JOBS if job_id not in FREQUENT]


def test_the_expected_runs_follow_from_the_config_lines() -> None:
    """The counting above, checked by hand: 14 days of 15 minutes are 1,344 ticks less the first
    instant, and the 65-minute gap swallows four; three hours of 30 s are 360 less the first instant,
    and the gap swallows 129."""
    fortnight = {job_id: len(times) for job_id, times in expected_runs(START, END, LONG_PERIOD).items()}
    assert fortnight == {
        "nightly_sweep": 14,
        "purge_expired": 14,
        "retrain_model": 2,
        "weekly_report": 2,
        "incremental_sweep": 1343 - 4,
    }
    night = {job_id: len(times) for job_id, times in expected_runs(*NIGHT, ALL_JOBS).items()}
    assert night == {
        "nightly_sweep": 1,
        "purge_expired": 1,
        "retrain_model": 0,
        "weekly_report": 0,
        "incremental_sweep": 11 - 4,
        "push_tickets": 359 - 129,
        "sync_ticket_statuses": 35 - 12,
        "expire_claims": 179 - 64,
        "deliver_alerts": 359 - 129,
    }
    assert expected_runs(*NIGHT, ["nightly_sweep"]) == {"nightly_sweep": [RESTART.astimezone(UTC)]}


@pytest.fixture(scope="module", params=BACKENDS)
def backend_url(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    migrated_databases: MigratedDatabases,
) -> Iterator[str]:
    """A migrated database with real commits, once per backend for the whole module (as
    committed_database does per test); each run below takes a schema or file of its own."""
    if request.param == "sqlite":
        yield str(tmp_path_factory.mktemp("fortnight"))
        return
    assert POSTGRES_URL
    yield POSTGRES_URL


@contextmanager
def own_database(backend_url: str, migrated_databases: MigratedDatabases, name: str) -> Iterator[str]:
    if backend_url.startswith("postgresql"):
        with temporary_postgres_schema(backend_url, "t") as url:
            upgrade(url)
            yield url
    else:
        yield migrated_databases.sqlite_copy(Path(backend_url) / f"{name}.db")


def run_schedule(url: str, start: datetime, end: datetime, jobs: list[str]) -> dict[str, Any]:
    """Run the shipped job table (only ``jobs`` enabled) from ``start`` to ``end`` on the controlled
    clock, with the crash; what the stand-ins were called at, and the run history."""
    settings = load_settings(PROJECT_ROOT / "config.yaml", env={"WEISU_DATABASE_URL": url})
    assert settings.schedules.timezone == str(ZONE)
    settings = settings.changed(
        schedules={"jobs": {job_id: {"enabled": job_id in jobs} for job_id in settings.schedules.jobs}}
    )
    calls: defaultdict[str, list[datetime]] = defaultdict(list)

    def stand_in(job_id: str) -> JobSpec:
        def record(_settings: Settings) -> dict[str, int]:
            calls[job_id].append(datetime.now(UTC))
            return {"call": len(calls[job_id])}

        return JobSpec(job_id, record)

    table = [stand_in(spec.id) for spec in schedules.JOBS]

    def new_scheduler() -> SteppedScheduler:
        scheduler = schedules.make_scheduler(settings, SteppedScheduler)
        assert isinstance(scheduler, SteppedScheduler)
        scheduler.add_executor(DebugExecutor(), "default")
        schedules.configure(scheduler, settings, jobs=table)
        scheduler.start()
        return scheduler

    with time_machine.travel(start, tick=False) as clock:

        def run_until(scheduler: SteppedScheduler, stop: datetime) -> None:
            while True:
                wait = scheduler.step()
                assert wait is not None
                following = datetime.now(UTC) + timedelta(seconds=wait)
                if following >= stop:
                    clock.move_to(stop)
                    return
                clock.move_to(following)

        if start < CRASH:
            first = new_scheduler()
            run_until(first, CRASH + timedelta(seconds=1))
            # The crash: the process is gone without a shutdown; only the database remembers the jobs.
            del first
            clock.move_to(RESTART)
        second = new_scheduler()
        run_until(second, end)
        second.shutdown(wait=True)
    with session_scope(session_factory_for(url)) as session:
        history = list(session.scalars(select(JobRun).order_by(JobRun.id)))
        leases = {lease.job_id: as_utc(lease.expires_at) for lease in session.scalars(select(JobLease))}
        session.expunge_all()
    return {"calls": dict(calls), "history": history, "leases": leases}


def as_utc(stamp: datetime) -> datetime:
    """A stored time as aware UTC (SQLite hands it back naive)."""
    return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)


@pytest.fixture(scope="module")
def fortnight(backend_url: str, migrated_databases: MigratedDatabases) -> Iterator[dict[str, Any]]:
    with own_database(backend_url, migrated_databases, "fortnight") as url:
        yield run_schedule(url, START, END, LONG_PERIOD) | {
            "expected": expected_runs(START, END, LONG_PERIOD)
        }


@pytest.fixture(scope="module")
def night(backend_url: str, migrated_databases: MigratedDatabases) -> Iterator[dict[str, Any]]:
    with own_database(backend_url, migrated_databases, "night") as url:
        yield run_schedule(url, *NIGHT, ALL_JOBS) | {"expected": expected_runs(*NIGHT, ALL_JOBS)}


@pytest.fixture
def both(fortnight: dict[str, Any], night: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {"fortnight": fortnight, "night": night}


RUNS = pytest.mark.parametrize("which", ["fortnight", "night"])


@RUNS
def test_every_job_runs_at_each_of_its_times_exactly_once_through_a_crash(
    both: dict[str, dict[str, Any]], which: str
) -> None:
    outcome = both[which]
    expected = {job_id: times for job_id, times in outcome["expected"].items() if times}
    assert outcome["calls"] == expected


def test_the_nightly_sweep_missed_while_down_runs_once_at_the_restart(fortnight: dict[str, Any]) -> None:
    nightly = [t.astimezone(ZONE) for t in fortnight["calls"]["nightly_sweep"]]
    assert [t for t in nightly if t.date() == RESTART.date()] == [RESTART]
    assert [t.time().isoformat() for t in nightly].count("02:00:00") == 13


@RUNS
def test_the_run_history_holds_exactly_those_runs_all_ok(both: dict[str, dict[str, Any]], which: str) -> None:
    outcome = both[which]
    by_job: defaultdict[str, list[datetime]] = defaultdict(list)
    for run in outcome["history"]:
        by_job[run.job_id].append(as_utc(run.started_at))
    assert dict(by_job) == {job_id: times for job_id, times in outcome["expected"].items() if times}
    total = sum(map(len, outcome["expected"].values()))
    assert Counter(run.outcome for run in outcome["history"]) == {JobOutcome.OK: total}
    assert all(run.finished_at == run.started_at and run.error is None for run in outcome["history"])


@RUNS
def test_every_lease_is_released_at_the_end_of_its_last_run(
    both: dict[str, dict[str, Any]], which: str
) -> None:
    outcome = both[which]
    last = {job_id: times[-1] for job_id, times in outcome["expected"].items() if times}
    assert outcome["leases"] == last
