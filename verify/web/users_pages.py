"""Admin page of accounts: list, add (analyst, supervisor or admin), set a new password, deactivate and
reactivate users."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from storage.models import User
from storage.vocabulary import ROLE_LABELS, Role
from verify import users
from verify.web.deps import AdminPage, DbSession
from verify.web.pages import render, see_other

router = APIRouter(include_in_schema=False)


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


@router.post("/admin/users")
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


@router.post("/admin/users/{username}/deactivate")
def deactivate_user(request: Request, session: DbSession, user: AdminPage, username: str) -> Response:
    """A departed colleague: no more sign-in, their sessions ended and every API token revoked at once."""
    account = users.get_by_username(session=session, username=username)
    if account is None or account.username == user.username:
        request.session["flash"] = "不能停用该账号（不存在，或是你自己）。"
        return see_other("/admin/users")
    revoked = users.deactivate(session, account.username)
    session.commit()
    request.session["flash"] = f"已停用 {account.username}，吊销接口令牌 {revoked} 个。"
    return see_other("/admin/users")


@router.post("/admin/users/{username}/password")
def set_password(
    request: Request,
    session: DbSession,
    user: AdminPage,
    username: str,
    password: Annotated[str, Form(min_length=8, max_length=200)],
) -> Response:
    """A new password (a forgotten or leaked one); every session of the account ends at once."""
    try:
        account = users.set_password(session, username, password)
    except users.UserError:
        request.session["flash"] = "没有这个账号。"
        return see_other("/admin/users")
    session.commit()
    if account.id == user.id:  # the admin's own sessions ended too, this one included
        request.session.clear()
        return see_other("/login")
    request.session["flash"] = f"已为 {account.username} 设置新密码，并登出其所有会话。"
    return see_other("/admin/users")


@router.post("/admin/users/{username}/activate")
def activate_user(request: Request, session: DbSession, user: AdminPage, username: str) -> Response:
    account = users.get_by_username(session=session, username=username)
    if account is None:
        request.session["flash"] = "没有这个账号。"
        return see_other("/admin/users")
    account.active = True
    session.commit()
    request.session["flash"] = f"已启用 {account.username}。"
    return see_other("/admin/users")
