"""Storage behaviour on every configured backend: migrations, idempotent inserts, aware timestamps."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from waiting import wait_until

from storage.db import alembic_config, make_engine, make_session_factory, upgrade
from storage.models import Lead, LeadPost, Platform, Post, Priority, RequestType, Ticket
from storage.queries import (
    insert_posts,
    posts_awaiting_detection,
    stage_counts,
    stored_posts_of,
    sync_platforms,
)


def _post(external_id: str, **overrides: object) -> dict[str, object]:
    row: dict[str, object] = {
        "platform_id": "weibo",
        "external_id": external_id,
        "url": f"https://m.weibo.cn/detail/{external_id}",
        "text": "小区门口井盖丢失",
        "content_hash": "h" * 64,
    }
    row.update(overrides)
    return row


@pytest.fixture
def with_platform(session: Session) -> Session:
    sync_platforms(session, {"weibo": ("微博", "json_feed", True)})
    return session


def test_migration_creates_every_table(database_url: str) -> None:
    engine = make_engine(database_url)
    tables = set(inspect(engine).get_table_names())
    engine.dispose()
    expected = {
        "platforms", "crawl_runs", "posts", "classifications", "leads", "lead_posts",
        "audit_events", "tickets", "users", "models", "alembic_version",
    }  # fmt: skip
    assert expected <= tables


def _schema(database_url: str) -> tuple[str | None, dict[str, list[str]]]:
    """The stored revision and every table's columns."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            revision = connection.scalar(sa.text("SELECT version_num FROM alembic_version"))
        found = inspect(engine)
        return revision, {t: [c["name"] for c in found.get_columns(t)] for t in found.get_table_names()}
    finally:
        engine.dispose()


def test_upgrade_twice_is_a_no_op(database_url: str) -> None:
    upgrade(database_url)
    before = _schema(database_url)
    upgrade(database_url)
    head = ScriptDirectory.from_config(alembic_config(database_url)).get_current_head()
    assert _schema(database_url) == before
    assert before[0] == head


def test_insert_posts_skips_existing_platform_and_external_id(with_platform: Session) -> None:
    assert insert_posts(with_platform, [_post("1"), _post("2")]) == 2
    assert insert_posts(with_platform, [_post("2"), _post("3")]) == 1
    assert with_platform.scalar(select(Post.external_id).where(Post.external_id == "3")) == "3"
    assert len(list(with_platform.scalars(select(Post)))) == 3


def test_posts_awaiting_detection_pages_in_id_order(with_platform: Session) -> None:
    insert_posts(with_platform, [_post(str(i)) for i in range(5)])
    first = posts_awaiting_detection(with_platform, limit=2)
    second = posts_awaiting_detection(with_platform, limit=10, after_id=first[-1].id)
    assert [p.external_id for p in first] == ["0", "1"]
    assert [p.external_id for p in second] == ["2", "3", "4"]


def test_timestamps_come_back_aware_in_utc(with_platform: Session) -> None:
    shanghai = timezone(timedelta(hours=8))
    insert_posts(with_platform, [_post("t", published_at=datetime(2026, 5, 1, 8, 0, tzinfo=shanghai))])
    with_platform.expire_all()
    post = with_platform.scalars(select(Post)).one()
    assert post.published_at == datetime(2026, 5, 1, 0, 0, tzinfo=UTC)
    assert post.published_at.utcoffset() == timedelta(0)


def test_naive_datetimes_are_refused(with_platform: Session) -> None:
    with pytest.raises(Exception, match="naive datetime"):
        insert_posts(with_platform, [_post("n", published_at=datetime(2026, 5, 1, 8, 0))])


def test_a_post_is_evidence_for_at_most_one_lead(with_platform: Session) -> None:
    insert_posts(with_platform, [_post("e")])
    post_id = with_platform.scalar(select(Post.id))
    first, second = Lead(summary="a"), Lead(summary="b")
    with_platform.add_all([first, second])
    with_platform.flush()
    with_platform.add(LeadPost(lead_id=first.id, post_id=post_id))
    with_platform.flush()
    with_platform.add(LeadPost(lead_id=second.id, post_id=post_id))
    with pytest.raises(IntegrityError):
        with_platform.flush()


def test_one_ticket_per_lead_and_per_idempotency_key(with_platform: Session) -> None:
    lead = Lead(summary="x")
    with_platform.add(lead)
    with_platform.flush()
    with_platform.add(Ticket(lead_id=lead.id, idempotency_key="lead-1", payload={}))
    with_platform.flush()
    with_platform.add(Ticket(lead_id=lead.id, idempotency_key="lead-1b", payload={}))
    with pytest.raises(IntegrityError):
        with_platform.flush()


def test_stage_counts_count_urgent_open_leads(with_platform: Session) -> None:
    insert_posts(with_platform, [_post("c")])
    with_platform.add_all([Lead(summary="u", priority=Priority.URGENT), Lead(summary="o")])
    with_platform.flush()
    assert stage_counts(with_platform) == {
        "posts": 1, "leads": 2, "urgent_leads": 1, "tickets": 0, "tickets_accepted": 0,
    }  # fmt: skip


def test_sync_platforms_updates_without_deleting(with_platform: Session) -> None:
    sync_platforms(with_platform, {"weibo": ("新浪微博", "json_feed", False)})
    row = with_platform.get(Platform, "weibo")
    assert row is not None and (row.name, row.enabled) == ("新浪微博", False)


def _waiting_on_a_lock(engine: sa.Engine) -> bool:
    with engine.connect() as connection:
        waiting = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        return bool(connection.scalar(sa.text(f"{waiting} AND query LIKE 'INSERT INTO platforms%'")))


def test_two_processes_syncing_a_new_platform_at_once_both_succeed_and_store_it_once(
    database_url: str,
) -> None:
    """Crawl workers started together on a new database: the second's sync must not fail on the key."""
    engine = make_engine(database_url)
    factory = make_session_factory(engine)
    first, second = factory(), factory()
    try:
        sync_platforms(first, {"weibo": ("微博", "json_feed", True)})  # written, not yet committed
        with ThreadPoolExecutor(1) as pool:
            # On PostgreSQL the second's insert waits for the first's row, then finds it taken;
            # on SQLite the second waits for the first's write lock and then sees the row.
            syncing = pool.submit(
                lambda: (sync_platforms(second, {"weibo": ("微博", "json_feed", True)}), second.commit())
            )
            if engine.dialect.name == "postgresql":
                wait_until(
                    lambda: _waiting_on_a_lock(engine), 10, "the second sync to wait for the first's row"
                )
            first.commit()
            syncing.result(timeout=30)
        with factory() as reader:
            assert reader.scalars(select(Platform.id)).all() == ["weibo"]
    finally:
        first.close()
        second.close()
        engine.dispose()


def _insert_weibo_post(connection: sa.Connection, at: str) -> None:
    """Platform weibo and its post 1 (井盖丢失), detected, written with plain SQL at an old revision."""
    connection.execute(
        sa.text(
            "INSERT INTO platforms (id, name, kind, enabled, paused, updated_at) "
            "VALUES ('weibo', '微博', 'json_feed', true, false, :at)"
        ),
        {"at": at},
    )
    connection.execute(
        sa.text(
            "INSERT INTO posts (id, platform_id, external_id, url, text, fetched_at, likes, replies, "
            "reposts, content_hash, detection_status) VALUES (1, 'weibo', '1', 'https://x.invalid/1', "
            "'井盖丢失', :at, 0, 0, 0, :hash, 'detected')"
        ),
        {"at": at, "hash": "h" * 64},
    )


def test_leads_made_before_request_types_become_problems_and_keep_their_evidence(database_url: str) -> None:
    command.downgrade(alembic_config(database_url), "0010")
    engine = make_engine(database_url)
    at = "2026-11-01 00:00:00+00:00"
    with engine.begin() as connection:
        _insert_weibo_post(connection, at)
        connection.execute(
            sa.text(
                "INSERT INTO leads (id, state, priority, summary, score, top_terms, first_seen_at, "
                "last_seen_at, found_at, evidence_count, created_at, updated_at) VALUES "
                "(1, 'new', 'ordinary', '井盖丢失', 0.9, '[]', :at, :at, :at, 1, :at, :at)"
            ),
            {"at": at},
        )
        connection.execute(
            sa.text("INSERT INTO lead_posts (lead_id, post_id, added_at) VALUES (1, 1, :at)"), {"at": at}
        )
    engine.dispose()
    upgrade(database_url)
    engine = make_engine(database_url)
    with engine.connect() as connection:
        lead = connection.execute(sa.text("SELECT request_type, request_type_probability FROM leads")).one()
        evidence = connection.execute(sa.text("SELECT lead_id, post_id FROM lead_posts")).all()
    engine.dispose()
    assert (tuple(lead), [tuple(row) for row in evidence]) == (("problem", None), [(1, 1)])


def test_urgent_leads_from_before_0015_are_urgent_since_found_and_keep_deadline_and_evidence(
    database_url: str,
) -> None:
    command.downgrade(alembic_config(database_url), "0014")
    engine = make_engine(database_url)
    at, due = "2026-11-01 00:00:00+00:00", "2026-11-01 00:30:00+00:00"
    with engine.begin() as connection:
        _insert_weibo_post(connection, at)
        for lead_id, priority in ((1, "urgent"), (2, "ordinary")):
            connection.execute(
                sa.text(
                    "INSERT INTO leads (id, state, priority, summary, score, top_terms, first_seen_at, "
                    "last_seen_at, found_at, evidence_count, sla_due_at, created_at, updated_at) VALUES "
                    "(:id, 'new', :priority, '井盖丢失', 0.9, '[]', :at, :at, :at, 1, :due, :at, :at)"
                ),
                {"id": lead_id, "priority": priority, "at": at, "due": due},
            )
        connection.execute(
            sa.text("INSERT INTO lead_posts (lead_id, post_id, added_at) VALUES (1, 1, :at)"), {"at": at}
        )
    engine.dispose()
    upgrade(database_url)
    engine = make_engine(database_url)
    with Session(engine) as session:
        leads = session.execute(select(Lead.id, Lead.urgent_since, Lead.sla_due_at).order_by(Lead.id)).all()
        evidence = session.execute(select(LeadPost.lead_id, LeadPost.post_id)).all()
    engine.dispose()
    found = datetime(2026, 11, 1, tzinfo=UTC)
    assert [tuple(row) for row in leads] == [
        (1, found, found + timedelta(minutes=30)),
        (2, None, found + timedelta(minutes=30)),
    ]
    assert [tuple(row) for row in evidence] == [(1, 1)]


def test_the_database_refuses_an_unknown_request_type(session: Session) -> None:
    lead = Lead(summary="咨询垃圾分类", request_type=RequestType.QUESTION)
    session.add(lead)
    session.flush()
    with pytest.raises(IntegrityError):
        session.execute(
            sa.text("UPDATE leads SET request_type = 'complaint' WHERE id = :id"), {"id": lead.id}
        )


def test_a_lookup_run_many_times_on_postgresql_is_planned_with_its_values_each_time(
    backend: str, database_url: str
) -> None:
    if backend == "sqlite":
        pytest.skip("SQLite has no server-side prepared statements")
    engine = make_engine(database_url)
    with engine.connect() as connection:
        for _ in range(10):  # psycopg would prepare it on the fifth run
            stored_posts_of(Session(bind=connection), "weibo", ["1", "2"])
        # None kept on the server: so no generic plan, made once for any values while the table was empty.
        prepared = connection.scalar(sa.text("SELECT count(*) FROM pg_prepared_statements"))
    engine.dispose()
    assert prepared == 0
