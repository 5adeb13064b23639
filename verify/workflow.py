"""The lead state machine: one transition table, conditional updates, an audit event for every change."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, and_, or_, select, true, update
from sqlalchemy.orm import Session

from settings import Settings
from storage.base import utcnow
from storage.models import AuditEvent, Lead, Ticket
from storage.vocabulary import (
    AWAITING_DECISION_STATES,
    Action,
    LeadState,
    Priority,
    RejectReason,
    RequestType,
    TicketState,
)
from verify.inputs import storable
from verify.responsibility import suggest_unit
from verify.tickets import build_payload, idempotency_key

SYSTEM_ACTOR = "system"


S = LeadState
#: Every allowed transition, in one place: (from state, action) -> to state. Anything else is refused.
TRANSITIONS: dict[tuple[LeadState, Action], LeadState] = {
    (S.NEW, Action.CLAIM): S.CLAIMED,
    # Renewing one's own lease, or taking over a lease that has run out but not yet been swept.
    (S.CLAIMED, Action.CLAIM): S.CLAIMED,
    (S.CLAIMED, Action.RELEASE): S.NEW,
    (S.CLAIMED, Action.EXPIRE): S.NEW,
    (S.CLAIMED, Action.VERIFY): S.VERIFIED,
    (S.VERIFIED, Action.PROMOTE): S.PROMOTED,
    (S.CLAIMED, Action.REJECT): S.REJECTED,
    (S.CLAIMED, Action.MERGE): S.MERGED,
}

#: Fields an analyst may correct when verifying a lead.
EDITABLE_FIELDS = ("category", "district", "street", "landmark", "summary", "responsible_unit")
MAX_NOTE_CHARS = 2000


class WorkflowError(Exception):
    """A transition that is not allowed now (wrong state, someone else's claim, unknown lead)."""


class LeadNotFound(WorkflowError):
    pass


class TransitionRefused(WorkflowError):
    pass


class UnstorableInput(WorkflowError):
    """Typed text the database cannot store (NUL, a lone surrogate); the message says so in Chinese."""


class MergeRefused(TransitionRefused):
    """A merge that could hide a complaint: into itself, into a merged lead or into a closed one."""


def _require_storable(*texts: str) -> None:
    # The pages post these forms without a pydantic model; the API's models check the same.
    if not all(storable(text) for text in texts):
        raise UnstorableInput("输入含有无法保存的字符（如 NUL 控制字符），请删除后重试。")


def next_state(state: LeadState, action: Action) -> LeadState:
    """The state ``action`` leads to from ``state``; TransitionRefused when the table has no such row."""
    try:
        return TRANSITIONS[(state, action)]
    except KeyError:
        raise TransitionRefused(f"cannot {action.value} a lead that is {state.value}") from None


def sources_of(action: Action) -> list[LeadState]:
    return [source for (source, act) in TRANSITIONS if act == action]


def get(*, session: Session, lead_id: int) -> Lead | None:
    return session.get(Lead, lead_id)


def get_or_raise(*, session: Session, lead_id: int) -> Lead:
    lead = session.get(Lead, lead_id)
    if lead is None:
        raise LeadNotFound(f"lead {lead_id} not found")
    return lead


def _audit(
    session: Session,
    lead_id: int,
    actor: str,
    action: Action,
    from_state: LeadState | None,
    to_state: LeadState | None,
    reason: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    session.add(
        AuditEvent(
            lead_id=lead_id,
            actor=actor,
            action=action,
            from_state=from_state.value if from_state else None,
            to_state=to_state.value if to_state else None,
            reason=reason,
            details=details or {},
        )
    )


def _rowcount(session: Session, statement: Any) -> int:
    result = cast(CursorResult[Any], session.execute(statement))
    return result.rowcount


def _transition(
    session: Session, lead_id: int, action: Action, condition: Any, values: dict[str, Any]
) -> LeadState:
    """Conditionally move one lead; the WHERE clause is the guard, so two racing writers cannot both win."""
    lead = get_or_raise(session=session, lead_id=lead_id)
    from_state = lead.state
    to_state = next_state(from_state, action)
    statement = (
        update(Lead)
        .where(Lead.id == lead_id, Lead.state == from_state, condition)
        .values(state=to_state, updated_at=utcnow(), **values)
        .execution_options(synchronize_session=False)
    )
    if _rowcount(session, statement) != 1:
        session.expire(lead)
        raise TransitionRefused(f"lead {lead_id} changed meanwhile or is held by someone else")
    session.expire(lead)
    return from_state


def _held_by(actor: str, now: datetime) -> Any:
    return and_(Lead.claimed_by == actor, or_(Lead.claim_expires_at.is_(None), Lead.claim_expires_at > now))


def claim(*, session: Session, lead_id: int, actor: str, settings: Settings) -> Lead:
    """Hold a lead for ``review.claim_minutes``; refused while another analyst's lease is running."""
    now = utcnow()
    lead = get_or_raise(session=session, lead_id=lead_id)
    # A running lease belongs to its holder; the guard is in the UPDATE, not in this Python check.
    condition = or_(Lead.claimed_by.is_(None), Lead.claimed_by == actor, Lead.claim_expires_at <= now)
    expires = now + timedelta(minutes=settings.review.claim_minutes)
    previous_holder = lead.claimed_by
    from_state = _transition(
        session, lead_id, Action.CLAIM, condition, {"claimed_by": actor, "claim_expires_at": expires}
    )
    details = {"claim_expires_at": expires.isoformat()}
    if previous_holder and previous_holder != actor:
        details["previous_holder"] = previous_holder
    _audit(session, lead_id, actor, Action.CLAIM, from_state, LeadState.CLAIMED, details=details)
    session.flush()
    return get_or_raise(session=session, lead_id=lead_id)


def release(*, session: Session, lead_id: int, actor: str, override: bool = False) -> Lead:
    """Give a claimed lead back to the queue; ``override`` (supervisors) takes it from whoever holds it."""
    holder = get_or_raise(session=session, lead_id=lead_id).claimed_by
    from_state = _transition(
        session,
        lead_id,
        Action.RELEASE,
        true() if override else _held_by(actor, utcnow()),
        {"claimed_by": None, "claim_expires_at": None},
    )
    details = {"previous_holder": holder, "override": True} if override and holder != actor else {}
    _audit(session, lead_id, actor, Action.RELEASE, from_state, LeadState.NEW, details=details)
    session.flush()
    return get_or_raise(session=session, lead_id=lead_id)


def renew(*, session: Session, lead_id: int, actor: str, settings: Settings) -> Lead:
    """Extend the actor's running lease (the lead page's heartbeat); refused once the lease is lost.

    Not written to the audit trail: a heartbeat every minute is no decision, and the claim that
    started the lease is recorded.
    """
    now = utcnow()
    statement = (
        update(Lead)
        .where(Lead.id == lead_id, Lead.state == LeadState.CLAIMED, _held_by(actor, now))
        .values(claim_expires_at=now + timedelta(minutes=settings.review.claim_minutes))
        .execution_options(synchronize_session=False)
    )
    if _rowcount(session, statement) != 1:
        get_or_raise(session=session, lead_id=lead_id)
        raise TransitionRefused(f"lead {lead_id} is not held by {actor}")
    session.flush()
    lead = get_or_raise(session=session, lead_id=lead_id)
    session.refresh(lead)
    return lead


def expire_claims(*, session: Session, now: datetime | None = None) -> int:
    """Return every lead whose lease has run out to the queue; how many were returned."""
    now = now or utcnow()
    stale = session.execute(
        select(Lead.id, Lead.claimed_by).where(
            Lead.state.in_(sources_of(Action.EXPIRE)), Lead.claim_expires_at <= now
        )
    ).all()
    returned = 0
    to_state = next_state(LeadState.CLAIMED, Action.EXPIRE)
    for lead_id, holder in stale:
        statement = (
            update(Lead)
            .where(Lead.id == lead_id, Lead.state == LeadState.CLAIMED, Lead.claim_expires_at <= now)
            .values(state=to_state, claimed_by=None, claim_expires_at=None)
            .execution_options(synchronize_session=False)
        )
        if _rowcount(session, statement) == 1:
            returned += 1
            _audit(
                session,
                lead_id,
                SYSTEM_ACTOR,
                Action.EXPIRE,
                LeadState.CLAIMED,
                LeadState.NEW,
                reason="claim lease expired",
                details={"previous_holder": holder},
            )
    session.flush()
    session.expire_all()
    return returned


def _listed_unit(session: Session, lead: Lead, changes: dict[str, Any]) -> str | None:
    """The responsibility list's unit for a lead being promoted whose analyst named none; else None.

    The one place weisu decides a ticket's responsible unit: the lead keeps it and the ticket's
    payload carries it; the pusher sends it as stored and never looks at the list again.
    """
    if changes.get("responsible_unit") or lead.responsible_unit:
        return None
    # The most specific match for the place as the analyst corrected it.
    return suggest_unit(
        session,
        changes.get("category", lead.category),
        changes.get("district", lead.district),
        changes.get("street", lead.street),
    )


def verify_and_promote(
    *, session: Session, lead_id: int, actor: str, settings: Settings, edits: dict[str, Any] | None = None
) -> Ticket:
    """Verify a lead the actor holds, apply corrections, promote it and queue its ticket — one transaction.

    The only way a ticket is made, and one lead at a time by the analyst holding its claim. Questions
    are kept in the queue, but only such an analyst's promotion makes one a ticket: the system account
    is refused, and the promotion's audit event records the lead's request type.
    """
    now = utcnow()
    changes = {k: v for k, v in (edits or {}).items() if k in EDITABLE_FIELDS and v not in (None, "")}
    unknown = set(edits or {}) - set(EDITABLE_FIELDS)
    if unknown:
        raise WorkflowError(f"fields cannot be edited: {', '.join(sorted(unknown))}")
    _require_storable(*(str(value) for value in changes.values()))
    lead = get_or_raise(session=session, lead_id=lead_id)
    request_type = RequestType(lead.request_type)
    if request_type == RequestType.QUESTION and actor == SYSTEM_ACTOR:
        raise TransitionRefused(f"lead {lead_id} is a question: only an analyst may promote it")
    suggested = _listed_unit(session, lead, changes)
    if suggested:
        changes["responsible_unit"] = suggested
    before = {k: getattr(lead, k) for k in changes}
    from_state = _transition(session, lead_id, Action.VERIFY, _held_by(actor, now), changes)
    edited = {k: {"from": before[k], "to": v} for k, v in changes.items() if before[k] != v}
    verify_details: dict[str, Any] = {"edits": edited}
    if suggested:
        verify_details["unit_from_responsibility_list"] = suggested
    _audit(session, lead_id, actor, Action.VERIFY, from_state, LeadState.VERIFIED, details=verify_details)
    _transition(session, lead_id, Action.PROMOTE, true(), {"claimed_by": None, "claim_expires_at": None})
    lead = get_or_raise(session=session, lead_id=lead_id)
    # The pusher sends only QUEUED tickets: an unconfirmed urgent one waits for a second analyst.
    waits = lead.priority == Priority.URGENT and settings.review.urgent_second_confirmation
    ticket = Ticket(
        lead_id=lead_id,
        idempotency_key=idempotency_key(lead_id),
        payload=build_payload(lead, settings),
        next_attempt_at=now,
        state=TicketState.UNCONFIRMED if waits else TicketState.QUEUED,
    )
    session.add(ticket)
    session.flush()
    details: dict[str, Any] = {
        "ticket_id": ticket.id,
        "idempotency_key": ticket.idempotency_key,
        # As promoted: later evidence may still change an open lead's type (classify.detection).
        "request_type": request_type.value,
    }
    if waits:
        details["awaiting_confirmation"] = True
    _audit(session, lead_id, actor, Action.PROMOTE, LeadState.VERIFIED, LeadState.PROMOTED, details=details)
    session.flush()
    return ticket


def reject(*, session: Session, lead_id: int, actor: str, reason: RejectReason | str, note: str = "") -> Lead:
    """Reject a lead the actor holds, with one of the fixed reasons (its label goes to training)."""
    try:
        reason = RejectReason(reason)
    except ValueError:
        raise WorkflowError(f"unknown reject reason: {reason}") from None
    _require_storable(note)
    from_state = _transition(
        session,
        lead_id,
        Action.REJECT,
        _held_by(actor, utcnow()),
        {"claimed_by": None, "claim_expires_at": None},
    )
    details = {"note": note[:500]} if note else {}
    _audit(session, lead_id, actor, Action.REJECT, from_state, LeadState.REJECTED, reason.value, details)
    session.flush()
    return get_or_raise(session=session, lead_id=lead_id)


def _lock_leads(session: Session, *lead_ids: int) -> dict[int, tuple[LeadState, int | None]]:
    """Each lead's (state, merged_into_id), read from the database under a row lock.

    Locked in id order, so two merges of the same pair in opposite directions queue instead of
    deadlocking. PostgreSQL takes the locks (SELECT … FOR UPDATE, which also reads the latest
    committed row); SQLite has no row locks, but every write transaction there starts with BEGIN
    IMMEDIATE (storage.db), which already serialises them. The identity map is bypassed on purpose:
    a lead loaded earlier in the session may be stale.
    """
    rows: dict[int, tuple[LeadState, int | None]] = {}
    for lead_id in sorted(set(lead_ids)):
        statement = select(Lead.state, Lead.merged_into_id).where(Lead.id == lead_id).with_for_update()
        row = session.execute(statement).one_or_none()
        if row is None:
            raise LeadNotFound(f"lead {lead_id} not found")
        rows[lead_id] = (LeadState(row.state), row.merged_into_id)
    return rows


def _refuse_merge_target(into_id: int, state: LeadState, merged_into: int | None) -> None:
    if state == LeadState.MERGED:
        raise MergeRefused(
            f"不能合并到线索 {into_id}：它已合并到线索 {merged_into}，请直接合并到线索 {merged_into}。"
        )
    if state not in AWAITING_DECISION_STATES:
        raise MergeRefused(
            f"不能合并到线索 {into_id}：它已处理完毕（已核实、已派单或已驳回），不再接收合并。"
        )


def merge(*, session: Session, lead_id: int, into_id: int, actor: str) -> Lead:
    """Mark a held lead as the same problem as the open lead ``into_id``; its evidence stays where it is.

    Only a lead still awaiting a decision (AWAITING_DECISION_STATES) receives a merge, and leads that were
    merged into this one are re-pointed at ``into_id``. So every merged lead points straight at a
    lead that was open when it was merged: chains are one step long and can never close into a
    cycle that hides every lead of a complaint (A into B, then B into A). The check and the write
    happen under the row locks of both leads, so two opposite merges at once cannot both pass.
    """
    if lead_id == into_id:
        raise MergeRefused("不能把线索合并到它自己。")
    rows = _lock_leads(session, lead_id, into_id)
    _refuse_merge_target(into_id, *rows[into_id])
    from_state = _transition(
        session,
        lead_id,
        Action.MERGE,
        _held_by(actor, utcnow()),
        {"claimed_by": None, "claim_expires_at": None, "merged_into_id": into_id},
    )
    followers = _repoint_followers(session, lead_id, into_id, actor)
    details: dict[str, Any] = {"into": into_id}
    if followers:
        details["repointed"] = followers
    _audit(session, lead_id, actor, Action.MERGE, from_state, LeadState.MERGED, details=details)
    session.flush()
    return get_or_raise(session=session, lead_id=lead_id)


def _repoint_followers(session: Session, lead_id: int, into_id: int, actor: str) -> list[int]:
    """Point the leads merged into ``lead_id`` at ``into_id`` instead; their ids, each audited.

    No other merge can add a follower meanwhile: it would need ``lead_id``'s row lock, held here.
    """
    followers = list(session.scalars(select(Lead.id).where(Lead.merged_into_id == lead_id).order_by(Lead.id)))
    if not followers:
        return []
    # The default synchronisation updates any of them the session has loaded, too.
    session.execute(
        update(Lead).where(Lead.id.in_(followers)).values(merged_into_id=into_id, updated_at=utcnow())
    )
    for follower in followers:
        details = {"into": into_id, "previous_into": lead_id}
        _audit(session, follower, actor, Action.MERGE, None, None, "merge target was merged", details)
    return followers


def promoted_by(*, session: Session, lead_id: int) -> str | None:
    """Who verified and promoted the lead (from the audit trail)."""
    statement = (
        select(AuditEvent.actor)
        .where(AuditEvent.lead_id == lead_id, AuditEvent.action == Action.PROMOTE)
        .order_by(AuditEvent.id.desc())
        .limit(1)
    )
    return session.scalar(statement)


def confirm(*, session: Session, lead_id: int, actor: str) -> Ticket:
    """A second analyst confirms an urgent lead's ticket, releasing it to the pusher."""
    ticket = session.scalar(select(Ticket).where(Ticket.lead_id == lead_id))
    if ticket is None or ticket.state != TicketState.UNCONFIRMED:
        raise TransitionRefused(f"lead {lead_id} has no ticket awaiting confirmation")
    if promoted_by(session=session, lead_id=lead_id) == actor:
        raise TransitionRefused("the second confirmation must come from another analyst")
    statement = (
        update(Ticket)
        .where(Ticket.id == ticket.id, Ticket.state == TicketState.UNCONFIRMED)
        .values(state=TicketState.QUEUED, next_attempt_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if _rowcount(session, statement) != 1:
        raise TransitionRefused(f"lead {lead_id}'s ticket was confirmed meanwhile")
    _audit(session, lead_id, actor, Action.CONFIRM, None, None, details={"ticket_id": ticket.id})
    session.flush()
    session.refresh(ticket)
    return ticket


def add_note(*, session: Session, lead_id: int, actor: str, text: str) -> AuditEvent:
    """An analyst's free-text note on a lead, kept in the audit trail (bounded)."""
    get_or_raise(session=session, lead_id=lead_id)
    text = text.strip()
    if not text:
        raise WorkflowError("a note must not be empty")
    _require_storable(text)
    event = AuditEvent(
        lead_id=lead_id, actor=actor, action=Action.NOTE, details={"note": text[:MAX_NOTE_CHARS]}
    )
    session.add(event)
    session.flush()
    return event
