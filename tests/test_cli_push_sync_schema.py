"""`weisu push` and `weisu sync` write tickets' states: like every writing command they migrate first."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from storage.db import head_revision, schema_revision, upgrade

runner = CliRunner()


@pytest.mark.parametrize("command", ["push", "sync"])
def test_push_and_sync_on_an_old_schema_migrate_it_to_head_before_running(
    tmp_path: Path, command: str
) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    upgrade(url, "0013")
    # Nothing is queued or open, so neither command needs the dispatch system; a closed port proves it.
    env = {"WEISU_DATABASE_URL": url, "WEISU_DISPATCH_URL": "http://127.0.0.1:9"}
    result = runner.invoke(app, [command], env=env)
    assert result.exit_code == 0, result.output
    assert schema_revision(url) == head_revision()
