"""The outbox pusher: send due tickets to the dispatch system (Open311 POST /requests.json), with retries."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

import httpx
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from settings import Settings
from storage.base import utcnow
from storage.models import Ticket, TicketState

log = logging.getLogger(__name__)

BACKOFF_BASE_SECONDS = 30.0
BACKOFF_MAX_SECONDS = 3600.0
BATCH_SIZE = 100
MAX_ERROR_CHARS = 2000


@dataclass
class PushSummary:
    attempted: int = 0
    sent: int = 0
    failed: int = 0
    retried: int = 0

    def summary(self) -> str:
        return (
            f"push: {self.attempted} attempted, {self.sent} sent, "
            f"{self.retried} to retry, {self.failed} failed"
        )


@dataclass(frozen=True)
class Outcome:
    """What one POST came to: sent (with the dispatch system's id), retry later, or failed for good."""

    kind: str  # "sent" | "retry" | "failed"
    service_request_id: str | None = None
    error: str | None = None
    retry_after: float | None = None


def backoff_seconds(attempts: int, rng: Callable[[], float] = random.random) -> float:
    """Exponential backoff with full jitter in its upper half: base·2^(n-1) · [0.5, 1)."""
    ceiling = min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(attempts - 1, 0))
    return ceiling * (0.5 + rng() / 2)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Retry-After as seconds (delta-seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max((when - now).total_seconds(), 0.0)


def _server_message(response: httpx.Response) -> str:
    try:
        body = response.json()
        if isinstance(body, list) and body and isinstance(body[0], dict):
            return f"HTTP {response.status_code}: {body[0].get('description') or body[0]}"
    except ValueError:
        pass
    return f"HTTP {response.status_code}: {response.text[:500]}"


def interpret(response: httpx.Response, now: datetime) -> Outcome:
    """Map an Open311 response onto an outcome: 2xx sent, 429/5xx retry, other 4xx failed."""
    if response.status_code == 429 or response.status_code >= 500:
        retry_after = parse_retry_after(response.headers.get("Retry-After"), now)
        return Outcome("retry", error=_server_message(response), retry_after=retry_after)
    if response.status_code >= 400:
        return Outcome("failed", error=_server_message(response))
    try:
        body = response.json()
        request_id = str(body[0]["service_request_id"])
    except (ValueError, LookupError, TypeError):
        # Accepted but unreadable: retrying is safe because the idempotency key deduplicates.
        return Outcome("retry", error=f"HTTP {response.status_code}: unreadable body {response.text[:200]!r}")
    return Outcome("sent", service_request_id=request_id)


def post_ticket(client: httpx.Client, ticket: Ticket, settings: Settings) -> Outcome:
    form = dict(ticket.payload)
    form["jurisdiction_id"] = settings.dispatch.jurisdiction_id
    if settings.dispatch.api_key:
        form["api_key"] = settings.dispatch.api_key
    try:
        response = client.post("/requests.json", data=form)
    except httpx.HTTPError as error:
        return Outcome("retry", error=f"{type(error).__name__}: {error}")
    return interpret(response, utcnow())


def _record(session: Session, ticket: Ticket, outcome: Outcome, settings: Settings) -> str:
    """Store one outcome on the ticket (guarded on state queued); returns the summary bucket."""
    now = utcnow()
    attempts = ticket.attempts + 1
    values: dict[str, object] = {"attempts": attempts}
    bucket = outcome.kind
    if outcome.kind == "sent":
        values.update(state=TicketState.SENT, service_request_id=outcome.service_request_id, sent_at=now)
        values["last_error"] = None
    elif outcome.kind == "retry" and attempts < settings.dispatch.max_attempts:
        delay = outcome.retry_after if outcome.retry_after is not None else backoff_seconds(attempts)
        values.update(next_attempt_at=now + timedelta(seconds=delay), last_error=outcome.error)
    else:
        bucket = "failed"
        error = outcome.error or "failed"
        if outcome.kind == "retry":
            error = f"gave up after {attempts} attempts: {error}"
        values.update(state=TicketState.FAILED, last_error=error[:MAX_ERROR_CHARS])
    session.execute(
        update(Ticket)
        .where(Ticket.id == ticket.id, Ticket.state == TicketState.QUEUED)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bucket


def due_ticket_ids(session: Session, now: datetime, limit: int = BATCH_SIZE) -> list[int]:
    statement = (
        select(Ticket.id)
        .where(Ticket.state == TicketState.QUEUED, Ticket.next_attempt_at <= now)
        .order_by(Ticket.next_attempt_at, Ticket.id)
        .limit(limit)
    )
    return list(session.scalars(statement))


def push_pending(
    settings: Settings,
    session_factory: sessionmaker[Session],
    transport: httpx.BaseTransport | None = None,
) -> PushSummary:
    """Send every queued ticket that is due; each ticket's result is committed on its own."""
    summary = PushSummary()
    with session_factory() as session:
        ids = due_ticket_ids(session, utcnow())
    if not ids:
        return summary
    timeout = httpx.Timeout(settings.dispatch.timeout_seconds)
    with httpx.Client(base_url=settings.dispatch.base_url, timeout=timeout, transport=transport) as client:
        for ticket_id in ids:
            with session_factory() as session:
                ticket = session.get(Ticket, ticket_id)
                if ticket is None or ticket.state != TicketState.QUEUED:
                    continue
                # End the read transaction before the POST (SQLite's BEGIN IMMEDIATE holds the write
                # lock); the idempotency key makes a POST repeated by a concurrent pusher harmless.
                session.commit()
                outcome = post_ticket(client, ticket, settings)
                bucket = _record(session, ticket, outcome, settings)
                session.commit()
            summary.attempted += 1
            setattr(summary, _BUCKETS[bucket], getattr(summary, _BUCKETS[bucket]) + 1)
            if outcome.error:
                log.warning("ticket %s (%s): %s", ticket_id, ticket.idempotency_key, outcome.error)
    return summary


_BUCKETS = {"sent": "sent", "retry": "retried", "failed": "failed"}
