"""The vocabulary in the database: every enum-valued column refuses a value storage.vocabulary lacks
(migration 0016), on every configured backend, and the migration keeps every row of an older database."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from itertools import cycle

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from storage.db import alembic_config, make_engine, schema_revision, upgrade
from storage.models import (
    Alert,
    AlertDelivery,
    AuditEvent,
    Base,
    Classification,
    CrawlGap,
    CrawlRun,
    JobRun,
    Lead,
    LeadPost,
    Platform,
    Post,
    Ticket,
    User,
)
from storage.vocabulary import (
    AccessStatus,
    Action,
    AlertKind,
    CrawlRunStatus,
    DeliveryState,
    DetectionStatus,
    GapKind,
    GapState,
    JobOutcome,
    Jurisdiction,
    LeadState,
    Priority,
    ReconcileOutcome,
    RequestType,
    Role,
    TicketState,
)

AT = datetime(2026, 11, 1, tzinfo=UTC)

#: Every enum-valued column that migration 0016 checks, and the vocabulary it holds.
CHECKED: dict[tuple[str, str], type[enum.StrEnum]] = {
    ("platforms", "access_status"): AccessStatus,
    ("crawl_runs", "status"): CrawlRunStatus,
    ("crawl_runs", "access_status"): AccessStatus,
    ("crawl_gaps", "kind"): GapKind,
    ("crawl_gaps", "state"): GapState,
    ("posts", "detection_status"): DetectionStatus,
    ("classifications", "jurisdiction"): Jurisdiction,
    ("leads", "state"): LeadState,
    ("leads", "priority"): Priority,
    ("leads", "request_type"): RequestType,
    ("audit_events", "action"): Action,
    ("tickets", "state"): TicketState,
    ("tickets", "reconcile_outcome"): ReconcileOutcome,
    ("users", "role"): Role,
}
#: Enum-valued columns made after 0016, checked from their first migration (0017, 0018, 0019).
CHECKED_FROM_THE_START: dict[tuple[str, str], type[enum.StrEnum]] = {
    ("job_runs", "outcome"): JobOutcome,
    ("alerts", "kind"): AlertKind,
    ("alert_deliveries", "state"): DeliveryState,
    ("classifications", "request_type"): RequestType,
}
#: Values a migration after 0016 added to a column 0016 checks (0019): no database of 0015 holds them.
ADDED_AFTER_0016: dict[tuple[str, str], set[str]] = {("posts", "detection_status"): {"classified"}}
EVERY_CHECKED = CHECKED | CHECKED_FROM_THE_START


def _rows(session: Session, count: int, as_of_0015: bool = False) -> dict[str, object]:
    """``count`` rows of every table with an enum-valued column, values taken in turn from each
    vocabulary (so with ``count`` at the largest vocabulary's size, every value is stored)."""
    rows: dict[str, list[object]] = {}

    def values(table: str, column: str) -> list[str]:
        later = ADDED_AFTER_0016.get((table, column), set()) if as_of_0015 else set()
        vocabulary = [value for value in CHECKED[(table, column)] if value not in later]
        return [value for value, _ in zip(cycle(vocabulary), range(count), strict=False)]

    session.add(Platform(id="weibo", name="微博", kind="json_feed"))
    session.flush()
    rows["platforms"] = [
        Platform(id=f"p{i}", name="平台", kind="rss", access_status=status)
        for i, status in enumerate(values("platforms", "access_status"))
    ]
    rows["crawl_runs"] = [
        CrawlRun(platform_id="weibo", status=status, access_status=access)
        for status, access in zip(
            values("crawl_runs", "status"), values("crawl_runs", "access_status"), strict=True
        )
    ]
    rows["crawl_gaps"] = [
        CrawlGap(platform_id="weibo", fingerprint=f"f{i}", kind=kind, url="https://x.invalid/", state=state)
        for i, (kind, state) in enumerate(
            zip(values("crawl_gaps", "kind"), values("crawl_gaps", "state"), strict=True)
        )
    ]
    rows["posts"] = [
        Post(
            platform_id="weibo",
            external_id=str(i),
            url=f"https://x.invalid/{i}",
            text="井盖丢失",
            content_hash="h" * 64,
            detection_status=status,
        )
        for i, status in enumerate(values("posts", "detection_status"))
    ]
    rows["leads"] = [
        Lead(summary="井盖丢失", state=state, priority=priority, request_type=kind)
        for state, priority, kind in zip(
            values("leads", "state"),
            values("leads", "priority"),
            values("leads", "request_type"),
            strict=True,
        )
    ]
    rows["users"] = [
        User(username=f"u{i}", password_hash="x", role=role) for i, role in enumerate(values("users", "role"))
    ]
    for objects in rows.values():
        session.add_all(objects)
    session.flush()
    posts, leads = rows["posts"], rows["leads"]
    judged = [
        {"post_id": post.id, "model_version": "m", "relevance": 0.9, "is_lead": True, "jurisdiction": where}  # type: ignore[attr-defined]
        for post, where in zip(posts, values("classifications", "jurisdiction"), strict=True)
    ]
    if as_of_0015:  # without the columns 0019 added: insert only the columns named
        session.execute(sa.insert(Classification), judged)
    rows["classifications"] = [] if as_of_0015 else [Classification(**row) for row in judged]
    evidence = [
        {"lead_id": lead.id, "post_id": post.id}  # type: ignore[attr-defined]
        for lead, post in zip(leads, posts, strict=True)
    ]
    if as_of_0015:  # without the column 0020 added
        session.execute(sa.insert(LeadPost), evidence)
    rows["lead_posts"] = [] if as_of_0015 else [LeadPost(**row) for row in evidence]
    rows["audit_events"] = [
        AuditEvent(lead_id=leads[0].id, actor="alice", action=action)  # type: ignore[attr-defined]
        for action in values("audit_events", "action")
    ]
    rows["tickets"] = [
        Ticket(
            lead_id=lead.id,  # type: ignore[attr-defined]
            idempotency_key=f"k{lead.id}",  # type: ignore[attr-defined]
            payload={},
            state=state,
            reconcile_outcome=outcome,
        )
        for lead, state, outcome in zip(
            leads, values("tickets", "state"), values("tickets", "reconcile_outcome"), strict=False
        )
    ]
    for table in ("classifications", "lead_posts", "audit_events", "tickets"):
        session.add_all(rows[table])
    session.flush()
    return {table: objects[0] for table, objects in rows.items() if objects}


def _later_rows(session: Session) -> dict[str, object]:
    """One row of each table made after 0016 with an enum-valued column."""
    run = JobRun(job_id="push_tickets", outcome=JobOutcome.OK, host="h", pid=1)
    alert = Alert(event_key="urgent:lead:1", kind=AlertKind.URGENT_LEAD, title="t", body="b")
    session.add_all([run, alert])
    session.flush()
    delivery = AlertDelivery(alert_id=alert.id, channel="ops", state=DeliveryState.PENDING, attempts=0)
    session.add(delivery)
    session.flush()
    return {"job_runs": run, "alerts": alert, "alert_deliveries": delivery}


def test_every_enum_valued_column_has_a_check_named_for_it() -> None:
    enum_columns = {
        (table.name, column.name): {
            constraint.name for constraint in table.constraints if isinstance(constraint, sa.CheckConstraint)
        }
        for table in Base.metadata.tables.values()
        for column in table.columns
        if isinstance(column.type, sa.Enum)
    }
    assert set(enum_columns) == set(EVERY_CHECKED)
    assert all(f"ck_{table}_{column}" in names for (table, column), names in enum_columns.items())


@pytest.mark.parametrize(("table", "column"), list(EVERY_CHECKED), ids=[f"{t}.{c}" for t, c in EVERY_CHECKED])
def test_the_database_refuses_a_value_outside_the_vocabulary(
    session: Session, table: str, column: str
) -> None:
    row = (_rows(session, 1) | _later_rows(session))[table]
    key = row.id  # type: ignore[attr-defined]
    with pytest.raises(IntegrityError, match=f"ck_{table}_{column}"):
        session.execute(sa.text(f"UPDATE {table} SET {column} = 'bogus' WHERE id = :id"), {"id": key})


def test_the_migration_keeps_every_row_of_a_database_holding_every_valid_value(database_url: str) -> None:
    command.downgrade(alembic_config(database_url), "0015")
    engine = make_engine(database_url)
    largest = max(len(vocabulary) for vocabulary in CHECKED.values())
    tables_at_0015 = set(sa.inspect(engine).get_table_names())
    with Session(engine) as session:
        _rows(session, largest, as_of_0015=True)
        session.commit()
        before = {
            name: session.scalar(select(sa.func.count()).select_from(table))
            for name, table in Base.metadata.tables.items()
            if name in tables_at_0015
        }
    engine.dispose()
    upgrade(database_url)
    engine = make_engine(database_url)
    with engine.connect() as connection:
        stored = {
            (table, column): set(
                connection.scalars(
                    sa.text(f"SELECT DISTINCT {column} FROM {table} WHERE {column} IS NOT NULL")
                )
            )
            for table, column in CHECKED
        }
        after = {
            name: connection.scalar(select(sa.func.count()).select_from(table))
            for name, table in Base.metadata.tables.items()
            if name in tables_at_0015
        }
    engine.dispose()
    assert stored == {
        key: {member.value for member in vocabulary} - ADDED_AFTER_0016.get(key, set())
        for key, vocabulary in CHECKED.items()
    }
    assert after == before


def test_the_migration_stops_on_a_stored_value_outside_the_vocabulary_and_changes_nothing(
    database_url: str,
) -> None:
    command.downgrade(alembic_config(database_url), "0015")
    engine = make_engine(database_url)
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO platforms (id, name, kind, enabled, paused, updated_at) "
                "VALUES ('weibo', '微博', 'json_feed', true, false, :at)"
            ),
            {"at": AT},
        )
        connection.execute(
            sa.text(
                "INSERT INTO crawl_runs (id, platform_id, started_at, status, requests, items, posts_stored, "
                "errors, stats, responses_by_status, dropped, layout_changed) "
                "VALUES (1, 'weibo', :at, 'error', 0, 0, 0, 0, '{}', '{}', '{}', false)"
            ),
            {"at": AT},
        )
    engine.dispose()
    with pytest.raises(RuntimeError, match=r"nothing changed: .*crawl_runs\.status holds 'error'$"):
        upgrade(database_url)
    engine = make_engine(database_url)
    with engine.connect() as connection:
        status = connection.scalar(sa.text("SELECT status FROM crawl_runs WHERE id = 1"))
    engine.dispose()
    assert (schema_revision(database_url), status) == ("0015", "error")
