"""A ticket the dispatch system refuses (4xx) fails alone; after the fix it is delivered once."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from fixtures.dispatch_simulator.app import SimulatorOptions, configured_services
from fixtures.dispatch_simulator.app import create_app as create_simulator
from fixtures.leads import promote
from fixtures.serving import serve_in_thread
from storage.models import AuditEvent, Ticket, TicketState
from verify.pusher import push_pending
from verify.tickets import TicketError, requeue_failed


def test_a_refused_ticket_does_not_block_the_others_and_is_delivered_once_after_the_fix(
    session, session_factory, make_lead, settings, dispatch_db
) -> None:
    typo = {"商贸旅游": "commerce-tourisme"}  # an operator's typo
    settings = settings.changed(dispatch={"service_codes": {**settings.dispatch.service_codes, **typo}})
    first = promote(session, make_lead, settings)
    refused = promote(session, make_lead, settings, category="商贸旅游")
    third = promote(session, make_lead, settings)
    simulator = create_simulator(dispatch_db, SimulatorOptions(services=configured_services()))
    with serve_in_thread(simulator) as url:
        settings = settings.changed(dispatch={"base_url": url})
        before = push_pending(settings, session_factory)
        session.expire_all()
        failed = session.get(Ticket, refused.id)
        assert (failed.state, failed.attempts, failed.last_error) == (
            TicketState.FAILED,
            1,
            "HTTP 400: unknown service_code: 'commerce-tourisme'",
        )
        with pytest.raises(TicketError, match=f"ticket {first.id} is sent, not failed"):
            requeue_failed(session=session, ticket_id=first.id, actor="admin", settings=settings)
        session.rollback()

        fix = {"商贸旅游": "commerce-tourism"}
        settings = settings.changed(dispatch={"service_codes": {**settings.dispatch.service_codes, **fix}})
        requeued = requeue_failed(session=session, ticket_id=refused.id, actor="admin", settings=settings)
        assert (requeued.state, requeued.attempts, requeued.last_error) == (TicketState.QUEUED, 0, None)
        assert requeued.payload["service_code"] == "commerce-tourism"
        session.commit()
        after = push_pending(settings, session_factory)
        again = push_pending(settings, session_factory)
        stored = httpx.get(f"{url}/_requests").json()["requests"]

    assert (before.attempted, before.sent, before.failed) == (3, 2, 1)
    assert (after.attempted, after.sent, again.attempted) == (1, 1, 0)
    assert [(r["idempotency_key"], r["service_code"], r["submissions"]) for r in stored] == [
        (first.idempotency_key, "urban-construction", 1),
        (third.idempotency_key, "urban-construction", 1),
        (refused.idempotency_key, "commerce-tourism", 1),
    ]
    session.expire_all()
    rows = session.scalars(select(Ticket).order_by(Ticket.id)).all()
    assert [(t.state, t.service_request_id, t.last_error) for t in rows] == [
        (TicketState.SENT, "sr-000001", None),
        (TicketState.SENT, "sr-000003", None),
        (TicketState.SENT, "sr-000002", None),
    ]
    [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == "repush")).all()
    assert (event.lead_id, event.actor, event.from_state, event.to_state, event.reason) == (
        refused.lead_id,
        "admin",
        "failed",
        "queued",
        "HTTP 400: unknown service_code: 'commerce-tourisme'",
    )
