"""Accounts: analysts, supervisors and admins with argon2 password hashes."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from settings import Settings
from storage.models import Role, User

_hasher = PasswordHasher()
# A real hash to verify against when the user does not exist, so both paths take the same time.
_DUMMY_HASH = _hasher.hash("weisu-no-such-user")


class UserError(Exception):
    """An account that cannot be created as asked (duplicate name, unknown role, empty password)."""


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


def ensure_demo_analyst(session: Session, settings: Settings) -> User:
    """The demo's analyst login (review.demo_analyst / demo_password), created when missing."""
    user = get_by_username(session=session, username=settings.review.demo_analyst)
    if user is not None:
        return user
    return create_user(session, settings.review.demo_analyst, settings.review.demo_password, Role.ANALYST)
