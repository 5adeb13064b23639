"""Status sync: a status change at the dispatch system appears on the ticket and the lead's audit trail."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from fixtures.dispatch_simulator.app import SimulatorOptions, configured_services
from fixtures.dispatch_simulator.app import create_app as create_simulator
from fixtures.dispatch_simulator.faults import FaultPlan
from fixtures.leads import promote
from fixtures.serving import serve_in_thread
from storage.base import utcnow
from storage.models import AuditEvent, Ticket
from verify.pusher import push_pending
from verify.sync import CategoryAccuracy, first_dispatch_accuracy, sync_statuses


def test_a_request_closed_at_the_simulator_is_closed_on_the_ticket_after_the_next_sync(
    session, session_factory, make_lead, settings, dispatch_db
) -> None:
    first = promote(session, make_lead, settings)
    second = promote(session, make_lead, settings)
    with serve_in_thread(create_simulator(dispatch_db)) as url:
        settings = settings.changed(dispatch={"base_url": url})
        push_pending(settings, session_factory)
        unchanged = sync_statuses(settings, session_factory)
        httpx.post(
            f"{url}/_requests/sr-000001/status", data={"status": "closed", "status_notes": "路灯已修复"}
        )
        before = utcnow()
        closing = sync_statuses(settings, session_factory)
        later = sync_statuses(settings, session_factory)
    assert unchanged.summary() == "sync: 2 checked, 0 changed, 0 closed, 0 reassigned, 0 errors"
    assert closing.summary() == "sync: 2 checked, 1 changed, 1 closed, 0 reassigned, 0 errors"
    assert (
        later.summary() == "sync: 1 checked, 0 changed, 0 closed, 0 reassigned, 0 errors"
    )  # closed tickets rest
    session.expire_all()
    closed, still_open = session.get(Ticket, first.id), session.get(Ticket, second.id)
    assert (closed.dispatch_status, closed.status_notes) == ("closed", "路灯已修复")
    assert before <= closed.closed_at <= utcnow()
    assert (still_open.dispatch_status, still_open.status_notes, still_open.closed_at) == ("open", None, None)
    [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == "dispatch_status")).all()
    assert (event.lead_id, event.actor, event.from_state, event.to_state, event.reason) == (
        first.lead_id,
        "dispatch",
        "open",
        "closed",
        "路灯已修复",
    )
    assert event.details == {"ticket_id": first.id, "service_request_id": "sr-000001"}


def test_an_unreachable_dispatch_system_is_counted_and_changes_nothing(
    session, session_factory, make_lead, settings
) -> None:
    ticket = promote(session, make_lead, settings)
    answers = iter([httpx.Response(201, json=[{"service_request_id": "sr-9"}]), httpx.Response(503)])
    transport = httpx.MockTransport(lambda request: next(answers))
    push_pending(settings, session_factory, transport=transport)
    summary = sync_statuses(settings, session_factory, transport=transport)
    assert summary.summary() == "sync: 1 checked, 0 changed, 0 closed, 0 reassigned, 1 errors"
    session.expire_all()
    row = session.get(Ticket, ticket.id)
    assert (row.dispatch_status, row.status_checked_at) == ("open", None)


def test_a_ticket_returned_to_another_unit_is_counted_against_first_dispatch_accuracy(
    session, session_factory, make_lead, settings, dispatch_db
) -> None:
    moved = promote(session, make_lead, settings, responsible_unit="南山区城市管理和综合执法局")
    promote(session, make_lead, settings, responsible_unit="南山区城市管理和综合执法局")
    promote(session, make_lead, settings, category="交通运输", responsible_unit="深圳市交通运输局")
    with serve_in_thread(create_simulator(dispatch_db)) as url:
        settings = settings.changed(dispatch={"base_url": url})
        push_pending(settings, session_factory)
        httpx.post(f"{url}/_requests/sr-000001/status", data={"agency_responsible": "粤海街道办事处"})
        summary = sync_statuses(settings, session_factory)
        again = sync_statuses(settings, session_factory)
    assert summary.summary() == "sync: 3 checked, 0 changed, 0 closed, 1 reassigned, 0 errors"
    assert again.reassigned == 0
    session.expire_all()
    row = session.get(Ticket, moved.id)
    assert (row.agency_responsible, row.reassignments, row.dispatch_status) == ("粤海街道办事处", 1, "open")
    [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == "dispatch_reassigned")).all()
    assert (event.lead_id, event.reason) == (moved.lead_id, "南山区城市管理和综合执法局 → 粤海街道办事处")
    assert first_dispatch_accuracy(session) == [
        CategoryAccuracy("交通运输", tickets=1, first_time_right=1),
        CategoryAccuracy("城乡建设", tickets=2, first_time_right=1),
    ]
    assert first_dispatch_accuracy(session)[1].share == 0.5


def test_the_simulators_seeded_returns_are_recorded_and_counted_at_the_next_sync(
    session, session_factory, make_lead, settings, dispatch_db
) -> None:
    tickets = [
        promote(session, make_lead, settings, responsible_unit="南山区城市管理和综合执法局") for _ in range(6)
    ]
    plan = FaultPlan(return_rate=0.5, seed=3)
    returned = [t for t in tickets if plan.returns(t.idempotency_key)]
    assert (
        0 < len(returned) < len(tickets)
    )  # the seed gives a mix, so "only the returned ones" means something
    options = SimulatorOptions(services=configured_services(), fault_plan=plan)
    with serve_in_thread(create_simulator(dispatch_db, options)) as url:
        settings = settings.changed(dispatch={"base_url": url})
        push_pending(settings, session_factory)
        summary = sync_statuses(settings, session_factory)
        stats = httpx.get(f"{url}/_stats").json()
    assert (summary.reassigned, stats["returned"]) == (len(returned), len(returned))
    session.expire_all()
    moved = {t.id: session.get(Ticket, t.id) for t in returned}
    assert {(row.agency_responsible, row.reassignments) for row in moved.values()} == {
        ("深圳市城市管理和综合执法局", 1)
    }
    assert {row.status_notes for row in moved.values()} == {
        "退单：南山区城市管理和综合执法局非本单位职责，已改派深圳市城市管理和综合执法局"
    }
    assert first_dispatch_accuracy(session) == [
        CategoryAccuracy("城乡建设", tickets=6, first_time_right=6 - len(returned))
    ]
