"""`weisu jobs`: each job's next run and last outcome, and (--history) the past runs; read-only."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import insert
from typer.testing import CliRunner

from cli import app
from storage.db import make_engine, make_session_factory, session_scope, upgrade
from storage.models import JobOutcome, JobRun, apscheduler_jobs

runner = CliRunner()
WIDE = {"COLUMNS": "200"}  # rich tables fit on one line per row
NIGHT = datetime(2026, 12, 2, 18, 0, tzinfo=UTC)  # 02:00 in Shanghai


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    upgrade(url)
    engine = make_engine(url)
    with session_scope(make_session_factory(engine)) as session:
        session.execute(
            insert(apscheduler_jobs).values(
                id="nightly_sweep", next_run_time=NIGHT.replace(day=3).timestamp(), job_state=b"-"
            )
        )
        common = {"host": "worker-1", "pid": 4242}
        session.add(
            JobRun(
                job_id="nightly_sweep",
                outcome=JobOutcome.OK,
                started_at=NIGHT,
                finished_at=NIGHT.replace(minute=20),
                counts={"weibo": "ok"},
                **common,
            )
        )
        session.add(
            JobRun(
                job_id="push_tickets",
                outcome=JobOutcome.FAILED,
                started_at=NIGHT.replace(minute=5),
                finished_at=NIGHT.replace(minute=5),
                error="ConnectError: refused",
                **common,
            )
        )
    engine.dispose()
    return {"WEISU_DATABASE_URL": url} | WIDE


def _line(output: str, job_id: str) -> list[str]:
    [line] = [line for line in output.splitlines() if f" {job_id} " in line]
    return [cell.strip() for cell in line.strip("│ ").split("│")]


def test_jobs_lists_each_job_with_its_schedule_next_run_and_last_outcome(env: dict[str, str]) -> None:
    result = runner.invoke(app, ["jobs"], env=env)
    assert result.exit_code == 0, result.stderr
    assert "任务" in result.stdout and "下次运行" in result.stdout and "上次结果" in result.stdout
    assert _line(result.stdout, "nightly_sweep") == [
        "nightly_sweep",
        "夜间全量抓取",
        "定时 0 2 * * *",
        "是",
        "2026-12-04 02:00",
        "成功",
        "2026-12-03 02:00",
    ]
    assert _line(result.stdout, "push_tickets") == [
        "push_tickets",
        "推送工单",
        "每 30 秒",
        "是",
        "—",
        "失败",
        "2026-12-03 02:05",
    ]


def test_jobs_history_lists_past_runs_newest_first(env: dict[str, str]) -> None:
    result = runner.invoke(app, ["jobs", "--history"], env=env)
    assert result.exit_code == 0, result.stderr
    assert _line(result.stdout, "push_tickets") == [
        "push_tickets",
        "2026-12-03 02:05",
        "2026-12-03 02:05",
        "失败",
        "—",
        "ConnectError: refused",
        "worker-1:4242",
    ]
    assert result.stdout.index(" push_tickets ") < result.stdout.index(" nightly_sweep ")


def test_jobs_history_of_one_job_with_a_limit(env: dict[str, str]) -> None:
    result = runner.invoke(app, ["jobs", "--history", "--job", "nightly_sweep", "--limit", "5"], env=env)
    assert result.exit_code == 0, result.stderr
    assert _line(result.stdout, "nightly_sweep")[3:5] == ["成功", '{"weibo": "ok"}']
    assert " push_tickets " not in result.stdout


def test_jobs_on_an_old_schema_says_so_and_does_not_migrate(tmp_path: Path) -> None:
    from storage.db import head_revision, schema_revision

    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0015")
    result = runner.invoke(app, ["jobs"], env={"WEISU_DATABASE_URL": url})
    assert result.exit_code == 2
    assert result.stderr == (
        f"weisu jobs: the database is at revision 0015, this version needs {head_revision()}: "
        "run `weisu init` first\n"
    )
    assert schema_revision(url) == "0015"


def test_the_scheduler_refuses_a_config_without_a_schedule_for_a_job(tmp_path: Path) -> None:
    from keys_for_tests import TEST_SECRET_ENV

    config = tmp_path / "config.yaml"
    config.write_text('schedules:\n  jobs:\n    nightly_sweep: {cron: "0 2 * * *"}\n', encoding="utf-8")
    env = {"WEISU_DATABASE_URL": f"sqlite:///{tmp_path / 'w.db'}"} | TEST_SECRET_ENV
    result = runner.invoke(app, ["scheduler", "--config", str(config)], env=env)
    assert result.exit_code == 2
    assert result.stderr == (
        f"weisu scheduler: {config}: schedules.jobs.incremental_sweep: missing (every job of schedules.JOBS"
        " needs a schedule)\n"
    )
    assert not (tmp_path / "w.db").exists()  # refused before anything was touched
