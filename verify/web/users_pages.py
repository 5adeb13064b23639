"""Admin page of accounts: list every user, add an analyst, supervisor or admin."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from storage.models import Role, User
from verify import users
from verify.web.deps import AdminPage, CsrfChecked, DbSession
from verify.web.pages import render, see_other

router = APIRouter(include_in_schema=False)
ROLE_LABELS = {Role.ANALYST: "分析员", Role.SUPERVISOR: "主管", Role.ADMIN: "管理员"}


def _page(request: Request, session: Session, user: User, error: str | None, status_code: int) -> Response:
    context = {
        "user": user,
        "accounts": users.list_users(session=session),
        "roles": ROLE_LABELS,
        "error": error,
    }
    return render(request, "users.html", context, status_code=status_code)


@router.get("/admin/users")
def users_page(request: Request, session: DbSession, user: AdminPage) -> Response:
    return _page(request, session, user, None, 200)


@router.post("/admin/users", dependencies=[CsrfChecked])
def add_user(
    request: Request,
    session: DbSession,
    user: AdminPage,
    username: Annotated[str, Form(max_length=100)],
    password: Annotated[str, Form(min_length=8, max_length=200)],
    role: Annotated[Role, Form()] = Role.ANALYST,
) -> Response:
    try:
        created = users.create_user(session, username, password, role)
    except users.UserError as error:
        session.rollback()
        return _page(request, session, user, f"未能创建账号：{error}", 400)
    session.commit()
    request.session["flash"] = f"已创建{ROLE_LABELS[created.role]} {created.username}。"
    return see_other("/admin/users")
