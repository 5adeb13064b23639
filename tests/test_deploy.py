"""Deployment: one config.yaml for every node, and every command the compose file, the systemd units and
docs/deploy.md run exists in the real CLI (read from Typer/click, not from a list kept by hand)."""

from __future__ import annotations

import configparser
import re
import shlex
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from typer.core import TyperArgument, TyperGroup, TyperOption

from cli import app
from settings import ENV_FIELDS, PROJECT_ROOT, load_settings

DEPLOY = PROJECT_ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))
DEPLOY_DOC = PROJECT_ROOT / "docs" / "deploy.md"
#: A fenced block in the deploy guide: its language and its lines.
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


@cache
def _cli() -> TyperGroup:
    command = typer.main.get_command(app)
    assert isinstance(command, TyperGroup)
    return command


def cli_problems(args: list[str]) -> list[str]:
    """What in ``weisu ARGS`` the CLI does not have: an unknown command, option or stray argument."""
    command: Any = _cli()
    rest = list(args)
    while isinstance(command, TyperGroup):
        if not rest or rest[0].startswith("-"):
            return [f"weisu {shlex.join(args)}: names no command"]
        sub = command.commands.get(rest[0])
        if sub is None:
            return [f"weisu {shlex.join(args)}: no command {rest[0]!r}"]
        command, rest = sub, rest[1:]
    options = {name: param for param in command.params for name in (*param.opts, *param.secondary_opts)}
    if command.add_help_option:  # click adds --help itself, not as one of the params
        options["--help"] = None
    takes_arguments = any(isinstance(param, TyperArgument) for param in command.params)
    problems = []
    tokens = iter(rest)
    for token in tokens:
        if token.startswith("-"):
            name, has_value, _ = token.partition("=")
            if name not in options:
                problems.append(f"weisu {shlex.join(args)}: {command.name} has no option {name}")
            elif isinstance(param := options[name], TyperOption) and not param.is_flag and not has_value:
                next(tokens, None)  # the option's value
        elif not takes_arguments:
            problems.append(f"weisu {shlex.join(args)}: {command.name} takes no argument {token!r}")
    return problems


def _weisu_args(command: list[str]) -> list[str] | None:
    """The arguments after the `weisu` executable in a command line, or after the service in a
    `docker compose … run [--rm] SERVICE …` (whose entrypoint is weisu); None if it runs something else."""
    if command[:2] == ["docker", "compose"] and "run" in command:
        after = command[command.index("run") + 1 :]
        while after and after[0].startswith("-"):
            after = after[1:]
        return after[1:]
    for index, token in enumerate(command):
        if token == "weisu" or token.endswith("/weisu"):
            return command[index + 1 :]
    return None


@cache
def _compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def _unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are case-sensitive
    parser.read_string(path.read_text(encoding="utf-8"))
    return parser


def _doc_commands() -> list[list[str]]:
    """Every `weisu …` command line in docs/deploy.md's shell blocks (a `$ ` prompt, `sudo -u …` allowed)."""
    found = []
    for language, block in _FENCE.findall(DEPLOY_DOC.read_text(encoding="utf-8")):
        if language not in ("sh", "shell", "bash", "console"):
            continue
        for line in block.replace("\\\n", " ").splitlines():  # a continued line is one command
            line = line.strip().removeprefix("$ ")
            if not line or line.startswith("#"):
                continue
            args = _weisu_args(shlex.split(line, comments=True))
            if args is not None:
                found.append(args)
    return found


# --- item 3: one config.yaml for every node ---------------------------------------------------------


def _setting(settings: Any, path: tuple[str, ...]) -> Any:
    for name in path:
        settings = getattr(settings, name)
    return settings


def test_one_config_file_with_two_environments_gives_two_nodes_settings() -> None:
    config = PROJECT_ROOT / "config.yaml"
    before = config.read_bytes()
    nodes = {
        "crawler-a": {
            "WEISU_DATABASE_URL": "postgresql://weisu@db-a.internal:5432/weisu",
            "WEISU_REDIS_URL": "redis://redis-a.internal:6379/0",
        },
        "crawler-b": {
            "WEISU_DATABASE_URL": "postgresql://weisu@db-b.internal:5433/weisu",
            "WEISU_REDIS_URL": "redis://redis-b.internal:6380/1",
        },
    }
    assert "WEISU_REDIS_URL" in ENV_FIELDS, "settings.py reads no WEISU_REDIS_URL (issue #18, item 1)"
    loaded = {node: load_settings(config, env=env) for node, env in nodes.items()}
    for node, env in nodes.items():
        assert _setting(loaded[node], ENV_FIELDS["WEISU_DATABASE_URL"]) == env["WEISU_DATABASE_URL"]
        assert _setting(loaded[node], ENV_FIELDS["WEISU_REDIS_URL"]) == env["WEISU_REDIS_URL"]
    assert loaded["crawler-a"].platforms == loaded["crawler-b"].platforms
    assert config.read_bytes() == before


def test_the_config_file_names_no_redis_url_of_its_own() -> None:
    text = (PROJECT_ROOT / "config.yaml").read_text(encoding="utf-8")
    assert "redis://" not in text


# --- item 4: the compose file, the systemd units, the guide ------------------------------------------


def test_the_checker_catches_an_unknown_command_option_and_argument() -> None:
    assert cli_problems(["crawl", "--all", "--quiet"]) == []
    assert cli_problems(["serve", "--host", "0.0.0.0", "--port", "8000"]) == []
    assert cli_problems(["users", "add", "--help"]) == []
    assert cli_problems(["crawll"]) == ["weisu crawll: no command 'crawll'"]
    assert cli_problems(["serve", "--hots"]) == ["weisu serve --hots: serve has no option --hots"]
    assert cli_problems(["init", "extra"]) == ["weisu init extra: init takes no argument 'extra'"]


def test_compose_runs_postgres_redis_workers_scheduler_and_web() -> None:
    services = _compose()["services"]
    assert {"postgres", "redis", "migrate", "crawler", "detector", "scheduler", "web"} <= set(services)
    assert services["crawler"]["command"][:2] == ["crawl", "--distributed"]
    assert services["detector"]["command"][:2] == ["detect", "--worker"]


def test_every_weisu_command_in_compose_exists_in_the_cli() -> None:
    services = _compose()["services"]
    commands = {name: s["command"] for name, s in services.items() if s.get("entrypoint") == ["weisu"]}
    assert set(commands) == {"migrate", "crawler", "detector", "scheduler", "web"}
    assert [problem for args in commands.values() for problem in cli_problems(args)] == []


def test_compose_takes_every_secret_from_the_environment() -> None:
    secrets = {"WEISU_SECRET_KEY", "WEISU_AUTHOR_HASH_KEY", "WEISU_DISPATCH_API_KEY", "POSTGRES_PASSWORD"}
    for name, service in _compose()["services"].items():
        environment = service.get("environment") or {}
        for key in secrets & set(environment):
            assert str(environment[key]).startswith(f"${{{key}:"), f"{name}: {key} is written in the file"
        # The database URL carries a password only as the environment's.
        if url := environment.get("WEISU_DATABASE_URL"):
            assert "${POSTGRES_PASSWORD:?" in url


@pytest.mark.parametrize("unit", UNITS, ids=[u.name for u in UNITS])
def test_every_systemd_unit_runs_a_weisu_command_the_cli_has(unit: Path) -> None:
    service = _unit(unit)["Service"]
    args = _weisu_args(shlex.split(service["ExecStart"]))
    assert args is not None
    assert cli_problems(args) == []
    assert service["EnvironmentFile"] == "/etc/weisu/weisu.env"


def test_crawler_and_detection_workers_are_templated_units() -> None:
    names = {unit.name for unit in UNITS}
    assert {"weisu-crawler@.service", "weisu-detector@.service"} <= names
    assert {"weisu-scheduler.service", "weisu-web.service", "weisu-migrate.service"} <= names


def test_every_weisu_command_in_the_deploy_guide_exists_in_the_cli() -> None:
    commands = _doc_commands()
    assert len(commands) >= 5
    assert [problem for args in commands for problem in cli_problems(args)] == []


def test_the_deploy_guide_names_every_deploy_file() -> None:
    guide = DEPLOY_DOC.read_text(encoding="utf-8")
    files = [COMPOSE, DEPLOY / "Dockerfile", DEPLOY / "weisu.env.example", *UNITS]
    names = [f.relative_to(PROJECT_ROOT).as_posix() for f in [*files, DEPLOY / "systemd" / "weisu.target"]]
    assert [name for name in names if name not in guide] == []


def test_the_deploy_guide_documents_both_urls_from_the_environment() -> None:
    guide = DEPLOY_DOC.read_text(encoding="utf-8")
    assert "`WEISU_DATABASE_URL`" in guide
    assert "`WEISU_REDIS_URL`" in guide
