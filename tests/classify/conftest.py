"""Classify fixtures: one model trained per test session (into a tmp dir), activated per test database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from classify.model import TASK
from classify.training import TrainReport, train_and_activate
from settings import Settings, load_settings
from storage.db import make_engine, make_session_factory, session_scope, upgrade
from storage.models import ModelVersion


def settings_for(url: str, model_dir: Path) -> Settings:
    """The project's config.yaml (gazetteer, urgency rules, thresholds) on a test database."""
    return load_settings(env={"WEISU_DATABASE_URL": url, "WEISU_MODEL_DIR": str(model_dir)})


@pytest.fixture
def make_settings() -> object:
    return settings_for


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> TrainReport:
    """Train once per session on the real corpus; every test reuses the saved model."""
    root = tmp_path_factory.mktemp("trained")
    url = f"sqlite:///{root / 'train.db'}"
    upgrade(url)
    engine = make_engine(url)
    with session_scope(make_session_factory(engine)) as session:
        report = train_and_activate(settings_for(url, root / "models"), session)
    engine.dispose()
    return report


def activate(session: Session, report: TrainReport) -> None:
    session.add(
        ModelVersion(
            version=report.version,
            task=TASK,
            path=str(report.path),
            data_hash="test",
            metrics=report.metrics,
            library_versions={},
            active=True,
        )
    )


@pytest.fixture
def detect_env(
    database_url: str, trained: TrainReport, tmp_path: Path
) -> Iterator[tuple[Settings, sessionmaker[Session]]]:
    """Settings and a session factory on a fresh database whose active model is the trained one."""
    engine = make_engine(database_url)
    factory = make_session_factory(engine)
    with session_scope(factory) as session:
        activate(session, trained)
    yield settings_for(database_url, tmp_path / "models"), factory
    engine.dispose()


@pytest.fixture
def active_settings(sqlite_url: str, trained: TrainReport, tmp_path: Path) -> Settings:
    """Settings on a SQLite database whose active model is the trained one (for evaluate)."""
    engine = make_engine(sqlite_url)
    with session_scope(make_session_factory(engine)) as session:
        activate(session, trained)
    engine.dispose()
    return settings_for(sqlite_url, tmp_path / "models")
