"""Test databases migrated once per session: the shared database each backend's rolled-back tests run
in, and the migrated SQLite template that committed tests copy."""

from __future__ import annotations

import itertools
import os
import shutil
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Connection, Engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from storage.db import make_engine, temporary_postgres_schema, upgrade
from storage.models import Base

POSTGRES_URL = os.environ.get("WEISU_TEST_DATABASE_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if POSTGRES_URL else [])


@dataclass
class SharedDatabase:
    """One backend's database, migrated once for the session and never committed to by a test."""

    url: str
    engine: Engine
    #: Rows per table right after migrating: anything else after a test's rollback is a leak.
    rows: dict[str, int]
    #: PostgreSQL sequences right after migrating (name, last value, called): a rollback does not
    #: rewind a sequence, and tests expect the ids a fresh database hands out.
    sequences: list[tuple[str, int, bool]] = field(default_factory=list)

    def rewind_sequences(self, connection: Connection) -> None:
        """Set PostgreSQL's sequences back to where migrating left them (setval is not transactional)."""
        if self.sequences:
            connection.execute(select(*[func.setval(*sequence) for sequence in self.sequences]))

    def leaked_rows(self, connection: Connection) -> dict[str, int]:
        """Tables whose row count differs from the migrated database's: what a test committed on a
        connection of its own, outside the transaction that was rolled back."""
        counts = row_counts(connection)
        connection.rollback()
        return {name: n for name, n in counts.items() if n != self.rows[name]}


def row_counts(connection: Connection) -> dict[str, int]:
    """{table: rows} for every table of the models, in one query."""
    tables = Base.metadata.sorted_tables
    query = select(*[select(func.count()).select_from(t).scalar_subquery().label(t.name) for t in tables])
    return dict(connection.execute(query).one()._mapping)


def _sequences(connection: Connection) -> list[tuple[str, int, bool]]:
    if connection.dialect.name != "postgresql":
        return []
    query = text(
        "SELECT sequencename, coalesce(last_value, 1), last_value IS NOT NULL"
        " FROM pg_sequences WHERE schemaname = current_schema()"
    )
    return [(name, value, called) for name, value, called in connection.execute(query)]


class MigratedDatabases:
    """The session's migrated databases: one shared database per backend, and for SQLite a migrated
    template file that committed tests copy (a copy is the same fresh database, without migrating)."""

    def __init__(self, root: Path, stack: ExitStack) -> None:
        self._root = root
        self._stack = stack
        self._shared: dict[str, SharedDatabase] = {}
        self._template: Path | None = None
        self._generations = itertools.count()  # a discarded shared database is never reused

    def shared(self, backend: str) -> SharedDatabase:
        if backend not in self._shared:
            self._shared[backend] = self._migrate_shared(backend)
        return self._shared[backend]

    def discard(self, backend: str) -> None:
        """Forget a shared database a test has written to; the next test migrates a clean one."""
        self._shared.pop(backend).engine.dispose()

    def _migrate_shared(self, backend: str) -> SharedDatabase:
        if backend == "sqlite":
            url = f"sqlite:///{self._root / f'shared-{next(self._generations)}.db'}"
        else:
            assert POSTGRES_URL
            url = self._stack.enter_context(temporary_postgres_schema(POSTGRES_URL, "shared"))
        upgrade(url)
        engine = make_engine(url)
        self._stack.callback(engine.dispose)
        with engine.connect() as connection:
            shared = SharedDatabase(url, engine, row_counts(connection), _sequences(connection))
            connection.rollback()
        return shared

    def sqlite_copy(self, target: Path) -> str:
        """A fresh migrated SQLite database at ``target``: a copy of the session's template file."""
        if self._template is None:
            template = self._root / "template.db"
            upgrade(f"sqlite:///{template}")
            self._template = template
        shutil.copyfile(self._template, target)
        # Alembic's engine is disposed after migrating, so the log is normally checkpointed away.
        if (wal := Path(f"{self._template}-wal")).exists():
            shutil.copyfile(wal, f"{target}-wal")
        return f"sqlite:///{target}"


@dataclass(frozen=True)
class DatabaseUnderTest:
    """Where a test's sessions go: its URL, and a factory of sessions on it."""

    url: str
    session_factory: sessionmaker[Session]
    committed: bool


def joined_factory(connection: Connection) -> sessionmaker[Session]:
    """Sessions joined into the test's transaction on ``connection``."""
    # Each Session works in a SAVEPOINT of the test's transaction: its commit releases the savepoint,
    # its rollback returns to it, and the test's transaction is rolled back at the end.
    return sessionmaker(bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint")
