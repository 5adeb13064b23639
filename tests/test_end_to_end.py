"""The whole path on a temporary database: simulator → crawl → detect → verify → push → dispatch simulator."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from classify.detection import detect_new_posts
from classify.training import TrainReport
from cli import initialise_database
from crawlers.runner import run_crawl
from fixtures.dispatch_simulator.app import create_app as create_dispatch_app
from fixtures.serving import serve_in_thread
from fixtures.simulator.app import create_app as create_platform_app
from settings import load_settings
from storage.db import make_engine, make_session_factory, session_scope
from storage.models import Classification, Lead, LeadPost, Post, Ticket, TicketState
from verify import workflow
from verify.pusher import push_pending

pytestmark = pytest.mark.e2e
LEADS_TO_VERIFY = 3


def test_every_stage_hands_exact_counts_to_the_next(
    sqlite_url: str,
    trained: TrainReport,
    activate_model: Callable[[Session, TrainReport], None],
    tmp_path: Path,
) -> None:
    with (
        serve_in_thread(create_platform_app(seed=42)) as simulator_url,
        serve_in_thread(create_dispatch_app(tmp_path / "dispatch.db")) as dispatch_url,
    ):
        settings = load_settings(
            env={
                "WEISU_DATABASE_URL": sqlite_url,
                "WEISU_SIMULATOR_URL": simulator_url,
                "WEISU_DISPATCH_URL": dispatch_url,
                "WEISU_MODEL_DIR": str(tmp_path / "models"),
            }
        )
        initialise_database(settings)
        factory = make_session_factory(make_engine(settings.database_url))
        with session_scope(factory) as session:
            activate_model(session, trained)

        # Crawl: every post the simulator serves is stored once; a second crawl adds nothing.
        served = httpx.get(f"{simulator_url}/_truth").json()["posts"]
        first = run_crawl(settings, None)
        # 1,013 before comment discovery, then 193 comments under found posts, 70 Tieba floors and the
        # 46 videos, notes and articles of the thread listings (1,322); then 腾讯新闻's, 南方+'s and
        # 知乎's threads: 18 articles of the two new listings and 69 comments (1,409).
        assert sum(r.posts_stored for r in first) == len(served) == 1409
        assert {r.status for r in first} == {"ok"}
        assert sum(r.posts_stored for r in run_crawl(settings, None)) == 0
        with session_scope(factory) as session:
            assert session.scalar(select(func.count()).select_from(Post)) == len(served)

        # Detect: every post is classified once; every lead post is evidence of exactly one lead.
        summary = detect_new_posts(settings, factory)
        assert summary.classified == len(served)
        with session_scope(factory) as session:
            assert session.scalar(select(func.count()).select_from(Classification)) == len(served)
            leads = list(session.scalars(select(Lead).order_by(Lead.id)))
            evidence = session.scalar(select(func.count()).select_from(LeadPost))
            assert len(leads) == summary.leads_created > 0
            assert sum(lead.evidence_count for lead in leads) == evidence
        assert detect_new_posts(settings, factory).classified == 0

        # Verify: an analyst claims and verifies the first leads; each becomes one queued ticket.
        chosen = [lead.id for lead in leads[:LEADS_TO_VERIFY]]
        for lead_id in chosen:
            with session_scope(factory) as session:
                workflow.claim(session=session, lead_id=lead_id, actor="analyst", settings=settings)
            with session_scope(factory) as session:
                workflow.verify_and_promote(
                    session=session, lead_id=lead_id, actor="analyst", settings=settings
                )

        # Push: the dispatch simulator accepts each ticket once, and every lead learns its id.
        pushed = push_pending(settings, factory)
        assert (pushed.attempted, pushed.sent, pushed.failed) == (LEADS_TO_VERIFY, LEADS_TO_VERIFY, 0)
        assert push_pending(settings, factory).attempted == 0
        received = httpx.get(f"{dispatch_url}/_requests").json()["requests"]
        with session_scope(factory) as session:
            tickets = list(session.scalars(select(Ticket).order_by(Ticket.lead_id)))
        assert [t.lead_id for t in tickets] == chosen
        assert all(t.state == TicketState.SENT for t in tickets)
        assert sorted(t.service_request_id for t in tickets) == sorted(
            r["service_request_id"] for r in received
        )
        assert len(received) == LEADS_TO_VERIFY
