"""The JSON API under /api/v1: the same service functions as the pages, for machine clients."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field

from storage.models import LeadState, Priority, TicketState
from verify import review, workflow
from verify.web.deps import ApiUser, DbSession, get_settings
from verify.web.display import MAX_EVIDENCE_SHOWN, MAX_POST_CHARS, bounded

router = APIRouter(prefix="/api/v1", tags=["review"])


class LeadOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    state: LeadState
    priority: Priority
    category: str | None
    district: str | None
    street: str | None
    landmark: str | None
    summary: str
    score: float
    evidence_count: int
    sla_due_at: datetime | None
    claimed_by: str | None
    claim_expires_at: datetime | None
    responsible_unit: str | None


class EvidenceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    platform_id: str
    url: str
    author_key: str | None
    published_at: datetime | None
    title: str | None
    text: str


class LeadDetail(LeadOut):
    urgency_reason: str | None
    top_terms: list[Any]
    evidence: list[EvidenceOut]


class LeadPage(BaseModel):
    items: list[LeadOut]
    total: int
    page: int
    page_size: int


class TicketOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    lead_id: int
    idempotency_key: str
    state: TicketState
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    service_request_id: str | None
    payload: dict[str, Any]


class VerifyIn(BaseModel):
    category: str | None = Field(default=None, max_length=50)
    district: str | None = Field(default=None, max_length=50)
    summary: str | None = Field(default=None, max_length=1000)
    responsible_unit: str | None = Field(default=None, max_length=200)


class RejectIn(BaseModel):
    reason: workflow.RejectReason
    note: str = Field(default="", max_length=500)


def _refused(error: workflow.WorkflowError) -> HTTPException:
    code = status.HTTP_404_NOT_FOUND if isinstance(error, workflow.LeadNotFound) else status.HTTP_409_CONFLICT
    return HTTPException(code, str(error))


@router.get("/leads", response_model=LeadPage)
def list_leads(
    session: DbSession,
    _: ApiUser,
    state: LeadState | None = None,
    page: Annotated[int, Query(ge=1)] = 1,
    page_size: Annotated[int, Query(ge=1, le=review.MAX_PAGE_SIZE)] = 20,
) -> LeadPage:
    criteria = review.LeadFilter(state=state, page=page, page_size=page_size)
    leads, total = review.queue(session=session, criteria=criteria)
    items = [LeadOut.model_validate(lead) for lead in leads]
    return LeadPage(items=items, total=total, page=page, page_size=page_size)


@router.get("/leads/{lead_id}", response_model=LeadDetail)
def get_lead(session: DbSession, _: ApiUser, lead_id: int) -> LeadDetail:
    try:
        lead = workflow.get_or_raise(session=session, lead_id=lead_id)
    except workflow.WorkflowError as error:
        raise _refused(error) from None
    posts = review.evidence(session=session, lead_id=lead_id, limit=MAX_EVIDENCE_SHOWN)
    evidence = [
        EvidenceOut.model_validate(post).model_copy(update={"text": bounded(post.text, MAX_POST_CHARS)})
        for post in posts
    ]
    base = LeadOut.model_validate(lead).model_dump()
    return LeadDetail(**base, urgency_reason=lead.urgency_reason, top_terms=lead.top_terms, evidence=evidence)


@router.post("/leads/{lead_id}/claim", response_model=LeadOut)
def claim_lead(request: Request, session: DbSession, user: ApiUser, lead_id: int) -> LeadOut:
    try:
        lead = workflow.claim(
            session=session, lead_id=lead_id, actor=user.username, settings=get_settings(request)
        )
        session.commit()
    except workflow.WorkflowError as error:
        raise _refused(error) from None
    return LeadOut.model_validate(lead)


@router.post("/leads/{lead_id}/release", response_model=LeadOut)
def release_lead(session: DbSession, user: ApiUser, lead_id: int) -> LeadOut:
    try:
        lead = workflow.release(session=session, lead_id=lead_id, actor=user.username)
        session.commit()
    except workflow.WorkflowError as error:
        raise _refused(error) from None
    return LeadOut.model_validate(lead)


@router.post("/leads/{lead_id}/verify", response_model=TicketOut, status_code=status.HTTP_201_CREATED)
def verify_lead(
    request: Request, session: DbSession, user: ApiUser, lead_id: int, body: VerifyIn | None = None
) -> TicketOut:
    """Verify a lead you hold and promote it: its ticket is queued for the dispatch system."""
    edits = body.model_dump(exclude_none=True) if body else {}
    try:
        ticket = workflow.verify_and_promote(
            session=session, lead_id=lead_id, actor=user.username, settings=get_settings(request), edits=edits
        )
        session.commit()
    except workflow.WorkflowError as error:
        raise _refused(error) from None
    return TicketOut.model_validate(ticket)


@router.post("/leads/{lead_id}/reject", response_model=LeadOut)
def reject_lead(session: DbSession, user: ApiUser, lead_id: int, body: RejectIn) -> LeadOut:
    try:
        lead = workflow.reject(
            session=session, lead_id=lead_id, actor=user.username, reason=body.reason, note=body.note
        )
        session.commit()
    except workflow.WorkflowError as error:
        raise _refused(error) from None
    return LeadOut.model_validate(lead)


@router.get("/tickets", response_model=list[TicketOut])
def list_tickets(
    session: DbSession,
    _: ApiUser,
    state: TicketState | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[TicketOut]:
    return [TicketOut.model_validate(t) for t in review.tickets(session=session, state=state, limit=limit)]
