"""Classify fixtures: the session's trained model (tests/conftest.py) activated on a fresh test database."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from classify.training import TrainReport
from settings import Settings
from storage.db import make_engine, make_session_factory, session_scope


@pytest.fixture
def detect_env(
    database_url: str,
    trained: TrainReport,
    tmp_path: Path,
    activate_model: Callable[[Session, TrainReport], None],
    make_settings: Callable[[str, Path], Settings],
) -> Iterator[tuple[Settings, sessionmaker[Session]]]:
    """Settings and a session factory on a fresh database whose active model is the trained one."""
    engine = make_engine(database_url)
    factory = make_session_factory(engine)
    with session_scope(factory) as session:
        activate_model(session, trained)
    yield make_settings(database_url, tmp_path / "models"), factory
    engine.dispose()


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
