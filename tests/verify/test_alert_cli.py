"""`weisu alerts`: the deliveries waiting or failed, and `--send`, which stops in one line when a
channel's secret is unset."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from cli import app
from settings import DEFAULT_CONFIG_PATH, load_settings
from storage.db import make_engine, make_session_factory, session_scope
from storage.models import Alert, AlertDelivery, AlertKind, DeliveryState

runner = CliRunner()


def _config_with_mail_channel(tmp_path: Path) -> Path:
    raw = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text(encoding="utf-8"))
    raw["alerts"]["channels"] = {
        "ops-mail": {
            "kind": "email", "smtp_host": "127.0.0.1", "smtp_port": 1, "security": "none",
            "password_env": "WEISU_TEST_SMTP_PASSWORD", "username": "weisu",
            "from": "weisu@example.invalid", "to": ["duty@example.invalid"],
        }
    }  # fmt: skip
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def test_alerts_send_stops_in_one_line_when_a_channel_secret_is_unset(tmp_path: Path) -> None:
    env = {"WEISU_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}", "WEISU_TEST_SMTP_PASSWORD": ""}
    config = _config_with_mail_channel(tmp_path)
    result = runner.invoke(app, ["alerts", "--send", "--config", str(config)], env=env)
    assert (result.exit_code, result.stderr) == (
        2,
        "weisu alerts: alerts.channels.ops-mail.password_env: environment variable WEISU_TEST_SMTP_PASSWORD"
        " is not set\n",
    )


def test_alerts_lists_a_failed_delivery_with_its_error(tmp_path: Path) -> None:
    env = {"WEISU_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}", "COLUMNS": "250"}
    assert runner.invoke(app, ["init"], env=env).exit_code == 0
    settings = load_settings(env=env)
    with session_scope(make_session_factory(make_engine(settings.database_url))) as session:
        alert = Alert(event_key="health:heimao:access:3", kind=AlertKind.CRAWL_HEALTH,
                      title="【抓取健康】黑猫投诉", body="黑猫投诉：需要登录")  # fmt: skip
        session.add(alert)
        session.flush()
        session.add(AlertDelivery(alert_id=alert.id, channel="ops", state=DeliveryState.FAILED, attempts=5,
                                  last_error="HTTP 500: [bold]boom[/]"))  # fmt: skip
    result = runner.invoke(app, ["alerts"], env=env)
    assert result.exit_code == 0
    row = next(line for line in result.stdout.splitlines() if "黑猫投诉" in line)
    cells = [cell.strip() for cell in row.strip("│ ").split("│")]
    assert cells[:7] == ["1", "1", "抓取健康", "【抓取健康】黑猫投诉", "ops", "发送失败", "5"]
    assert cells[8] == "HTTP 500: [bold]boom[/]"
