"""Ticket payloads: a promoted lead as an Open311 GeoReport v2 service request (form fields)."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.orm import Session

from settings import Settings
from storage.base import utcnow
from storage.models import AuditEvent, Lead, Ticket, TicketState

#: Open311 leaves description length to the server; 4,000 characters keeps every known system happy.
MAX_DESCRIPTION = 4000


def idempotency_key(lead_id: int) -> str:
    """Derived from the lead alone, so a retried or repeated push always carries the same key."""
    return f"weisu-lead-{lead_id}"


def service_code(category: str | None, settings: Settings) -> str:
    codes = settings.dispatch.service_codes
    return codes.get(category or "", settings.dispatch.default_service_code)


def address_string(lead: Lead, settings: Settings) -> str:
    parts = [settings.city.name, lead.district, lead.street, lead.landmark]
    return "".join(part for part in parts if part)


def build_payload(lead: Lead, settings: Settings) -> dict[str, str]:
    """The request fields stored in the outbox; the api_key is added at push time, never stored."""
    description = lead.summary
    if lead.responsible_unit:
        description = f"{description}\n责任单位: {lead.responsible_unit}"
    payload = {
        "jurisdiction_id": settings.dispatch.jurisdiction_id,
        "service_code": service_code(lead.category, settings),
        "description": description[:MAX_DESCRIPTION],
        "address_string": address_string(lead, settings),
        "attribute[urgency]": lead.priority.value,
        "attribute[lead_id]": str(lead.id),
        "attribute[idempotency_key]": idempotency_key(lead.id),
    }
    if lead.category:
        payload["attribute[category]"] = lead.category
    if lead.responsible_unit:
        payload["attribute[responsible_unit]"] = lead.responsible_unit
    return payload


class TicketError(Exception):
    """A ticket operation that does not apply to the ticket's current state."""


def requeue_failed(*, session: Session, ticket_id: int, actor: str, settings: Settings) -> Ticket:
    """Put a failed ticket back in the outbox (failed → queued) with its payload rebuilt from the lead.

    Rebuilding applies the current mapping (e.g. a corrected service code); the idempotency key
    stays, so a ticket the dispatch system did store after all is recovered, not sent twice.
    """
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        raise TicketError(f"no ticket {ticket_id}")
    lead = session.get(Lead, ticket.lead_id)
    assert lead is not None  # tickets.lead_id is a foreign key
    previous_error = ticket.last_error
    changed = session.execute(
        update(Ticket)
        .where(Ticket.id == ticket_id, Ticket.state == TicketState.FAILED)
        .values(
            state=TicketState.QUEUED,
            payload=build_payload(lead, settings),
            attempts=0,
            next_attempt_at=utcnow(),
            last_error=None,
            claimed_by=None,
            claim_expires_at=None,
        )
        .execution_options(synchronize_session=False)
    )
    if changed.rowcount != 1:  # type: ignore[attr-defined]
        raise TicketError(f"ticket {ticket_id} is {ticket.state.value}, not failed")
    session.add(
        AuditEvent(
            lead_id=lead.id,
            actor=actor,
            action="repush",
            from_state=TicketState.FAILED.value,
            to_state=TicketState.QUEUED.value,
            reason=(previous_error or "")[:500] or None,
            details={"ticket_id": ticket_id},
        )
    )
    session.flush()
    session.refresh(ticket)
    return ticket
