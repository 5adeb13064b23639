"""Admin pages: the responsibility list (职责清单) and the dispatch tickets (failed, queued, open, closed)."""

from __future__ import annotations

import io
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request, UploadFile, status
from fastapi.responses import Response

from storage.models import ResponsibilityRule, Ticket
from storage.vocabulary import TICKET_STATE_LABELS, Role
from verify import responsibility, tickets
from verify.sync import first_dispatch_accuracy
from verify.users import has_role
from verify.web.deps import AdminPage, AnalystPage, DbSession, SupervisorPage, get_settings
from verify.web.pages import render, see_other

router = APIRouter(include_in_schema=False)

VIEW_LABELS = {
    "failed": "推送失败",
    "unconfirmed": "待二次确认",
    "queued": "待推送",
    "open": "办理中",
    "closed": "已办结",
}
#: An uploaded responsibility list is a few hundred rows; a megabyte is far beyond any real one.
MAX_UPLOAD_BYTES = 1_000_000
RULES_PAGE = "/admin/responsibility"


def opening_view(counts: dict[str, int]) -> str:
    """The tab /tickets opens on: the first one with tickets in VIEW_LABELS' order (failed first, as they
    need action), or the failed tab when there are none at all."""
    return next((view for view in VIEW_LABELS if counts.get(view)), "failed")


@router.get("/tickets")
def tickets_page(
    request: Request, session: DbSession, user: AnalystPage, view: str | None = None
) -> Response:
    """Everyone may look; re-push buttons are shown to supervisors and admins only. A tab asked for
    by name opens even when empty; otherwise the first tab that has tickets."""
    counts = tickets.view_counts(session)
    if view not in tickets.TICKET_VIEWS:
        view = opening_view(counts)
    context = {
        "user": user,
        "view": view,
        "views": VIEW_LABELS,
        "counts": counts,
        "rows": tickets.list_tickets(session=session, view=view),
        "accuracy": first_dispatch_accuracy(session),
        "can_repush": has_role(user, Role.SUPERVISOR),
    }
    return render(request, "tickets.html", context)


@router.post("/tickets/{ticket_id}/requeue")
def requeue(request: Request, session: DbSession, user: SupervisorPage, ticket_id: int) -> Response:
    try:
        tickets.requeue_failed(
            session=session, ticket_id=ticket_id, actor=user.username, settings=get_settings(request)
        )
    except tickets.TicketError:
        session.rollback()
        # The TicketError's text is English (logs, CLI); the page says where the ticket stands.
        ticket = session.get(Ticket, ticket_id)
        where = f"当前为「{TICKET_STATE_LABELS[ticket.state]}」" if ticket else "不存在"
        flash = f"无法重新推送：工单 #{ticket_id} {where}，只有推送失败的工单可以重新推送。"
        request.session["flash"] = flash
        return see_other("/tickets?view=failed")
    session.commit()
    request.session["flash"] = f"工单 #{ticket_id} 已重新排队，下一次推送时发送"
    return see_other("/tickets?view=queued")


def _rules_page(
    request: Request, session: DbSession, user: AdminPage, *, error: str | None = None, status_code: int = 200
) -> Response:
    context = {"user": user, "rules": responsibility.list_rules(session), "error": error}
    return render(request, "admin_responsibility.html", context, status_code=status_code)


@router.get(RULES_PAGE)
def rules_page(request: Request, session: DbSession, user: AdminPage) -> Response:
    return _rules_page(request, session, user)


def _row(category: str, unit: str, district: str, street: str, note: str) -> responsibility.RuleRow:
    values = {"category": category, "unit": unit, "district": district, "street": street, "note": note}
    return responsibility.clean_row(values)


@router.post(RULES_PAGE)
def add_rule(
    request: Request,
    session: DbSession,
    user: AdminPage,
    category: Annotated[str, Form()] = "",
    unit: Annotated[str, Form()] = "",
    district: Annotated[str, Form()] = "",
    street: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
) -> Response:
    try:
        responsibility.create(
            session=session, row=_row(category, unit, district, street, note), actor=user.username
        )
    except responsibility.ResponsibilityError as error:
        session.rollback()
        return _rules_page(request, session, user, error=str(error), status_code=400)
    session.commit()
    request.session["flash"] = f"已添加：{category} → {unit.strip()}"
    return see_other(RULES_PAGE)


@router.get(f"{RULES_PAGE}/{{rule_id}}/edit")
def edit_rule_form(request: Request, session: DbSession, user: AdminPage, rule_id: int) -> Response:
    rule = _rule_or_404(session, rule_id)
    return render(request, "admin_responsibility_edit.html", {"user": user, "rule": rule, "error": None})


def _rule_or_404(session: DbSession, rule_id: int) -> ResponsibilityRule:
    try:
        return responsibility.get_or_raise(session=session, rule_id=rule_id)
    except responsibility.ResponsibilityError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such rule") from None


@router.post(f"{RULES_PAGE}/{{rule_id}}/edit")
def edit_rule(
    request: Request,
    session: DbSession,
    user: AdminPage,
    rule_id: int,
    category: Annotated[str, Form()] = "",
    unit: Annotated[str, Form()] = "",
    district: Annotated[str, Form()] = "",
    street: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
) -> Response:
    _rule_or_404(session, rule_id)
    try:
        row = _row(category, unit, district, street, note)
        responsibility.update(session=session, rule_id=rule_id, row=row, actor=user.username)
    except responsibility.ResponsibilityError as error:
        session.rollback()
        context = {"user": user, "rule": _rule_or_404(session, rule_id), "error": str(error)}
        return render(request, "admin_responsibility_edit.html", context, status_code=400)
    session.commit()
    request.session["flash"] = f"已修改：{row.category} → {row.unit}"
    return see_other(RULES_PAGE)


@router.post(f"{RULES_PAGE}/{{rule_id}}/delete")
def delete_rule(request: Request, session: DbSession, user: AdminPage, rule_id: int) -> Response:
    rule = _rule_or_404(session, rule_id)
    label = f"{rule.category} → {rule.unit}"
    responsibility.remove(session=session, rule_id=rule_id)
    session.commit()
    request.session["flash"] = f"已删除：{label}"
    return see_other(RULES_PAGE)


@router.get(f"{RULES_PAGE}.csv")
def export_rules(session: DbSession, user: AdminPage) -> Response:
    body = responsibility.export_csv(session).encode("utf-8-sig")  # BOM: Excel then reads UTF-8
    headers = {"Content-Disposition": 'attachment; filename="responsibility.csv"'}
    return Response(body, media_type="text/csv; charset=utf-8", headers=headers)


@router.post(f"{RULES_PAGE}/import")
async def import_rules(
    request: Request,
    session: DbSession,
    user: AdminPage,
    file: UploadFile,
    replace: Annotated[bool, Form()] = False,
) -> Response:
    """Upsert the uploaded rows; with ``replace`` rows missing from the file are deleted. All or nothing."""
    data = await file.read(MAX_UPLOAD_BYTES + 1)
    try:
        if len(data) > MAX_UPLOAD_BYTES:
            raise responsibility.ResponsibilityError(f"file larger than {MAX_UPLOAD_BYTES} bytes")
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise responsibility.ResponsibilityError("file is not UTF-8 text") from None
        rows = responsibility.read_csv(io.StringIO(text, newline=""))
        summary = responsibility.import_rows(session=session, rows=rows, actor=user.username, replace=replace)
    except responsibility.ResponsibilityError as error:
        session.rollback()
        return _rules_page(request, session, user, error=f"导入失败：{error}", status_code=400)
    session.commit()
    request.session["flash"] = f"导入完成：{summary.summary()}"
    return see_other(RULES_PAGE)
