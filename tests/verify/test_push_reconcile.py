"""After a push with no answer, the pusher looks the request up (GET /requests.json) before it may re-send."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from fixtures.leads import promote
from settings import Settings
from storage.base import utcnow
from storage.models import ReconcileOutcome, Ticket, TicketState
from verify.pusher import claim_next, push_pending
from verify.tickets import list_tickets, requeue_failed

Answer = httpx.Response | Exception


class Server:
    """A scripted dispatch system: each POST and each GET takes the next answer of its own list."""

    def __init__(self, posts: list[Answer], gets: list[Answer] | None = None) -> None:
        self.answers = {"POST": posts, "GET": gets or []}
        self.seen: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        answer = self.answers[request.method].pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def methods(self) -> list[str]:
        return [request.method for request in self.seen]

    def lookups(self) -> list[dict[str, str]]:
        return [dict(request.url.params) for request in self.seen if request.method == "GET"]


def found(
    description: str, request_id: str = "sr-42", at: str = "2026-12-02T08:00:05+00:00"
) -> dict[str, str]:
    return {"service_request_id": request_id, "description": description, "requested_datetime": at}


@pytest.fixture
def push(settings: Settings, session_factory) -> Callable[..., object]:
    """One push_pending against ``server``, with the test's own settings where it changed them."""

    def run(server: Server, changed: Settings | None = None) -> object:
        # Each retry is due at once: one push_pending per turn.
        used = (changed or settings).changed(dispatch={"backoff_base_seconds": 0.0})
        return push_pending(used, session_factory, transport=httpx.MockTransport(server))

    return run


def test_after_a_timeout_the_lookup_finds_the_request_and_records_its_id_without_sending_again(
    session, make_lead, settings, push
) -> None:
    ticket = promote(session, make_lead, settings)
    mine = f"【{ticket.idempotency_key}】南山区科技园路灯不亮"
    server = Server(
        posts=[httpx.ReadTimeout("timed out")],
        gets=[httpx.Response(200, json=[found("【weisu-lead-0】别的", "sr-1"), found(mine, "sr-42")])],
    )
    before = utcnow()
    push(server)
    session.expire_all()
    waiting = session.get(Ticket, ticket.id)
    assert (waiting.state, waiting.reconcile_attempts) == (TicketState.QUEUED, 0)
    assert before <= waiting.delivery_unknown_since <= utcnow()
    unknown_since = waiting.delivery_unknown_since
    session.rollback()

    summary = push(server)
    session.expire_all()
    row = session.get(Ticket, ticket.id)
    assert server.methods() == ["POST", "GET"]
    assert summary.summary() == "push: 1 attempted, 1 sent (1 found by lookup), 0 to retry, 0 failed"
    assert (row.state, row.service_request_id, row.attempts, row.last_error) == (
        TicketState.SENT,
        "sr-42",
        2,
        None,
    )
    assert (row.reconcile_outcome, row.reconcile_attempts, row.delivery_unknown_since) == (
        ReconcileOutcome.FOUND_BY_DESCRIPTION,
        1,
        None,
    )
    assert before <= row.reconciled_at <= utcnow()
    assert row.sent_at == datetime(2026, 12, 2, 8, 0, 5, tzinfo=UTC)  # the server's requested_datetime
    [query] = server.lookups()
    slack = timedelta(seconds=settings.dispatch.lookup_clock_slack_seconds)
    start = datetime.fromisoformat(query.pop("start_date"))
    end = datetime.fromisoformat(query.pop("end_date"))
    assert query == {"jurisdiction_id": "shenzhen", "status": "open,closed"}
    assert start == (unknown_since - slack).replace(microsecond=0)
    assert utcnow() - timedelta(seconds=2) < end - slack <= utcnow()


def test_after_a_dropped_connection_a_lookup_that_finds_nothing_lets_the_ticket_be_sent_once_more(
    session, make_lead, settings, push
) -> None:
    ticket = promote(session, make_lead, settings)
    # A neighbour's reference that only starts like ours: the closing bracket keeps them apart.
    neighbour = found(f"【{ticket.idempotency_key}1】南山区路灯", "sr-9")
    server = Server(
        posts=[
            httpx.RemoteProtocolError("Server disconnected without sending a response."),
            httpx.Response(201, json=[{"service_request_id": "sr-7"}]),
        ],
        gets=[httpx.Response(200, json=[neighbour])],
    )
    push(server)
    summary = push(server)
    session.expire_all()
    row = session.get(Ticket, ticket.id)
    assert server.methods() == ["POST", "GET", "POST"]
    assert (summary.sent, summary.found) == (1, 0)
    assert (row.state, row.service_request_id, row.attempts) == (TicketState.SENT, "sr-7", 2)
    assert (row.reconcile_outcome, row.reconcile_attempts, row.delivery_unknown_since) == (
        ReconcileOutcome.ABSENT,
        1,
        None,
    )


def test_a_lookup_that_fails_sends_nothing_and_is_tried_again_later(
    session, make_lead, settings, push
) -> None:
    ticket = promote(session, make_lead, settings)
    server = Server(
        posts=[
            httpx.Response(502, text="bad gateway"),
            httpx.Response(201, json=[{"service_request_id": "sr-8"}]),
        ],
        gets=[httpx.Response(503, text="maintenance"), httpx.Response(200, json=[])],
    )
    push(server)
    session.expire_all()
    unknown_since = session.get(Ticket, ticket.id).delivery_unknown_since
    session.rollback()

    push(server)
    session.expire_all()
    waiting = session.get(Ticket, ticket.id)
    assert server.methods() == ["POST", "GET"]
    assert (waiting.state, waiting.attempts, waiting.last_error) == (
        TicketState.QUEUED,
        2,
        "lookup: LookupFailed: HTTP 503: maintenance",
    )
    assert (waiting.reconcile_outcome, waiting.reconcile_attempts, waiting.delivery_unknown_since) == (
        ReconcileOutcome.LOOKUP_FAILED,
        1,
        unknown_since,
    )
    session.rollback()

    push(server)
    session.expire_all()
    row = session.get(Ticket, ticket.id)
    assert server.methods() == ["POST", "GET", "GET", "POST"]
    assert (row.state, row.service_request_id, row.reconcile_attempts) == (TicketState.SENT, "sr-8", 2)


def test_a_ticket_whose_lookups_keep_failing_fails_and_still_looks_first_after_a_requeue(
    session, make_lead, settings, push
) -> None:
    ticket = promote(session, make_lead, settings)
    settings = settings.changed(dispatch={"max_attempts": 2})
    server = Server(
        posts=[httpx.ReadTimeout("timed out")],
        gets=[
            httpx.Response(404, text="not found"),
            httpx.Response(200, json=[found(f"【{ticket.idempotency_key}】")]),
        ],
    )
    push(server, settings)
    push(server, settings)
    session.expire_all()
    failed = session.get(Ticket, ticket.id)
    assert (failed.state, failed.last_error) == (
        TicketState.FAILED,
        "gave up after 2 attempts: lookup: LookupFailed: HTTP 404: not found",
    )
    requeue_failed(session=session, ticket_id=ticket.id, actor="admin", settings=settings)
    session.commit()
    push(server, settings)
    session.expire_all()
    row = session.get(Ticket, ticket.id)
    assert server.methods() == ["POST", "GET", "GET"]  # never a blind second POST
    assert (row.state, row.service_request_id, row.reconcile_outcome) == (
        TicketState.SENT,
        "sr-42",
        ReconcileOutcome.FOUND_BY_DESCRIPTION,
    )


def test_a_connection_never_made_and_a_429_need_no_lookup(session, make_lead, settings, push) -> None:
    ticket = promote(session, make_lead, settings)
    server = Server(
        posts=[
            httpx.ConnectError("connection refused"),
            httpx.Response(429, json=[{"code": 429, "description": "slow down"}]),
            httpx.Response(201, json=[{"service_request_id": "sr-3"}]),
        ]
    )
    for _ in range(3):
        push(server)
    session.expire_all()
    row = session.get(Ticket, ticket.id)
    assert server.methods() == ["POST", "POST", "POST"]
    assert (row.state, row.reconcile_attempts, row.reconcile_outcome) == (TicketState.SENT, 0, None)


def test_a_server_that_honours_idempotency_keys_gets_the_post_again_without_a_lookup(
    session, make_lead, settings, push
) -> None:
    ticket = promote(session, make_lead, settings)
    settings = settings.changed(dispatch={"honours_idempotency_key": True})
    server = Server(
        posts=[httpx.ReadTimeout("timed out"), httpx.Response(200, json=[{"service_request_id": "sr-5"}])]
    )
    push(server, settings)
    session.expire_all()
    assert session.get(Ticket, ticket.id).delivery_unknown_since is None
    session.rollback()
    push(server, settings)
    session.expire_all()
    row = session.get(Ticket, ticket.id)
    assert server.methods() == ["POST", "POST"]
    assert (row.state, row.service_request_id, row.reconcile_attempts) == (TicketState.SENT, "sr-5", 0)


def test_the_lookup_filters_on_the_key_attribute_where_the_server_supports_it(
    session, make_lead, settings, push
) -> None:
    ticket = promote(session, make_lead, settings)
    settings = settings.changed(dispatch={"lookup_by_attribute": True})
    server = Server(
        posts=[httpx.ReadTimeout("timed out")],
        gets=[httpx.Response(200, json=[found(f"【{ticket.idempotency_key}】路灯")])],
    )
    push(server, settings)
    push(server, settings)
    session.expire_all()
    row = session.get(Ticket, ticket.id)
    assert server.lookups()[0]["attribute[idempotency_key]"] == ticket.idempotency_key
    assert (row.service_request_id, row.reconcile_outcome) == ("sr-42", ReconcileOutcome.FOUND_BY_ATTRIBUTE)


def test_a_full_answer_proves_nothing_so_its_window_is_looked_at_half_by_half(
    session, make_lead, settings, push
) -> None:
    ticket = promote(session, make_lead, settings)
    settings = settings.changed(dispatch={"lookup_max_results": 2})
    others = [found("【weisu-lead-900】", "sr-1"), found("【weisu-lead-901】", "sr-2")]
    server = Server(
        posts=[httpx.ReadTimeout("timed out")],
        gets=[
            httpx.Response(200, json=others),  # the whole window: full, so perhaps cut off
            httpx.Response(200, json=[]),  # its first half
            httpx.Response(200, json=[found(f"【{ticket.idempotency_key}】", "sr-3")]),  # its second half
        ],
    )
    push(server, settings)
    push(server, settings)
    session.expire_all()
    windows = [(q["start_date"], q["end_date"]) for q in server.lookups()]
    whole, first, second = [tuple(datetime.fromisoformat(d) for d in w) for w in windows]
    assert (first[0], second[1]) == whole
    assert first[1] - second[0] == timedelta(seconds=1)  # the halves overlap by a second: none is lost
    assert session.get(Ticket, ticket.id).service_request_id == "sr-3"


def test_when_the_server_already_holds_duplicates_the_earliest_is_kept(
    session, make_lead, settings, push
) -> None:
    ticket = promote(session, make_lead, settings)
    mine = f"【{ticket.idempotency_key}】路灯"
    twice = [found(mine, "sr-6", "2026-12-02T08:00:09Z"), found(mine, "sr-5", "2026-12-02T08:00:01Z")]
    server = Server(posts=[httpx.ReadTimeout("timed out")], gets=[httpx.Response(200, json=twice)])
    push(server)
    push(server)
    session.expire_all()
    assert session.get(Ticket, ticket.id).service_request_id == "sr-5"


def test_the_pusher_taking_over_from_one_killed_mid_send_looks_the_request_up_first(
    session, session_factory, make_lead, settings, push
) -> None:
    ticket = promote(session, make_lead, settings)
    with session_factory() as other:  # pusher-a claims the ticket, POSTs it, and is killed
        claimed = claim_next(
            other, worker="pusher-a", due_before=utcnow(), lease_seconds=60, mark_in_doubt=True
        )
        assert claimed is not None and claimed.delivery_unknown_since is None
    with session_factory() as other:  # its lease runs out
        row = other.get(Ticket, ticket.id)
        marked_at = row.delivery_unknown_since
        row.claim_expires_at = utcnow() - timedelta(seconds=1)
        other.commit()
    server = Server(posts=[], gets=[httpx.Response(200, json=[found(f"【{ticket.idempotency_key}】路灯")])])
    push(server)
    session.expire_all()
    row = session.get(Ticket, ticket.id)
    assert marked_at is not None
    assert server.methods() == ["GET"]
    assert (row.state, row.service_request_id, row.reconcile_outcome) == (
        TicketState.SENT,
        "sr-42",
        ReconcileOutcome.FOUND_BY_DESCRIPTION,
    )


def test_the_tickets_page_says_when_delivery_is_in_doubt_and_how_the_lookups_went(
    session, make_lead, settings, push
) -> None:
    ticket = promote(session, make_lead, settings)
    server = Server(posts=[httpx.ReadTimeout("timed out")], gets=[httpx.Response(500, text="oops")])
    push(server)
    session.expire_all()
    [after_timeout] = list_tickets(session=session, view="queued")
    assert after_timeout.reconcile_note == "投递结果未知：重发前先向派单系统核对"
    session.rollback()
    push(server)
    session.expire_all()
    [after_lookup] = list_tickets(session=session, view="queued")
    assert after_lookup.ticket.id == ticket.id
    assert (
        after_lookup.reconcile_note
        == "投递结果未知：重发前先向派单系统核对；已核对 1 次，最近一次核对失败，稍后再核对"
    )


def test_an_accepted_push_without_a_readable_id_is_looked_up_not_sent_again(
    session, make_lead, settings, push
) -> None:
    ticket = promote(session, make_lead, settings)
    server = Server(
        posts=[httpx.Response(201, text="<html>已受理</html>")],
        gets=[httpx.Response(200, json=[found(f"【{ticket.idempotency_key}】路灯", "sr-11")])],
    )
    push(server)
    push(server)
    session.expire_all()
    assert server.methods() == ["POST", "GET"]
    assert session.get(Ticket, ticket.id).service_request_id == "sr-11"
