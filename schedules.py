"""APScheduler 3 job table: sweeps (crawl then detect), outbox pushes, ticket status sync, claim expiry."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from settings import Settings

log = logging.getLogger("weisu.schedules")


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


def push_tickets(settings: Settings) -> None:
    from verify.pusher import push_pending

    push_pending(settings, _session_factory(settings))


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


def sync_ticket_statuses(settings: Settings) -> None:
    from verify.sync import sync_statuses

    sync_statuses(settings, _session_factory(settings))


def expire_claims(settings: Settings) -> None:
    from storage.db import session_scope
    from verify.workflow import expire_claims as expire

    with session_scope(_session_factory(settings)) as session:
        expire(session=session)


def retrain_model(settings: Settings) -> dict[str, Any]:
    """Weekly: train on the corpus plus analysts' decisions; the new model is activated only if not worse."""
    from classify.retraining import retrain
    from storage.db import session_scope

    with session_scope(_session_factory(settings)) as session:
        report = retrain(settings, session)
    log.info("retrain: %s", report.summary())
    return {"activated": report.new.activated}


@dataclass(frozen=True)
class JobSpec:
    id: str
    func: Callable[[Settings], Any]
    trigger: Callable[[Settings], Any]
    misfire_grace_seconds: int


#: The job table. Ids are stable so `replace_existing` updates rather than duplicates a job.
JOBS: tuple[JobSpec, ...] = (
    JobSpec(
        "nightly_sweep",
        nightly_sweep,
        lambda s: CronTrigger.from_crontab(s.schedules.nightly_sweep_cron, timezone=s.schedules.timezone),
        misfire_grace_seconds=3600,
    ),
    JobSpec(
        "incremental_sweep",
        incremental_sweep,
        lambda s: IntervalTrigger(minutes=s.schedules.incremental_minutes, timezone=s.schedules.timezone),
        misfire_grace_seconds=300,
    ),
    JobSpec(
        "push_tickets",
        push_tickets,
        lambda s: IntervalTrigger(seconds=s.schedules.push_seconds, timezone=s.schedules.timezone),
        misfire_grace_seconds=60,
    ),
    JobSpec(
        "sync_ticket_statuses",
        sync_ticket_statuses,
        lambda s: IntervalTrigger(minutes=s.schedules.sync_minutes, timezone=s.schedules.timezone),
        misfire_grace_seconds=300,
    ),
    JobSpec(
        "retrain_model",
        retrain_model,
        lambda s: CronTrigger.from_crontab(s.schedules.retrain_cron, timezone=s.schedules.timezone),
        misfire_grace_seconds=6 * 3600,
    ),
    JobSpec(
        "expire_claims",
        expire_claims,
        lambda s: IntervalTrigger(minutes=1, timezone=s.schedules.timezone),
        misfire_grace_seconds=60,
    ),
)


def configure(scheduler: BaseScheduler, settings: Settings) -> BaseScheduler:
    """Add every job of the table to ``scheduler``: one instance at a time, missed runs coalesced."""
    for spec in JOBS:
        scheduler.add_job(
            spec.func,
            trigger=spec.trigger(settings),
            args=[settings],
            id=spec.id,
            name=spec.id,
            replace_existing=True,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=spec.misfire_grace_seconds,
        )
    return scheduler


def run_forever(settings: Settings) -> None:
    """Run the job table in the foreground until interrupted (`weisu scheduler`)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    scheduler = configure(BlockingScheduler(timezone=settings.schedules.timezone), settings)
    check_dispatch_services(settings)
    for job in scheduler.get_jobs():
        log.info("scheduled %s: %s", job.id, job.trigger)
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        scheduler.shutdown(wait=False)
