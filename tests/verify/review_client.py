"""Test support for the review app: read a page's CSRF token, sign in through the login form."""

from __future__ import annotations

import re

import httpx
from fastapi.testclient import TestClient

_CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = _CSRF_FIELD.search(html)
    assert match is not None, "the page carries no CSRF token"
    return match.group(1)


def submit_login(client: TestClient, username: str, password: str) -> httpx.Response:
    """Open the login form and post it with its CSRF token; the app's answer (303 when signed in)."""
    token = csrf_of(client.get("/login").text)
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token})
