"""A new account's password obeys one rule, whether an admin adds it on the page or `weisu users add`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from review_client import csrf_of, review_app, submit_login
from sqlalchemy import select
from typer.testing import CliRunner

from cli import app as cli_app
from storage.models import User
from verify.users import PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH, UserError, check_new_password

pytestmark = pytest.mark.usefixtures("cheap_hashing")

TOO_SHORT = "x" * (PASSWORD_MIN_LENGTH - 1)
TOO_LONG = "x" * (PASSWORD_MAX_LENGTH + 1)
REFUSALS = {
    TOO_SHORT: "密码至少 8 个字符 (password too short)",
    TOO_LONG: "密码最多 200 个字符 (password too long)",
}


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """The rule does not depend on the database: SQLite only."""
    return sqlite_url


@pytest.fixture
def admin_client(settings, session) -> Iterator[TestClient]:
    with (
        review_app(settings, session, [("ada", "ada-pw-123", "admin")]) as application,
        TestClient(application, follow_redirects=False) as client,
    ):
        assert submit_login(client, "ada", "ada-pw-123").status_code == 303
        yield client


def test_the_rule_is_at_least_8_and_at_most_200_characters() -> None:
    check_new_password("x" * PASSWORD_MIN_LENGTH)
    check_new_password("x" * PASSWORD_MAX_LENGTH)
    for refused, message in REFUSALS.items():
        with pytest.raises(UserError) as caught:
            check_new_password(refused)
        assert str(caught.value) == message


@pytest.mark.parametrize("password", [TOO_SHORT, TOO_LONG], ids=["7 characters", "201 characters"])
def test_weisu_users_add_refuses_a_password_the_admin_page_refuses(tmp_path: Path, password: str) -> None:
    env = {"WEISU_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}"}
    args = ["users", "add", "wang", "--role", "analyst", "--password", password]
    result = CliRunner().invoke(cli_app, args, env=env)
    assert (result.exit_code, result.stderr) == (1, f"weisu users: {REFUSALS[password]}\n")


@pytest.mark.parametrize("password", [TOO_SHORT, TOO_LONG], ids=["7 characters", "201 characters"])
def test_the_admin_page_refuses_the_same_passwords_with_the_same_message(
    admin_client: TestClient, session, password: str
) -> None:
    form = {
        "csrf_token": csrf_of(admin_client.get("/admin/users").text),
        "username": "wang",
        "password": password,
        "role": "analyst",
    }
    response = admin_client.post("/admin/users", data=form)
    assert response.status_code == 400
    assert f"未能创建账号：{REFUSALS[password]}" in response.text
    assert session.scalar(select(User).where(User.username == "wang")) is None


def test_the_admin_page_tells_the_browser_the_same_lengths(admin_client: TestClient) -> None:
    page = admin_client.get("/admin/users").text
    assert f'minlength="{PASSWORD_MIN_LENGTH}" maxlength="{PASSWORD_MAX_LENGTH}"' in page
