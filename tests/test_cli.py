"""The `weisu` command's own behaviour: clear refusals, exit codes, and the status summary."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from keys_for_tests import TEST_SECRET_ENV
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from classify.training import TrainReport
from cli import app
from settings import PROJECT_ROOT, load_settings
from storage.db import make_engine, make_session_factory, session_scope, upgrade

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


def _config_problem(tmp_path: Path, problem: str) -> Path:
    """A config path with one problem: a directory, a GBK file, an empty file or an unknown database URL."""
    if problem == "directory":
        return tmp_path
    path = tmp_path / "config.yaml"
    if problem == "not UTF-8":
        path.write_bytes("city:\n  name: 深圳\n".encode("gbk"))
    elif problem == "empty":
        path.write_text("", encoding="utf-8")
    else:
        path.write_text(f"database:\n  url: {problem}\n", encoding="utf-8")
    return path


SCHEMES = "use one of sqlite, sqlite+pysqlite, postgresql, postgresql+psycopg"


@pytest.mark.parametrize(
    ("problem", "reason"),
    [
        ("directory", "(file): is a directory, not a YAML file"),
        ("not UTF-8", "(file): not UTF-8 text (byte 14)"),
        ("empty", "(file): empty, no settings in it"),
        (
            "mysql+foo://u@db/weisu",
            f"database.url: Value error, unknown database scheme 'mysql+foo': {SCHEMES}",
        ),
        ("http://db.example/weisu", f"database.url: Value error, unknown database scheme 'http': {SCHEMES}"),
    ],
)
def test_an_unusable_config_file_is_one_line_naming_it_and_exit_2(
    tmp_path: Path, problem: str, reason: str
) -> None:
    config = _config_problem(tmp_path, problem)
    result = runner.invoke(app, ["status", "--config", str(config)], env={"WEISU_DATABASE_URL": ""})
    assert result.exit_code == 2
    assert result.stderr == f"weisu: invalid configuration: {config}: {reason}\n"


def test_crawl_refuses_an_unknown_platform(env: dict[str, str]) -> None:
    result = runner.invoke(app, ["crawl", "no-such-platform"], env=env | TEST_SECRET_ENV)
    assert result.exit_code == 2
    assert result.stderr == "weisu crawl: unknown platform(s): no-such-platform\n"


def test_crawl_without_platforms_or_all_is_refused(env: dict[str, str]) -> None:
    result = runner.invoke(app, ["crawl"], env=env | TEST_SECRET_ENV)
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


def _refusal(stderr: str) -> str:
    """Typer's usage error without its box: the lines' text joined by spaces."""
    return " ".join(line.strip("│ ╭╮╰╯─") for line in stderr.splitlines() if line.strip("│ ╭╮╰╯─"))


WIDE = {"COLUMNS": "200"}  # Typer's error box wraps at the terminal width


def test_evaluate_rejects_an_unknown_task_naming_the_choices(env: dict[str, str]) -> None:
    data = PROJECT_ROOT / "fixtures" / "corpus" / "messages_labelled_raw.csv"
    result = runner.invoke(app, ["evaluate", "--data", str(data), "--task", "sentiment"], env=env | WIDE)
    assert result.exit_code == 2
    assert (
        "Invalid value for '--task': Value error, 'sentiment' is not one of 'category', 'relevance', 'type'."
        in (_refusal(result.stderr))
    )


def test_evaluate_file_refuses_an_unknown_task_naming_the_choices() -> None:
    from classify.evaluation import EvaluationError, evaluate_file

    data = PROJECT_ROOT / "fixtures" / "corpus" / "messages_labelled_raw.csv"
    with pytest.raises(EvaluationError, match=r"^unknown task 'sentiment': use category, relevance or type$"):
        evaluate_file(load_settings(), data, task="sentiment")


@pytest.mark.parametrize(
    ("args", "choices"),
    [
        (["export", "-o", "x.csv", "--format", "json"], "'csv', 'xlsx', 'parquet'"),
        (["export", "-o", "x.csv", "--state", "done"], "'queued', 'failed', 'open', 'closed'"),
        (["export", "-o", "x.csv", "--type", "complaint"], "'problem', 'question', 'suggestion'"),
        (["users", "add", "wang", "--role", "root"], "'analyst', 'supervisor', 'admin'"),
    ],
)
def test_an_option_outside_its_choices_exits_2_naming_them(
    env: dict[str, str], args: list[str], choices: str
) -> None:
    option, value = args[-2:]
    result = runner.invoke(app, args, env=env | WIDE)
    assert result.exit_code == 2
    assert f"Invalid value for '{option}': Value error, '{value}' is not one of {choices}." in (
        _refusal(result.stderr)
    )


def test_help_lists_an_options_choices(env: dict[str, str]) -> None:
    result = runner.invoke(app, ["export", "--help"], env=env | WIDE)
    assert result.exit_code == 0
    assert "<csv|xlsx|parquet>" in result.stdout
    assert "<queued|failed|open|closed>" in result.stdout


@pytest.mark.parametrize("command", ["status", "platforms", "export"])
def test_a_reading_command_on_an_old_schema_says_so_and_leaves_it_unmigrated(
    env: dict[str, str], command: str, tmp_path: Path
) -> None:
    from storage.db import head_revision, schema_revision

    url = env["WEISU_DATABASE_URL"]
    upgrade(url, "0013")
    args = [command] + (["-o", str(tmp_path / "cases.csv")] if command == "export" else [])
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == 2
    assert result.stderr == (
        f"weisu {command}: the database is at revision 0013, this version needs {head_revision()}: "
        "run `weisu init` first\n"
    )
    assert schema_revision(url) == "0013"


def test_status_on_a_missing_database_creates_nothing(env: dict[str, str], tmp_path: Path) -> None:
    from storage.db import head_revision

    result = runner.invoke(app, ["status"], env=env)
    assert result.exit_code == 2
    assert result.stderr == (
        f"weisu status: the database is not initialised, this version needs {head_revision()}: "
        "run `weisu init` first\n"
    )
    assert not (tmp_path / "cli.db").exists()


def test_adding_a_duplicate_user_is_a_one_line_error(env: dict[str, str]) -> None:
    args = ["users", "add", "wang", "--role", "analyst", "--password", "s3cret-pass"]
    assert runner.invoke(app, args, env=env).exit_code == 0
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == 1
    assert result.stderr.startswith("weisu users: ") and result.stderr.count("\n") == 1


@pytest.fixture
def model_env(
    env: dict[str, str],
    trained: TrainReport,
    activate_model: Callable[[Session, TrainReport], None],
) -> dict[str, str]:
    """A database whose active model is the session's trained one."""
    upgrade(env["WEISU_DATABASE_URL"])
    engine = make_engine(env["WEISU_DATABASE_URL"])
    with session_scope(make_session_factory(engine)) as session:
        activate_model(session, trained)
    engine.dispose()
    return env


def _csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return path


def test_evaluate_json_is_one_object_alone_on_the_last_line(
    model_env: dict[str, str], tmp_path: Path
) -> None:
    data = _csv(
        tmp_path / "category.csv",
        [
            ("小区门口的路灯坏了一个月没人修，晚上出行很危险", "城乡建设"),
            ("孩子学校收取高额补课费", "教育文体"),
        ],
    )
    result = runner.invoke(app, ["evaluate", "--data", str(data), "--json"], env=model_env)
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout.splitlines()[-1])
    assert {"accuracy", "macro_f1", "per_class"} <= set(figures)
    assert sorted(figures["per_class"]) == ["城乡建设", "教育文体"]


def test_evaluate_relevance_on_noise_only_reports_undefined_figures_as_null(
    model_env: dict[str, str], tmp_path: Path
) -> None:
    data = _csv(tmp_path / "noise.csv", [("今天天气真好", "noise"), ("这家外卖太咸了", "noise")])
    args = ["evaluate", "--task", "relevance", "--data", str(data), "--json"]
    result = runner.invoke(app, args, env=model_env)
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout.splitlines()[-1])
    assert figures["recall"] is None
    assert {"accuracy", "macro_f1", "per_class", "precision", "fpr"} <= set(figures)


def test_evaluate_refuses_a_row_with_an_extra_field_without_a_trained_model(
    env: dict[str, str], tmp_path: Path
) -> None:
    data = tmp_path / "extra.csv"
    data.write_text("text,label\n路灯坏了,lead\n井盖丢失,lead,多余\n", encoding="utf-8")
    result = runner.invoke(app, ["evaluate", "--data", str(data), "--task", "relevance"], env=env)
    assert result.exit_code == 2
    assert result.stderr == f"weisu evaluate: {data}: line 3: 3 fields, the header has 2\n"


def test_evaluate_names_a_missing_column_in_one_line(model_env: dict[str, str], tmp_path: Path) -> None:
    data = tmp_path / "bad.csv"
    data.write_text("body,label\n路灯坏了,城乡建设\n", encoding="utf-8")
    result = runner.invoke(app, ["evaluate", "--data", str(data)], env=model_env)
    assert result.exit_code == 2
    assert result.stderr.startswith("weisu evaluate: ") and result.stderr.count("\n") == 1


def test_detect_without_a_trained_model_says_how_to_get_one(env: dict[str, str]) -> None:
    result = runner.invoke(app, ["detect"], env=env)
    assert result.exit_code == 2
    assert "weisu train" in result.stderr and result.stderr.count("\n") == 1


def _crawl_runs(url: str) -> None:
    """Two platforms' runs: weibo's last run flagged as a layout change; heimao never crawled."""
    from datetime import UTC, datetime

    from storage.models import CrawlRun
    from storage.queries import sync_platforms

    upgrade(url)
    with session_scope(make_session_factory(make_engine(url))) as session:
        sync_platforms(session, {"weibo": ("微博", "json_feed", True)})
        finished = datetime(2026, 11, 29, 1, 30, tzinfo=UTC)
        session.add(CrawlRun(platform_id="weibo", status="ok", requests=9, items=40, posts_stored=40))
        session.flush()
        reason = "本次未解析出任何条目，此前1次运行最多 40 条"
        flagged = {"requests": 3, "items": 0, "errors": 0, "layout_changed": True, "health_reason": reason}
        session.add(CrawlRun(platform_id="weibo", status="ok", finished_at=finished, **flagged))


def test_platforms_json_lists_every_platform_with_its_last_run_and_flag(env: dict[str, str]) -> None:
    _crawl_runs(env["WEISU_DATABASE_URL"])
    result = runner.invoke(app, ["platforms", "--json"], env=env)
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert rows[0] == {
        "platform_id": "weibo",
        "name": "微博",
        "kind": "json_feed",
        "priority": "incremental",
        "enabled": True,
        "last_run_at": "2026-11-29T01:30:00+00:00",
        "status": "ok",
        "requests": 3,
        "items": 0,
        "stored": 0,
        "errors": 0,
        "layout_changed": True,
        "reason": "本次未解析出任何条目，此前1次运行最多 40 条",
        "paused": False,
        "paused_reason": None,
        "gaps_aged_out": 0,
        "access_status": None,
        "access_reason": None,
    }
    assert rows[1]["platform_id"] == "heimao" and rows[1]["last_run_at"] is None
    assert len(rows) == len(load_settings(env=env).platforms)


def test_platforms_table_shows_the_last_run_in_shanghai_time_and_the_flag(env: dict[str, str]) -> None:
    _crawl_runs(env["WEISU_DATABASE_URL"])
    result = runner.invoke(app, ["platforms"], env=env | {"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    weibo = next(line for line in result.stdout.splitlines() if "weibo " in line)
    cells = [cell.strip() for cell in weibo.split("│")[1:-1]]
    assert cells == [
        "weibo", "微博", "json_feed", "incremental", "yes", "2026-11-29 09:30", "ok", "3", "0", "0", "0",
        "版面可能已改变：本次未解析出任何条目，此前1次运行最多 40 条",
    ]  # fmt: skip


def test_platforms_shows_a_walled_platform_with_its_reason(env: dict[str, str]) -> None:
    from storage.models import AccessStatus, CrawlRun

    url = env["WEISU_DATABASE_URL"]
    _crawl_runs(url)
    reason = (
        "需要登录：入口 weibo-search 接口返回未登录（msg：[b]请先登录[/b]），请为该平台设置 credentials_env"
    )
    with session_scope(make_session_factory(make_engine(url))) as session:
        run = {"access_status": AccessStatus.LOGIN_WALL, "access_reason": reason}
        session.add(CrawlRun(platform_id="weibo", status="ok", **run))
    rows = json.loads(runner.invoke(app, ["platforms", "--json"], env=env).stdout)
    assert (rows[0]["access_status"], rows[0]["access_reason"]) == ("login_wall", reason)
    table = runner.invoke(app, ["platforms"], env=env | {"COLUMNS": "400"}).stdout
    weibo = next(line for line in table.splitlines() if "weibo " in line)
    assert [cell.strip() for cell in weibo.split("│")[1:-1]][-1] == f"需要登录：{reason}"


def test_platforms_shows_which_platform_an_admin_paused_and_why(env: dict[str, str]) -> None:
    from storage.queries import set_platform_paused

    _crawl_runs(env["WEISU_DATABASE_URL"])
    with session_scope(make_session_factory(make_engine(env["WEISU_DATABASE_URL"]))) as session:
        set_platform_paused(session, "weibo", paused=True, actor="ada", reason="改版")
    rows = json.loads(runner.invoke(app, ["platforms", "--json"], env=env).stdout)
    assert (rows[0]["paused"], rows[0]["paused_reason"]) == (True, "改版")
    table = runner.invoke(app, ["platforms"], env=env | {"COLUMNS": "400"}).stdout
    weibo = next(line for line in table.splitlines() if "weibo " in line)
    assert [cell.strip() for cell in weibo.split("│")[1:-1]][4] == "paused: 改版"


@pytest.mark.parametrize(
    ("host", "url"), [("127.0.0.1", "http://127.0.0.1:8123"), ("::1", "http://[::1]:8123")]
)
def test_serve_prints_its_url_before_uvicorn_starts(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, host: str, url: str
) -> None:
    started: list[tuple[str, int]] = []

    def uvicorn_run(application: object, host: str, port: int, **options: object) -> None:
        started.append((host, port))
        raise KeyboardInterrupt  # the server "stops" at once: anything printed came before it started

    monkeypatch.setattr("uvicorn.run", uvicorn_run)
    result = runner.invoke(app, ["serve", "--host", host, "--port", "8123"], env=env | TEST_SECRET_ENV)
    assert started == [(host, 8123)]
    assert result.stdout == f"weisu serve: review app at {url} (Ctrl-C stops it)\n"


def test_evaluate_type_names_an_unknown_label_and_the_file_in_one_line(
    env: dict[str, str], tmp_path: Path
) -> None:
    data = _csv(tmp_path / "types.csv", [("小区污水横流没人管", "投诉"), ("感谢环卫工人", "表扬")])
    result = runner.invoke(app, ["evaluate", "--data", str(data), "--task", "type"], env=env)
    assert result.exit_code == 2
    assert result.stderr == (
        f"weisu evaluate: {data}: line 3: unknown request type '表扬' "
        "(use one of 投诉, 举报, 求助, 反映问题, 咨询, 咨询问题, 建议)\n"
    )


def test_evaluate_type_json_reports_per_type_figures_and_calibration(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from classify.model import Prediction

    types = {"小区污水横流没人管": ("problem", 0.9), "请问河道什么时候清淤？": ("question", 0.7)}

    class StandIn:
        version = "stand-in"

        def predict(self, texts: list[str], *_: object) -> list[Prediction]:
            return [
                Prediction(
                    0.9,
                    True,
                    None,
                    None,
                    None,
                    request_type=types[t][0],
                    request_type_probability=types[t][1],
                )
                for t in texts
            ]

    monkeypatch.setattr("classify.evaluation.load_active", lambda *_: StandIn())
    upgrade(env["WEISU_DATABASE_URL"])
    data = _csv(tmp_path / "types.csv", [("小区污水横流没人管", "举报"), ("请问河道什么时候清淤？", "咨询")])
    result = runner.invoke(app, ["evaluate", "--data", str(data), "--task", "type", "--json"], env=env)
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout.splitlines()[-1])
    assert (figures["task"], figures["macro_f1"], figures["expected_calibration_error"]) == ("type", 1.0, 0.2)
    assert sorted(figures["per_class"]) == ["problem", "question"]


def test_long_work_draws_a_progress_bar_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from rich.console import Console

    import cli

    screen = io.StringIO()
    monkeypatch.setattr(cli, "progress_console", Console(file=screen, force_terminal=True, width=80))
    with cli._progress("识别帖子", quiet=False) as update:
        update(1, 2)
        cli.progress_console.print()  # an explicit render: the bar refreshes on its own only twice a second
    assert "识别帖子" in screen.getvalue() and "1/2" in screen.getvalue()


def test_quiet_long_work_draws_nothing_even_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from rich.console import Console

    import cli

    screen = io.StringIO()
    monkeypatch.setattr(cli, "progress_console", Console(file=screen, force_terminal=True, width=80))
    with cli._steps("训练", ("读取语料", "验证"), quiet=True) as start:
        start("读取语料")
        start("验证")
    assert screen.getvalue() == ""
