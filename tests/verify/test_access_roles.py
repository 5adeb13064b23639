"""Who may do what: anonymous clients, analysts, supervisors, admins; API tokens; the sign-in rate limit."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from review_client import api_routes, csrf_of, needed_role, review_app, routes, submit_login
from sqlalchemy import select
from typer.testing import CliRunner

from cli import app as cli_app
from storage.db import make_engine, make_session_factory, upgrade
from storage.models import ApiToken, AuditEvent, LoginFailure, Platform, Role, User
from verify.users import create_token, create_user, revoke_tokens


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """Access rules do not depend on the database: SQLite only, to keep the suite fast."""
    return sqlite_url


pytestmark = pytest.mark.usefixtures("cheap_hashing")


# "/" only redirects; signing out needs no account; browsers ask for the icon before anyone signs in.
PUBLIC_PATHS = {"/login", "/", "/logout", "/favicon.ico"}


@pytest.fixture
def app(settings, session):
    accounts = [
        ("alice", "alice-pw", "analyst"),
        ("sue", "sue-pw-123", "supervisor"),
        ("ada", "ada-pw-123", "admin"),
    ]
    with review_app(settings, session, accounts) as application:
        yield application


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    with TestClient(app, follow_redirects=False) as test_client:
        yield test_client


def attempt(client: TestClient, username: str, password: str) -> int:
    return submit_login(client, username, password).status_code


def login(client: TestClient, username: str, password: str) -> None:
    assert attempt(client, username, password) == 303


def test_every_route_but_sign_in_needs_a_role(app) -> None:
    public = sorted(route.path for route in api_routes(app.routes) if needed_role(route) is None)
    assert public == ["/", "/favicon.ico", "/login", "/login", "/logout"]


def test_anonymous_clients_are_sent_to_login_or_told_401_everywhere_but_login(client, app) -> None:
    token = csrf_of(client.get("/login").text)  # a real token, so the refusal is the sign-in check
    checked = 0
    for method, path in routes(app):
        if path in PUBLIC_PATHS:
            continue
        response = client.request(method, path, data={"csrf_token": token} if method == "POST" else None)
        checked += 1
        if path.startswith("/api/") or path == "/openapi.json":
            assert response.status_code == 401, (method, path)
        else:
            assert response.status_code == 303, (method, path)
            assert response.headers["location"].startswith("/login?next="), (method, path)
    assert checked >= 20


def test_an_analyst_is_refused_every_supervisor_and_admin_page(client, app) -> None:
    login(client, "alice", "alice-pw")
    token = csrf_of(client.get("/leads").text)
    guarded = routes(app, minimum=Role.SUPERVISOR)
    assert {("GET", "/admin/users"), ("POST", "/admin/users"), ("GET", "/dashboard")} <= set(guarded)
    for method, path in guarded:
        response = client.request(method, path, data={"csrf_token": token} if method == "POST" else None)
        assert response.status_code == 403, (method, path)
    assert "无权访问" in client.get("/admin/users").text


def test_a_supervisor_sees_the_dashboard_but_not_the_accounts(client) -> None:
    login(client, "sue", "sue-pw-123")
    assert client.get("/dashboard").status_code == 200
    assert client.get("/admin/users").status_code == 403


def test_an_admin_lists_and_adds_accounts(client, session) -> None:
    login(client, "ada", "ada-pw-123")
    page = client.get("/admin/users")
    assert page.status_code == 200
    rows = re.findall(r"<tr><td>([^<]+)</td><td>([^<]+)</td>", page.text)
    assert rows == [("ada", "管理员"), ("alice", "分析员"), ("sue", "主管")]
    form = {
        "csrf_token": csrf_of(page.text),
        "username": "wang",
        "password": "wang-pw-123",
        "role": "supervisor",
    }
    assert client.post("/admin/users", data=form).headers["location"] == "/admin/users"
    assert "已创建主管 wang。" in client.get("/admin/users").text
    session.expire_all()
    assert session.scalar(select(User.role).where(User.username == "wang")).value == "supervisor"
    session.rollback()  # end the read, so the app may write (SQLite has one writer)
    duplicate = client.post("/admin/users", data=form)
    assert (
        duplicate.status_code == 400 and "未能创建账号：user &#39;wang&#39; already exists" in duplicate.text
    )


def test_the_sixth_failed_sign_in_within_the_window_is_refused_with_429(client) -> None:
    assert [attempt(client, "alice", "wrong") for _ in range(5)] == [401] * 5
    response_code = attempt(client, "alice", "alice-pw")  # even the right password, for now
    assert response_code == 429
    page = submit_login(client, "alice", "alice-pw")
    assert "登录失败次数过多，请 15 分钟后再试。" in page.text
    login(client, "sue", "sue-pw-123")  # another account from the same address still signs in


def test_failures_from_one_address_across_names_are_limited_too(client, settings) -> None:
    # The app was built before this test ran: it is given the changed settings (they are frozen).
    client.app.state.settings = settings.changed(review={"login_failures_per_address": 3})
    assert [attempt(client, name, "guess") for name in ("a", "b", "c")] == [401, 401, 401]
    assert attempt(client, "sue", "sue-pw-123") == 429


def test_a_successful_sign_in_forgives_the_names_earlier_failures(client, session) -> None:
    assert [attempt(client, "alice", "wrong") for _ in range(4)] == [401] * 4
    login(client, "alice", "alice-pw")
    session.expire_all()
    assert session.scalars(select(LoginFailure.username)).all() == []


def test_api_tokens_are_stored_only_as_their_hash(session) -> None:
    create_user(session, "bot", "bot-pw-123", "analyst")
    token = create_token(session, "bot", "nightly export")
    stored = session.scalars(select(ApiToken)).one()
    assert token.startswith("wsu_") and len(token) == 47
    assert stored.label == "nightly export" and len(stored.token_sha256) == 64
    assert token not in stored.token_sha256


def test_a_revoked_token_or_a_deactivated_account_is_refused(client, session) -> None:
    token = create_token(session, "alice")
    session.commit()
    bearer = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/leads", headers=bearer).status_code == 200
    assert revoke_tokens(session, "alice") == 1
    session.commit()
    assert client.get("/api/v1/leads", headers=bearer).status_code == 401
    second = {"Authorization": f"Bearer {create_token(session, 'alice')}"}
    session.scalar(select(User).where(User.username == "alice")).active = False
    session.commit()
    assert client.get("/api/v1/leads", headers=second).status_code == 401


def test_the_session_cookie_is_httponly_and_samesite(client) -> None:
    response = submit_login(client, "alice", "alice-pw")
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie


def test_weisu_users_token_prints_a_working_token_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    env = {"WEISU_DATABASE_URL": url}
    runner = CliRunner()
    args = ["users", "add", "bot", "--role", "analyst", "--password", "bot-pw-123"]
    assert runner.invoke(cli_app, args, env=env).exit_code == 0
    result = runner.invoke(cli_app, ["users", "token", "bot", "--label", "报表"], env=env)
    token = result.stdout.strip()
    assert result.exit_code == 0 and token.startswith("wsu_")
    upgrade(url)
    engine = make_engine(url)
    with make_session_factory(engine)() as session:
        from verify.users import user_for_token

        assert user_for_token(session, token).username == "bot"
    engine.dispose()
    missing = runner.invoke(cli_app, ["users", "token", "nobody"], env=env)
    assert (missing.exit_code, missing.stderr) == (1, "weisu users: no user 'nobody'\n")


def test_an_admin_deactivates_an_account_which_can_then_neither_sign_in_nor_use_its_tokens(
    client, session
) -> None:
    token = create_token(session, "alice")
    session.commit()
    login(client, "ada", "ada-pw-123")
    csrf = csrf_of(client.get("/admin/users").text)
    assert client.post("/admin/users/alice/deactivate", data={"csrf_token": csrf}).status_code == 303
    assert "已停用 alice，吊销接口令牌 1 个。" in client.get("/admin/users").text
    assert client.get("/api/v1/leads", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    client.post("/logout", data={"csrf_token": csrf})
    assert attempt(client, "alice", "alice-pw") == 401
    login(client, "ada", "ada-pw-123")
    csrf = csrf_of(client.get("/admin/users").text)
    client.post("/admin/users/alice/activate", data={"csrf_token": csrf})
    client.post("/logout", data={"csrf_token": csrf})
    login(client, "alice", "alice-pw")


def test_an_admin_cannot_deactivate_their_own_account(client, session) -> None:
    login(client, "ada", "ada-pw-123")
    csrf = csrf_of(client.get("/admin/users").text)
    client.post("/admin/users/ada/deactivate", data={"csrf_token": csrf})
    assert "不能停用该账号（不存在，或是你自己）。" in client.get("/admin/users").text
    session.expire_all()
    assert session.scalar(select(User.active).where(User.username == "ada")) is True
    session.rollback()


def test_an_admin_pauses_a_platform_with_a_reason_and_resumes_it(client, session) -> None:
    login(client, "ada", "ada-pw-123")
    page = client.get("/admin/platforms")
    assert page.status_code == 200
    # 43 platforms (知乎's answer comments the 43rd) and 8 thread listings
    assert len(re.findall(r'<tr id="platform-', page.text)) == 51
    form = {"csrf_token": csrf_of(page.text), "reason": "<b>改版</b>，待更新选择器"}
    assert client.post("/admin/platforms/tieba/pause", data=form).headers["location"] == "/admin/platforms"
    row = re.search(r'<tr id="platform-tieba">(.*?)</tr>', client.get("/admin/platforms").text, re.S).group(1)
    assert "已暂停（ada：&lt;b&gt;改版&lt;/b&gt;，待更新选择器）" in row
    session.expire_all()
    assert session.scalar(select(Platform.paused).where(Platform.id == "tieba")) is True
    assert (
        session.scalar(select(AuditEvent.action).where(AuditEvent.action == "pause_platform"))
        == "pause_platform"
    )
    session.rollback()
    client.post("/admin/platforms/tieba/resume", data={"csrf_token": form["csrf_token"]})
    session.expire_all()
    assert session.scalar(select(Platform.paused).where(Platform.id == "tieba")) is False
    session.rollback()
