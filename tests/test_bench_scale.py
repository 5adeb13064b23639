"""bench/scale.py: the worker commands, the sweep's config and the database names it uses."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text, update
from test_deploy import cli_problems
from test_storage import _post

from bench.scale import (
    COMMANDS,
    FIRST_NEW,
    FIRST_UNMERGED,
    NIGHT_TABLES,
    _analyzer,
    _count,
    _create_database,
    _done_through,
    autovacuum_on,
    scale_config,
    single_crawl,
    together_detect,
)
from fixtures.simulator.disk_world import DISK_PLATFORMS
from settings import load_settings
from storage.db import make_engine, make_session_factory, session_scope
from storage.models import Platform, Post
from storage.vocabulary import DetectionStatus

DONE = DetectionStatus.DETECTED


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_single_process_crawlers_split_the_disk_platforms_between_them(workers: int) -> None:
    commands = single_crawl(workers)
    assert len(commands) == workers
    platforms = [key for command in commands for key in command[command.index("--quiet") + 1 :]]
    assert sorted(platforms) == sorted(DISK_PLATFORMS)


@pytest.mark.parametrize("name", ["single"])
def test_every_worker_command_of_the_bench_exists_in_the_cli(name: str) -> None:
    crawl, detect = COMMANDS[name]
    commands = crawl(2) + detect(2)
    # Each is `python -m cli ARGS`.
    assert [problem for command in commands for problem in cli_problems(command[3:])] == []


def test_the_distributed_commands_are_the_ones_the_deploy_files_run() -> None:
    crawl, detect = COMMANDS["distributed"]
    assert crawl(1)[0][3:5] == ["crawl", "--distributed"]
    assert detect(1)[0][3:5] == ["detect", "--worker"]


def test_the_detection_workers_started_with_the_crawlers_exist_in_the_cli_and_wait_for_posts() -> None:
    commands = together_detect(2)
    assert [problem for command in commands for problem in cli_problems(command[3:])] == []
    assert [command[3:] for command in commands] == [["detect", "--worker"]] * 2  # no --idle-exit


def test_the_sweep_config_loads_with_only_the_disk_platforms_on(tmp_path: Path) -> None:
    counts = dict.fromkeys(DISK_PLATFORMS, 1000) | {"heimao": 50_000}
    settings = load_settings(scale_config(counts, tmp_path / "config.yaml"), env={})
    enabled = settings.enabled_platforms()
    assert sorted(enabled) == sorted(DISK_PLATFORMS)
    assert enabled["heimao"].pagination.max_pages == 5002
    assert {p.politeness.download_delay for p in enabled.values()} == {0.0}


def test_a_database_name_that_is_not_a_plain_identifier_is_refused() -> None:
    with pytest.raises(ValueError, match="database names are lower-case letters, digits and _"):
        _create_database("postgresql://postgres@127.0.0.1:5432/x", 'w"; DROP DATABASE x; --')


def test_the_progress_polls_count_the_posts_below_the_first_still_waiting(database_url: str) -> None:
    engine = make_engine(database_url)
    statuses = [DONE, DONE, DetectionStatus.CLASSIFIED, DetectionStatus.NEW, DONE]
    with session_scope(make_session_factory(engine)) as session:
        session.add(Platform(id="weibo", name="微博", kind="json_feed"))
        session.add_all(
            Post(id=number, detection_status=status, **_post(str(number)))
            for number, status in enumerate(statuses, start=1)
        )
    assert (_done_through(engine, FIRST_UNMERGED), _done_through(engine, FIRST_NEW)) == (2, 3)
    with engine.begin() as connection:
        connection.execute(update(Post).values(detection_status=DONE))
    assert (_done_through(engine, FIRST_UNMERGED), _count(engine, FIRST_UNMERGED)) == (5, 0)
    engine.dispose()


def test_the_bench_analyzes_the_night_tables_exactly_when_the_server_runs_no_autovacuum(
    backend: str, database_url: str
) -> None:
    if backend == "sqlite":
        pytest.skip("the scale bench runs on PostgreSQL")
    engine = make_engine(database_url)
    analyze = _analyzer(engine)
    assert (analyze is None) == autovacuum_on(engine)
    if analyze is not None:
        analyze()
        with engine.connect() as connection:
            analyzed = set(
                connection.scalars(
                    text(
                        "SELECT relname FROM pg_stat_user_tables"
                        " WHERE schemaname = current_schema() AND last_analyze IS NOT NULL"
                    )
                )
            )
        assert analyzed == set(NIGHT_TABLES)
    engine.dispose()
