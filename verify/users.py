"""Accounts: analysts, supervisors and admins — argon2 passwords, hashed API tokens, sign-in rate limit."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from settings import ReviewSettings, Settings
from storage.base import utcnow
from storage.models import ApiToken, LoginFailure, User
from storage.vocabulary import Role

#: Each role may do everything the roles before it may.
ROLE_RANK = {Role.ANALYST: 0, Role.SUPERVISOR: 1, Role.ADMIN: 2}
TOKEN_PREFIX = "wsu_"

_hasher = PasswordHasher()
# A real hash to verify against when the user does not exist, so both paths take the same time.
_DUMMY_HASH = _hasher.hash("weisu-no-such-user")


class UserError(Exception):
    """An account that cannot be created as asked (duplicate name, unknown role, empty password)."""


#: Password rules for a new account, the same from the admin page and from `weisu users add`.
PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 200


def check_new_password(password: str) -> None:
    """UserError unless ``password`` may be given to a new account (the web form and the CLI both ask)."""
    if len(password) < PASSWORD_MIN_LENGTH:
        raise UserError(f"密码至少 {PASSWORD_MIN_LENGTH} 个字符 (password too short)")
    if len(password) > PASSWORD_MAX_LENGTH:
        raise UserError(f"密码最多 {PASSWORD_MAX_LENGTH} 个字符 (password too long)")


def get_by_username(*, session: Session, username: str) -> User | None:
    return session.scalar(select(User).where(User.username == username))


def create_user(session: Session, username: str, password: str, role: Role | str = Role.ANALYST) -> User:
    """Create an account; UserError on a duplicate name, an unknown role or an empty password."""
    username = username.strip()
    if not username or not password:
        raise UserError("username and password must not be empty")
    try:
        role = Role(role)
    except ValueError:
        allowed = ", ".join(r.value for r in Role)
        raise UserError(f"unknown role {role!r}: use one of {allowed}") from None
    if get_by_username(session=session, username=username) is not None:
        raise UserError(f"user {username!r} already exists")
    user = User(username=username, password_hash=_hasher.hash(password), role=role)
    session.add(user)
    session.flush()
    return user


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The active user with this name and password, or None."""
    user = get_by_username(session=session, username=username)
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or not user.active:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return user


def end_sessions(user: User) -> None:
    """End every browser session of the account at once: their cookies carry the old session version."""
    user.session_version += 1


def set_password(session: Session, username: str, password: str) -> User:
    """A new password for the account, ending its sessions; UserError for an unknown name or no password."""
    user = get_by_username(session=session, username=username)
    if user is None:
        raise UserError(f"no user {username!r}")
    if not password:
        raise UserError("password must not be empty")
    user.password_hash = _hasher.hash(password)
    end_sessions(user)
    session.flush()
    return user


def deactivate(session: Session, username: str) -> int:
    """A departed colleague: no more sign-in, every session ended and every API token revoked; how many
    tokens were live."""
    user = get_by_username(session=session, username=username)
    if user is None:
        raise UserError(f"no user {username!r}")
    user.active = False
    end_sessions(user)
    return revoke_tokens(session, username)


def ensure_demo_analyst(session: Session, settings: Settings) -> User:
    """The demo's analyst login (review.demo_analyst / demo_password), created when missing."""
    user = get_by_username(session=session, username=settings.review.demo_analyst)
    if user is not None:
        return user
    return create_user(session, settings.review.demo_analyst, settings.review.demo_password, Role.ANALYST)


def has_role(user: User, minimum: Role) -> bool:
    return ROLE_RANK[user.role] >= ROLE_RANK[minimum]


def list_users(*, session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.username)))


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(session: Session, username: str, label: str = "") -> str:
    """A new bearer token for the user; returned once, only its SHA-256 is stored."""
    user = get_by_username(session=session, username=username)
    if user is None:
        raise UserError(f"no user {username!r}")
    # 32 random bytes: a token cannot be guessed, so a fast hash (not argon2) is enough at rest.
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id, label=label[:100], token_sha256=_token_digest(token)))
    session.flush()
    return token


def user_for_token(session: Session, token: str, now: datetime | None = None) -> User | None:
    """The active user a live (not revoked) bearer token belongs to, or None."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    row = session.scalar(
        select(ApiToken).where(ApiToken.token_sha256 == _token_digest(token), ApiToken.revoked.is_(False))
    )
    if row is None:
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        return None
    row.last_used_at = now or utcnow()
    return user


def revoke_tokens(session: Session, username: str) -> int:
    """Revoke every token of the user; how many were live."""
    user = get_by_username(session=session, username=username)
    if user is None:
        raise UserError(f"no user {username!r}")
    tokens = session.scalars(select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked.is_(False)))
    count = 0
    for token in tokens:
        token.revoked = True
        count += 1
    session.flush()
    return count


def login_blocked(session: Session, username: str, client: str, review: ReviewSettings) -> bool:
    """True when the user name or the client address has used up its failed sign-ins in the window."""
    since = utcnow() - timedelta(minutes=review.login_window_minutes)
    recent = select(func.count()).select_from(LoginFailure).where(LoginFailure.at > since)
    by_user = session.scalar(recent.where(LoginFailure.username == username[:100])) or 0
    by_client = session.scalar(recent.where(LoginFailure.client == client[:100])) or 0
    return by_user >= review.login_failures_per_user or by_client >= review.login_failures_per_address


def record_login_failure(session: Session, username: str, client: str) -> None:
    session.add(LoginFailure(username=username[:100], client=client[:100]))
    session.flush()


def clear_login_failures(session: Session, username: str) -> None:
    """A successful sign-in forgives the user name's earlier failures (the address keeps its count)."""
    session.execute(delete(LoginFailure).where(LoginFailure.username == username[:100]))
