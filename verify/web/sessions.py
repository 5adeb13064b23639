"""Browser sessions checked on the server: the signed cookie names an account, its session version and
when it was issued and last used; any of them out of date ends the session."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from fastapi import Request
from sqlalchemy.orm import Session

from settings import ReviewSettings
from storage.models import User

SESSION_USER = "uid"
SESSION_VERSION = "ver"
SESSION_ISSUED = "iat"
SESSION_SEEN = "seen"

Clock = Callable[[], datetime]


def clock(request: Request) -> Clock:
    """The app's clock (``app.state.clock``): tests set their own to move time on."""
    return request.app.state.clock  # type: ignore[no-any-return]


def start(request: Request, user: User) -> None:
    """Begin a fresh session for ``user`` (a new CSRF token is made on first use)."""
    now = int(clock(request)().timestamp())
    request.session.clear()
    request.session.update(
        {SESSION_USER: user.id, SESSION_VERSION: user.session_version, SESSION_ISSUED: now, SESSION_SEEN: now}
    )


def current_user(request: Request, session: Session, review: ReviewSettings) -> User | None:
    """The active account this request's session belongs to, or None (and the session is cleared) when
    there is none, it went idle or too old, or the account's session version moved on."""
    state = request.session
    if SESSION_USER not in state:
        return None
    now = clock(request)()
    user = _live_user(state, session, review, now)
    if user is None:
        state.clear()
        return None
    state[SESSION_SEEN] = int(now.timestamp())
    return user


def _live_user(state: dict[str, Any], session: Session, review: ReviewSettings, now: datetime) -> User | None:
    try:
        user_id, version = int(state[SESSION_USER]), int(state[SESSION_VERSION])
        issued, seen = float(state[SESSION_ISSUED]), float(state[SESSION_SEEN])
    except (KeyError, TypeError, ValueError):
        return None  # a cookie from before sessions were versioned, or not one of ours
    moment = now.timestamp()
    if moment - seen > timedelta(minutes=review.session_idle_minutes).total_seconds():
        return None
    if moment - issued > timedelta(hours=review.session_absolute_hours).total_seconds():
        return None
    user = session.get(User, user_id)
    if user is None or not user.active or user.session_version != version:
        return None
    return user
