"""Deleting what is kept only for a while: run history, closed crawl gaps, posts no lead took, raw bodies.

What a lead refers to is never deleted: its evidence posts, the posts those are comments under, and
the raw bodies behind any kept post. Tickets and audit events refer only to leads, which stay.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, delete, exists, func, select
from sqlalchemy.orm import Session, aliased

from storage.base import utcnow
from storage.models import (
    Classification,
    CrawlGap,
    DetectionStatus,
    GapState,
    JobRun,
    LeadPost,
    Post,
    RawResponse,
)

#: Rows deleted per statement: bounded transactions, and under SQLite's bound-parameter limit.
BATCH = 500


def _deletable_posts(cutoff: datetime) -> object:
    """Posts fetched before ``cutoff``, already judged by detection, that are no lead's evidence and
    that no lead's evidence is a comment under."""
    evidence = aliased(Post)
    in_lead = exists().where(LeadPost.post_id == Post.id)
    parent_of_evidence = exists().where(
        LeadPost.post_id == evidence.id,
        evidence.platform_id == Post.platform_id,
        evidence.parent_external_id == Post.external_id,
    )
    return (
        select(Post.id)
        .where(Post.fetched_at < cutoff, Post.detection_status == DetectionStatus.DETECTED)
        .where(~in_lead, ~parent_of_evidence)
        .order_by(Post.id)
        .limit(BATCH)
    )


def purge_posts(session: Session, cutoff: datetime) -> int:
    """Delete old posts no lead refers to, with their classifications; how many posts went."""
    deleted = 0
    query = _deletable_posts(cutoff)
    while ids := list(session.scalars(query)):  # type: ignore[call-overload]
        session.execute(delete(Classification).where(Classification.post_id.in_(ids)))
        session.execute(delete(Post).where(Post.id.in_(ids)))
        deleted += len(ids)
    return deleted


def purge_raw_responses(session: Session, cutoff: datetime) -> int:
    """Delete raw bodies fetched before ``cutoff`` that no kept post points to."""
    unused = (
        select(RawResponse.id)
        .where(RawResponse.fetched_at < cutoff, ~exists().where(Post.raw_response_id == RawResponse.id))
        .order_by(RawResponse.id)
        .limit(BATCH)
    )
    deleted = 0
    while ids := list(session.scalars(unused)):
        session.execute(delete(RawResponse).where(RawResponse.id.in_(ids)))
        deleted += len(ids)
    return deleted


def purge_expired(
    session: Session,
    *,
    job_runs_days: int,
    raw_responses_days: int,
    crawl_gaps_days: int,
    posts_days: int,
    now: datetime | None = None,
) -> dict[str, int]:
    """Delete everything past its retention; the number of rows deleted per table.

    Posts go before raw bodies, so the bodies only deleted posts pointed to go in the same run.
    """
    now = now or utcnow()
    runs = session.execute(
        delete(JobRun).where(JobRun.started_at < now - timedelta(days=job_runs_days))
    ).rowcount  # type: ignore[attr-defined]
    closed_before = now - timedelta(days=crawl_gaps_days)
    gaps = session.execute(
        delete(CrawlGap).where(
            CrawlGap.state != GapState.OPEN,
            and_(func.coalesce(CrawlGap.closed_at, CrawlGap.last_tried_at) < closed_before),
        )
    ).rowcount  # type: ignore[attr-defined]
    posts = purge_posts(session, now - timedelta(days=posts_days))
    bodies = purge_raw_responses(session, now - timedelta(days=raw_responses_days))
    return {"job_runs": runs, "crawl_gaps": gaps, "posts": posts, "raw_responses": bodies}
