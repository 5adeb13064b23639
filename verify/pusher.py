"""The outbox pusher: send due tickets to the dispatch system (Open311 POST /requests.json), with retries."""

from __future__ import annotations

import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy import and_, case, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from settings import Settings
from storage.base import utcnow
from storage.http_terms import parse_retry_after
from storage.models import Lead, Ticket
from storage.vocabulary import Priority, ReconcileOutcome, TicketState
from verify.reconcile import Lookup, reconcile
from verify.tickets import RESPONSIBLE_UNIT, complete_payload, wire_names

log = logging.getLogger(__name__)

BACKOFF_BASE_SECONDS = 30.0
BACKOFF_MAX_SECONDS = 3600.0
MAX_CLAIM_TRIES = 5
#: An urgent lead has the short SLA (verify.sla): its ticket jumps a backlog of ordinary ones.
URGENT_FIRST = case((Lead.priority == Priority.URGENT, 0), else_=1)
MAX_ERROR_CHARS = 2000
#: The only ticket states a pusher sends, named explicitly: a state added later (e.g. a ticket awaiting
#: a second analyst's confirmation) is never pushed by accident.
PUSHABLE_STATES = (TicketState.QUEUED,)
#: Transport errors raised before any byte of the request left: nothing can have been stored.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class UnknownServiceCodes(Exception):
    """Configured service codes the dispatch system does not offer; the message names them."""

    def __init__(self, codes: list[str]) -> None:
        super().__init__(f"service codes unknown to the dispatch system: {', '.join(codes)}")
        self.codes = codes


@dataclass
class PushSummary:
    attempted: int = 0
    sent: int = 0
    failed: int = 0
    retried: int = 0
    found: int = 0  # of the sent: found at the server by a lookup after an unanswered push, not re-sent

    def summary(self) -> str:
        found = f" ({self.found} found by lookup)" if self.found else ""
        return (
            f"push: {self.attempted} attempted, {self.sent} sent{found}, "
            f"{self.retried} to retry, {self.failed} failed"
        )


@dataclass(frozen=True)
class Outcome:
    """What one POST came to: sent (with the dispatch system's id), retry later, or failed for good."""

    kind: str  # "sent" | "retry" | "failed"
    service_request_id: str | None = None
    error: str | None = None
    retry_after: float | None = None
    # The server may have stored the request although we have no answer (timeout, dropped connection,
    # 5xx): unless it honours idempotency keys, it must be looked up before it is sent again.
    maybe_stored: bool = False


def backoff_seconds(
    attempts: int,
    rng: Callable[[], float] = random.random,
    base: float = BACKOFF_BASE_SECONDS,
    most: float = BACKOFF_MAX_SECONDS,
) -> float:
    """Exponential backoff with full jitter in its upper half: base·2^(n-1) · [0.5, 1)."""
    ceiling = min(most, base * 2 ** max(attempts - 1, 0))
    return ceiling * (0.5 + rng() / 2)


def _server_message(response: httpx.Response) -> str:
    try:
        body = response.json()
        if isinstance(body, list) and body and isinstance(body[0], dict):
            return f"HTTP {response.status_code}: {body[0].get('description') or body[0]}"
    except ValueError:
        pass
    return f"HTTP {response.status_code}: {response.text[:500]}"


def first_record(body: object) -> dict[str, object]:
    """Open311 wraps one answer in a list; other ticket APIs send the object itself."""
    record = body[0] if isinstance(body, list) and body else body
    if not isinstance(record, dict):
        raise TypeError(f"expected an object, not {type(record).__name__}")
    return record


def _request_id(response: httpx.Response, id_field: str) -> str | None:
    try:
        value = first_record(response.json())[id_field]
    except (ValueError, LookupError, TypeError):
        return None
    return str(value) if value not in (None, "") else None


def interpret(response: httpx.Response, now: datetime, id_field: str = "service_request_id") -> Outcome:
    """Map an Open311 response onto an outcome: 2xx sent, 429/5xx retry, other 4xx failed.

    A 409 that names the service_request_id the server already holds for the idempotency key is
    a delivery: the request was stored by an earlier attempt whose answer was lost.
    """
    if response.status_code == 429 or response.status_code >= 500:
        retry_after = parse_retry_after(response.headers.get("Retry-After"), now)
        # A 429 refuses the request; a 5xx (or a gateway's 502/504) may come after it was stored.
        stored = response.status_code >= 500
        return Outcome("retry", error=_server_message(response), retry_after=retry_after, maybe_stored=stored)
    request_id = _request_id(response, id_field)
    if response.status_code == 409 and request_id is not None:
        return Outcome("sent", service_request_id=request_id)
    if response.status_code >= 400:
        return Outcome("failed", error=_server_message(response))
    if request_id is None:
        # Accepted but unreadable: stored, id unknown; the lookup before the next attempt finds it.
        error = f"HTTP {response.status_code}: unreadable body {response.text[:200]!r}"
        return Outcome("retry", error=error, maybe_stored=True)
    return Outcome("sent", service_request_id=request_id)


@dataclass(frozen=True)
class Claimed:
    """What a pusher needs of a claimed ticket, read before the claim commits (no lazy loads later)."""

    id: int
    idempotency_key: str
    payload: dict[str, str]  # the stored payload completed for sending (reference, lat/long, evidence)
    attempts: int
    lead_id: int
    delivery_unknown_since: datetime | None = None  # set: an earlier attempt may have stored it


@dataclass(frozen=True)
class Delivery:
    """One claimed ticket's turn: the lookup made first (if any), and the outcome."""

    outcome: Outcome
    lookup: Lookup | None = None
    posted_at: datetime | None = None  # when the POST began; None when nothing was sent


def deliver(client: httpx.Client, ticket: Claimed, settings: Settings) -> Delivery:
    """Send a claimed ticket; when an earlier attempt may have stored it, look it up first.

    Only a lookup that positively shows the request absent lets the ticket be sent again; a
    lookup without an answer leaves it queued for a later look, never sent blind.
    """
    lookup = None
    if ticket.delivery_unknown_since is not None and not settings.dispatch.honours_idempotency_key:
        lookup = reconcile(client, ticket.idempotency_key, ticket.delivery_unknown_since, settings)
        if lookup.outcome is ReconcileOutcome.LOOKUP_FAILED:
            return Delivery(Outcome("retry", error=lookup.error), lookup)
        if lookup.outcome is not ReconcileOutcome.ABSENT:
            return Delivery(Outcome("sent", service_request_id=lookup.service_request_id), lookup)
    posted_at = utcnow()
    return Delivery(post_ticket(client, ticket, settings), lookup, posted_at)


def post_ticket(client: httpx.Client, ticket: Claimed, settings: Settings) -> Outcome:
    form = dict(ticket.payload)
    form["jurisdiction_id"] = settings.dispatch.jurisdiction_id
    if settings.dispatch.api_key:
        form["api_key"] = settings.dispatch.api_key
    try:
        response = client.post(settings.dispatch.request_path, data=wire_names(form, settings))
    except httpx.HTTPError as error:
        maybe_stored = not isinstance(error, NOT_SENT)
        return Outcome("retry", error=f"{type(error).__name__}: {error}", maybe_stored=maybe_stored)
    id_field = settings.dispatch.field_names.get("service_request_id", "service_request_id")
    return interpret(response, utcnow(), id_field)


def pusher_id() -> str:
    """Names one pusher run in the tickets it claims: host, process and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def claim_next(
    session: Session, *, worker: str, due_before: datetime, lease_seconds: float, mark_in_doubt: bool = False
) -> Claimed | None:
    """Claim the next due ticket no live pusher holds (urgent leads' tickets first), and commit the claim.

    PostgreSQL locks the candidate row with FOR UPDATE SKIP LOCKED, so concurrent pushers pass
    over each other's candidates; SQLite ignores the clause, but its BEGIN IMMEDIATE transaction
    already serialises claims. The UPDATE repeats the conditions, so a claim is never stolen.

    Due means due when the run began (``due_before``), except for an urgent lead's first attempt:
    one verified while a long run drains a backlog goes next, instead of waiting for the next run.

    ``mark_in_doubt`` (a server that does not honour idempotency keys) records with the claim that
    a request may be on its way, so the pusher that takes over from one killed mid-POST looks the
    request up first; the returned claim carries the mark as it was before.
    """
    now = utcnow()
    free = or_(Ticket.claim_expires_at.is_(None), Ticket.claim_expires_at < now)
    claimable = (Ticket.state.in_(PUSHABLE_STATES), Ticket.next_attempt_at <= now, free)
    fresh_urgent = and_(Lead.priority == Priority.URGENT, Ticket.attempts == 0)
    due = or_(Ticket.next_attempt_at <= due_before, fresh_urgent)
    for _ in range(MAX_CLAIM_TRIES):
        ticket_id = session.scalars(
            select(Ticket.id)
            .join(Lead, Lead.id == Ticket.lead_id)
            .where(*claimable, due)
            .order_by(URGENT_FIRST, Ticket.next_attempt_at, Ticket.id)
            .limit(1)
            .with_for_update(of=Ticket, skip_locked=True)
        ).first()
        if ticket_id is None:
            session.commit()
            return None
        claimed = session.execute(
            update(Ticket)
            .where(Ticket.id == ticket_id, *claimable)
            .values(claimed_by=worker, claim_expires_at=now + timedelta(seconds=lease_seconds))
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount == 1:  # type: ignore[attr-defined]
            row = session.execute(
                select(
                    Ticket.idempotency_key,
                    Ticket.payload,
                    Ticket.attempts,
                    Ticket.lead_id,
                    Ticket.delivery_unknown_since,
                ).where(Ticket.id == ticket_id)
            ).one()
            payload = complete_payload(session, row.lead_id, row.payload)
            if mark_in_doubt and row.delivery_unknown_since is None:
                session.execute(
                    update(Ticket)
                    .where(Ticket.id == ticket_id)
                    .values(delivery_unknown_since=now)
                    .execution_options(synchronize_session=False)
                )
            session.commit()
            return Claimed(
                ticket_id, row.idempotency_key, payload, row.attempts, row.lead_id, row.delivery_unknown_since
            )
        session.commit()
    return None


def _unknown_since(ticket: Claimed, delivery: Delivery, settings: Settings) -> datetime | None:
    """Since when the request may be held at the server without our knowing, after this turn."""
    lookup, outcome = delivery.lookup, delivery.outcome
    since = ticket.delivery_unknown_since
    if outcome.kind == "sent" or (lookup is not None and lookup.outcome is ReconcileOutcome.ABSENT):
        since = None  # the question is settled: delivered, or shown absent before this POST
    if (
        outcome.maybe_stored
        and delivery.posted_at is not None
        and not settings.dispatch.honours_idempotency_key
    ):
        since = since or delivery.posted_at
    return since


def _record(session: Session, ticket: Claimed, delivery: Delivery, settings: Settings, worker: str) -> str:
    """Store one outcome (and the lookup made before it) on the ticket and release the claim; returns
    the summary bucket.

    A delivery is recorded whenever the ticket is still queued, claim or not, so a known
    service_request_id is never thrown away; a retry or failure only by the pusher holding the claim.
    """
    now = utcnow()
    outcome, lookup = delivery.outcome, delivery.lookup
    attempts = ticket.attempts + 1
    values: dict[str, object] = {"attempts": attempts, "claimed_by": None, "claim_expires_at": None}
    values["delivery_unknown_since"] = _unknown_since(ticket, delivery, settings)
    if lookup is not None:
        values.update(reconciled_at=now, reconcile_outcome=lookup.outcome)
        values["reconcile_attempts"] = Ticket.reconcile_attempts + 1
    bucket = outcome.kind
    dispatch = settings.dispatch
    if outcome.kind == "sent":
        sent_at = (lookup.requested_at if lookup is not None else None) or now
        values.update(state=TicketState.SENT, service_request_id=outcome.service_request_id, sent_at=sent_at)
        values.update(last_error=None, dispatch_status="open")
        values["agency_responsible"] = ticket.payload.get(RESPONSIBLE_UNIT)
    elif outcome.kind == "retry" and attempts < dispatch.max_attempts:
        delay = outcome.retry_after
        if delay is None:
            delay = backoff_seconds(
                attempts, base=dispatch.backoff_base_seconds, most=dispatch.backoff_max_seconds
            )
        values.update(next_attempt_at=now + timedelta(seconds=delay), last_error=outcome.error)
    else:
        bucket = "failed"
        error = outcome.error or "failed"
        if outcome.kind == "retry":
            error = f"gave up after {attempts} attempts: {error}"
        values.update(state=TicketState.FAILED, last_error=error[:MAX_ERROR_CHARS])
    guard = [Ticket.id == ticket.id, Ticket.state.in_(PUSHABLE_STATES)]
    if outcome.kind != "sent":
        guard.append(Ticket.claimed_by == worker)
    result = session.execute(
        update(Ticket).where(*guard).values(**values).execution_options(synchronize_session=False)
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        log.warning("ticket %s: claim lost before its %s outcome was recorded", ticket.id, outcome.kind)
        return "lost"
    return bucket


def push_pending(
    settings: Settings,
    session_factory: sessionmaker[Session],
    transport: httpx.BaseTransport | None = None,
    worker: str | None = None,
) -> PushSummary:
    """Send every ticket that was due when the run began, one claimed ticket at a time.

    Each claim and each result is its own short transaction, so no database lock is held during
    a POST, and a pusher killed mid-run leaves at most one claimed ticket, free again after
    ``dispatch.lease_seconds``. Tickets retried during this run wait for the next run.
    """
    summary = PushSummary()
    worker = worker or pusher_id()
    started = utcnow()
    lease = settings.dispatch.lease_seconds
    in_doubt = not settings.dispatch.honours_idempotency_key
    timeout = httpx.Timeout(settings.dispatch.timeout_seconds)
    client: httpx.Client | None = None
    try:
        while True:
            with session_factory() as session:
                ticket = claim_next(
                    session, worker=worker, due_before=started, lease_seconds=lease, mark_in_doubt=in_doubt
                )
                if ticket is None:
                    break
                if client is None:
                    client = httpx.Client(
                        base_url=settings.dispatch.base_url, timeout=timeout, transport=transport
                    )
                delivery = deliver(client, ticket, settings)
                bucket = _record(session, ticket, delivery, settings, worker)
                session.commit()
            summary.attempted += 1
            if bucket in _BUCKETS:
                setattr(summary, _BUCKETS[bucket], getattr(summary, _BUCKETS[bucket]) + 1)
            lookup = delivery.lookup
            if bucket == "sent" and lookup is not None and lookup.outcome is not ReconcileOutcome.ABSENT:
                summary.found += 1
                if lookup.matches > 1:
                    log.warning("ticket %s: the dispatch system holds it %s times", ticket.id, lookup.matches)
            if delivery.outcome.error:
                log.warning("ticket %s (%s): %s", ticket.id, ticket.idempotency_key, delivery.outcome.error)
    finally:
        if client is not None:
            client.close()
    return summary


def unknown_service_codes(settings: Settings, transport: httpx.BaseTransport | None = None) -> list[str]:
    """Configured service codes the dispatch system does not offer (GET /services.json), sorted.

    Checked before pushing so that a typo in `dispatch.service_codes` is reported at once
    instead of surfacing later as failed tickets.
    """
    dispatch = settings.dispatch
    configured = {*dispatch.service_codes.values(), dispatch.default_service_code}
    timeout = httpx.Timeout(dispatch.timeout_seconds)
    code_field = dispatch.field_names.get("service_code", "service_code")
    with httpx.Client(base_url=dispatch.base_url, timeout=timeout, transport=transport) as client:
        response = client.get(dispatch.services_path, params={"jurisdiction_id": dispatch.jurisdiction_id})
        response.raise_for_status()
        offered = {str(service[code_field]) for service in response.json()}
    return sorted(configured - offered)


def check_service_codes(settings: Settings, transport: httpx.BaseTransport | None = None) -> None:
    """Raise UnknownServiceCodes naming every configured code GET /services.json does not list."""
    unknown = unknown_service_codes(settings, transport)
    if unknown:
        raise UnknownServiceCodes(unknown)


def drain(
    settings: Settings,
    session_factory: sessionmaker[Session],
    *,
    within_seconds: float,
    pause_seconds: float = 0.05,
    transport: httpx.BaseTransport | None = None,
) -> PushSummary:
    """Push run after run until no ticket is queued or ``within_seconds`` are up; the totals.

    No command runs it (`weisu push` is one run; the scheduler repeats it): tests use it to run
    several pushers against one outbox until it is empty (tests/verify/test_push_exactly_once.py).
    """
    total = PushSummary()
    worker = pusher_id()
    deadline = time.monotonic() + within_seconds
    while True:
        run = push_pending(settings, session_factory, transport=transport, worker=worker)
        for name in ("attempted", "sent", "failed", "retried", "found"):
            setattr(total, name, getattr(total, name) + getattr(run, name))
        with session_factory() as session:
            queued = session.scalar(
                select(func.count()).select_from(Ticket).where(Ticket.state.in_(PUSHABLE_STATES))
            )
        if not queued or time.monotonic() >= deadline:
            return total
        time.sleep(pause_seconds)


_BUCKETS = {"sent": "sent", "retry": "retried", "failed": "failed"}
