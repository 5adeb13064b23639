"""One CSRF mechanism: the session's token, in the csrf_token field of a form or the X-CSRF-Token
header of a script or API call, checked on every state-changing request by deps.require_csrf."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from review_client import csrf_of, review_app, routes, submit_login

from storage.models import LeadState
from verify import workflow
from verify.users import create_token

NEW_USER = {"username": "carol", "password": "carol-pw-123", "role": "analyst"}
#: A form with a field, a multipart upload, a script's header call, an API call with the session.
#: (method, path template, how the token travels, body).
KINDS = {
    "lead form": ("/leads/{lead}/note", "field", {"text": "已电话核实"}),
    "admin form": ("/admin/users", "field", NEW_USER),
    "upload": ("/admin/responsibility/import", "multipart", {}),
    "script": ("/leads/{lead}/renew", "header", {}),
    "api": ("/api/v1/leads/{lead}/release", "header", {}),
}
CSV = "category,district,street,unit,note\n城乡建设,,,深圳市住房和建设局,\n".encode()


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """The check does not depend on the database."""
    return sqlite_url


pytestmark = pytest.mark.usefixtures("cheap_hashing")


@pytest.fixture
def app(settings, session):
    with review_app(settings, session, [("ada", "ada-pw-123", "admin")]) as application:
        yield application


@pytest.fixture
def ada(app) -> Iterator[TestClient]:
    with TestClient(app, follow_redirects=False) as client:
        assert submit_login(client, "ada", "ada-pw-123").is_redirect
        yield client


@pytest.fixture
def held_lead(session, make_lead, settings) -> int:
    """A lead ada holds, so a note, a renewal and a release may each succeed."""
    lead = make_lead()
    workflow.claim(session=session, lead_id=lead.id, actor="ada", settings=settings)
    session.commit()
    return lead.id


def post(client: TestClient, kind: str, lead: int, token: str | None):
    path, travels, body = KINDS[kind]
    url = path.format(lead=lead)
    if travels == "header":
        headers = {"X-CSRF-Token": token} if token is not None else {}
        return client.post(url, headers=headers, json=body or None)
    fields = {**body, **({"csrf_token": token} if token is not None else {})}
    if travels == "multipart":
        return client.post(url, data=fields, files={"file": ("list.csv", CSV, "text/csv")})
    return client.post(url, data=fields)


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_post_without_the_token_is_refused(ada, held_lead, kind: str) -> None:
    assert post(ada, kind, held_lead, None).status_code == 403


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_post_with_a_wrong_token_is_refused(ada, held_lead, kind: str) -> None:
    assert post(ada, kind, held_lead, "forged-token").status_code == 403


PASSED = {"lead form": 303, "admin form": 303, "upload": 303, "script": 200, "api": 200}


@pytest.mark.parametrize(("kind", "status"), PASSED.items())
def test_a_post_with_the_sessions_token_passes(ada, held_lead, kind: str, status: int) -> None:
    token = csrf_of(ada.get("/leads").text)
    assert post(ada, kind, held_lead, token).status_code == status


def test_a_sign_in_without_the_token_is_refused_and_with_it_passes(app) -> None:
    with TestClient(app, follow_redirects=False) as client:
        form = {"username": "ada", "password": "ada-pw-123"}
        assert client.post("/login", data=form).status_code == 403
        assert client.post("/login", data={**form, "csrf_token": "forged-token"}).status_code == 403
        assert submit_login(client, "ada", "ada-pw-123").status_code == 303


def test_every_state_changing_route_refuses_a_signed_in_post_without_the_token(ada, app) -> None:
    posts = [path for method, path in routes(app) if method == "POST"]
    assert len(posts) >= 20
    assert {path: ada.post(path).status_code for path in posts} == dict.fromkeys(posts, 403)


def test_an_api_call_with_a_bearer_token_needs_no_csrf_token(app, session, held_lead) -> None:
    bearer = {"Authorization": f"Bearer {create_token(session, 'ada', 'test')}"}
    session.commit()
    with TestClient(app, follow_redirects=False) as client:
        released = client.post(f"/api/v1/leads/{held_lead}/release", headers=bearer)
    assert (released.status_code, released.json()["state"]) == (200, LeadState.NEW.value)
