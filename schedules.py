"""APScheduler 3 job table, kept in the database: every run leased, recorded and logged on one line.

Adding a job: one JobSpec in JOBS (id, function taking Settings and returning its counts) and one
entry under ``schedules.jobs`` in config.yaml (cron or interval_seconds, grace_seconds, coalesce,
enabled, label).

The job store (table apscheduler_jobs, APScheduler's pickles) holds only ``run_job`` and the job's id:
the Settings, which may hold secrets from the environment, are found at run time through the
module-level runtime set by ``configure`` (``weisu scheduler`` reloads its config file for each run).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import traceback
import uuid
from collections.abc import Callable, Iterable
from contextlib import suppress
from dataclasses import asdict, dataclass, field, is_dataclass
from datetime import UTC, datetime
from typing import Any

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobEvent, JobExecutionEvent
from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from settings import ConfigError, JobSchedule, LogFormat, LoggingSettings, Settings, load_settings
from storage.vocabulary import JobOutcome

log = logging.getLogger("weisu.schedules")
#: The logger of the one line each job run writes.
run_log = logging.getLogger("weisu.jobs")


def _session_factory(settings: Settings) -> Any:
    """One engine (and connection pool) per database for the scheduler's lifetime, not one per run."""
    from bootstrap import session_factory

    return session_factory(settings)


def crawl_then_detect(settings: Settings, priority: str | None = None) -> dict[str, str]:
    """Crawl the platforms (all enabled, or only those of one priority), then detect.

    Each platform runs on its own so that one broken platform is recorded and the others still
    run; detection runs even when some platforms failed, because whatever did arrive is worth it.
    """
    from bootstrap import detect_and_stamp
    from crawlers.runner import run_crawl
    from storage.db import session_scope
    from storage.queries import paused_platform_ids

    with session_scope(_session_factory(settings)) as session:
        paused = paused_platform_ids(session)  # an admin's pause (e.g. after a layout change)
    platform_ids = [
        key
        for key, p in settings.enabled_platforms().items()
        if (priority is None or p.priority == priority) and key not in paused
    ]
    outcome: dict[str, str] = {}
    for platform_id in platform_ids:
        try:
            results = run_crawl(settings, [platform_id])
            outcome[platform_id] = ",".join(r.status for r in results) or "no-run"
        except Exception as error:  # one platform's failure must not stop the sweep
            log.exception("crawl of %s failed", platform_id)
            outcome[platform_id] = f"error: {error}"
    if platform_ids:
        detect_and_stamp(settings, _session_factory(settings))
    return outcome


def nightly_sweep(settings: Settings) -> dict[str, str]:
    return crawl_then_detect(settings)


def incremental_sweep(settings: Settings) -> dict[str, str]:
    return crawl_then_detect(settings, priority="incremental")


def push_tickets(settings: Settings) -> Any:
    from verify.pusher import push_pending

    return push_pending(settings, _session_factory(settings))


def check_dispatch_services(settings: Settings) -> list[str]:
    """At start: name configured service codes the dispatch system does not offer (GET /services.json).

    Logged, not fatal: tickets of other categories still go, and the affected ones fail with the
    server's message, re-pushable once the mapping is fixed. Returns the unknown codes.
    """
    import httpx

    from verify.pusher import unknown_service_codes

    try:
        unknown = unknown_service_codes(settings)
    except (httpx.HTTPError, ValueError, LookupError) as error:
        log.error("could not read the dispatch system's services: %s", error)
        return []
    if unknown:
        log.error("service codes unknown to the dispatch system: %s", ", ".join(unknown))
    return unknown


def sync_ticket_statuses(settings: Settings) -> Any:
    from verify.sync import sync_statuses

    return sync_statuses(settings, _session_factory(settings))


def expire_claims(settings: Settings) -> dict[str, int]:
    from storage.db import session_scope
    from verify.workflow import expire_claims as expire

    with session_scope(_session_factory(settings)) as session:
        return {"expired": expire(session=session)}


def retrain_model(settings: Settings) -> dict[str, Any]:
    """Weekly: train on the corpus plus analysts' decisions; the new model is activated only if not worse."""
    from classify.retraining import retrain
    from storage.db import session_scope

    with session_scope(_session_factory(settings)) as session:
        report = retrain(settings, session)
    log.info("retrain: %s", report.summary())
    return {"activated": report.new.activated}


def purge_expired(settings: Settings) -> dict[str, int]:
    """Daily: delete what ``retention`` lets go; what a lead, ticket or audit event refers to stays."""
    from storage.db import session_scope
    from storage.retention import purge_expired as purge

    with session_scope(_session_factory(settings)) as session:
        return purge(session, **settings.retention.model_dump())


def deliver_alerts(settings: Settings) -> dict[str, int]:
    """Every 30 s: derive alerts (urgent leads, SLAs about to break, crawl health) and send what is due."""
    from verify.alerts.delivery import deliver_alerts as deliver

    return deliver(settings, _session_factory(settings))


def weekly_report(settings: Settings) -> dict[str, str]:
    """Monday morning: the last complete week's class-case (类案) report, written to ``report.out_dir``."""
    from verify.reports.weekly import write_weekly_report

    return {"written": str(write_weekly_report(settings, _session_factory(settings)))}


@dataclass(frozen=True)
class JobSpec:
    id: str
    func: Callable[[Settings], Any]


#: The job table. Ids are stable: `replace_existing` updates a stored job instead of adding another,
#: and config.yaml's schedules.jobs has one entry per id.
JOBS: tuple[JobSpec, ...] = (
    JobSpec("nightly_sweep", nightly_sweep),
    JobSpec("incremental_sweep", incremental_sweep),
    JobSpec("push_tickets", push_tickets),
    JobSpec("sync_ticket_statuses", sync_ticket_statuses),
    JobSpec("expire_claims", expire_claims),
    JobSpec("retrain_model", retrain_model),
    JobSpec("purge_expired", purge_expired),
    JobSpec("deliver_alerts", deliver_alerts),
    JobSpec("weekly_report", weekly_report),
)


@dataclass
class Runtime:
    """What a job run needs that the job store must not hold: settings (with secrets) and the job table."""

    settings: Callable[[], Settings]
    #: Where runs are recorded, also when loading the settings fails at run time.
    database_url: str
    lease_seconds: float
    log_format: LogFormat
    jobs: dict[str, JobSpec] = field(default_factory=dict)


_runtime: Runtime | None = None


def current_runtime() -> Runtime:
    if _runtime is None:
        raise RuntimeError("schedules.configure has not run in this process: no job can run")
    return _runtime


def trigger_of(schedule: JobSchedule, timezone: str) -> BaseTrigger:
    if schedule.cron is not None:
        return CronTrigger.from_crontab(schedule.cron, timezone=timezone)
    return IntervalTrigger(seconds=schedule.interval_seconds or 0, timezone=timezone)


def check_job_table(settings: Settings, jobs: Iterable[JobSpec]) -> None:
    """Every job of the table has a schedule in config.yaml and every schedule a job; else ConfigError."""
    ids = [spec.id for spec in jobs]
    where = f"{settings.config_path}: schedules.jobs"
    missing = [job_id for job_id in ids if job_id not in settings.schedules.jobs]
    if missing:
        raise ConfigError(f"{where}.{missing[0]}: missing (every job of schedules.JOBS needs a schedule)")
    unknown = [key for key in settings.schedules.jobs if key not in ids]
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}: no such job (known: {', '.join(ids)})")


def make_scheduler(settings: Settings, kind: type[BaseScheduler] = BackgroundScheduler) -> BaseScheduler:
    """A scheduler whose jobs live in the application database (apscheduler_jobs, made by migration 0017)."""
    from storage.db import make_engine

    store = SQLAlchemyJobStore(engine=make_engine(settings.database_url), tablename="apscheduler_jobs")
    return kind(timezone=settings.schedules.timezone, jobstores={"default": store})


def configure(
    scheduler: BaseScheduler,
    settings: Settings,
    *,
    jobs: Iterable[JobSpec] = JOBS,
    reload_settings: bool = False,
) -> BaseScheduler:
    """Add every enabled job of the table to ``scheduler``, remove the disabled ones, set the runtime.

    A job already stored with the same trigger keeps its stored next run: a run due while no scheduler
    was up is then caught up once (coalesced) at start, within its grace time. ``reload_settings``:
    each run reads config.yaml afresh (``weisu scheduler``); otherwise runs use ``settings`` as given.
    """
    global _runtime
    table = {spec.id: spec for spec in jobs}
    check_job_table(settings, table.values())
    path = settings.config_path
    _runtime = Runtime(
        settings=(lambda: load_settings(path)) if reload_settings else (lambda: settings),
        database_url=settings.database_url,
        lease_seconds=settings.schedules.lease_seconds,
        log_format=settings.logging.format,
        jobs=table,
    )
    scheduler.remove_listener(record_not_run)  # configured twice: still one record per run not run
    scheduler.add_listener(record_not_run, EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)
    # APScheduler 3 has no public accessor; before start a scheduler made without stores has none.
    store = scheduler._jobstores.get("default")
    zone = settings.schedules.timezone
    for job_id, schedule in settings.schedules.jobs.items():
        if not schedule.enabled:
            if store is not None:
                with suppress(JobLookupError):
                    store.remove_job(job_id)
            continue
        trigger = trigger_of(schedule, zone)
        stored = store.lookup_job(job_id) if store is not None else None
        keep: dict[str, Any] = {}
        if stored is not None and str(stored.trigger) == str(trigger):
            # The stored trigger too: a new interval trigger would restart its phase from now.
            trigger, keep = stored.trigger, {"next_run_time": stored.next_run_time}
        scheduler.add_job(
            run_job,
            trigger=trigger,
            args=[job_id],
            id=job_id,
            name=job_id,
            replace_existing=True,
            max_instances=1,
            coalesce=schedule.coalesce,
            misfire_grace_time=schedule.grace_seconds,
            **keep,
        )
    return scheduler


def as_counts(result: Any) -> dict[str, Any]:
    """What a job returned, as a JSON object for job_runs.counts."""
    if result is None:
        return {}
    if is_dataclass(result) and not isinstance(result, type):
        result = asdict(result)
    if not isinstance(result, dict):
        result = {"result": result}
    loaded: dict[str, Any] = json.loads(json.dumps(result, ensure_ascii=False, default=str))
    return loaded


def _holder() -> tuple[str, int]:
    return socket.gethostname(), os.getpid()


def run_job(job_id: str) -> JobOutcome:
    """Run one job of the table: take its lease, run it, record the run and log one line, come what may.

    The only function the job store names. A run whose lease another scheduler holds is recorded as
    skipped; a run that raises is recorded as failed with its error, and not raised again (the record
    is the report; APScheduler would only log it once more).
    """
    from storage.db import session_factory_for, session_scope
    from storage.job_runs import (
        LeaseKeeper,
        holder_is_gone,
        record_run,
        release_lease,
        run_fields,
        take_lease,
    )

    runtime = current_runtime()
    factory = session_factory_for(runtime.database_url)
    host, pid = _holder()
    token = uuid.uuid4().hex
    started = datetime.now(UTC)
    held_by: str | None = None
    for _attempt in range(2):
        # A second try only when the holder is a process of this host that is gone (a scheduler that
        # crashed mid-run): its lease would otherwise block the job until it lapses.
        with session_scope(factory) as session:
            held_by = take_lease(
                session,
                job_id,
                holder=f"{host}:{pid}",
                token=token,
                now=started,
                seconds=runtime.lease_seconds,
                dead_holder=held_by,
            )
        if held_by is None or not holder_is_gone(held_by, host):
            break
    counts: dict[str, Any] = {}
    error: str | None = None
    if held_by is not None:
        outcome, error = JobOutcome.SKIPPED, f"lease held by {held_by}"
    else:
        with LeaseKeeper(factory, job_id, token, runtime.lease_seconds):
            try:
                spec = runtime.jobs[job_id]
                counts = as_counts(spec.func(runtime.settings()))
                outcome = JobOutcome.OK
            except Exception as exc:  # recorded, whatever it is: the history must show every failure
                outcome = JobOutcome.FAILED
                error = "".join(traceback.format_exception_only(exc)).strip()
                log.debug("job %s failed", job_id, exc_info=True)
    finished = datetime.now(UTC)
    with session_scope(factory) as session:
        if held_by is None:
            release_lease(session, job_id, token=token, now=finished)
        run = record_run(
            session,
            job_id,
            outcome,
            started_at=started,
            finished_at=finished,
            host=host,
            pid=pid,
            counts=counts,
            error=error,
        )
        fields = run_fields(run)
    write_run_line(fields, runtime.log_format)
    return outcome


def record_not_run(event: JobEvent) -> None:
    """A run APScheduler did not start, recorded all the same: one later than its grace time
    (EVENT_JOB_MISSED: missed), or one due while this scheduler still ran the previous one
    (EVENT_JOB_MAX_INSTANCES: skipped)."""
    from storage.db import session_factory_for, session_scope
    from storage.job_runs import record_run, run_fields

    runtime = current_runtime()
    now = datetime.now(UTC)
    if isinstance(event, JobExecutionEvent):
        scheduled = event.scheduled_run_time.astimezone(UTC)
        late = int((now - scheduled).total_seconds())
        outcome, error = JobOutcome.MISSED, f"missed by {late} s, beyond its grace time"
    else:
        times = getattr(event, "scheduled_run_times", None) or [now]
        scheduled = times[-1].astimezone(UTC)
        outcome, error = JobOutcome.SKIPPED, "the previous run was still running (max_instances 1)"
    host, pid = _holder()
    with session_scope(session_factory_for(runtime.database_url)) as session:
        run = record_run(
            session,
            event.job_id,
            outcome,
            scheduled_at=scheduled,
            started_at=now,
            finished_at=now,
            host=host,
            pid=pid,
            error=error,
        )
        fields = run_fields(run)
    write_run_line(fields, runtime.log_format)


def write_run_line(fields: dict[str, Any], fmt: LogFormat) -> None:
    """The run's one log line: a failure or skip at WARNING, a success at INFO."""
    level = logging.INFO if fields["outcome"] == JobOutcome.OK else logging.WARNING
    from storage.job_runs import key_value_line

    message = json.dumps(fields, ensure_ascii=False) if fmt == LogFormat.JSON else key_value_line(fields)
    run_log.log(level, message, extra={"fields": fields})


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger and the message (a job run's fields as they are)."""

    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", None)
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
        }
        if isinstance(fields, dict):
            line.update(fields)
        else:
            line["message"] = record.getMessage()
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def configure_logging(settings: LoggingSettings) -> None:
    """The scheduler's log on stderr: JSON lines or plain text, as config.yaml's ``logging`` says."""
    handler = logging.StreamHandler()
    if settings.format == LogFormat.JSON:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.level)
    # APScheduler's own "Running job" / "executed successfully" lines would make three per run; its
    # warnings (a missed run, a run skipped at max_instances) still show.
    logging.getLogger("apscheduler").setLevel(max(logging.WARNING, root.level))


def run_forever(settings: Settings) -> None:
    """Run the job table in the foreground until interrupted (`weisu scheduler`)."""
    configure_logging(settings.logging)
    scheduler = configure(make_scheduler(settings, BlockingScheduler), settings, reload_settings=True)
    check_dispatch_services(settings)
    for job_id, schedule in settings.schedules.jobs.items():
        if schedule.enabled:
            log.info("scheduled %s: %s", job_id, trigger_of(schedule, settings.schedules.timezone))
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        scheduler.shutdown(wait=False)
