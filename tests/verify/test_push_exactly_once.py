"""Issue #6 and #13 acceptance: exactly-once delivery through faults, two pushers at once and SIGKILLed
pushers, to a server that deduplicates on the idempotency key and to one that ignores it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from waiting import wait_until

from fixtures.dispatch_simulator.app import SimulatorOptions, configured_services
from fixtures.dispatch_simulator.app import create_app as create_simulator
from fixtures.dispatch_simulator.faults import FaultPlan
from fixtures.serving import serve_in_thread
from settings import PROJECT_ROOT, Settings
from storage.models import Lead, Platform, Priority, ReconcileOutcome, Ticket, TicketState
from verify import workflow

N = 1000
# 30% of submissions fail transiently: 12% HTTP 500, 6% 429 + Retry-After, 12% stored then dropped.
FAULTS = {"error_rate": 0.12, "throttle_rate": 0.06, "drop_after_store_rate": 0.12}
SLOW = {"slow_rate": 0.05, "slow_seconds": 0.2}  # slow but inside the client's timeout
WAIT_SECONDS = 120  # bound on every wait; the run itself takes a few seconds

WORKER = f"""
import json, sys
from settings import load_settings
from storage.db import make_engine, make_session_factory
from verify.pusher import drain

knobs = json.loads(sys.argv[1])
settings = load_settings(env={{}})
settings = settings.changed(
    database={{"url": knobs.pop("database_url")}},
    dispatch=type(settings.dispatch).model_validate({{**settings.dispatch.model_dump(), **knobs}}),
)
factory = make_session_factory(make_engine(settings.database.url))
print(drain(settings, factory, within_seconds={WAIT_SECONDS}).summary())
"""


def promote_many(session: Session, settings: Settings, n: int) -> list[int]:
    """n leads taken through claim → verify → promote, committed together; their lead ids."""
    if session.get(Platform, "weibo") is None:
        session.add(Platform(id="weibo", name="微博", kind="json_feed"))
    leads = [
        Lead(summary=f"路灯不亮 #{i}", category="城乡建设", district="南山区", priority=Priority.ORDINARY)
        for i in range(n)
    ]
    session.add_all(leads)
    session.flush()
    for lead in leads:
        workflow.claim(session=session, lead_id=lead.id, actor="alice", settings=settings)
        workflow.verify_and_promote(session=session, lead_id=lead.id, actor="alice", settings=settings)
    session.commit()
    return [lead.id for lead in leads]


def start_pusher(database_url: str, dispatch_url: str, honours_key: bool) -> subprocess.Popen[bytes]:
    knobs = {
        "database_url": database_url,
        "base_url": dispatch_url,
        "honours_idempotency_key": honours_key,
        "timeout_seconds": 1.5,
        "lease_seconds": 5.0,  # a SIGKILLed pusher's ticket is free again after this
        "backoff_base_seconds": 0.05,
        "backoff_max_seconds": 0.5,
        "max_attempts": 50,
    }
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, json.dumps(knobs)],
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )


@pytest.mark.parametrize("honours_key", [True, False], ids=["server-deduplicates", "server-ignores-key"])
def test_a_thousand_tickets_reach_the_simulator_exactly_once_through_faults_and_kills(
    session, settings, database_url, dispatch_db: Path, honours_key: bool
) -> None:
    """Ignoring the key, the simulator stores every POST it gets: only lookups before re-sending keep
    it at one request per ticket (the pusher is told how the server behaves, as config.yaml would)."""
    lead_ids = promote_many(session, settings, N)
    plan = FaultPlan(**FAULTS, **SLOW, retry_after_seconds=1, seed=6)
    options = SimulatorOptions(
        services=configured_services(), fault_plan=plan, honour_idempotency_key=honours_key
    )
    simulator = create_simulator(dispatch_db, options)
    with serve_in_thread(simulator) as url:

        def held() -> int:
            return int(httpx.get(f"{url}/_stats").json()["requests"])

        pushers = [start_pusher(database_url, url, honours_key) for _ in range(2)]
        held_at_kill = []
        for share in (N // 3, 2 * N // 3):
            wait_until(lambda share=share: held() >= share, WAIT_SECONDS, f"{share} requests held")
            victim = pushers.pop(0)
            victim.send_signal(signal.SIGKILL)
            victim.wait(timeout=30)
            held_at_kill.append(held())
            pushers.append(start_pusher(database_url, url, honours_key))
        outputs = [p.communicate(timeout=WAIT_SECONDS)[0].decode() for p in pushers]
        stats = httpx.get(f"{url}/_stats").json()
        stored = httpx.get(f"{url}/_requests").json()["requests"]

    assert [p.returncode for p in pushers] == [0, 0], outputs
    assert all(count < N for count in held_at_kill), held_at_kill  # both kills landed mid-run
    assert stats["requests"] == N
    keys = [r["attributes"]["idempotency_key"] for r in stored]
    assert sorted(keys) == sorted(f"weisu-lead-{i}" for i in lead_ids)  # each once, none twice
    assert stats.get("overlapping_submissions", 0) == 0  # no two pushers ever sent one ticket at once
    assert all(stats[f"fault_{kind}"] > 0 for kind in ("error", "throttle", "drop", "slow"))
    by_key = {r["attributes"]["idempotency_key"]: r["service_request_id"] for r in stored}
    session.expire_all()
    tickets = session.scalars(select(Ticket).order_by(Ticket.id)).all()
    assert len(tickets) == N
    assert {t.state for t in tickets} == {TicketState.SENT}
    assert [t.service_request_id for t in tickets] == [by_key[t.idempotency_key] for t in tickets]
    assert {t.claimed_by for t in tickets} == {None}
    assert {t.delivery_unknown_since for t in tickets} == {None}
    outcomes = {t.reconcile_outcome for t in tickets}
    lookups = sum(t.reconcile_attempts for t in tickets)
    if honours_key:
        assert (outcomes, lookups, stats.get("listings", 0)) == ({None}, 0, 0)  # retried blind
    else:  # dropped answers were found by lookup, 500s shown absent and sent again
        assert {ReconcileOutcome.FOUND_BY_DESCRIPTION, ReconcileOutcome.ABSENT} <= outcomes
        assert ReconcileOutcome.LOOKUP_FAILED not in outcomes
        assert 0 < lookups <= stats["listings"]  # a killed pusher's last lookup may go unrecorded
    print(f"\n{'honours' if honours_key else 'ignores'} key: {stats}, {lookups} lookups recorded")
