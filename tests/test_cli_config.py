"""A typo in a platform entry stops `weisu crawl` before any request: one line, exit 2, no traceback."""

from __future__ import annotations

from pathlib import Path

from keys_for_tests import TEST_SECRET_ENV
from typer.testing import CliRunner

from cli import app
from settings import PROJECT_ROOT

runner = CliRunner()


def test_crawl_with_a_mistyped_platform_key_exits_2_naming_file_platform_and_key(tmp_path: Path) -> None:
    shipped = (PROJECT_ROOT / "config.yaml").read_text(encoding="utf-8")
    typo = shipped.replace(
        "    pagination: {style: page, start: 1, max_pages: 30, has_more",
        ("    pagination: {style: page, strat: 1, max_pages: 30, has_more"),
        1,
    )
    assert typo != shipped
    bad = tmp_path / "bad.yaml"
    bad.write_text(typo, encoding="utf-8")
    database = tmp_path / "crawl.db"
    env = {"WEISU_DATABASE_URL": f"sqlite:///{database}", **TEST_SECRET_ENV}
    result = runner.invoke(app, ["crawl", "--all", "--config", str(bad)], env=env)
    assert result.exit_code == 2
    reason = "platforms.weibo.pagination.strat: Extra inputs are not permitted"
    assert result.stderr == f"weisu: invalid configuration: {bad}: {reason}\n"
    assert result.stdout == ""
    assert not database.exists()  # stopped before the database, let alone a request
