"""The `weisu` command's own behaviour: clear refusals, exit codes, and the status summary."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from settings import PROJECT_ROOT

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"WEISU_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}"}


def test_invalid_config_stops_with_one_line_naming_file_and_key(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("database:\n  ulr: sqlite:///x.db\n", encoding="utf-8")
    result = runner.invoke(app, ["status", "--config", str(config)])
    assert result.exit_code == 2
    assert result.stderr == (
        f"weisu: invalid configuration: {config}: database.ulr: Extra inputs are not permitted\n"
    )


def test_crawl_refuses_an_unknown_platform(env: dict[str, str]) -> None:
    result = runner.invoke(app, ["crawl", "no-such-platform"], env=env)
    assert result.exit_code == 2
    assert result.stderr == "weisu crawl: unknown platform(s): no-such-platform\n"


def test_crawl_without_platforms_or_all_is_refused(env: dict[str, str]) -> None:
    result = runner.invoke(app, ["crawl"], env=env)
    assert result.exit_code == 2
    assert "name platforms or pass --all" in result.stderr


def test_init_then_status_reports_an_empty_database(env: dict[str, str]) -> None:
    assert runner.invoke(app, ["init"], env=env).exit_code == 0
    result = runner.invoke(app, ["status"], env=env)
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        "posts: 0",
        "leads: 0",
        "urgent_leads: 0",
        "tickets: 0",
        "tickets_accepted: 0",
    ]


def test_evaluate_rejects_an_unknown_task(env: dict[str, str]) -> None:
    data = PROJECT_ROOT / "fixtures" / "corpus" / "messages_labelled_raw.csv"
    result = runner.invoke(app, ["evaluate", "--data", str(data), "--task", "sentiment"], env=env)
    assert result.exit_code == 2
    assert result.stderr == "weisu evaluate: --task must be category or relevance\n"


def test_adding_a_duplicate_user_is_a_one_line_error(env: dict[str, str]) -> None:
    args = ["users", "add", "wang", "--role", "analyst", "--password", "s3cret-pass"]
    assert runner.invoke(app, args, env=env).exit_code == 0
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == 1
    assert result.stderr.startswith("weisu users: ") and result.stderr.count("\n") == 1
