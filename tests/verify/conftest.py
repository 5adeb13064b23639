"""Fixtures for the verify stage: settings pointing at the test database, and lead/post factories."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from keys_for_tests import TEST_SECRET_KEY
from review_client import NOW, review_app
from shared_databases import DatabaseUnderTest
from sqlalchemy.orm import Session

from settings import Settings, load_settings
from storage.models import Lead, LeadPost, Platform, Post, Priority

_ids = itertools.count(1)


@pytest.fixture(autouse=True)
def _app_joins_the_test_transaction(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A review app made in a rolled-back test (``create_app`` under TestClient) uses the test's
    sessions, so it sees the rows the test has not committed and its own writes are rolled back too.

    Apps served in a thread of their own must not share one connection: those tests ask for
    committed_database.
    """
    if "database_under_test" not in request.fixturenames:
        return
    database: DatabaseUnderTest = request.getfixturevalue("database_under_test")
    if not database.committed:
        monkeypatch.setattr("verify.web.app.make_session_factory", lambda _engine: database.session_factory)


@pytest.fixture
def cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2 at minimal cost, for modules about access rules and pages rather than hashing strength
    (``pytestmark = pytest.mark.usefixtures("cheap_hashing")``)."""
    monkeypatch.setattr("verify.users._hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


@pytest.fixture
def settings(database_under_test: DatabaseUnderTest) -> Settings:
    """config.yaml's settings on the test's database (rolled back, or committed when the test asks)."""
    return load_settings(env={}).changed(
        database={"url": database_under_test.url},
        secret_key=TEST_SECRET_KEY,
        review={"cookie_secure": False},  # TestClient talks plain http to http://testserver
        dispatch={"base_url": "http://dispatch.test"},
    )


def add_lead(
    session: Session, texts: tuple[str, ...] = ("小区门口路灯坏了一个月没人修",), **fields: Any
) -> Lead:
    """A lead with one evidence post per text; commits so other sessions see it."""
    if session.get(Platform, "weibo") is None:
        session.add(Platform(id="weibo", name="微博", kind="json_feed"))
        session.flush()
    values: dict[str, Any] = {
        "summary": "南山区科技园路灯不亮",
        "category": "城乡建设",
        "district": "南山区",
        "street": "粤海街道",
        "landmark": "科技园",
        "priority": Priority.ORDINARY,
        "sla_due_at": NOW + timedelta(hours=2),
        "score": 0.87,
        "top_terms": ["路灯", "不亮"],
        "evidence_count": len(texts),
    }
    post_url = fields.pop("post_url", None)
    values.update(fields)
    lead = Lead(**values)
    session.add(lead)
    session.flush()
    for text in texts:
        n = next(_ids)
        post = Post(
            platform_id="weibo",
            external_id=f"p{n}-{uuid.uuid4().hex[:8]}",
            url=post_url or f"https://m.weibo.cn/detail/{n}",
            author_key=f"author{n:04d}",
            text=text,
            published_at=NOW - timedelta(hours=1),
            content_hash=f"{n:064d}",
        )
        session.add(post)
        session.flush()
        session.add(LeadPost(lead_id=lead.id, post_id=post.id))
    session.commit()
    return lead


@pytest.fixture
def make_lead(session: Session) -> Callable[..., Lead]:
    def factory(*texts: str, **fields: Any) -> Lead:
        return add_lead(session, texts or ("小区门口路灯坏了一个月没人修",), **fields)

    return factory


@pytest.fixture
def dispatch_db(tmp_path: Path) -> Path:
    return tmp_path / "dispatch.db"


@pytest.fixture
def lead_adder() -> Callable[..., Lead]:
    """add_lead itself, for tests that manage their own sessions (e.g. against a served app)."""
    return add_lead


@pytest.fixture
def app(settings: Settings, session: Session) -> Iterator[FastAPI]:
    """The review app with two analysts, alice and bob (passwords "<name>-pw"); modules needing other
    accounts define their own."""
    with review_app(
        settings, session, [("alice", "alice-pw", "analyst"), ("bob", "bob-pw", "analyst")]
    ) as application:
        yield application
