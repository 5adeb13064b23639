"""Tickets: a promoted lead as an Open311 GeoReport v2 request (form fields), re-pushing, and ticket lists."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from settings import Settings
from storage.base import utcnow
from storage.models import AuditEvent, Lead, LeadPost, Post, Ticket
from storage.vocabulary import ACCEPTED_TICKET_STATES, Action, ReconcileOutcome, TicketState
from verify.geo import district_point

#: Open311 leaves description length to the server; 4,000 characters keeps every known system happy.
MAX_DESCRIPTION = 4000
#: Links to the public posts behind a case, earliest first; a handful is what a dispatcher opens.
MAX_EVIDENCE_LINKS = 5
MAX_EVIDENCE_CHARS = 2000
RESPONSIBLE_UNIT = "attribute[responsible_unit]"
IDEMPOTENCY_ATTRIBUTE = "attribute[idempotency_key]"


def idempotency_key(lead_id: int) -> str:
    """Derived from the lead alone, so a retried or repeated push always carries the same key."""
    return f"weisu-lead-{lead_id}"


def reference(key: str) -> str:
    """The key as it opens every description sent, 【weisu-lead-7】: how a lookup recognises our request.

    Open311 defines no idempotency key and returns no attributes, but every server keeps the
    description; the brackets end the key, so 【weisu-lead-7】 never matches weisu-lead-71.
    """
    return f"【{key}】"


def service_code(category: str | None, settings: Settings) -> str:
    codes = settings.dispatch.service_codes
    return codes.get(category or "", settings.dispatch.default_service_code)


def address_string(lead: Lead, settings: Settings) -> str:
    parts = [settings.city.name, lead.district, lead.street, lead.landmark]
    return "".join(part for part in parts if part)


def build_payload(lead: Lead, settings: Settings) -> dict[str, str]:
    """The request fields stored in the outbox; the api_key is added at push time, never stored.

    The responsible unit is the lead's as promotion decided it (workflow.verify_and_promote): the
    payload carries it, and the pusher sends it as stored."""
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
        IDEMPOTENCY_ATTRIBUTE: idempotency_key(lead.id),
    }
    if lead.category:
        payload["attribute[category]"] = lead.category
    if lead.responsible_unit:
        payload[RESPONSIBLE_UNIT] = lead.responsible_unit
    return payload


def evidence_links(session: Session, lead_id: int) -> list[str]:
    """The http(s) URLs of a lead's evidence posts, earliest first, at most MAX_EVIDENCE_LINKS."""
    urls = session.scalars(
        select(Post.url)
        .join(LeadPost, LeadPost.post_id == Post.id)
        .where(LeadPost.lead_id == lead_id, Post.url.startswith("http"))
        .order_by(Post.published_at, Post.id)
        .limit(MAX_EVIDENCE_LINKS * 2)
    )
    links: list[str] = []
    room = MAX_EVIDENCE_CHARS
    for url in urls:
        # A crawled URL is hostile: only whole plain http(s) links, no whitespace that could split the list.
        plain = url.startswith(("http://", "https://")) and not any(ch.isspace() for ch in url)
        if plain and url not in links and len(url) + 1 <= room and len(links) < MAX_EVIDENCE_LINKS:
            links.append(url)
            room -= len(url) + 1
    return links


def complete_payload(session: Session, lead_id: int, payload: dict[str, Any]) -> dict[str, str]:
    """The stored payload plus what the pusher adds when sending: the ticket's reference at the head
    of the description, the district's coordinates and the evidence links.

    The responsible unit is never decided here: promotion stored it in the payload (or decided there
    was none), and a ticket carries that unit until `requeue_failed` rebuilds it from the lead.
    """
    form = {key: str(value) for key, value in payload.items()}
    lead = session.get(Lead, lead_id)
    if lead is not None:
        _add_lead_details(session, form, lead)
    marker = reference(form.get(IDEMPOTENCY_ATTRIBUTE) or idempotency_key(lead_id))
    if not form.get("description", "").startswith(marker):
        # At the head, so no cut to MAX_DESCRIPTION (here or at the server) can lose it.
        form["description"] = f"{marker}{form.get('description', '')}"[:MAX_DESCRIPTION]
    return form


def _add_lead_details(session: Session, form: dict[str, str], lead: Lead) -> None:
    """The district's point and the evidence links, into ``form``."""
    lead_id = lead.id
    point = district_point(lead.district)
    if point is not None and not (form.get("lat") and form.get("long")):
        form["lat"], form["long"] = f"{point[0]:.3f}", f"{point[1]:.3f}"
    links = evidence_links(session, lead_id)
    if links and "attribute[evidence]" not in form:
        form["attribute[evidence]"] = "\n".join(links)


def wire_names(form: dict[str, str], settings: Settings) -> dict[str, str]:
    """Rename Open311 fields to another ticket API's names (dispatch.field_names); others unchanged."""
    names = settings.dispatch.field_names
    return {names.get(key, key): value for key, value in form.items()}


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
            action=Action.REPUSH,
            from_state=TicketState.FAILED.value,
            to_state=TicketState.QUEUED.value,
            reason=(previous_error or "")[:500] or None,
            details={"ticket_id": ticket_id},
        )
    )
    session.flush()
    session.refresh(ticket)
    return ticket


#: The ticket page's views: failed (re-pushable), urgent ones awaiting a second analyst, queued, open at
#: the dispatch system, closed.
TICKET_VIEWS = ("failed", "unconfirmed", "queued", "open", "closed")
CLOSED = "closed"
#: How the last lookup after an unanswered push ended, as analysts read it on the tickets page.
RECONCILE_LABELS = {
    ReconcileOutcome.FOUND_BY_ATTRIBUTE: "按幂等键找到，未重发",
    ReconcileOutcome.FOUND_BY_DESCRIPTION: "按描述中的编号找到，未重发",
    ReconcileOutcome.ABSENT: "派单系统中没有，已重新发送",
    ReconcileOutcome.LOOKUP_FAILED: "核对失败，稍后再核对",
}


@dataclass(frozen=True)
class TicketRow:
    """One line of the tickets page: the ticket, its lead, and how long the city took to close it."""

    ticket: Ticket
    lead: Lead

    @property
    def resolution_time(self) -> timedelta | None:
        start = self.ticket.sent_at or self.ticket.created_at
        if self.ticket.closed_at is None or self.ticket.dispatch_status != CLOSED:
            return None
        return self.ticket.closed_at - start

    @property
    def reconcile_note(self) -> str | None:
        """Whether the dispatch system may hold the ticket unbeknown to us, and the lookups made."""
        ticket, parts = self.ticket, []
        if ticket.delivery_unknown_since is not None:
            parts.append("投递结果未知：重发前先向派单系统核对")
        if ticket.reconcile_outcome is not None:
            label = RECONCILE_LABELS[ticket.reconcile_outcome]
            parts.append(f"已核对 {ticket.reconcile_attempts} 次，最近一次{label}")
        return "；".join(parts) or None


def _view_condition(view: str) -> Any:
    conditions = {
        "failed": Ticket.state == TicketState.FAILED,
        "unconfirmed": Ticket.state == TicketState.UNCONFIRMED,
        "queued": Ticket.state == TicketState.QUEUED,
        "open": and_(
            Ticket.state.in_(ACCEPTED_TICKET_STATES),
            or_(Ticket.dispatch_status.is_(None), Ticket.dispatch_status != CLOSED),
        ),
        "closed": Ticket.dispatch_status == CLOSED,
    }
    if view not in conditions:
        raise TicketError(f"unknown view {view!r}")
    return conditions[view]


def list_tickets(*, session: Session, view: str, limit: int = 200) -> list[TicketRow]:
    """Tickets of one view, newest first (closed: most recently closed first), at most ``limit``."""
    newest = Ticket.closed_at.desc() if view == "closed" else Ticket.id.desc()
    rows = session.execute(
        select(Ticket, Lead)
        .join(Lead, Lead.id == Ticket.lead_id)
        .where(_view_condition(view))
        .order_by(newest, Ticket.id.desc())
        .limit(limit)
    )
    return [TicketRow(ticket, lead) for ticket, lead in rows]


def view_counts(session: Session) -> dict[str, int]:
    """How many tickets each view holds, for the page's tabs."""
    count = select(func.count()).select_from(Ticket)
    return {view: session.scalar(count.where(_view_condition(view))) or 0 for view in TICKET_VIEWS}
