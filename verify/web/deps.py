"""Request dependencies: a database session per request, the signed-in user at a role level, the CSRF check.

Every page and endpoint takes exactly one of the role-level user dependencies below (``AnalystPage`` …
``AdminApi``); no route checks roles by hand. CSRF has one mechanism: a synchronizer token kept in the
signed session, checked by ``require_csrf``, which the app applies to every request (verify.web.app).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from settings import Settings
from storage.models import User
from storage.vocabulary import Role
from verify.users import has_role, user_for_token
from verify.web import sessions

SESSION_CSRF = "csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
#: Methods that change nothing (RFC 9110 safe methods): the only ones sent without the token.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")

bearer_auth = HTTPBearer(auto_error=False, description="an API token from `weisu users token NAME`")


ROLE_ATTRIBUTE = "minimum_role"


class LoginRequired(Exception):
    """A page asked for by someone not signed in; answered with a redirect to /login."""


class PageForbidden(Exception):
    """A page asked for by a signed-in user whose role is too low; answered with a 403 page."""


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


def _matches(request: Request, supplied: str | None) -> bool:
    expected = request.session.get(SESSION_CSRF)
    return bool(expected and supplied) and hmac.compare_digest(str(expected), str(supplied))


async def require_csrf(request: Request) -> None:
    """The one CSRF check: a state-changing request carries the session's token, in the X-CSRF-Token
    header (the lead page's script, API calls with the browser session) or the csrf_token field (forms).

    A request that brings a bearer token is not checked: a cross-site page cannot add an Authorization
    header (no CORS is served), so it is no forgery, and the API then signs in by the token alone.
    Refused with 403.
    """
    bearer = request.headers.get("authorization", "").lower().startswith("bearer ")
    if request.method in SAFE_METHODS or bearer:
        return
    supplied = request.headers.get(CSRF_HEADER)
    if supplied is None and request.headers.get("content-type", "").startswith(FORM_TYPES):
        field = (await request.form()).get(CSRF_FIELD)
        supplied = field if isinstance(field, str) else None
    if not _matches(request, supplied):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "CSRF token missing or wrong")


def session_user(request: Request, session: Session) -> User | None:
    """The signed-in account, checked on the server (see ``sessions``); None when there is none."""
    return sessions.current_user(request, session, get_settings(request).review)


def page_user_at_least(minimum: Role) -> Callable[..., User]:
    """A page dependency: the signed-in user when their role reaches ``minimum``."""

    def dependency(request: Request, session: DbSession) -> User:
        user = session_user(request, session)
        if user is None:
            raise LoginRequired
        if not has_role(user, minimum):
            raise PageForbidden
        return user

    return _marked(dependency, minimum)


def api_user_at_least(minimum: Role) -> Callable[..., User]:
    """An API dependency: a bearer token's user, or the browser session (its writes pass require_csrf)."""

    def dependency(
        request: Request,
        session: DbSession,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_auth)],
    ) -> User:
        if credentials is not None:
            user = user_for_token(session, credentials.credentials)
            if user is None:
                raise _unauthorized("unknown or revoked API token")
            session.commit()  # the token's last_used_at
        else:
            user = session_user(request, session)
            if user is None:
                raise _unauthorized("not signed in")
        if not has_role(user, minimum):
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"needs the {minimum.value} role")
        return user

    return _marked(dependency, minimum)


def _marked(dependency: Callable[..., User], minimum: Role) -> Callable[..., User]:
    # The role a route needs stays readable on its dependency, so tests can check every route.
    setattr(dependency, ROLE_ATTRIBUTE, minimum)
    return dependency


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": 'Bearer realm="weisu"'}
    )


AnalystPage = Annotated[User, Depends(page_user_at_least(Role.ANALYST))]
SupervisorPage = Annotated[User, Depends(page_user_at_least(Role.SUPERVISOR))]
AdminPage = Annotated[User, Depends(page_user_at_least(Role.ADMIN))]
AnalystApi = Annotated[User, Depends(api_user_at_least(Role.ANALYST))]
SupervisorApi = Annotated[User, Depends(api_user_at_least(Role.SUPERVISOR))]
AdminApi = Annotated[User, Depends(api_user_at_least(Role.ADMIN))]
#: Applied to the whole app (verify.web.app): no route can forget it.
CsrfChecked = Depends(require_csrf)
#: Row ids fit a 32-bit signed integer on every database; a larger one is a 422, never a driver error.
MAX_ROW_ID = 2**31 - 1
LeadId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]
PostId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]
