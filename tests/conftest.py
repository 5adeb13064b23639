"""Shared fixtures: a migrated database on SQLite and, with WEISU_TEST_DATABASE_URL, on PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from classify.model import TASK
from classify.training import TrainReport, train_and_activate
from settings import Settings, load_settings
from storage.db import make_engine, make_session_factory, session_scope, temporary_postgres_schema, upgrade
from storage.models import ModelVersion

POSTGRES_URL = os.environ.get("WEISU_TEST_DATABASE_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if POSTGRES_URL else [])


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database migrated to head: a fresh SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'weisu.db'}"
        upgrade(url)
        yield url
        return
    assert POSTGRES_URL
    with temporary_postgres_schema(POSTGRES_URL, "t") as url:
        upgrade(url)
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A migrated SQLite database, for tests that only need one backend (pipelines, CLI, e2e)."""
    url = f"sqlite:///{tmp_path / 'weisu.db'}"
    upgrade(url)
    return url


@pytest.fixture
def session_factory(database_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(database_url)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def session(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work is rolled back at the end of the test."""
    db = session_factory()
    try:
        yield db
    finally:
        db.rollback()
        db.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """In CI (WEISU_REQUIRE_BROWSER=1) a skipped browser test is a failure, not a quiet pass."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.skipped and os.environ.get("WEISU_REQUIRE_BROWSER") and item.get_closest_marker("browser"):
        report.outcome = "failed"
        report.longrepr = f"browser test skipped although WEISU_REQUIRE_BROWSER is set: {report.longrepr}"


def trained_settings(url: str, model_dir: Path) -> Settings:
    """The project's config.yaml (gazetteer, urgency rules, thresholds) on a test database."""
    return load_settings(env={"WEISU_DATABASE_URL": url, "WEISU_MODEL_DIR": str(model_dir)})


@pytest.fixture
def make_settings() -> Callable[[str, Path], Settings]:
    return trained_settings


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> TrainReport:
    """Train once per test session on the real corpus; every test that needs a model reuses it."""
    root = tmp_path_factory.mktemp("trained")
    url = f"sqlite:///{root / 'train.db'}"
    upgrade(url)
    engine = make_engine(url)
    with session_scope(make_session_factory(engine)) as session:
        report = train_and_activate(trained_settings(url, root / "models"), session)
    engine.dispose()
    return report


def _activate(session: Session, report: TrainReport) -> None:
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


@pytest.fixture(scope="session")
def activate_model() -> Callable[[Session, TrainReport], None]:
    """Make the session-trained model the active one in a test database."""
    return _activate
