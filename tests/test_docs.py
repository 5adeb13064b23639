"""The docs stay true: every CLI command, environment variable and config key is documented."""

from __future__ import annotations

import re
import types
import typing
from pathlib import Path

import typer.main
from pydantic import BaseModel

from cli import app
from settings import ENV_OVERRIDES, PROJECT_ROOT, Settings

README = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
CONFIG_DOC = (PROJECT_ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")


def _command_names() -> list[str]:
    group = typer.main.get_command(app)
    names: list[str] = []
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        subcommands = getattr(command, "commands", None)
        names.extend(f"{name} {sub}" for sub in subcommands) if subcommands else names.append(name)
    return sorted(names)


def _config_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    keys: list[str] = []
    for name, field in model.model_fields.items():
        if field.exclude:
            continue  # secrets and internal paths: documented as environment variables instead
        dotted = f"{prefix}{name}"
        keys.append(dotted)
        annotation = field.annotation
        if typing.get_origin(annotation) is dict:
            annotation = typing.get_args(annotation)[1]
            if typing.get_origin(annotation) is typing.Annotated:
                annotation = typing.get_args(annotation)[0]
            dotted += ".*"
        elif typing.get_origin(annotation) is list:
            annotation = typing.get_args(annotation)[0]
            dotted += "[]"
        # A union of models (a platform: one model per spider kind) documents the keys of each.
        members = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else (annotation,)
        for member in members:
            if isinstance(member, type) and issubclass(member, BaseModel):
                keys.extend(key for key in _config_keys(member, dotted + ".") if key not in keys)
    return keys


def test_every_cli_command_is_in_the_readme() -> None:
    missing = [name for name in _command_names() if f"`weisu {name}" not in README]
    assert missing == []


def test_every_environment_variable_is_in_the_readme() -> None:
    missing = [name for name in ENV_OVERRIDES if f"`{name}`" not in README]
    assert missing == []


def test_every_config_key_is_in_the_configuration_doc() -> None:
    missing = [key for key in _config_keys(Settings) if f"`{key}`" not in CONFIG_DOC]
    assert missing == []


def test_every_key_the_configuration_doc_names_is_read() -> None:
    documented = re.findall(r"^\| `([^`]+)` \|", CONFIG_DOC, re.M)
    assert [key for key in documented if key not in _config_keys(Settings)] == []


def test_readme_starts_with_the_two_commands() -> None:
    block = re.search(r"```\n(.*?)```", README, re.S)
    assert block is not None
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines()]
    assert commands == ["make demo", "make test"]


def test_every_make_target_the_readme_names_exists() -> None:
    makefile = Path(PROJECT_ROOT / "Makefile").read_text(encoding="utf-8")
    for target in set(re.findall(r"`make (\w+)`", README)):
        assert re.search(rf"^{target}:", makefile, re.M), target
