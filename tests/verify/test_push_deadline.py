"""Acceptance: the pusher scheduled every 30 s, an urgent lead verified at T is accepted before T + 60 s."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import httpx
import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from starlette.requests import Request
from waiting import wait_until

import schedules
from fixtures.dispatch_simulator.app import SimulatorOptions, configured_services
from fixtures.dispatch_simulator.app import create_app as create_simulator
from fixtures.leads import promote
from fixtures.serving import serve_in_thread
from settings import load_settings
from storage.base import utcnow
from storage.models import Ticket
from verify.pusher import push_pending

DEADLINE = timedelta(seconds=60)


def stored_keys(url: str) -> list[str]:
    return [r["idempotency_key"] for r in httpx.get(f"{url}/_requests").json()["requests"]]


def test_verified_just_after_a_run_began_an_urgent_lead_goes_out_with_the_next_run_within_60_s(
    session, session_factory, make_lead, settings, dispatch_db
) -> None:
    """The controllable clock: the shipped job table's own trigger says when the next run fires."""
    shipped = load_settings(env={})
    trigger = schedules.trigger_of(shipped.schedules.jobs["push_tickets"], shipped.schedules.timezone)
    backlog = [promote(session, make_lead, settings, summary=f"路灯不亮 {n}") for n in range(12)]
    urgent = promote(session, make_lead, settings, summary="燃气泄漏", priority="urgent")
    verified_at = session.get(Ticket, urgent.id).created_at
    session.commit()
    # Worst case: a run began a moment before the lead was verified and did not see it.
    next_run = trigger.get_next_fire_time(verified_at - timedelta(milliseconds=1), verified_at)
    with serve_in_thread(create_simulator(dispatch_db)) as url:
        settings = settings.changed(dispatch={"base_url": url})
        run_started = utcnow()
        summary = push_pending(settings, session_factory)
        keys = stored_keys(url)
    session.expire_all()
    accepted_after_run_start = session.get(Ticket, urgent.id).sent_at - run_started
    assert next_run - verified_at < timedelta(seconds=30)
    assert (next_run - verified_at) + accepted_after_run_start < DEADLINE
    assert summary.sent == 13
    assert keys[0] == urgent.idempotency_key  # ahead of the whole backlog
    assert sorted(keys[1:]) == sorted(t.idempotency_key for t in backlog)


# The push runs in a thread while the test promotes a lead: two connections at once.
@pytest.mark.usefixtures("committed_database")
def test_an_urgent_lead_verified_while_a_run_drains_a_backlog_goes_out_in_that_run(
    session, session_factory, make_lead, settings, dispatch_db
) -> None:
    """A run may outlast the interval (the scheduler then skips a beat): urgent work must not wait for it."""
    backlog = [promote(session, make_lead, settings, summary=f"路灯不亮 {n}") for n in range(12)]
    five_seen = threading.Event()
    posts = 0

    async def slow_dispatcher(request: Request) -> None:
        nonlocal posts
        if request.method == "POST":
            posts += 1
            if posts == 5:
                five_seen.set()
            time.sleep(0.05)  # a slow city system, blocking its own loop as a busy server would
        return None

    options = SimulatorOptions(services=configured_services(), faults=[slow_dispatcher])
    with serve_in_thread(create_simulator(dispatch_db, options)) as url:
        settings = settings.changed(dispatch={"base_url": url})
        run = threading.Thread(target=push_pending, args=(settings, session_factory))
        run.start()
        assert five_seen.wait(timeout=20)
        urgent = promote(session, make_lead, settings, summary="燃气泄漏", priority="urgent")
        verified_at = session.get(Ticket, urgent.id).created_at
        session.commit()
        run.join(timeout=60)
        keys = stored_keys(url)
    session.expire_all()
    assert len(keys) == 13
    assert keys.index(urgent.idempotency_key) <= 7  # the next claim after the in-flight one or two
    assert session.get(Ticket, urgent.id).sent_at - verified_at < timedelta(seconds=2)
    assert set(keys) == {t.idempotency_key for t in backlog} | {urgent.idempotency_key}


# The scheduler's own thread pushes what the test commits: two connections at once.
@pytest.mark.usefixtures("committed_database")
def test_the_scheduled_push_job_delivers_an_urgent_lead_within_one_interval(
    session, make_lead, settings, dispatch_db
) -> None:
    """The real scheduler and job table, with the interval shortened to 2 s to keep the test short."""
    with serve_in_thread(create_simulator(dispatch_db)) as url:
        # The jobs hold the settings they are configured with: configured once the simulator's URL is known.
        settings = settings.changed(
            schedules={"jobs": {"push_tickets": {"interval_seconds": 2}}}, dispatch={"base_url": url}
        )
        scheduler = schedules.configure(BackgroundScheduler(timezone="Asia/Shanghai"), settings)
        for job in scheduler.get_jobs():
            if job.id != "push_tickets":
                job.remove()
        scheduler.start()
        try:
            urgent = promote(session, make_lead, settings, summary="燃气泄漏", priority="urgent")
            started = time.monotonic()
            wait_until(
                lambda: urgent.idempotency_key in stored_keys(url), 10, "the urgent ticket at the city"
            )
            waited = time.monotonic() - started
        finally:
            scheduler.shutdown(wait=True)
    assert waited < 2 + 1.5  # one interval plus the run itself
    session.expire_all()
    assert session.get(Ticket, urgent.id).service_request_id == "sr-000001"
