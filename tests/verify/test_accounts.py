"""Accounts: argon2 hashes, duplicate and role errors, the demo analyst."""

from __future__ import annotations

import pytest

from storage.models import Role
from verify.users import UserError, authenticate, create_user, ensure_demo_analyst


def test_create_user_stores_an_argon2_hash_not_the_password(session) -> None:
    user = create_user(session, "alice", "s3cret-pw", "supervisor")
    assert user.role == Role.SUPERVISOR
    assert user.password_hash.startswith("$argon2id$")
    assert "s3cret-pw" not in user.password_hash


def test_authenticate_accepts_only_the_right_password(session) -> None:
    create_user(session, "alice", "s3cret-pw", "analyst")
    assert authenticate(session, "alice", "s3cret-pw").username == "alice"
    assert authenticate(session, "alice", "wrong") is None
    assert authenticate(session, "nobody", "s3cret-pw") is None


def test_duplicate_username_is_a_clear_error(session) -> None:
    create_user(session, "alice", "pw1", "analyst")
    with pytest.raises(UserError, match="user 'alice' already exists"):
        create_user(session, "alice", "pw2", "admin")


def test_unknown_role_is_a_clear_error(session) -> None:
    with pytest.raises(UserError, match="unknown role 'boss': use one of analyst, supervisor, admin"):
        create_user(session, "alice", "pw", "boss")


def test_ensure_demo_analyst_creates_the_login_once(session, settings) -> None:
    first = ensure_demo_analyst(session, settings)
    second = ensure_demo_analyst(session, settings)
    assert first.id == second.id
    assert authenticate(session, "analyst", "weisu-demo").username == "analyst"
