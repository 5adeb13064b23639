"""Server-rendered pages of one lead: evidence, similar leads, history, and every decision form."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request, status
from fastapi.responses import JSONResponse, Response
from sqlalchemy.orm import Session

from storage.base import utcnow
from storage.models import User
from storage.queries import decompressed
from storage.vocabulary import REJECT_REASON_LABELS, TICKET_STATE_LABELS, Action, LeadState, Role, TicketState
from verify import review, sla, workflow
from verify.users import has_role
from verify.web import display
from verify.web.deps import (
    MAX_ROW_ID,
    AnalystPage,
    DbSession,
    LeadId,
    PostId,
    get_settings,
)
from verify.web.display import MAX_EVIDENCE_SHOWN
from verify.web.pages import render, see_other

router = APIRouter(include_in_schema=False)


def _claim_on_open(request: Request, session: Session, user: User, lead_id: LeadId) -> str | None:
    """Opening an open lead claims it, so two analysts never work on the same one; a notice if taken."""
    try:
        workflow.claim(session=session, lead_id=lead_id, actor=user.username, settings=get_settings(request))
        session.commit()
        return None
    except workflow.WorkflowError:
        session.rollback()
        lead = workflow.get_or_raise(session=session, lead_id=lead_id)
        return f"此线索正由 {lead.claimed_by} 核实，只读显示。"


@router.get("/leads/{lead_id}")
def lead_page(
    request: Request, session: DbSession, user: AnalystPage, lead_id: LeadId, compare: bool = False
) -> Response:
    """Opening an open lead claims it, unless ``?compare=1``: a similar lead opened beside one's own
    work is only looked at, so it stays in the queue for whoever takes it."""
    lead = workflow.get(session=session, lead_id=lead_id)
    if lead is None:
        return render(request, "not_found.html", {"user": user}, status_code=404)
    notice = None
    claimable = lead.state in workflow.sources_of(Action.CLAIM)
    if claimable and not compare:
        notice = _claim_on_open(request, session, user, lead_id)
        lead = workflow.get_or_raise(session=session, lead_id=lead_id)
    ticket = review.ticket_of(session=session, lead_id=lead_id)
    awaiting = ticket is not None and ticket.state == TicketState.UNCONFIRMED
    promoter = workflow.promoted_by(session=session, lead_id=lead_id) if awaiting else None
    context = {
        "user": user,
        "lead": lead,
        "notice": notice,
        "compare": compare,
        "claimable": claimable and lead.claimed_by in (None, user.username),
        "mine": not compare and lead.state == LeadState.CLAIMED and lead.claimed_by == user.username,
        "supervisor": has_role(user, Role.SUPERVISOR),
        "posts": review.evidence(session=session, lead_id=lead_id, limit=MAX_EVIDENCE_SHOWN),
        "similar": review.similar(session=session, lead=lead),
        "ticket": ticket,
        "awaiting_confirmation": awaiting,
        "promoted_by": promoter,
        "can_confirm": awaiting and promoter != user.username,
        "events": review.history(session=session, lead_id=lead_id),
        "reasons": REJECT_REASON_LABELS,
        "clock": sla.sla_clocks(lead, get_settings(request).review),
        "now": utcnow(),
    }
    return render(request, "lead.html", context)


def _act(
    request: Request,
    session: Session,
    action: Callable[[], str],
    done: str,
    failed: str,
    refused: Callable[[workflow.WorkflowError], str],
) -> Response:
    """Run one decision: commit and flash its message, or roll back and say why; then redirect."""
    try:
        message = action()
        session.commit()
        request.session["flash"] = message
        return see_other(done)
    except workflow.WorkflowError as error:
        session.rollback()
        request.session["flash"] = refused(error)
        return see_other(failed)


def _refusal(
    session: Session, user: User, lead_id: int, verb: str, invalid: str
) -> Callable[[workflow.WorkflowError], str]:
    """Why a decision was refused, in Chinese: where the lead stands now (the workflow's own message is
    English, for logs and the API); ``invalid`` for input the workflow rejects whatever the state."""

    def explain(error: workflow.WorkflowError) -> str:
        if isinstance(error, workflow.LeadNotFound):
            return f"{verb}未完成：线索 #{lead_id} 不存在。"
        if isinstance(error, workflow.UnstorableInput):
            return f"{verb}未完成：{error}"
        if not isinstance(error, workflow.TransitionRefused):
            return f"{verb}未完成：{invalid}"
        lead = workflow.get_or_raise(session=session, lead_id=lead_id)
        return f"{verb}未完成：{display.standing(lead, user.username)}。"

    return explain


@router.post("/leads/{lead_id}/verify")
def verify_lead(
    request: Request,
    session: DbSession,
    user: AnalystPage,
    lead_id: LeadId,
    category: Annotated[str, Form(max_length=50)] = "",
    district: Annotated[str, Form(max_length=50)] = "",
    street: Annotated[str, Form(max_length=100)] = "",
    landmark: Annotated[str, Form(max_length=200)] = "",
    summary: Annotated[str, Form(max_length=1000)] = "",
    responsible_unit: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    fields = {"category": category, "district": district, "street": street, "landmark": landmark}
    fields.update(summary=summary, responsible_unit=responsible_unit)
    edits = {name: value.strip() for name, value in fields.items()}

    def action() -> str:
        ticket = workflow.verify_and_promote(
            session=session, lead_id=lead_id, actor=user.username, settings=get_settings(request), edits=edits
        )
        if ticket.state == TicketState.UNCONFIRMED:
            return f"已核实：加急工单 {ticket.idempotency_key} 等待第二位分析员确认后发送。"
        return f"已核实并派单：工单 {ticket.idempotency_key} 已进入发送队列。"

    here = f"/leads/{lead_id}"
    refused = _refusal(session, user, lead_id, "核实", "只能修改类别、地点、摘要和责任单位。")
    return _act(request, session, action, here, here, refused)


@router.post("/leads/{lead_id}/confirm")
def confirm_lead(request: Request, session: DbSession, user: AnalystPage, lead_id: LeadId) -> Response:
    def action() -> str:
        ticket = workflow.confirm(session=session, lead_id=lead_id, actor=user.username)
        return f"已确认：工单 {ticket.idempotency_key} 已进入发送队列。"

    def refused(_: workflow.WorkflowError) -> str:
        ticket = review.ticket_of(session=session, lead_id=lead_id)
        if ticket is None or ticket.state != TicketState.UNCONFIRMED:
            state = TICKET_STATE_LABELS[ticket.state] if ticket else "无工单"
            return f"确认未完成：线索 #{lead_id} 的工单当前为「{state}」，无需确认。"
        return "确认未完成：加急工单须由核实人以外的另一位分析员确认。"

    here = f"/leads/{lead_id}"
    return _act(request, session, action, here, here, refused)


@router.post("/leads/{lead_id}/reject")
def reject_lead(
    request: Request,
    session: DbSession,
    user: AnalystPage,
    lead_id: LeadId,
    reason: Annotated[str, Form(max_length=50)],
    note: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    def action() -> str:
        workflow.reject(session=session, lead_id=lead_id, actor=user.username, reason=reason, note=note)
        return f"线索 {lead_id} 已驳回。"

    refused = _refusal(session, user, lead_id, "驳回", "请从列表中选择驳回原因。")
    return _act(request, session, action, "/leads", f"/leads/{lead_id}", refused)


@router.post("/leads/{lead_id}/merge")
def merge_lead(
    request: Request,
    session: DbSession,
    user: AnalystPage,
    lead_id: LeadId,
    into: Annotated[int, Form(ge=1, le=MAX_ROW_ID)],
) -> Response:
    def action() -> str:
        workflow.merge(session=session, lead_id=lead_id, into_id=into, actor=user.username)
        return f"线索 {lead_id} 已合并到线索 {into}。"

    def refused(error: workflow.WorkflowError) -> str:
        if isinstance(error, workflow.MergeRefused):  # its message says in Chinese what to do instead
            return f"合并未完成：{error}"
        # The workflow refuses for the source's state or the target's: say where both stand.
        standings = []
        for n in dict.fromkeys((lead_id, into)):
            lead = workflow.get(session=session, lead_id=n)
            standings.append(display.standing(lead, user.username) if lead else f"线索 #{n} 不存在")
        return f"合并未完成：不能把线索 #{lead_id} 合并到线索 #{into}（{'；'.join(standings)}）。"

    return _act(request, session, action, f"/leads/{into}", f"/leads/{lead_id}", refused)


@router.post("/leads/{lead_id}/release")
def release_lead(request: Request, session: DbSession, user: AnalystPage, lead_id: LeadId) -> Response:
    def action() -> str:
        # A supervisor may take a lead back from whoever holds it (reassignment).
        override = has_role(user, Role.SUPERVISOR)
        workflow.release(session=session, lead_id=lead_id, actor=user.username, override=override)
        return f"线索 {lead_id} 已放回队列。"

    refused = _refusal(session, user, lead_id, "放回队列", "请刷新页面后重试。")
    return _act(request, session, action, "/leads", f"/leads/{lead_id}", refused)


@router.post("/leads/{lead_id}/note")
def note_lead(
    request: Request,
    session: DbSession,
    user: AnalystPage,
    lead_id: LeadId,
    text: Annotated[str, Form(max_length=workflow.MAX_NOTE_CHARS)],
) -> Response:
    def action() -> str:
        workflow.add_note(session=session, lead_id=lead_id, actor=user.username, text=text)
        return "备注已保存。"

    here = f"/leads/{lead_id}"
    refused = _refusal(session, user, lead_id, "备注", "备注不能为空。")
    return _act(request, session, action, here, here, refused)


@router.post("/leads/{lead_id}/renew")
def renew_claim(request: Request, session: DbSession, user: AnalystPage, lead_id: LeadId) -> Response:
    """The lead page's heartbeat (static/lead.js): keep the analyst's lease while they work."""
    try:
        settings = get_settings(request)
        lead = workflow.renew(session=session, lead_id=lead_id, actor=user.username, settings=settings)
        session.commit()
    except workflow.WorkflowError as error:
        session.rollback()
        return JSONResponse({"held": False, "detail": str(error)}, status_code=status.HTTP_409_CONFLICT)
    expires = lead.claim_expires_at.isoformat() if lead.claim_expires_at else None
    return JSONResponse({"held": True, "claim_expires_at": expires})


@router.get("/leads/{lead_id}/posts/{post_id}/raw")
def raw_evidence(session: DbSession, user: AnalystPage, lead_id: LeadId, post_id: PostId) -> Response:
    """The platform's response behind an evidence post, masked as posts are, as a download — never
    rendered as a page. X-Weisu-SHA256 is of the bytes sent; X-Weisu-Original-SHA256 of the body as
    the platform served it, which proves an original copy (the platform's, an archive's) genuine."""
    raw = review.raw_evidence(session=session, lead_id=lead_id, post_id=post_id)
    if raw is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no raw response kept for this post")
    body = decompressed(raw)
    headers = {
        "Content-Disposition": f'attachment; filename="weisu-post-{post_id}-{raw.sha256[:12]}.raw"',
        "X-Weisu-SHA256": hashlib.sha256(body).hexdigest(),
        "X-Weisu-Original-SHA256": raw.sha256,
        "X-Weisu-Fetched-At": raw.fetched_at.isoformat(),
        "X-Weisu-Source-Status": str(raw.status),
    }
    # application/octet-stream + attachment + nosniff: hostile HTML in the body cannot run on our origin.
    return Response(body, media_type="application/octet-stream", headers=headers)
