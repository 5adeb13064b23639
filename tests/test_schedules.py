"""The scheduler: the job table from config.yaml, jobs kept in the database across restarts, missed runs
caught up once, one runner per job across schedulers, and every run recorded and logged."""

from __future__ import annotations

import json
import os
import pickle
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import select
from waiting import wait_until

import schedules
from schedules import JobSpec
from settings import PROJECT_ROOT, ConfigError, JobSchedule, LogFormat, Settings, load_settings
from storage.db import make_engine, make_session_factory, session_scope, upgrade
from storage.job_runs import take_lease
from storage.models import JobOutcome, JobRun, apscheduler_jobs
from storage.queries import set_platform_paused, sync_platforms

HOLDER = f"{socket.gethostname()}:{os.getpid()}"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    loaded = load_settings(
        PROJECT_ROOT / "config.yaml", env={"WEISU_DATABASE_URL": f"sqlite:///{tmp_path}/w.db"}
    )
    upgrade(loaded.database_url)
    return loaded


@pytest.fixture
def db_settings(database_url: str) -> Settings:
    """The shipped settings on the test database (SQLite, and PostgreSQL when configured)."""
    return load_settings(PROJECT_ROOT / "config.yaml", env={"WEISU_DATABASE_URL": database_url})


def recorded_runs(settings: Settings, job_id: str | None = None) -> list[JobRun]:
    engine = make_engine(settings.database_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            query = select(JobRun).order_by(JobRun.id)
            if job_id is not None:
                query = query.where(JobRun.job_id == job_id)
            return list(session.scalars(query))
    finally:
        engine.dispose()


def stored_jobs(settings: Settings) -> dict[str, bytes]:
    engine = make_engine(settings.database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(select(apscheduler_jobs.c.id, apscheduler_jobs.c.job_state))
            return {job_id: state for job_id, state in rows}
    finally:
        engine.dispose()


def pretend_down_since(settings: Settings, job_id: str, next_run: datetime) -> None:
    """As if the scheduler had been down: the stored job's next run is put back to ``next_run``."""
    engine = make_engine(settings.database_url)
    store = SQLAlchemyJobStore(engine=engine, tablename="apscheduler_jobs")
    job = store.lookup_job(job_id)
    state = job.__getstate__()
    state["next_run_time"] = next_run
    job.__setstate__(state)
    store.update_job(job)
    engine.dispose()


@pytest.fixture
def started() -> Iterator[list[Any]]:
    """Schedulers a test starts; every one is shut down (waiting for its runs) at the end."""
    schedulers: list[Any] = []
    yield schedulers
    for scheduler in schedulers:
        if scheduler.running:
            scheduler.shutdown(wait=True)


def with_jobs(settings: Settings, **schedules_by_id: JobSchedule) -> Settings:
    """The settings with exactly these jobs scheduled (settings are frozen: a new object)."""
    jobs_only = settings.schedules.model_copy(update={"jobs": dict(schedules_by_id)})
    return settings.model_copy(update={"schedules": jobs_only})


def test_job_table_has_every_job_with_its_configured_trigger_grace_and_coalescing(settings: Settings) -> None:
    scheduler = schedules.configure(BackgroundScheduler(timezone="Asia/Shanghai"), settings)
    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert sorted(jobs) == [
        "deliver_alerts",
        "expire_claims",
        "incremental_sweep",
        "nightly_sweep",
        "purge_expired",
        "push_tickets",
        "retrain_model",
        "sync_ticket_statuses",
        "weekly_report",
    ]
    assert (
        str(jobs["nightly_sweep"].trigger)
        == "cron[month='*', day='*', day_of_week='*', hour='2', minute='0']"
    )
    assert (
        str(jobs["retrain_model"].trigger)
        == "cron[month='*', day='*', day_of_week='sun', hour='4', minute='30']"
    )
    assert str(jobs["push_tickets"].trigger) == "interval[0:00:30]"
    assert str(jobs["incremental_sweep"].trigger) == "interval[0:15:00]"
    assert str(jobs["sync_ticket_statuses"].trigger) == "interval[0:05:00]"
    assert str(jobs["deliver_alerts"].trigger) == "interval[0:00:30]"
    assert (
        str(jobs["weekly_report"].trigger)
        == "cron[month='*', day='*', day_of_week='mon', hour='7', minute='0']"
    )
    assert {job_id: job.misfire_grace_time for job_id, job in jobs.items()} == {
        "nightly_sweep": 3600,
        "incremental_sweep": 300,
        "push_tickets": 60,
        "sync_ticket_statuses": 300,
        "expire_claims": 60,
        "retrain_model": 21600,
        "purge_expired": 21600,
        "deliver_alerts": 30,
        "weekly_report": 21600,
    }
    assert all(job.max_instances == 1 and job.coalesce for job in jobs.values())
    assert all(job.func is schedules.run_job and job.args == (job.id,) for job in jobs.values())


def test_a_job_without_a_schedule_in_the_config_stops_naming_its_key(settings: Settings) -> None:
    del settings.schedules.jobs["push_tickets"]
    with pytest.raises(ConfigError) as raised:
        schedules.configure(BackgroundScheduler(), settings)
    assert str(raised.value) == (
        f"{settings.config_path}: schedules.jobs.push_tickets: missing (every job of schedules.JOBS needs"
        " a schedule)"
    )


def test_a_schedule_for_no_known_job_stops_naming_its_key(settings: Settings) -> None:
    settings = settings.changed(schedules={"jobs": {"weekly_reprot": JobSchedule(cron="0 8 * * mon")}})
    with pytest.raises(ConfigError) as raised:
        schedules.check_job_table(settings, schedules.JOBS)
    assert str(raised.value).startswith(
        f"{settings.config_path}: schedules.jobs.weekly_reprot: no such job (known: nightly_sweep, "
    )


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ("{grace_seconds: 60}", "Value error, give exactly one of cron or interval_seconds"),
        (
            '{cron: "0 2 * * *", interval_seconds: 60}',
            "Value error, give exactly one of cron or interval_seconds",
        ),
        ('{cron: "0 25 * * *"}', "Value error, '0 25 * * *' is not a crontab line: "),
        ("{interval_seconds: 0}", "Input should be greater than or equal to 1"),
    ],
)
def test_a_bad_schedule_stops_loading_naming_the_job(tmp_path: Path, entry: str, reason: str) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f"schedules:\n  jobs:\n    nightly_sweep: {entry}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_settings(config, env={})
    assert str(raised.value).startswith(f"{config}: schedules.jobs.nightly_sweep")
    assert reason in str(raised.value)


def test_the_job_store_survives_a_restart_without_duplicating_a_job(
    db_settings: Settings, started: list[Any]
) -> None:
    first = schedules.configure(schedules.make_scheduler(db_settings), db_settings)
    first.start(paused=True)
    before = {job.id: job.next_run_time for job in first.get_jobs()}
    first.shutdown()
    second = schedules.configure(schedules.make_scheduler(db_settings), db_settings)
    second.start(paused=True)
    started.append(second)
    after = {job.id: job.next_run_time for job in second.get_jobs()}
    assert sorted(stored_jobs(db_settings)) == sorted(spec.id for spec in schedules.JOBS)
    assert after == before  # kept from the store, not recomputed from the restart's clock


def test_a_disabled_job_leaves_the_job_store(db_settings: Settings, started: list[Any]) -> None:
    first = schedules.configure(schedules.make_scheduler(db_settings), db_settings)
    first.start(paused=True)
    first.shutdown()
    db_settings = db_settings.changed(schedules={"jobs": {"retrain_model": {"enabled": False}}})
    second = schedules.configure(schedules.make_scheduler(db_settings), db_settings)
    second.start(paused=True)
    started.append(second)
    assert "retrain_model" not in stored_jobs(db_settings)
    assert second.get_job("retrain_model") is None


def test_a_changed_schedule_replaces_the_stored_one(db_settings: Settings, started: list[Any]) -> None:
    first = schedules.configure(schedules.make_scheduler(db_settings), db_settings)
    first.start(paused=True)
    first.shutdown()
    db_settings = db_settings.changed(
        schedules={"jobs": {"nightly_sweep": JobSchedule(cron="0 1 * * *", grace_seconds=3600)}}
    )
    second = schedules.configure(schedules.make_scheduler(db_settings), db_settings)
    second.start(paused=True)
    started.append(second)
    job = second.get_job("nightly_sweep")
    assert str(job.trigger) == "cron[month='*', day='*', day_of_week='*', hour='1', minute='0']"
    assert (job.next_run_time.hour, job.next_run_time.minute) == (1, 0)  # in Asia/Shanghai


def test_the_job_store_holds_the_job_id_only_never_settings_or_a_secret(
    db_settings: Settings, started: list[Any]
) -> None:
    db_settings = db_settings.changed(
        author_hash_key="a-secret-hash-key-that-must-never-reach-the-job-store",
        dispatch={"api_key": "dispatch-api-key-never-stored"},
    )
    scheduler = schedules.configure(schedules.make_scheduler(db_settings), db_settings)
    scheduler.start(paused=True)
    started.append(scheduler)
    states = stored_jobs(db_settings)
    for job_id, state in states.items():
        assert b"a-secret-hash-key" not in state and b"dispatch-api-key" not in state
        job = pickle.loads(state)
        assert (job["func"], job["args"], job["kwargs"]) == ("schedules:run_job", (job_id,), {})


def test_a_run_missed_within_its_grace_runs_once_after_a_restart(
    db_settings: Settings, started: list[Any]
) -> None:
    calls: list[datetime] = []
    table = [JobSpec("tick", lambda _s: calls.append(datetime.now(UTC)) or {"ticks": len(calls)})]
    db_settings = with_jobs(db_settings, tick=JobSchedule(interval_seconds=3600, grace_seconds=7200))
    first = schedules.configure(schedules.make_scheduler(db_settings), db_settings, jobs=table)
    first.start(paused=True)
    first.shutdown()
    # Down for hours: three runs (2.5 h, 1.5 h and 0.5 h ago) were due while nothing ran.
    pretend_down_since(db_settings, "tick", datetime.now(UTC) - timedelta(hours=2, minutes=30))
    second = schedules.configure(schedules.make_scheduler(db_settings), db_settings, jobs=table)
    second.start()
    started.append(second)
    runs = wait_until(lambda: recorded_runs(db_settings, "tick"), 20, "the tick job's first run")
    next_run = wait_until(lambda: second.get_job("tick").next_run_time, 20, "the tick job's next time")
    assert next_run > datetime.now(UTC)  # nothing more is due: the three were coalesced into one run
    assert len(calls) == 1
    assert [(r.outcome, r.counts) for r in runs] == [(JobOutcome.OK, {"ticks": 1})]


def test_a_run_missed_beyond_its_grace_is_recorded_as_missed_and_not_run(
    db_settings: Settings, started: list[Any]
) -> None:
    calls: list[int] = []
    table = [JobSpec("tick", lambda _s: calls.append(1))]
    db_settings = with_jobs(db_settings, tick=JobSchedule(interval_seconds=3600, grace_seconds=60))
    first = schedules.configure(schedules.make_scheduler(db_settings), db_settings, jobs=table)
    first.start(paused=True)
    first.shutdown()
    due = datetime.now(UTC) - timedelta(minutes=30)
    pretend_down_since(db_settings, "tick", due)
    second = schedules.configure(schedules.make_scheduler(db_settings), db_settings, jobs=table)
    second.start()
    started.append(second)
    runs = wait_until(lambda: recorded_runs(db_settings, "tick"), 20, "the tick job's first run")
    assert calls == []
    [run] = runs
    assert run.outcome == JobOutcome.MISSED
    assert run.scheduled_at is not None and abs((run.scheduled_at - due).total_seconds()) < 0.001
    assert run.error in {f"missed by {s} s, beyond its grace time" for s in (1800, 1801)}  # a second may pass


def test_two_schedulers_on_one_database_never_run_a_job_at_once(
    db_settings: Settings, started: list[Any]
) -> None:
    lock = threading.Lock()
    running: list[int] = [0]
    peaks: list[int] = []

    def slow(_settings: Settings) -> None:
        with lock:
            running[0] += 1
            peaks.append(running[0])
        time.sleep(1.5)  # longer than the interval: the next run comes while this one holds the lease
        with lock:
            running[0] -= 1

    table = [JobSpec("slow", slow)]
    db_settings = with_jobs(db_settings, slow=JobSchedule(interval_seconds=1, grace_seconds=30))
    for _ in range(2):
        scheduler = schedules.configure(schedules.make_scheduler(db_settings), db_settings, jobs=table)
        scheduler.start()
        started.append(scheduler)

    def enough() -> bool:
        runs = recorded_runs(db_settings, "slow")
        leased = [run for run in runs if run.error == f"lease held by {HOLDER}"]
        return [run.outcome for run in runs].count(JobOutcome.OK) >= 2 and bool(leased)

    wait_until(enough, 30, "two runs done and one skipped on the held lease")
    for scheduler in started:
        scheduler.shutdown(wait=True)
    assert max(peaks) == 1
    skipped = {run.error for run in recorded_runs(db_settings, "slow") if run.outcome == JobOutcome.SKIPPED}
    # The other scheduler found the lease held; the one still running it skipped its own next run.
    assert f"lease held by {HOLDER}" in skipped
    assert skipped <= {f"lease held by {HOLDER}", "the previous run was still running (max_instances 1)"}


def test_a_lease_is_refused_while_held_and_taken_once_expired(session_factory: Any) -> None:
    now = datetime(2026, 12, 3, 2, 0, tzinfo=UTC)
    with session_scope(session_factory) as session:
        assert take_lease(session, "nightly_sweep", holder="a:1", token="t1", now=now, seconds=60) is None
    with session_scope(session_factory) as session:
        held = take_lease(session, "nightly_sweep", holder="b:2", token="t2", now=now, seconds=60)
    assert held == "a:1"
    later = now + timedelta(seconds=61)
    with session_scope(session_factory) as session:
        assert take_lease(session, "nightly_sweep", holder="b:2", token="t2", now=later, seconds=60) is None
    with session_scope(session_factory) as session:
        held = take_lease(session, "nightly_sweep", holder="a:1", token="t1", now=later, seconds=60)
    assert held == "b:2"


def test_a_failing_job_is_recorded_with_its_error(db_settings: Settings) -> None:
    def broken(_settings: Settings) -> None:
        raise RuntimeError("平台改版，选择器失效")

    db_settings = with_jobs(db_settings, broken=JobSchedule(interval_seconds=60))
    schedules.configure(BackgroundScheduler(), db_settings, jobs=[JobSpec("broken", broken)])
    assert schedules.run_job("broken") == JobOutcome.FAILED
    [run] = recorded_runs(db_settings, "broken")
    assert (run.outcome, run.error, run.counts) == (
        JobOutcome.FAILED,
        "RuntimeError: 平台改版，选择器失效",
        {},
    )
    assert (run.host, run.pid) == (socket.gethostname(), os.getpid())
    assert run.finished_at is not None and run.finished_at >= run.started_at


def test_a_run_records_what_the_job_returned_as_counts(db_settings: Settings) -> None:
    @dataclass
    class Summary:
        attempted: int
        sent: int

    db_settings = with_jobs(db_settings, push=JobSchedule(interval_seconds=30))
    schedules.configure(BackgroundScheduler(), db_settings, jobs=[JobSpec("push", lambda _s: Summary(3, 2))])
    assert schedules.run_job("push") == JobOutcome.OK
    assert [run.counts for run in recorded_runs(db_settings, "push")] == [{"attempted": 3, "sent": 2}]


@pytest.mark.parametrize("fmt", [LogFormat.JSON, LogFormat.TEXT])
def test_each_run_writes_one_structured_log_line(
    settings: Settings, caplog: pytest.LogCaptureFixture, fmt: LogFormat
) -> None:
    settings = settings.changed(logging={"format": fmt})
    settings = with_jobs(settings, tick=JobSchedule(interval_seconds=60))
    schedules.configure(BackgroundScheduler(), settings, jobs=[JobSpec("tick", lambda _s: {"深圳": "ok 12"})])
    with caplog.at_level("INFO", logger="weisu.jobs"):
        schedules.run_job("tick")
    [record] = caplog.records
    if fmt == LogFormat.JSON:
        line = json.loads(record.getMessage())
        assert {k: line[k] for k in ("event", "job", "outcome", "counts", "error")} == {
            "event": "job_run",
            "job": "tick",
            "outcome": "ok",
            "counts": {"深圳": "ok 12"},
            "error": None,
        }
        assert line["host"] == socket.gethostname() and line["pid"] == os.getpid()
    else:
        message = record.getMessage()
        assert message.startswith("event=job_run job=tick outcome=ok started_at=")
        assert 'counts="{\\"深圳\\": \\"ok 12\\"}"' in message
        assert "\n" not in message


def test_the_json_formatter_writes_a_run_as_one_json_object(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    fields = {"event": "job_run", "job": "tick", "outcome": "failed", "error": "RuntimeError: 坏了\n第二行"}
    record = logging.LogRecord("weisu.jobs", logging.WARNING, __file__, 1, "x", None, None)
    record.fields = fields
    line = schedules.JsonFormatter().format(record)
    assert "\n" not in line
    assert json.loads(line) | {"time": "-"} == {
        "time": "-",
        "level": "WARNING",
        "logger": "weisu.jobs",
        **fields,
    }


@dataclass
class _Result:
    status: str


def test_one_failing_platform_does_not_stop_the_sweep_or_detection(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import classify.detection
    import crawlers.runner

    crawled: list[str] = []
    detected: list[bool] = []
    platform_ids = list(settings.enabled_platforms())
    broken = platform_ids[0]

    def fake_crawl(_settings: Settings, ids: list[str]) -> list[_Result]:
        crawled.extend(ids)
        if ids == [broken]:
            raise RuntimeError("layout changed")
        return [_Result("finished")]

    monkeypatch.setattr(crawlers.runner, "run_crawl", fake_crawl)
    monkeypatch.setattr(classify.detection, "detect_new_posts", lambda *a, **_: detected.append(True))
    outcome = schedules.nightly_sweep(settings)
    assert crawled == platform_ids
    assert outcome[broken] == "error: layout changed"
    assert all(outcome[p] == "finished" for p in platform_ids[1:])
    assert detected == [True]


def test_service_codes_the_dispatch_system_lacks_are_logged_by_name_at_start(
    settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from fixtures.dispatch_simulator.app import SimulatorOptions
    from fixtures.dispatch_simulator.app import create_app as create_simulator
    from fixtures.serving import serve_in_thread

    offered = {code: code for code in settings.dispatch.service_codes.values() if code != "health"}
    offered["other"] = "其他"
    simulator = create_simulator(tmp_path / "dispatch.db", SimulatorOptions(services=offered))
    with serve_in_thread(simulator) as url:
        settings = settings.changed(dispatch={"base_url": url})
        with caplog.at_level("ERROR", logger="weisu.schedules"):
            unknown = schedules.check_dispatch_services(settings)
    assert unknown == ["health"]
    assert caplog.messages == ["service codes unknown to the dispatch system: health"]


def test_an_unreachable_dispatch_system_at_start_is_logged_not_fatal(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    # discard port: nothing listens
    settings = settings.changed(dispatch={"base_url": "http://127.0.0.1:9", "timeout_seconds": 1})
    with caplog.at_level("ERROR", logger="weisu.schedules"):
        assert schedules.check_dispatch_services(settings) == []
    assert caplog.messages[0].startswith("could not read the dispatch system's services: ")


def test_a_sweep_skips_the_platforms_an_admin_paused(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import classify.detection
    import crawlers.runner

    engine = make_engine(settings.database_url)
    with session_scope(make_session_factory(engine)) as session:
        sync_platforms(session, {k: (p.name, p.kind, p.enabled) for k, p in settings.platforms.items()})
        set_platform_paused(session, "tieba", paused=True, actor="admin", reason="改版，待更新选择器")
    engine.dispose()
    crawled: list[str] = []
    monkeypatch.setattr(crawlers.runner, "run_crawl", lambda _s, ids: crawled.extend(ids) or [_Result("ok")])
    monkeypatch.setattr(classify.detection, "detect_new_posts", lambda *a, **_: None)
    outcome = schedules.nightly_sweep(settings)
    assert "tieba" not in crawled and "tieba" not in outcome
    assert crawled == [key for key in settings.enabled_platforms() if key != "tieba"]


def _lease_held_by(settings: Settings, job_id: str, holder: str) -> None:
    engine = make_engine(settings.database_url)
    with session_scope(make_session_factory(engine)) as session:
        now = datetime.now(UTC)
        assert take_lease(session, job_id, holder=holder, token="other", now=now, seconds=3600) is None
    engine.dispose()


def test_a_lease_left_by_a_crashed_scheduler_on_this_host_is_taken_over(db_settings: Settings) -> None:
    import subprocess
    import sys

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # its pid now names no process
    _lease_held_by(db_settings, "tick", f"{socket.gethostname()}:{gone.pid}")
    db_settings = with_jobs(db_settings, tick=JobSchedule(interval_seconds=60))
    schedules.configure(BackgroundScheduler(), db_settings, jobs=[JobSpec("tick", lambda _s: None)])
    assert schedules.run_job("tick") == JobOutcome.OK


def test_a_lease_held_on_another_host_is_respected_until_it_lapses(db_settings: Settings) -> None:
    _lease_held_by(db_settings, "tick", "crawler-2:4242")
    db_settings = with_jobs(db_settings, tick=JobSchedule(interval_seconds=60))
    schedules.configure(BackgroundScheduler(), db_settings, jobs=[JobSpec("tick", lambda _s: None)])
    assert schedules.run_job("tick") == JobOutcome.SKIPPED
    [run] = recorded_runs(db_settings, "tick")
    assert run.error == "lease held by crawler-2:4242"


def test_a_run_due_while_the_previous_still_runs_is_recorded_as_skipped(
    settings: Settings, started: list[Any]
) -> None:
    release = threading.Event()
    table = [JobSpec("slow", lambda _s: release.wait(10))]
    settings = with_jobs(settings, slow=JobSchedule(interval_seconds=1, grace_seconds=30))
    scheduler = schedules.configure(schedules.make_scheduler(settings), settings, jobs=table)
    scheduler.start()
    started.append(scheduler)
    # The first run is still going: the one recorded is the skipped second.
    [skipped, *_] = wait_until(lambda: recorded_runs(settings, "slow"), 20, "the slow job's run")
    release.set()
    assert (skipped.outcome, skipped.error) == (
        JobOutcome.SKIPPED,
        "the previous run was still running (max_instances 1)",
    )
