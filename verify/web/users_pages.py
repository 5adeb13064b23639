"""Admin page of accounts: list, add (analyst, supervisor or admin), deactivate and reactivate users."""

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
        "password_min": users.PASSWORD_MIN_LENGTH,
        "password_max": users.PASSWORD_MAX_LENGTH,
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
    password: Annotated[str, Form()],
    role: Annotated[Role, Form()] = Role.ANALYST,
) -> Response:
    try:
        users.check_new_password(password)
        created = users.create_user(session, username, password, role)
    except users.UserError as error:
        session.rollback()
        return _page(request, session, user, f"未能创建账号：{error}", 400)
    session.commit()
    request.session["flash"] = f"已创建{ROLE_LABELS[created.role]} {created.username}。"
    return see_other("/admin/users")


@router.post("/admin/users/{username}/deactivate", dependencies=[CsrfChecked])
def deactivate_user(request: Request, session: DbSession, user: AdminPage, username: str) -> Response:
    """A departed colleague: no more sign-in, and every API token of theirs revoked at once."""
    account = users.get_by_username(session=session, username=username)
    if account is None or account.username == user.username:
        request.session["flash"] = "不能停用该账号（不存在，或是你自己）。"
        return see_other("/admin/users")
    account.active = False
    revoked = users.revoke_tokens(session, account.username)
    session.commit()
    request.session["flash"] = f"已停用 {account.username}，吊销接口令牌 {revoked} 个。"
    return see_other("/admin/users")


@router.post("/admin/users/{username}/activate", dependencies=[CsrfChecked])
def activate_user(request: Request, session: DbSession, user: AdminPage, username: str) -> Response:
    account = users.get_by_username(session=session, username=username)
    if account is None:
        request.session["flash"] = "没有这个账号。"
        return see_other("/admin/users")
    account.active = True
    session.commit()
    request.session["flash"] = f"已启用 {account.username}。"
    return see_other("/admin/users")
