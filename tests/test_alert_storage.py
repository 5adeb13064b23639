"""The alerts tables (migration 0018) and the shared queries alerts use, on SQLite and PostgreSQL: an
event key is stored once, a platform's recent finished runs come newest first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.orm import Session

from storage.db import alembic_config, make_engine, upgrade
from storage.models import AlertKind, CrawlRun, Platform
from storage.queries import insert_alert, recent_finished_runs

T0 = datetime(2026, 11, 29, tzinfo=UTC)


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_migration_0018_adds_and_removes_the_alert_tables(database_url: str) -> None:
    assert {"alerts", "alert_deliveries"} <= _tables(database_url)
    config = alembic_config(database_url)
    before = ScriptDirectory.from_config(config).get_revision("0018").down_revision  # whatever 0018 follows
    command.downgrade(config, str(before))
    assert not {"alerts", "alert_deliveries"} & _tables(database_url)
    upgrade(database_url)
    assert {"alerts", "alert_deliveries"} <= _tables(database_url)


def test_an_event_key_is_stored_once(session: Session) -> None:
    values = {"event_key": "urgent:lead:1", "kind": AlertKind.URGENT_LEAD, "title": "t", "body": "b",
              "created_at": T0}  # fmt: skip
    first = insert_alert(session, values)
    again = insert_alert(session, {**values, "title": "other"})
    assert (isinstance(first, int), again) == (True, None)


def test_recent_finished_runs_are_the_newest_finished_ones_of_each_platform(session: Session) -> None:
    session.add_all([Platform(id="a", name="甲", kind="rss"), Platform(id="b", name="乙", kind="rss")])
    session.flush()
    rows = [("a", "ok", True), ("a", "interrupted", True), ("a", "ok", True), ("a", "running", False),
            ("a", "failed", True), ("b", "ok", True)]  # fmt: skip
    for index, (platform, status, finished) in enumerate(rows):
        started = T0 + timedelta(hours=index)
        session.add(
            CrawlRun(platform_id=platform, status=status, items=index, started_at=started,
                     finished_at=started + timedelta(minutes=1) if finished else None)
        )  # fmt: skip
    session.flush()
    runs = recent_finished_runs(session, 2)
    assert {key: [(r.status, r.items) for r in found] for key, found in runs.items()} == {
        "a": [("failed", 4), ("ok", 2)],
        "b": [("ok", 5)],
    }
