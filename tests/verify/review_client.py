"""Test support for the review app: serve it with given accounts, read a page's CSRF token, sign in
through the login form, list the routes it serves and the role each needs."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import httpx
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session
from starlette.routing import BaseRoute

from settings import Settings
from storage.models import Role
from verify.users import ROLE_RANK, create_user
from verify.web.app import create_app
from verify.web.deps import ROLE_ATTRIBUTE

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


def api_routes(routes: Iterable[BaseRoute]) -> Iterator[APIRoute]:
    """The app's API routes, included routers' routes among them."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):  # FastAPI keeps included routers as branches
            yield from api_routes(route.original_router.routes)


def needed_role(route: APIRoute) -> Role | None:
    """The role the route's user dependency asks for (None: a public route)."""
    pending = list(route.dependant.dependencies)
    while pending:
        dependency = pending.pop()
        if hasattr(dependency.call, ROLE_ATTRIBUTE):
            return getattr(dependency.call, ROLE_ATTRIBUTE)
        pending += dependency.dependencies
    return None


def routes(app: FastAPI, minimum: Role | None = None) -> list[tuple[str, str]]:
    """Every (method, concrete path) the app serves, path parameters filled with harmless values;
    with ``minimum``, only the routes that need at least that role."""
    found = []
    for route in api_routes(app.routes):
        needed = needed_role(route)
        if minimum is not None and (needed is None or ROLE_RANK[needed] < ROLE_RANK[minimum]):
            continue
        path = route.path.replace("{fmt}", "csv").replace("{what}", "leads")
        path = re.sub(r"\{[^}]+\}", "1", path)
        found += [(method, path) for method in sorted(route.methods - {"HEAD"})]
    return found
