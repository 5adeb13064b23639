"""Shared fixtures: test databases on SQLite and, with WEISU_TEST_DATABASE_URL, on PostgreSQL.

Each backend is migrated once per test session. A test that only works through ``session``,
``session_factory`` (or the stage fixtures built on them) runs inside one outer transaction on that
shared database, with every Session joined into it (SQLAlchemy's "Joining a Session into an External
Transaction" recipe), and the transaction is rolled back at the end. A test whose commits must be
seen by another connection asks for ``committed_database`` (or its older name ``database_url``) and
gets a database of its own, with real commits.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any, cast

import pytest
from filelock import FileLock
from seeds import RANDOM_SEED_VARIABLE, random_seed_of_this_run
from shared_databases import (
    BACKENDS,
    POSTGRES_URL,
    DatabaseUnderTest,
    MigratedDatabases,
    joined_factory,
)
from sqlalchemy.orm import Session, sessionmaker

from classify.model import TASK
from classify.training import TrainReport, train_and_activate
from settings import Settings, load_settings
from storage.db import make_engine, make_session_factory, session_scope, temporary_postgres_schema, upgrade
from storage.models import ModelVersion


def pytest_configure(config: pytest.Config) -> None:
    random_seed_of_this_run()  # drawn here, before xdist starts its workers, so they all share it
    if os.environ.get("PYTEST_XDIST_WORKER"):
        # xdist starts its workers with COLUMNS=80; cli's console, made at import, would keep that
        # width for good, and the tests that give a command its own COLUMNS would be ignored.
        os.environ.pop("COLUMNS", None)


#: The files that take longest, handed to the pytest-xdist workers first (the Makefile turns off xdist's
#: own order, by number of tests), so that no long file starts late and runs alone at the end. The first
#: trains the run's model; the files that need it come after the longest that do not, so no worker waits
#: on the training. Rough order of their durations, from the per-file timings in docs/benchmarks.md.
LONGEST_FILES = (
    "tests/classify/test_detection.py",
    "tests/verify/test_push_exactly_once.py",
    "tests/crawl/test_distributed_sweep.py",
    "tests/crawl/test_crawl_kill_resume.py",
    "tests/acceptance/test_unattended_fortnight.py",
    "tests/crawl/test_distributed_faults.py",
    "tests/classify/test_retrain.py",
    "tests/classify/test_detection_concurrency.py",
    "tests/crawl/test_comment_discovery.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """LONGEST_FILES first, in that order; every other file after them, as collected."""
    missing = [path for path in LONGEST_FILES if not (config.rootpath / path).is_file()]
    if missing:
        raise pytest.UsageError(f"tests/conftest.py: LONGEST_FILES names files that do not exist: {missing}")
    rank = {path: position for position, path in enumerate(LONGEST_FILES)}
    items.sort(key=lambda item: rank.get(item.nodeid.partition("::")[0], len(rank)))


def pytest_report_header(config: pytest.Config) -> str:
    return f"random seed of this run: {random_seed_of_this_run()} (repeat it with {RANDOM_SEED_VARIABLE})"


@pytest.fixture(scope="session")
def migrated_databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MigratedDatabases]:
    with ExitStack() as stack:
        yield MigratedDatabases(tmp_path_factory.mktemp("databases"), stack)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """The database backend of this test (parametrised by pytest_generate_tests)."""
    return getattr(request, "param", "sqlite")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run every database test on each backend, except where a module pins ``database_url`` to one
    database of its own choosing (e.g. ``def database_url(sqlite_url)``): running those twice on the
    same database would prove nothing more."""
    if "backend" not in metafunc.fixturenames:
        return
    definitions = metafunc._arg2fixturedefs  # the fixtures this test resolves each name to
    if "database_url" in definitions and not _depends_on("database_url", "backend", definitions):
        return
    metafunc.parametrize("backend", BACKENDS, indirect=True)


def _depends_on(name: str, wanted: str, definitions: Mapping[str, Sequence[Any]]) -> bool:
    """Whether fixture ``name``, as this test resolves it, needs ``wanted`` directly or indirectly."""
    arguments = definitions[name][-1].argnames if name in definitions else ()
    return wanted in arguments or any(_depends_on(arg, wanted, definitions) for arg in arguments)


@pytest.fixture
def committed_database(backend: str, tmp_path: Path, migrated_databases: MigratedDatabases) -> Iterator[str]:
    """A fresh database of this test's own, migrated to head, where commits are real.

    For tests whose writes must be seen through another connection: crawler child processes, the web
    app served in a thread, CLI commands that open their own engine, migration tests, concurrent
    sessions in threads. Asking for it (directly, through ``database_url``, or with
    ``pytest.mark.usefixtures("committed_database")``) also points ``session``, ``session_factory``
    and the stage fixtures at this database instead of the rolled-back shared one.
    """
    if backend == "sqlite":
        yield migrated_databases.sqlite_copy(tmp_path / "weisu.db")
        return
    assert POSTGRES_URL
    with temporary_postgres_schema(POSTGRES_URL, "t") as url:
        upgrade(url)
        yield url


@pytest.fixture
def database_url(committed_database: str) -> str:
    """The URL of this test's own committed database (see committed_database): for tests that open
    their own engines, processes or commands on it."""
    return committed_database


@pytest.fixture
def sqlite_url(tmp_path: Path, migrated_databases: MigratedDatabases) -> str:
    """A fresh migrated SQLite database with real commits, for tests that only need one backend
    (pipelines, CLI, e2e)."""
    return migrated_databases.sqlite_copy(tmp_path / "weisu.db")


@pytest.fixture
def database_under_test(
    request: pytest.FixtureRequest, backend: str, migrated_databases: MigratedDatabases
) -> Iterator[DatabaseUnderTest]:
    """The database behind ``session`` and ``session_factory``: the test's own committed database when
    it asked for one, otherwise a transaction on the shared database rolled back at the end.

    A rolled-back test must not open the shared database on a connection of its own (an engine from
    ``settings.database_url``, a CLI command): SQLite makes that connection wait for the test's write
    lock, and rows committed on PostgreSQL fail the test here, naming the tables.
    """
    if {"database_url", "committed_database"} & set(request.fixturenames):
        url = request.getfixturevalue("database_url")
        engine = make_engine(url)
        yield DatabaseUnderTest(url, make_session_factory(engine), committed=True)
        engine.dispose()
        return
    shared = migrated_databases.shared(backend)
    with shared.engine.connect() as connection:
        transaction = connection.begin()
        shared.rewind_sequences(connection)
        yield DatabaseUnderTest(shared.url, joined_factory(connection), committed=False)
        transaction.rollback()
        leaked = shared.leaked_rows(connection)
    if leaked:
        migrated_databases.discard(backend)
        pytest.fail(
            f"the test committed rows {leaked} to the shared database through a connection of its own: "
            "give it committed_database",
            pytrace=False,
        )


@pytest.fixture
def session_factory(database_under_test: DatabaseUnderTest) -> sessionmaker[Session]:
    """Sessions on the test's database (see database_under_test)."""
    return database_under_test.session_factory


@pytest.fixture
def session(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose uncommitted work is rolled back at the end of the test."""
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
    """Train once per test run on the real corpus; every test that needs a model reuses it.

    Under pytest-xdist the workers share one training: the first to get the lock trains into the run's
    common temporary folder and leaves its report there; the others wait for the lock and read it.
    """
    # Every worker's basetemp is a folder of the run's own; a lone process has no common parent to share.
    common = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        common = common.parent
    root = common / "trained"
    report_file = root / "report.pickle"
    with FileLock(str(common / "trained.lock")):
        if report_file.exists():
            return cast(TrainReport, pickle.loads(report_file.read_bytes()))
        root.mkdir(exist_ok=True)
        url = f"sqlite:///{root / 'train.db'}"
        upgrade(url)
        engine = make_engine(url)
        with session_scope(make_session_factory(engine)) as session:
            report = train_and_activate(trained_settings(url, root / "models"), session)
        engine.dispose()
        report_file.write_bytes(pickle.dumps(report))
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
