"""Server-rendered pages of one lead: its evidence, history and the decision forms."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from storage.models import LeadState, TicketState
from verify import review, workflow
from verify.web.deps import CsrfChecked, DbSession, PageUser, get_settings
from verify.web.display import MAX_EVIDENCE_SHOWN
from verify.web.pages import render, see_other

router = APIRouter(include_in_schema=False)


@router.get("/leads/{lead_id}")
def lead_page(request: Request, session: DbSession, user: PageUser, lead_id: int) -> Response:
    lead = workflow.get(session=session, lead_id=lead_id)
    if lead is None:
        return render(request, "not_found.html", {"user": user}, status_code=404)
    notice = None
    if lead.state in (LeadState.NEW, LeadState.CLAIMED):
        try:
            # Opening a lead claims it, so two analysts never work on the same one.
            lead = workflow.claim(
                session=session, lead_id=lead_id, actor=user.username, settings=get_settings(request)
            )
            session.commit()
        except workflow.WorkflowError:
            session.rollback()
            lead = workflow.get_or_raise(session=session, lead_id=lead_id)
            notice = f"此线索正由 {lead.claimed_by} 核实，只读显示。"
    context = {
        "user": user,
        "lead": lead,
        "notice": notice,
        "mine": lead.state == LeadState.CLAIMED and lead.claimed_by == user.username,
        "posts": review.evidence(session=session, lead_id=lead_id, limit=MAX_EVIDENCE_SHOWN),
        "ticket": review.ticket_of(session=session, lead_id=lead_id),
        "events": review.history(session=session, lead_id=lead_id),
        "reasons": workflow.REJECT_REASON_LABELS,
        "ticket_states": TicketState,
    }
    return render(request, "lead.html", context)


@router.post("/leads/{lead_id}/verify", dependencies=[CsrfChecked])
def verify_lead(
    request: Request,
    session: DbSession,
    user: PageUser,
    lead_id: int,
    category: Annotated[str, Form()] = "",
    district: Annotated[str, Form()] = "",
    summary: Annotated[str, Form(max_length=1000)] = "",
    responsible_unit: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    edits = {"category": category.strip(), "district": district.strip(), "summary": summary.strip()}
    edits["responsible_unit"] = responsible_unit.strip()
    try:
        ticket = workflow.verify_and_promote(
            session=session, lead_id=lead_id, actor=user.username, settings=get_settings(request), edits=edits
        )
        session.commit()
        request.session["flash"] = f"已核实并派单：工单 {ticket.idempotency_key} 已进入发送队列。"
    except workflow.WorkflowError as error:
        session.rollback()
        request.session["flash"] = f"操作未完成：{error}"
    return see_other(f"/leads/{lead_id}")


@router.post("/leads/{lead_id}/reject", dependencies=[CsrfChecked])
def reject_lead(
    request: Request,
    session: DbSession,
    user: PageUser,
    lead_id: int,
    reason: Annotated[str, Form()],
    note: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    try:
        workflow.reject(session=session, lead_id=lead_id, actor=user.username, reason=reason, note=note)
        session.commit()
        request.session["flash"] = f"线索 {lead_id} 已驳回。"
        return see_other("/leads")
    except workflow.WorkflowError as error:
        session.rollback()
        request.session["flash"] = f"操作未完成：{error}"
        return see_other(f"/leads/{lead_id}")


@router.post("/leads/{lead_id}/release", dependencies=[CsrfChecked])
def release_lead(request: Request, session: DbSession, user: PageUser, lead_id: int) -> Response:
    try:
        workflow.release(session=session, lead_id=lead_id, actor=user.username)
        session.commit()
        request.session["flash"] = f"线索 {lead_id} 已放回队列。"
    except workflow.WorkflowError as error:
        session.rollback()
        request.session["flash"] = f"操作未完成：{error}"
    return see_other("/leads")
