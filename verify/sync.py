"""Status sync: poll open tickets at the dispatch system (Open311 GET /requests/{id}.json), record changes."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import quote

import httpx
from sqlalchemy import case, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from settings import Settings
from storage.base import utcnow
from storage.models import AuditEvent, Lead, Ticket
from storage.vocabulary import Action, TicketState
from verify.pusher import first_record

log = logging.getLogger(__name__)

SYNC_ACTOR = "dispatch"
CLOSED = "closed"


@dataclass
class SyncSummary:
    checked: int = 0
    changed: int = 0
    closed: int = 0
    reassigned: int = 0
    errors: int = 0

    def summary(self) -> str:
        counts = f"{self.checked} checked, {self.changed} changed, {self.closed} closed"
        return f"sync: {counts}, {self.reassigned} reassigned, {self.errors} errors"


@dataclass(frozen=True)
class RemoteStatus:
    status: str
    notes: str | None
    agency: str | None = None


@dataclass(frozen=True)
class CategoryAccuracy:
    """First-dispatch accuracy of one category: tickets that reached the right unit the first time."""

    category: str | None
    tickets: int
    first_time_right: int

    @property
    def share(self) -> float:
        return self.first_time_right / self.tickets if self.tickets else 0.0


def open_ticket_ids(session: Session) -> list[int]:
    """Delivered tickets the dispatch system has not closed yet, oldest first."""
    statement = (
        select(Ticket.id)
        .where(
            Ticket.state == TicketState.SENT,
            Ticket.service_request_id.is_not(None),
            or_(Ticket.dispatch_status.is_(None), Ticket.dispatch_status != CLOSED),
        )
        .order_by(Ticket.id)
    )
    return list(session.scalars(statement))


def fetch_status(client: httpx.Client, service_request_id: str, settings: Settings) -> RemoteStatus:
    """The request's status and notes; raises httpx.HTTPError or ValueError when it cannot be read."""
    params = {"jurisdiction_id": settings.dispatch.jurisdiction_id}
    if settings.dispatch.api_key:
        params["api_key"] = settings.dispatch.api_key
    path = settings.dispatch.status_path.format(id=quote(service_request_id, safe=""))
    response = client.get(path, params=params)
    response.raise_for_status()
    names = settings.dispatch.field_names
    try:
        record = first_record(response.json())
        status = str(record[names.get("status", "status")])
    except (LookupError, TypeError) as error:
        raise ValueError(f"unreadable status for {service_request_id}: {response.text[:200]!r}") from error
    notes = record.get(names.get("status_notes", "status_notes"))
    agency = record.get(names.get("agency_responsible", "agency_responsible"))
    return RemoteStatus(status, str(notes) if notes else None, str(agency) if agency else None)


def _reassigned(session: Session, ticket: Ticket, remote: RemoteStatus, values: dict[str, object]) -> bool:
    """Note the unit the dispatch system names; a change from a known unit is a counted reassignment."""
    if remote.agency is None or remote.agency == ticket.agency_responsible:
        return False
    values["agency_responsible"] = remote.agency
    if ticket.agency_responsible is None:
        return False  # the first unit we hear of is an assignment, not a reassignment
    values["reassignments"] = ticket.reassignments + 1
    session.add(
        AuditEvent(
            lead_id=ticket.lead_id,
            actor=SYNC_ACTOR,
            action=Action.DISPATCH_REASSIGNED,
            reason=f"{ticket.agency_responsible} → {remote.agency}"[:500],
            details={"ticket_id": ticket.id, "from": ticket.agency_responsible, "to": remote.agency},
        )
    )
    return True


def _apply(session: Session, ticket: Ticket, remote: RemoteStatus) -> tuple[bool, bool]:
    """Store what the dispatch system said: (status or notes changed, unit reassigned); both audited."""
    now = utcnow()
    values: dict[str, object] = {"status_checked_at": now}
    reassigned = _reassigned(session, ticket, remote, values)
    changed = (remote.status, remote.notes) != (ticket.dispatch_status, ticket.status_notes)
    if changed:
        values.update(dispatch_status=remote.status, status_notes=remote.notes)
        if remote.status != ticket.dispatch_status:
            values["closed_at"] = now if remote.status == CLOSED else None
        session.add(
            AuditEvent(
                lead_id=ticket.lead_id,
                actor=SYNC_ACTOR,
                action=Action.DISPATCH_STATUS,
                from_state=ticket.dispatch_status,
                to_state=remote.status[:20],
                reason=(remote.notes or "")[:500] or None,
                details={"ticket_id": ticket.id, "service_request_id": ticket.service_request_id},
            )
        )
    session.execute(
        update(Ticket)
        .where(Ticket.id == ticket.id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return changed, reassigned


def sync_statuses(
    settings: Settings,
    session_factory: sessionmaker[Session],
    transport: httpx.BaseTransport | None = None,
) -> SyncSummary:
    """Poll every open ticket once; each ticket's result is committed on its own, a failure only logged."""
    summary = SyncSummary()
    with session_factory() as session:
        ids = open_ticket_ids(session)
    if not ids:
        return summary
    timeout = httpx.Timeout(settings.dispatch.timeout_seconds)
    with httpx.Client(base_url=settings.dispatch.base_url, timeout=timeout, transport=transport) as client:
        for ticket_id in ids:
            with session_factory() as session:
                ticket = session.get(Ticket, ticket_id)
                if ticket is None or ticket.service_request_id is None:
                    continue
                session.expunge(ticket)
                session.commit()  # no transaction (SQLite write lock) is held during the GET
                summary.checked += 1
                try:
                    remote = fetch_status(client, ticket.service_request_id, settings)
                except (httpx.HTTPError, ValueError) as error:
                    summary.errors += 1
                    log.warning("status of ticket %s (%s): %s", ticket_id, ticket.service_request_id, error)
                    continue
                changed, reassigned = _apply(session, ticket, remote)
                summary.changed += changed
                summary.closed += changed and remote.status == CLOSED
                summary.reassigned += reassigned
                session.commit()
    return summary


def first_dispatch_accuracy(session: Session) -> list[CategoryAccuracy]:
    """Per lead category: delivered tickets, and how many the dispatch system never reassigned."""
    right = func.sum(case((Ticket.reassignments == 0, 1), else_=0))
    rows = session.execute(
        select(Lead.category, func.count(Ticket.id), right)
        .join(Lead, Lead.id == Ticket.lead_id)
        .where(Ticket.state == TicketState.SENT)
        .group_by(Lead.category)
        .order_by(Lead.category)
    )
    return [CategoryAccuracy(category, int(total), int(ok or 0)) for category, total, ok in rows]
