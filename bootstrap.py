"""Start-up steps every entry point shares (cli, demo, schedules): settings, the database, after detection."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from settings import ConfigError, SecretError, Settings, load_settings, require_secrets

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from classify.detection import DetectSummary


class StartupError(Exception):
    """The program cannot start as asked; the message is one line saying why (shown before anything runs)."""


def startup_settings(config: Path | None = None, *secrets: str) -> Settings:
    """The validated settings; ``secrets`` names the ones the caller cannot run without (see
    settings.SECRET_VARIABLES). StartupError with one line when the file or a secret is wrong."""
    try:
        settings = load_settings(config)
        require_secrets(settings, *secrets)
    except SecretError as error:
        # One line naming the variable and how to make one; nothing has been touched yet.
        raise StartupError(str(error)) from None
    except ConfigError as error:
        # One line: file, key path, reason.
        raise StartupError(f"invalid configuration: {error}") from None
    return settings


def session_factory(settings: Settings) -> sessionmaker[Session]:
    """The process's one session factory (engine and pool) for the configured database."""
    from storage.db import session_factory_for

    return session_factory_for(settings.database_url, settings.database.echo)


def initialise_database(settings: Settings) -> None:
    """Upgrade to head, mirror the configured platforms, and load the starter responsibility list once.

    Only commands that write call this; read-only ones call require_current_schema instead.
    """
    from storage.db import session_scope, upgrade
    from storage.queries import sync_platforms
    from verify.responsibility import seed_if_empty

    upgrade(settings.database_url)
    with session_scope(session_factory(settings)) as session:
        sync_platforms(session, {k: (p.name, p.kind, p.enabled) for k, p in settings.platforms.items()})
        seed_if_empty(session=session, path=settings.resolve_path(settings.dispatch.responsibility_csv))


def require_current_schema(settings: Settings) -> None:
    """StartupError unless the database is already at the newest migration: a reading command never
    migrates (an upgrade is a decision for `weisu init` or a writing command, not a side effect of a look)."""
    from storage.db import head_revision, schema_revision

    current, head = schema_revision(settings.database_url), head_revision()
    if current != head:
        found = f"at revision {current}" if current else "not initialised"
        raise StartupError(f"the database is {found}, this version needs {head}: run `weisu init` first")


def detect_and_stamp(
    settings: Settings, factory: sessionmaker[Session], on_progress: Callable[[int, int], None] | None = None
) -> DetectSummary:
    """Detect new posts, then stamp the new leads' deadlines (verify owns the SLA, detection stores facts)."""
    from classify.detection import detect_new_posts
    from storage.db import session_scope
    from verify.sla import stamp_deadlines

    summary = detect_new_posts(settings, factory, on_progress=on_progress)
    with session_scope(factory) as session:
        stamp_deadlines(session, settings.review)
    return summary
