"""purge_expired deletes exactly what its retention lets go, and nothing a lead, ticket or audit event
refers to; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import (
    AuditEvent,
    Classification,
    CrawlGap,
    DetectionStatus,
    GapKind,
    GapState,
    JobOutcome,
    JobRun,
    Lead,
    LeadPost,
    Platform,
    Post,
    RawResponse,
    Ticket,
)
from storage.retention import purge_expired

#: The real clock: the scheduled job (last test) reads it, and the rest pass it explicitly.
NOW = datetime.now(UTC)
OLD = NOW - timedelta(days=61)  # beyond every retention below
RECENT = NOW - timedelta(days=5)  # within every retention below
DAYS = {"job_runs_days": 30, "raw_responses_days": 30, "crawl_gaps_days": 30, "posts_days": 60}


def _body(session: Session, name: str, fetched_at: datetime) -> RawResponse:
    body = RawResponse(
        platform_id="weibo",
        url=f"https://m.weibo.cn/{name}",
        fetched_at=fetched_at,
        sha256=name * 4,
        body_gz=b"x",
    )
    session.add(body)
    session.flush()
    return body


def _post(session: Session, external_id: str, fetched_at: datetime, **fields: Any) -> Post:
    values: dict[str, Any] = {
        "platform_id": "weibo",
        "external_id": external_id,
        "url": f"https://m.weibo.cn/detail/{external_id}",
        "text": "小区门口路灯坏了",
        "content_hash": external_id.ljust(64, "0"),
        "fetched_at": fetched_at,
        "detection_status": DetectionStatus.DETECTED,
    }
    post = Post(**(values | fields))
    session.add(post)
    session.flush()
    return post


def _gap(session: Session, name: str, state: GapState, closed_at: datetime | None) -> None:
    session.add(
        CrawlGap(
            platform_id="weibo",
            fingerprint=name.ljust(64, "0"),
            kind=GapKind.LISTING,
            url=f"https://m.weibo.cn/{name}",
            state=state,
            first_failed_at=OLD,
            last_tried_at=closed_at or OLD,
            closed_at=closed_at,
        )
    )


@pytest.fixture
def world(session: Session) -> dict[str, Any]:
    session.add(Platform(id="weibo", name="微博", kind="json_feed"))
    session.flush()
    kept_body = _body(session, "kept", OLD)
    orphaned_body = _body(session, "orph", OLD)
    unused_old = _body(session, "unus", OLD)
    unused_new = _body(session, "newb", RECENT)
    evidence = _post(session, "evidence", OLD, raw_response_id=kept_body.id)
    video = _post(session, "video", OLD)  # the post a lead's evidence comment hangs under
    comment = _post(session, "comment", OLD, parent_external_id="video")
    unwanted = _post(session, "unwanted", OLD, raw_response_id=orphaned_body.id)
    session.add(Classification(post_id=unwanted.id, model_version="m1", relevance=0.1, is_lead=False))
    fresh = _post(session, "fresh", RECENT)
    undetected = _post(session, "undetected", OLD, detection_status=DetectionStatus.NEW)
    lead = Lead(summary="南山区路灯不亮", first_seen_at=OLD, last_seen_at=OLD, found_at=OLD)
    session.add(lead)
    session.flush()
    session.add_all(
        [LeadPost(lead_id=lead.id, post_id=evidence.id), LeadPost(lead_id=lead.id, post_id=comment.id)]
    )
    session.add(Ticket(lead_id=lead.id, idempotency_key="weisu-lead-1", payload={}))
    session.add(AuditEvent(lead_id=lead.id, actor="alice", action="promote", at=OLD))
    _gap(session, "open", GapState.OPEN, None)
    _gap(session, "recovered-old", GapState.RECOVERED, OLD)
    _gap(session, "aged-old", GapState.AGED_OUT, OLD)
    _gap(session, "recovered-new", GapState.RECOVERED, RECENT)
    for started in (OLD, RECENT):
        session.add(JobRun(job_id="push_tickets", outcome=JobOutcome.OK, started_at=started, host="h", pid=1))
    session.flush()
    return {
        "kept_posts": {evidence.id, video.id, comment.id, fresh.id, undetected.id},
        "kept_bodies": {kept_body.id, unused_new.id},
        "gone_bodies": {orphaned_body.id, unused_old.id},
        "lead": lead.id,
    }


def test_purge_counts_what_it_deleted_per_table(session: Session, world: dict[str, Any]) -> None:
    assert purge_expired(session, now=NOW, **DAYS) == {
        "job_runs": 1,
        "crawl_gaps": 2,
        "posts": 1,
        "raw_responses": 2,
    }


def test_purge_keeps_evidence_the_posts_it_hangs_under_fresh_and_undetected_posts(
    session: Session, world: dict[str, Any]
) -> None:
    purge_expired(session, now=NOW, **DAYS)
    assert set(session.scalars(select(Post.id))) == world["kept_posts"]
    assert list(session.scalars(select(Classification.post_id))) == []


def test_purge_keeps_the_raw_bodies_kept_posts_point_to_and_recent_ones(
    session: Session, world: dict[str, Any]
) -> None:
    purge_expired(session, now=NOW, **DAYS)
    assert set(session.scalars(select(RawResponse.id))) == world["kept_bodies"]


def test_purge_keeps_open_and_recently_closed_gaps_and_recent_runs(
    session: Session, world: dict[str, Any]
) -> None:
    purge_expired(session, now=NOW, **DAYS)
    assert sorted(g.fingerprint.rstrip("0") for g in session.scalars(select(CrawlGap))) == [
        "open",
        "recovered-new",
    ]
    assert [r.started_at for r in session.scalars(select(JobRun))] == [RECENT]


def test_purge_never_touches_leads_their_evidence_tickets_or_audit(
    session: Session, world: dict[str, Any]
) -> None:
    purge_expired(session, now=NOW, **DAYS)
    lead = world["lead"]
    assert session.get(Lead, lead) is not None
    assert len(list(session.scalars(select(LeadPost).where(LeadPost.lead_id == lead)))) == 2
    assert session.scalar(select(Ticket.lead_id)) == lead
    assert session.scalar(select(AuditEvent.lead_id)) == lead


def test_a_second_purge_deletes_nothing_more(session: Session, world: dict[str, Any]) -> None:
    purge_expired(session, now=NOW, **DAYS)
    assert purge_expired(session, now=NOW, **DAYS) == {
        "job_runs": 0,
        "crawl_gaps": 0,
        "posts": 0,
        "raw_responses": 0,
    }


def test_the_purge_job_returns_its_counts_for_the_run_history(
    session: Session, world: dict[str, Any], database_url: str
) -> None:
    import schedules
    from settings import RetentionSettings, load_settings

    session.commit()
    settings = load_settings(env={"WEISU_DATABASE_URL": database_url}).changed(
        retention=RetentionSettings(**DAYS)
    )
    assert schedules.purge_expired(settings) == {
        "job_runs": 1,
        "crawl_gaps": 2,
        "posts": 1,
        "raw_responses": 2,
    }
