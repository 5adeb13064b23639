"""Engine and session setup: SQLite (WAL, foreign keys, busy timeout) or PostgreSQL; Alembic upgrade."""

from __future__ import annotations

import uuid
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Engine, create_engine, event, make_url, text
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000

#: Every engine this process made, so a forked child can let go of the parent's connections.
_ENGINES: weakref.WeakSet[Engine] = weakref.WeakSet()
#: Pools inherited through fork(): kept referenced so their connections are never closed (or
#: garbage-collected) by the child, which would end the parent's sessions on the same sockets.
_INHERITED_POOLS: list[Any] = []


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Python's sqlite3 opens transactions lazily and lets "BEGIN" be issued by SQLAlchemy below,
    # so the pragmas run outside any transaction as SQLite requires.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin(conn: Any) -> None:
    # BEGIN IMMEDIATE takes the write lock up front, so two writers queue on busy_timeout
    # instead of failing with "database is locked" when a read transaction tries to upgrade.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine_url(url: str) -> URL:
    """``url`` as SQLAlchemy's URL, with PostgreSQL's plain scheme given the psycopg 3 driver."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return make_url(url)


def make_engine(url: str, echo: bool = False) -> Engine:
    """Create an engine; for SQLite, ensure the directory exists and set the pragmas on connect."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, echo=echo, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)

        @event.listens_for(engine, "connect")
        def _disable_pysqlite_begin(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None

        event.listen(engine, "begin", _sqlite_begin)
    else:
        # No server-side prepared statements (psycopg prepares a statement on its fifth run): PostgreSQL
        # then soon plans it once for any values, and a crawl's tables start the night empty. The
        # stored-posts lookup's generic plan, made on an empty table, scanned every post of the
        # platform for each batch (the external ids a filter, not an index condition), so each batch
        # cost more as the night went on. Planned with its values, it is a few index probes.
        engine = create_engine(
            make_engine_url(url), echo=echo, pool_pre_ping=True, connect_args={"prepare_threshold": None}
        )
    _ENGINES.add(engine)
    return engine


def forget_inherited_connections() -> None:
    """In a child made by fork(): give every inherited engine a fresh pool without touching the
    parent's connections (SQLAlchemy's ``dispose(close=False)`` recipe), and forget cached factories
    so the child opens its own."""
    for engine in list(_ENGINES):
        _INHERITED_POOLS.append(engine.pool)
        engine.dispose(close=False)
    session_factory_for.cache_clear()


def dispose_engines_on(url: str) -> None:
    """Close the pooled connections of every engine this process made on ``url``."""
    target = make_engine_url(url)
    for engine in list(_ENGINES):
        if engine.url == target:
            engine.dispose()


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@cache
def session_factory_for(url: str, echo: bool = False) -> sessionmaker[Session]:
    """One engine (and connection pool) per database URL for the life of the process."""
    return make_session_factory(make_engine(url, echo=echo))


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def alembic_config(url: str) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` to ``revision`` (idempotent)."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def head_revision() -> str:
    """The newest migration's revision: the schema this code expects."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None  # the migrations folder ships with the code
    return head


def schema_revision(url: str) -> str | None:
    """The revision the database at ``url`` is at, without changing anything (None: no schema yet).

    A SQLite file that does not exist is not created: a read-only command must leave no trace.
    """
    from alembic.runtime.migration import MigrationContext

    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if not path or path == ":memory:" or not Path(path).exists():
            return None
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def postgres_schema_url(base_url: str, schema: str) -> str:
    """``base_url`` with every connection's search_path set to ``schema``."""
    separator = "&" if "?" in base_url else "?"
    return f"{base_url}{separator}options=-csearch_path%3D{schema}"


@contextmanager
def temporary_postgres_schema(base_url: str, prefix: str) -> Iterator[str]:
    """A fresh, empty schema on the PostgreSQL server at ``base_url``, as a URL; dropped afterwards."""
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = make_engine(base_url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = postgres_schema_url(base_url, schema)
    try:
        yield url
    finally:
        # Engines made on the schema (cached factories keep theirs for the process's life) would
        # otherwise hold idle connections to a dropped schema until the server runs out of slots.
        dispose_engines_on(url)
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
