"""Server-rendered pages: login, the lead queue, a lead with its evidence and the decision forms."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from storage.models import LeadState, TicketState
from verify import review, workflow
from verify.users import authenticate
from verify.web.deps import SESSION_USER, CsrfChecked, DbSession, PageUser, csrf_token, get_settings
from verify.web.display import MAX_EVIDENCE_SHOWN

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 20


def render(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
    context = {"csrf_token": csrf_token(request), "flash": request.session.pop("flash", None), **context}
    templates = request.app.state.templates
    return templates.TemplateResponse(request, name, context, status_code=status_code)  # type: ignore[no-any-return]


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _local_path(target: str | None) -> str:
    # Only same-site paths: "//evil.example" or "https://…" would make login an open redirect.
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/leads"


@router.get("/")
def home() -> Response:
    return see_other("/leads")


@router.get("/login")
def login_form(request: Request, next: str = "/leads") -> Response:
    return render(request, "login.html", {"next": _local_path(next), "error": None})


@router.post("/login", dependencies=[CsrfChecked])
def login(
    request: Request,
    session: DbSession,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    next: Annotated[str, Form()] = "/leads",
) -> Response:
    user = authenticate(session, username, password)
    if user is None:
        context = {"next": _local_path(next), "error": "用户名或密码错误"}
        return render(request, "login.html", context, status_code=401)
    session.commit()  # a rehashed password, if argon2 parameters changed
    request.session.clear()  # a fresh session (and CSRF token) on every login
    request.session[SESSION_USER] = user.username
    return see_other(_local_path(next))


@router.post("/logout", dependencies=[CsrfChecked])
def logout(request: Request) -> Response:
    request.session.clear()
    return see_other("/login")


@router.get("/leads")
def leads_page(
    request: Request, session: DbSession, user: PageUser, state: str = "", page: int = 1
) -> Response:
    chosen = LeadState(state) if state in LeadState.__members__.values() else None
    criteria = review.LeadFilter(state=chosen, page=max(page, 1), page_size=PAGE_SIZE)
    leads, total = review.queue(session=session, criteria=criteria)
    pages = max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1)
    context = {"user": user, "leads": leads, "total": total, "page": criteria.page, "pages": pages}
    context.update(state=chosen.value if chosen else "", states=list(LeadState))
    return render(request, "leads.html", context)


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
