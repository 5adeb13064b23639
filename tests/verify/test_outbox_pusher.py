"""The outbox pusher: against the dispatch simulator, and against scripted failures via MockTransport."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select

from fixtures.dispatch_simulator.app import SimulatorOptions, configured_services
from fixtures.dispatch_simulator.app import create_app as create_simulator
from fixtures.dispatch_simulator.faults import FaultPlan
from fixtures.leads import promote
from fixtures.serving import serve_in_thread
from storage.base import utcnow
from storage.models import Lead, LeadState, Ticket, TicketState
from verify.pusher import backoff_seconds, claim_next, parse_retry_after, push_pending


def test_push_sends_queued_tickets_to_the_simulator_exactly_once(
    session, session_factory, make_lead, settings, dispatch_db
) -> None:
    first = promote(session, make_lead, settings)
    second = promote(session, make_lead, settings, priority="urgent", category="交通运输")
    simulator = create_simulator(dispatch_db)
    with serve_in_thread(simulator) as url:
        settings = settings.changed(dispatch={"base_url": url, "api_key": "k-123"})
        summary = push_pending(settings, session_factory)
        again = push_pending(settings, session_factory)
        stored = httpx.get(f"{url}/_requests").json()["requests"]
    assert (summary.attempted, summary.sent, summary.retried, summary.failed) == (2, 2, 0, 0)
    assert summary.summary() == "push: 2 attempted, 2 sent, 0 to retry, 0 failed"
    assert again.attempted == 0
    session.expire_all()
    rows = session.scalars(select(Ticket).order_by(Ticket.id)).all()
    assert [(t.state, t.service_request_id, t.attempts) for t in rows] == [
        (TicketState.SENT, "sr-000002", 1),
        (TicketState.SENT, "sr-000001", 1),  # the urgent one went first
    ]
    assert [r["idempotency_key"] for r in stored] == [second.idempotency_key, first.idempotency_key]
    assert [r["service_code"] for r in stored] == ["transport", "urban-construction"]
    assert stored[0]["attributes"]["urgency"] == "urgent"
    assert session.get(Lead, first.lead_id).state == LeadState.PROMOTED


def test_a_ticket_pushed_again_after_a_lost_answer_keeps_one_request(
    session, session_factory, make_lead, settings, dispatch_db
) -> None:
    ticket = promote(session, make_lead, settings)
    with serve_in_thread(create_simulator(dispatch_db)) as url:
        settings = settings.changed(dispatch={"base_url": url})
        push_pending(settings, session_factory)
        # As if the answer had been lost: the ticket is queued again and re-sent.
        with session_factory() as other:
            row = other.get(Ticket, ticket.id)
            row.state, row.service_request_id = TicketState.QUEUED, None
            other.commit()
        push_pending(settings, session_factory)
        stored = httpx.get(f"{url}/_requests").json()["requests"]
    assert [(r["service_request_id"], r["submissions"]) for r in stored] == [("sr-000001", 2)]
    session.expire_all()
    assert session.get(Ticket, ticket.id).service_request_id == "sr-000001"


def scripted(*responses: httpx.Response | Exception) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    seen: list[httpx.Request] = []
    queue = list(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = queue.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return httpx.MockTransport(handler), seen


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(503, text="maintenance"),
        httpx.Response(429, json=[{"code": 429, "description": "slow down"}]),
        httpx.ConnectError("connection refused"),
    ],
    ids=["503", "429", "connect-error"],
)
def test_transient_failures_keep_the_ticket_queued_for_a_later_attempt(
    session, session_factory, make_lead, settings, answer
) -> None:
    ticket = promote(session, make_lead, settings)
    transport, seen = scripted(answer)
    before = utcnow()
    summary = push_pending(settings, session_factory, transport=transport)
    assert (summary.attempted, summary.retried, summary.sent, summary.failed) == (1, 1, 0, 0)
    session.expire_all()
    row = session.get(Ticket, ticket.id)
    assert (row.state, row.attempts) == (TicketState.QUEUED, 1)
    assert before + timedelta(seconds=15) <= row.next_attempt_at <= utcnow() + timedelta(seconds=30)
    session.rollback()  # end the read: SQLite's BEGIN IMMEDIATE would otherwise block the pusher
    assert push_pending(settings, session_factory, transport=transport).attempted == 0  # not due yet
    assert len(seen) == 1


def test_retry_after_is_honoured(session, session_factory, make_lead, settings) -> None:
    ticket = promote(session, make_lead, settings)
    transport, _ = scripted(httpx.Response(429, headers={"Retry-After": "600"}))
    before = utcnow()
    push_pending(settings, session_factory, transport=transport)
    session.expire_all()
    delay = session.get(Ticket, ticket.id).next_attempt_at - before
    assert timedelta(seconds=600) <= delay < timedelta(seconds=605)


def test_a_400_marks_the_ticket_failed_with_the_servers_message(
    session, session_factory, make_lead, settings
) -> None:
    ticket = promote(session, make_lead, settings)
    answer = httpx.Response(400, json=[{"code": 400, "description": "unknown service_code: 'x'"}])
    transport, seen = scripted(answer)
    summary = push_pending(settings, session_factory, transport=transport)
    assert (summary.attempted, summary.failed) == (1, 1)
    session.expire_all()
    row = session.get(Ticket, ticket.id)
    assert (row.state, row.attempts) == (TicketState.FAILED, 1)
    assert row.last_error == "HTTP 400: unknown service_code: 'x'"
    form = dict(httpx.QueryParams(seen[0].content.decode()))
    assert form["attribute[idempotency_key]"] == ticket.idempotency_key
    assert "api_key" not in form


def test_the_last_allowed_attempt_fails_the_ticket(session, session_factory, make_lead, settings) -> None:
    ticket = promote(session, make_lead, settings)
    settings = settings.changed(dispatch={"max_attempts": 1})
    transport, _ = scripted(httpx.Response(502, text="bad gateway"))
    summary = push_pending(settings, session_factory, transport=transport)
    assert summary.failed == 1
    session.expire_all()
    row = session.get(Ticket, ticket.id)
    assert (row.state, row.last_error) == (
        TicketState.FAILED,
        "gave up after 1 attempts: HTTP 502: bad gateway",
    )


def test_backoff_doubles_up_to_an_hour_with_jitter_in_the_upper_half() -> None:
    assert [backoff_seconds(n, rng=lambda: 0.0) for n in (1, 2, 3, 10)] == [15.0, 30.0, 60.0, 1800.0]
    assert backoff_seconds(1, rng=lambda: 0.999999) == pytest.approx(30.0, abs=1e-3)


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    now = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)
    assert parse_retry_after("120", now) == 120.0
    assert parse_retry_after("Sun, 29 Nov 2026 06:05:00 GMT", now) == 300.0
    assert parse_retry_after("soon", now) is None


def test_a_ticket_another_pusher_holds_is_skipped_until_its_lease_expires(
    session, session_factory, make_lead, settings
) -> None:
    ticket = promote(session, make_lead, settings)
    with session_factory() as other:
        claimed = claim_next(other, worker="pusher-a", due_before=utcnow(), lease_seconds=60)
        assert claimed is not None and (claimed.id, claimed.attempts) == (ticket.id, 0)
        assert claim_next(other, worker="pusher-b", due_before=utcnow(), lease_seconds=60) is None
    transport, seen = scripted(httpx.Response(201, json=[{"service_request_id": "sr-7"}]))
    assert push_pending(settings, session_factory, transport=transport, worker="pusher-b").attempted == 0
    with session_factory() as other:  # pusher-a died: its lease runs out
        row = other.get(Ticket, ticket.id)
        row.claim_expires_at = utcnow() - timedelta(seconds=1)
        other.commit()
    summary = push_pending(settings, session_factory, transport=transport, worker="pusher-b")
    assert (summary.attempted, summary.sent, len(seen)) == (1, 1, 1)
    session.expire_all()
    row = session.get(Ticket, ticket.id)
    assert (row.state, row.service_request_id, row.claimed_by, row.claim_expires_at) == (
        TicketState.SENT,
        "sr-7",
        None,
        None,
    )


def test_a_late_answer_is_kept_but_a_late_retry_is_dropped_once_the_claim_is_lost(
    session, session_factory, make_lead, settings
) -> None:
    first = promote(session, make_lead, settings)
    second = promote(session, make_lead, settings)

    def steal_claims(request: httpx.Request) -> httpx.Response:
        # While this pusher waits for the answer, its lease expires and pusher-b takes the ticket.
        form = dict(httpx.QueryParams(request.content.decode()))
        is_first = form["attribute[lead_id]"] == str(first.lead_id)
        with session_factory() as other:
            other.get(Ticket, first.id if is_first else second.id).claimed_by = "pusher-b"
            other.commit()
        if is_first:
            return httpx.Response(201, json=[{"service_request_id": "sr-1"}])
        return httpx.Response(503, text="busy")

    summary = push_pending(settings, session_factory, transport=httpx.MockTransport(steal_claims))
    assert (summary.attempted, summary.sent, summary.retried) == (2, 1, 0)
    session.expire_all()
    rows = [session.get(Ticket, first.id), session.get(Ticket, second.id)]
    assert [(t.state, t.service_request_id, t.attempts, t.claimed_by) for t in rows] == [
        (TicketState.SENT, "sr-1", 1, None),
        (TicketState.QUEUED, None, 0, "pusher-b"),
    ]


def test_backoff_base_and_ceiling_come_from_the_settings(
    session, session_factory, make_lead, settings
) -> None:
    ticket = promote(session, make_lead, settings)
    settings = settings.changed(dispatch={"backoff_base_seconds": 0.0})
    transport, _ = scripted(httpx.Response(500, text="oops"))
    before = utcnow()
    push_pending(settings, session_factory, transport=transport)
    session.expire_all()
    row = session.get(Ticket, ticket.id)
    assert (row.state, row.attempts, row.last_error) == (TicketState.QUEUED, 1, "HTTP 500: oops")
    assert before <= row.next_attempt_at <= utcnow()


def test_urgent_tickets_are_sent_before_a_backlog_of_ordinary_ones(
    session, session_factory, make_lead, settings
) -> None:
    ordinary = [promote(session, make_lead, settings, summary=f"路灯不亮 {n}") for n in range(3)]
    urgent = promote(session, make_lead, settings, summary="燃气泄漏", priority="urgent")
    sent: list[str] = []

    def accept(request: httpx.Request) -> httpx.Response:
        form = dict(httpx.QueryParams(request.content.decode()))
        sent.append(form["attribute[idempotency_key]"])
        return httpx.Response(201, json=[{"service_request_id": f"sr-{len(sent)}"}])

    push_pending(settings, session_factory, transport=httpx.MockTransport(accept))
    assert sent == [t.idempotency_key for t in [urgent, *ordinary]]


def test_a_409_naming_the_stored_request_after_a_dropped_answer_recovers_its_id(
    session, session_factory, make_lead, settings, dispatch_db
) -> None:
    ticket = promote(session, make_lead, settings)
    # retry at once
    # so the retry is sent, not looked up first
    settings = settings.changed(dispatch={"backoff_base_seconds": 0.0, "honours_idempotency_key": True})
    plan = FaultPlan(drop_after_store_rate=1.0)
    options = SimulatorOptions(services=configured_services(), duplicate_status=409, fault_plan=plan)
    with serve_in_thread(create_simulator(dispatch_db, options)) as url:
        settings = settings.changed(dispatch={"base_url": url})
        dropped = push_pending(settings, session_factory)
        plan.drop_after_store_rate = 0.0
        recovered = push_pending(settings, session_factory)
        stored = httpx.get(f"{url}/_requests").json()["requests"]
    assert (dropped.retried, recovered.sent) == (1, 1)
    assert [(r["service_request_id"], r["submissions"]) for r in stored] == [("sr-000001", 2)]
    session.expire_all()
    row = session.get(Ticket, ticket.id)
    assert (row.state, row.service_request_id, row.attempts, row.last_error) == (
        TicketState.SENT,
        "sr-000001",
        2,
        None,
    )


def test_a_409_without_a_service_request_id_fails_the_ticket(
    session, session_factory, make_lead, settings
) -> None:
    ticket = promote(session, make_lead, settings)
    transport, _ = scripted(httpx.Response(409, json=[{"code": 409, "description": "conflict"}]))
    assert push_pending(settings, session_factory, transport=transport).failed == 1
    session.expire_all()
    assert session.get(Ticket, ticket.id).last_error == "HTTP 409: conflict"
