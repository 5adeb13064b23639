"""Sessions end on the server: sign-out, deactivation and a new password end an account's sessions at
once, idle and absolute lifetimes are enforced, the cookie's Secure flag follows the setting, and
X-Forwarded-For counts only from a trusted proxy."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from review_client import csrf_of, review_app, submit_login
from sqlalchemy import select

from settings import Settings
from storage.models import LoginFailure
from verify.web.app import SESSION_COOKIE

pytestmark = pytest.mark.usefixtures("cheap_hashing")

START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
ACCOUNTS = [("alice", "alice-pw", "analyst"), ("ada", "ada-pw-123", "admin")]


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


@pytest.fixture
def app(settings: Settings, session, clock: Clock) -> Iterator[FastAPI]:
    settings = settings.changed(review={"session_idle_minutes": 30, "session_absolute_hours": 8})
    with review_app(settings, session, ACCOUNTS) as application:
        application.state.clock = clock
        yield application


def signed_in(app: FastAPI, username: str, password: str) -> TestClient:
    client = TestClient(app, follow_redirects=False)
    assert submit_login(client, username, password).status_code == 303
    return client


def replay(app: FastAPI, cookie: str) -> TestClient:
    """A second browser holding a copy of someone's session cookie."""
    client = TestClient(app, follow_redirects=False)
    client.cookies.set(SESSION_COOKIE, cookie)
    return client


def test_a_cookie_replayed_after_sign_out_is_sent_to_the_login_page(app: FastAPI) -> None:
    client = signed_in(app, "alice", "alice-pw")
    copied = client.cookies[SESSION_COOKIE]
    csrf = csrf_of(client.get("/leads").text)
    assert client.post("/logout", data={"csrf_token": csrf}).headers["location"] == "/login"
    answer = replay(app, copied).get("/leads")
    assert (answer.status_code, answer.headers["location"]) == (303, "/login?next=/leads")


def test_signing_out_ends_the_accounts_other_sessions_too(app: FastAPI) -> None:
    laptop, phone = signed_in(app, "alice", "alice-pw"), signed_in(app, "alice", "alice-pw")
    laptop.post("/logout", data={"csrf_token": csrf_of(laptop.get("/leads").text)})
    assert phone.get("/leads").status_code == 303
    assert phone.get("/api/v1/leads").status_code == 401


def test_a_deactivated_accounts_cookie_is_refused(app: FastAPI) -> None:
    copied = signed_in(app, "alice", "alice-pw").cookies[SESSION_COOKIE]
    admin = signed_in(app, "ada", "ada-pw-123")
    csrf = csrf_of(admin.get("/admin/users").text)
    assert admin.post("/admin/users/alice/deactivate", data={"csrf_token": csrf}).status_code == 303
    assert replay(app, copied).get("/leads").headers["location"] == "/login?next=/leads"


def test_reactivating_an_account_does_not_revive_its_old_sessions(app: FastAPI) -> None:
    copied = signed_in(app, "alice", "alice-pw").cookies[SESSION_COOKIE]
    admin = signed_in(app, "ada", "ada-pw-123")
    csrf = csrf_of(admin.get("/admin/users").text)
    admin.post("/admin/users/alice/deactivate", data={"csrf_token": csrf})
    admin.post("/admin/users/alice/activate", data={"csrf_token": csrf})
    assert replay(app, copied).get("/leads").status_code == 303


def test_a_new_password_ends_the_accounts_sessions_and_the_new_one_signs_in(app: FastAPI) -> None:
    copied = signed_in(app, "alice", "alice-pw").cookies[SESSION_COOKIE]
    admin = signed_in(app, "ada", "ada-pw-123")
    csrf = csrf_of(admin.get("/admin/users").text)
    data = {"csrf_token": csrf, "password": "new-alice-pw"}
    assert admin.post("/admin/users/alice/password", data=data).headers["location"] == "/admin/users"
    assert "已为 alice 设置新密码，并登出其所有会话。" in admin.get("/admin/users").text
    assert replay(app, copied).get("/leads").status_code == 303
    assert submit_login(TestClient(app, follow_redirects=False), "alice", "alice-pw").status_code == 401
    assert signed_in(app, "alice", "new-alice-pw").get("/leads").status_code == 200


def test_an_admin_changing_their_own_password_is_signed_out(app: FastAPI) -> None:
    admin = signed_in(app, "ada", "ada-pw-123")
    data = {"csrf_token": csrf_of(admin.get("/admin/users").text), "password": "ada-new-pw-1"}
    assert admin.post("/admin/users/ada/password", data=data).headers["location"] == "/login"
    assert admin.get("/admin/users").status_code == 303


def test_a_session_idle_longer_than_the_idle_lifetime_ends(app: FastAPI, clock: Clock) -> None:
    client = signed_in(app, "alice", "alice-pw")
    clock.advance(minutes=30)
    assert client.get("/leads").status_code == 200  # exactly the idle limit still counts
    clock.advance(minutes=30, seconds=1)
    assert client.get("/leads").headers["location"] == "/login?next=/leads"


def test_each_request_restarts_the_idle_clock(app: FastAPI, clock: Clock) -> None:
    client = signed_in(app, "alice", "alice-pw")
    for _ in range(4):
        clock.advance(minutes=25)
        assert client.get("/leads").status_code == 200


def test_an_old_cookie_goes_idle_even_when_the_session_was_used_since(app: FastAPI, clock: Clock) -> None:
    client = signed_in(app, "alice", "alice-pw")
    copied = client.cookies[SESSION_COOKIE]
    clock.advance(minutes=25)
    assert client.get("/leads").status_code == 200
    clock.advance(minutes=10)
    assert replay(app, copied).get("/leads").status_code == 303  # its last use was 35 minutes ago


def test_a_session_in_constant_use_ends_at_the_absolute_lifetime(app: FastAPI, clock: Clock) -> None:
    client = signed_in(app, "alice", "alice-pw")
    for _ in range(16):  # 8 hours in 30-minute steps, never idle too long
        clock.advance(minutes=30)
        assert client.get("/leads").status_code == 200
    clock.advance(seconds=1)
    assert client.get("/leads").headers["location"] == "/login?next=/leads"


def test_the_api_refuses_an_idle_browser_session(app: FastAPI, clock: Clock) -> None:
    client = signed_in(app, "alice", "alice-pw")
    assert client.get("/api/v1/leads").status_code == 200
    clock.advance(minutes=31)
    assert client.get("/api/v1/leads").status_code == 401


def _session_cookie_header(settings: Settings, session) -> str:
    with review_app(settings, session, []) as application:
        return TestClient(application).get("/login").headers["set-cookie"]


def test_the_session_cookie_is_secure_by_default(settings: Settings, session) -> None:
    settings = settings.changed(review={"cookie_secure": Settings().review.cookie_secure})
    assert "; secure" in _session_cookie_header(settings, session)


def test_the_session_cookie_lacks_secure_when_the_setting_is_off(settings: Settings, session) -> None:
    settings = settings.changed(review={"cookie_secure": False})
    assert "secure" not in _session_cookie_header(settings, session).lower()


def _failed_sign_in_address(settings: Settings, session, peer: str) -> str:
    with review_app(settings, session, []) as application:
        client = TestClient(application, client=(peer, 50000))
        token = csrf_of(client.get("/login").text)
        data = {"username": "mallory", "password": "guess", "csrf_token": token}
        headers = {"X-Forwarded-For": "203.0.113.7"}
        assert client.post("/login", data=data, headers=headers).status_code == 401
    session.expire_all()
    return session.scalars(select(LoginFailure.client)).one()


def test_x_forwarded_for_from_an_untrusted_peer_is_ignored(settings: Settings, session) -> None:
    settings = settings.changed(review={"trusted_proxies": ["10.0.0.5"]})
    assert _failed_sign_in_address(settings, session, "198.51.100.9") == "198.51.100.9"


def test_x_forwarded_for_from_loopback_is_ignored_when_no_proxy_is_trusted(
    settings: Settings, session
) -> None:
    assert settings.review.trusted_proxies == []
    assert _failed_sign_in_address(settings, session, "127.0.0.1") == "127.0.0.1"


def test_x_forwarded_for_from_a_trusted_proxy_names_the_client(settings: Settings, session) -> None:
    settings = settings.changed(review={"trusted_proxies": ["10.0.0.0/24"]})
    assert _failed_sign_in_address(settings, session, "10.0.0.5") == "203.0.113.7"
