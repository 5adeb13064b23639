"""Request dependencies: a database session per request, the signed-in user, and CSRF checks."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from sqlalchemy.orm import Session

from settings import Settings
from storage.models import User
from verify.users import authenticate, get_by_username

SESSION_USER = "user"
SESSION_CSRF = "csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"

basic_auth = HTTPBasic(auto_error=False, description="weisu account name and password")


class LoginRequired(Exception):
    """A page asked for by someone not signed in; answered with a redirect to /login."""


def get_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def get_db(request: Request) -> Iterator[Session]:
    """One session per request; routes that write commit explicitly before answering."""
    session = request.app.state.session_factory()
    try:
        yield session
    finally:
        session.rollback()
        session.close()


DbSession = Annotated[Session, Depends(get_db)]


def csrf_token(request: Request) -> str:
    """The session's CSRF token, created on first use."""
    token = request.session.get(SESSION_CSRF)
    if not token:
        token = secrets.token_urlsafe(32)
        request.session[SESSION_CSRF] = token
    return str(token)


def csrf_matches(request: Request, supplied: str | None) -> bool:
    expected = request.session.get(SESSION_CSRF)
    return bool(expected and supplied) and hmac.compare_digest(str(expected), str(supplied))


async def require_csrf_form(request: Request) -> None:
    form = await request.form()
    supplied = form.get(CSRF_FIELD)
    if not csrf_matches(request, supplied if isinstance(supplied, str) else None):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "CSRF token missing or wrong")


def session_user(request: Request, session: Session) -> User | None:
    name = request.session.get(SESSION_USER)
    if not name:
        return None
    user = get_by_username(session=session, username=str(name))
    return user if user is not None and user.active else None


def page_user(request: Request, session: DbSession) -> User:
    user = session_user(request, session)
    if user is None:
        raise LoginRequired
    return user


def api_user(
    request: Request,
    session: DbSession,
    credentials: Annotated[HTTPBasicCredentials | None, Depends(basic_auth)],
) -> User:
    """HTTP Basic for machine clients, or the browser session (unsafe methods then need X-CSRF-Token)."""
    if credentials is not None:
        user = authenticate(session, credentials.username, credentials.password)
        if user is None:
            raise _unauthorized("wrong name or password")
        return user
    user = session_user(request, session)
    if user is None:
        raise _unauthorized("not signed in")
    if request.method not in ("GET", "HEAD", "OPTIONS") and not csrf_matches(
        request, request.headers.get(CSRF_HEADER)
    ):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"{CSRF_HEADER} header missing or wrong")
    return user


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": 'Basic realm="weisu"'}
    )


PageUser = Annotated[User, Depends(page_user)]
ApiUser = Annotated[User, Depends(api_user)]
CsrfChecked = Depends(require_csrf_form)
