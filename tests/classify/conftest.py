"""Classify fixtures: the session's trained model (tests/conftest.py) activated on a test database."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from shared_databases import DatabaseUnderTest
from sqlalchemy.orm import Session, sessionmaker

from classify.training import TrainReport
from settings import Settings
from storage.db import make_engine, make_session_factory, session_scope


@pytest.fixture
def detect_env(
    database_under_test: DatabaseUnderTest,
    trained: TrainReport,
    tmp_path: Path,
    activate_model: Callable[[Session, TrainReport], None],
    make_settings: Callable[[str, Path], Settings],
) -> tuple[Settings, sessionmaker[Session]]:
    """Settings and a session factory on the test's database (rolled back at the end, unless the test
    asks for committed_database), whose active model is the trained one."""
    factory = database_under_test.session_factory
    with session_scope(factory) as session:
        activate_model(session, trained)
    return make_settings(database_under_test.url, tmp_path / "models"), factory


@pytest.fixture
def active_settings(
    sqlite_url: str,
    trained: TrainReport,
    tmp_path: Path,
    activate_model: Callable[[Session, TrainReport], None],
    make_settings: Callable[[str, Path], Settings],
) -> Settings:
    """Settings on a SQLite database whose active model is the trained one (for evaluate)."""
    engine = make_engine(sqlite_url)
    with session_scope(make_session_factory(engine)) as session:
        activate_model(session, trained)
    engine.dispose()
    return make_settings(sqlite_url, tmp_path / "models")
