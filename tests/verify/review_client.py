"""Test support for the review app: serve it with given accounts, read a page's CSRF token, sign in
through the login form."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from settings import Settings
from verify.users import create_user
from verify.web.app import create_app

#: The moment the verify fixtures' leads are seen at (tests/verify/conftest.py builds them around it).
NOW = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)


@contextmanager
def review_app(
    settings: Settings, session: Session, accounts: Iterable[tuple[str, str, str]]
) -> Iterator[FastAPI]:
    """The review app on the test database, with these (name, password, role) accounts created first."""
    for name, password, role in accounts:
        create_user(session, name, password, role)
    session.commit()
    application = create_app(settings)
    try:
        yield application
    finally:
        application.state.engine.dispose()


_CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = _CSRF_FIELD.search(html)
    assert match is not None, "the page carries no CSRF token"
    return match.group(1)


def submit_login(client: TestClient, username: str, password: str) -> httpx.Response:
    """Open the login form and post it with its CSRF token; the app's answer (303 when signed in)."""
    token = csrf_of(client.get("/login").text)
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token})
