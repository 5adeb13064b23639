"""The outbox pusher: against the dispatch simulator, and against scripted failures via MockTransport."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select

from fixtures.dispatch_simulator.app import create_app as create_simulator
from fixtures.serving import serve_in_thread
from storage.base import utcnow
from storage.models import Lead, LeadState, Ticket, TicketState
from verify import workflow
from verify.pusher import backoff_seconds, parse_retry_after, push_pending


def promote(session, make_lead, settings, **fields) -> Ticket:
    lead = make_lead(**fields)
    workflow.claim(session=session, lead_id=lead.id, actor="alice", settings=settings)
    ticket = workflow.verify_and_promote(session=session, lead_id=lead.id, actor="alice", settings=settings)
    session.commit()
    return ticket


def test_push_sends_queued_tickets_to_the_simulator_exactly_once(
    session, session_factory, make_lead, settings, dispatch_db
) -> None:
    first = promote(session, make_lead, settings)
    second = promote(session, make_lead, settings, priority="urgent", category="交通运输")
    simulator = create_simulator(dispatch_db)
    with serve_in_thread(simulator) as url:
        settings.dispatch.base_url = url
        settings.dispatch.api_key = "k-123"
        summary = push_pending(settings, session_factory)
        again = push_pending(settings, session_factory)
        stored = httpx.get(f"{url}/_requests").json()["requests"]
    assert (summary.attempted, summary.sent, summary.retried, summary.failed) == (2, 2, 0, 0)
    assert summary.summary() == "push: 2 attempted, 2 sent, 0 to retry, 0 failed"
    assert again.attempted == 0
    session.expire_all()
    rows = session.scalars(select(Ticket).order_by(Ticket.id)).all()
    assert [(t.state, t.service_request_id, t.attempts) for t in rows] == [
        (TicketState.SENT, "sr-000001", 1),
        (TicketState.SENT, "sr-000002", 1),
    ]
    assert [r["idempotency_key"] for r in stored] == [first.idempotency_key, second.idempotency_key]
    assert [r["service_code"] for r in stored] == ["urban-construction", "transport"]
    assert stored[1]["attributes"]["urgency"] == "urgent"
    assert session.get(Lead, first.lead_id).state == LeadState.PROMOTED


def test_a_ticket_pushed_again_after_a_lost_answer_keeps_one_request(
    session, session_factory, make_lead, settings, dispatch_db
) -> None:
    ticket = promote(session, make_lead, settings)
    with serve_in_thread(create_simulator(dispatch_db)) as url:
        settings.dispatch.base_url = url
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
    settings.dispatch.max_attempts = 1
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
