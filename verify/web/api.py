"""The JSON API under /api/v1: the same service functions as the pages, for machine clients."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from storage.vocabulary import LeadState, Priority, RejectReason, RequestType, Role, TicketState
from verify import review, workflow
from verify.days import local_zone
from verify.export_terms import FileFormat
from verify.inputs import StorableStr
from verify.review import LeadFilter
from verify.users import has_role
from verify.web import exports
from verify.web.deps import MAX_ROW_ID, AnalystApi, DbSession, LeadId, get_settings
from verify.web.display import MAX_EVIDENCE_SHOWN, MAX_POST_CHARS, bounded

router = APIRouter(prefix="/api/v1", tags=["review"])
openapi_router = APIRouter(include_in_schema=False)


class LeadOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    state: LeadState
    priority: Priority
    request_type: RequestType
    request_type_probability: float | None
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
    counts: dict[LeadState, int]
    sla_breaches: int


class TicketOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    lead_id: LeadId
    idempotency_key: str
    state: TicketState
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    service_request_id: str | None
    payload: dict[str, Any]


class VerifyIn(BaseModel):
    category: StorableStr | None = Field(default=None, max_length=50)
    district: StorableStr | None = Field(default=None, max_length=50)
    street: StorableStr | None = Field(default=None, max_length=100)
    landmark: StorableStr | None = Field(default=None, max_length=200)
    summary: StorableStr | None = Field(default=None, max_length=1000)
    responsible_unit: StorableStr | None = Field(default=None, max_length=200)


class RejectIn(BaseModel):
    reason: RejectReason
    note: StorableStr = Field(default="", max_length=500)


class MergeIn(BaseModel):
    into: int = Field(ge=1, le=MAX_ROW_ID, description="the lead this one is the same problem as")


class NoteIn(BaseModel):
    text: StorableStr = Field(min_length=1, max_length=workflow.MAX_NOTE_CHARS)


class NoteOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    lead_id: LeadId | None
    actor: str
    at: datetime


def _refused(error: workflow.WorkflowError) -> HTTPException:
    code = status.HTTP_404_NOT_FOUND if isinstance(error, workflow.LeadNotFound) else status.HTTP_409_CONFLICT
    return HTTPException(code, str(error))


#: The queue filter as query parameters: the same validated model the queue page and exports read.
Filter = Annotated[LeadFilter, Query()]


@router.get("/leads", response_model=LeadPage)
def list_leads(request: Request, session: DbSession, _: AnalystApi, criteria: Filter) -> LeadPage:
    """One page of the queue with the same filters and sorting as the queue page, counts per state."""
    zone = local_zone(get_settings(request))
    summary = review.summarise(session=session, criteria=criteria, zone=zone)
    leads = review.page(session=session, criteria=criteria, zone=zone, summary=summary)
    return LeadPage(
        items=[LeadOut.model_validate(lead) for lead in leads],
        total=summary.total,
        page=criteria.page,
        page_size=criteria.page_size,
        counts=summary.counts,
        sla_breaches=summary.breaches,
    )


@router.get("/leads/{lead_id}", response_model=LeadDetail)
def get_lead(session: DbSession, _: AnalystApi, lead_id: LeadId) -> LeadDetail:
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
def claim_lead(request: Request, session: DbSession, user: AnalystApi, lead_id: LeadId) -> LeadOut:
    try:
        lead = workflow.claim(
            session=session, lead_id=lead_id, actor=user.username, settings=get_settings(request)
        )
        session.commit()
    except workflow.WorkflowError as error:
        raise _refused(error) from None
    return LeadOut.model_validate(lead)


@router.post("/leads/{lead_id}/release", response_model=LeadOut)
def release_lead(session: DbSession, user: AnalystApi, lead_id: LeadId) -> LeadOut:
    """Give a lead you hold back to the queue; a supervisor may take it from whoever holds it."""
    override = has_role(user, Role.SUPERVISOR)
    try:
        lead = workflow.release(session=session, lead_id=lead_id, actor=user.username, override=override)
        session.commit()
    except workflow.WorkflowError as error:
        raise _refused(error) from None
    return LeadOut.model_validate(lead)


@router.post("/leads/{lead_id}/verify", response_model=TicketOut, status_code=status.HTTP_201_CREATED)
def verify_lead(
    request: Request, session: DbSession, user: AnalystApi, lead_id: LeadId, body: VerifyIn | None = None
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
def reject_lead(session: DbSession, user: AnalystApi, lead_id: LeadId, body: RejectIn) -> LeadOut:
    try:
        lead = workflow.reject(
            session=session, lead_id=lead_id, actor=user.username, reason=body.reason, note=body.note
        )
        session.commit()
    except workflow.WorkflowError as error:
        raise _refused(error) from None
    return LeadOut.model_validate(lead)


@router.post("/leads/{lead_id}/merge", response_model=LeadOut)
def merge_lead(session: DbSession, user: AnalystApi, lead_id: LeadId, body: MergeIn) -> LeadOut:
    """Mark a lead you hold as the same problem as another lead."""
    try:
        lead = workflow.merge(session=session, lead_id=lead_id, into_id=body.into, actor=user.username)
        session.commit()
    except workflow.WorkflowError as error:
        raise _refused(error) from None
    return LeadOut.model_validate(lead)


@router.post("/leads/{lead_id}/confirm", response_model=TicketOut)
def confirm_lead(session: DbSession, user: AnalystApi, lead_id: LeadId) -> TicketOut:
    """Second confirmation of an urgent lead's ticket (by someone other than who verified it)."""
    try:
        ticket = workflow.confirm(session=session, lead_id=lead_id, actor=user.username)
        session.commit()
    except workflow.WorkflowError as error:
        raise _refused(error) from None
    return TicketOut.model_validate(ticket)


@router.post("/leads/{lead_id}/notes", response_model=NoteOut, status_code=status.HTTP_201_CREATED)
def add_note(session: DbSession, user: AnalystApi, lead_id: LeadId, body: NoteIn) -> NoteOut:
    try:
        event = workflow.add_note(session=session, lead_id=lead_id, actor=user.username, text=body.text)
        session.commit()
    except workflow.WorkflowError as error:
        raise _refused(error) from None
    return NoteOut.model_validate(event)


@router.get(
    "/exports/{what}.{fmt}",
    response_class=Response,
    responses={200: {"content": {m: {} for m in exports.MEDIA_TYPES.values()}}},
)
def export(
    request: Request,
    session: DbSession,
    _: AnalystApi,
    what: exports.ExportWhat,
    fmt: FileFormat,
    criteria: Filter,
) -> Response:
    """Leads (under the queue filter, every page of it) or verified cases, as CSV, XLSX or Parquet."""
    return exports.download(session, what.value, fmt, criteria, local_zone(get_settings(request)))


@router.get("/tickets", response_model=list[TicketOut])
def list_tickets(
    session: DbSession,
    _: AnalystApi,
    state: TicketState | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[TicketOut]:
    return [TicketOut.model_validate(t) for t in review.tickets(session=session, state=state, limit=limit)]


@openapi_router.get("/openapi.json")
def openapi_document(request: Request, _: AnalystApi) -> JSONResponse:
    """The OpenAPI document, for signed-in users and token holders only."""
    return JSONResponse(request.app.openapi())
