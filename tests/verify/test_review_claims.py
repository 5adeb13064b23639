"""Claiming through the web app: one holder under concurrent requests, heartbeat renewal, expiry, override."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from review_client import csrf_of, review_app, submit_login
from sqlalchemy import select

from storage.base import utcnow
from storage.models import AuditEvent, Lead, LeadState
from verify import workflow

ANALYSTS = ("a1", "a2", "a3", "a4", "a5", "a6")


pytestmark = pytest.mark.usefixtures("cheap_hashing")


@pytest.fixture
def app(settings, session) -> Iterator[FastAPI]:
    accounts = [*((name, f"{name}-pw", "analyst") for name in ANALYSTS), ("sue", "sue-pw", "supervisor")]
    with review_app(settings, session, accounts) as application:
        yield application


@pytest.fixture
def signed_in(app) -> Iterator[Callable[[str], TestClient]]:
    """A factory of signed-in clients, closed at the end of the test."""
    clients: list[TestClient] = []

    def make(name: str) -> TestClient:
        client = TestClient(app, follow_redirects=False)
        client.__enter__()
        clients.append(client)
        assert submit_login(client, name, f"{name}-pw").status_code == 303
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


# Six clients in six threads hit the app at once: each request needs a connection of its own.
@pytest.mark.usefixtures("committed_database")
def test_six_analysts_opening_one_lead_at_once_leave_exactly_one_holder(
    signed_in, make_lead, session
) -> None:
    lead_id = make_lead().id
    clients = {name: signed_in(name) for name in ANALYSTS}
    barrier = threading.Barrier(len(clients))
    pages: dict[str, str] = {}

    def open_lead(name: str) -> None:
        barrier.wait()
        pages[name] = clients[name].get(f"/leads/{lead_id}").text

    threads = [threading.Thread(target=open_lead, args=(name,)) for name in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    editors = [name for name, html in pages.items() if f'action="/leads/{lead_id}/verify"' in html]
    assert len(editors) == 1
    holder = editors[0]
    readers = [name for name, html in pages.items() if f"此线索正由 {holder} 核实，只读显示。" in html]
    assert sorted(readers + editors) == sorted(ANALYSTS)
    session.expire_all()
    assert session.get(Lead, lead_id).claimed_by == holder
    claims = session.scalars(select(AuditEvent.actor).where(AuditEvent.action == "claim")).all()
    assert claims == [holder]
    session.rollback()


def test_the_heartbeat_renews_the_holders_lease(signed_in, make_lead, session) -> None:
    lead_id = make_lead().id
    client = signed_in("a1")
    token = csrf_of(client.get(f"/leads/{lead_id}").text)
    session.get(Lead, lead_id).claim_expires_at = utcnow() + timedelta(minutes=1)
    session.commit()
    answer = client.post(f"/leads/{lead_id}/renew", headers={"X-CSRF-Token": token})
    assert answer.status_code == 200 and answer.json()["held"] is True
    session.expire_all()
    remaining = session.get(Lead, lead_id).claim_expires_at - utcnow()
    assert timedelta(minutes=14) < remaining <= timedelta(minutes=15)
    session.rollback()


def test_the_heartbeat_needs_the_csrf_header_and_the_lease(signed_in, make_lead) -> None:
    lead_id = make_lead().id
    holder, other = signed_in("a1"), signed_in("a2")
    holder.get(f"/leads/{lead_id}")
    assert holder.post(f"/leads/{lead_id}/renew").status_code == 403
    other_token = csrf_of(other.get(f"/leads/{lead_id}").text)
    refused = other.post(f"/leads/{lead_id}/renew", headers={"X-CSRF-Token": other_token})
    assert (refused.status_code, refused.json()["held"]) == (409, False)


def test_an_expired_lease_is_taken_over_by_the_next_analyst_who_opens_it(
    signed_in, make_lead, session
) -> None:
    lead_id = make_lead().id
    signed_in("a1").get(f"/leads/{lead_id}")
    session.get(Lead, lead_id).claim_expires_at = utcnow() - timedelta(seconds=1)
    session.commit()
    page = signed_in("a2").get(f"/leads/{lead_id}").text
    assert f'action="/leads/{lead_id}/verify"' in page
    session.expire_all()
    assert session.get(Lead, lead_id).claimed_by == "a2"
    session.rollback()


def test_expired_claims_return_to_the_queue(signed_in, make_lead, session) -> None:
    lead_id = make_lead().id
    client = signed_in("a1")
    client.get(f"/leads/{lead_id}")
    assert workflow.expire_claims(session=session, now=utcnow() + timedelta(minutes=16)) == 1
    session.commit()
    html = client.get("/leads?state=new").text
    assert f'<a href="/leads/{lead_id}">#' in html and "核实中</small>" not in html


def test_a_supervisor_takes_a_lead_back_from_its_holder(signed_in, make_lead, session) -> None:
    lead_id = make_lead().id
    signed_in("a1").get(f"/leads/{lead_id}")
    supervisor = signed_in("sue")
    page = supervisor.get(f"/leads/{lead_id}").text
    assert "收回认领（主管）" in page
    response = supervisor.post(f"/leads/{lead_id}/release", data={"csrf_token": csrf_of(page)})
    assert response.headers["location"] == "/leads"
    session.expire_all()
    lead = session.get(Lead, lead_id)
    assert (lead.state, lead.claimed_by) == (LeadState.NEW, None)
    last = session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
    assert (last.actor, last.action, last.details) == (
        "sue",
        "release",
        {"previous_holder": "a1", "override": True},
    )
    session.rollback()


def test_an_analyst_cannot_release_someone_elses_lead(signed_in, make_lead, session) -> None:
    lead_id = make_lead().id
    signed_in("a1").get(f"/leads/{lead_id}")
    other = signed_in("a2")
    token = csrf_of(other.get(f"/leads/{lead_id}").text)
    other.post(f"/leads/{lead_id}/release", data={"csrf_token": token})
    session.expire_all()
    assert session.get(Lead, lead_id).claimed_by == "a1"
    session.rollback()
