"""Product code reads nothing from fixtures/ (simulators, samples, the labelled corpus), and the wheel
ships the production data and leaves the simulators out (issue #16, item 7)."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from settings import PROJECT_ROOT

PRODUCT = ["crawlers", "classify", "verify", "storage", "settings.py", "bootstrap.py", "schedules.py"]
#: The labelled training corpus stays in fixtures/corpus (DESIGN.md: fixtures/ holds labelled corpora):
#: `weisu train` and `retrain` read it by path from the source tree. The one path product code names.
CORPUS_READER = "classify/corpus.py"
#: cli.py reaches fixtures/ only from the commands that run simulators.
SIMULATOR_COMMANDS = {"simulate", "simulate_dispatch", "demo"}


def _modules(names: list[str]) -> list[Path]:
    paths = [PROJECT_ROOT / name for name in names]
    return sorted(p for path in paths for p in ([path] if path.is_file() else path.rglob("*.py")))


def _docstrings(tree: ast.Module) -> set[int]:
    nodes = [tree, *(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.ClassDef))]
    return {
        id(node.body[0].value)
        for node in nodes
        if node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)
    }


def _fixtures_references(path: Path) -> list[str]:
    """Imports of fixtures, and string constants naming the fixtures folder (docstrings aside)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [f"import {a.name}" for a in node.names if a.name.split(".")[0] == "fixtures"]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "fixtures":
            found.append(f"from {node.module} import …")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            names_folder = node.value == "fixtures" or "fixtures/" in node.value
            found += [repr(node.value)] if names_folder else []
    return found


def test_product_code_neither_imports_fixtures_nor_names_its_folder() -> None:
    found = {
        str(path.relative_to(PROJECT_ROOT)): refs
        for path in _modules(PRODUCT)
        if (refs := _fixtures_references(path))
    }
    assert found == {CORPUS_READER: ["'fixtures'"]}


def test_cli_imports_fixtures_only_in_the_commands_that_run_simulators() -> None:
    tree = ast.parse((PROJECT_ROOT / "cli.py").read_text(encoding="utf-8"))
    users = {
        function.name
        for function in ast.walk(tree)
        if isinstance(function, ast.FunctionDef)
        for node in ast.walk(function)
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in ("fixtures", "demo")
    }
    top_level = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    assert users == SIMULATOR_COMMANDS
    assert not [n for n in top_level if "fixtures" in ast.unparse(n) or "demo" in ast.unparse(n)]


def test_the_production_data_lives_in_its_packages() -> None:
    from classify import text
    from settings import DispatchSettings

    assert text.STOP_WORDS_FILE == PROJECT_ROOT / "classify" / "data" / "stop_words_segmented_set.txt"
    assert text.USER_DICT == PROJECT_ROOT / "classify" / "data" / "userdict.txt"
    assert DispatchSettings().responsibility_csv == "verify/data/responsibility_shenzhen.csv"
    for folder in ("classify/data", "verify/data"):
        assert (PROJECT_ROOT / folder / "PROVENANCE.md").is_file()


@pytest.mark.timeout(300)
def test_the_wheel_ships_the_data_and_not_the_simulators(tmp_path: Path) -> None:
    # Built from a copy: setuptools keeps a build/ folder beside the sources, and a stale one could
    # leak old files into the wheel. pip builds as any installer would (setuptools from the index).
    source = tmp_path / "source"
    ignored = shutil.ignore_patterns(".*", "var", "build", "*.egg-info", "__pycache__")
    shutil.copytree(PROJECT_ROOT, source, ignore=ignored)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps"]
        + ["--wheel-dir", str(tmp_path), str(source)],
        check=True,
        capture_output=True,
    )
    [wheel] = tmp_path.glob("weisu-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert not [name for name in names if name.startswith("fixtures/")]
    assert {
        "classify/data/stop_words_segmented_set.txt",
        "classify/data/userdict.txt",
        "verify/data/responsibility_shenzhen.csv",
        "settings.py",
        "cli.py",
    } <= names


@pytest.mark.parametrize("command", ["simulate", "simulate-dispatch", "demo"])
def test_without_the_simulators_a_simulator_command_says_so_in_one_line(
    command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    from typer.testing import CliRunner

    from cli import app

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "fixtures" else real_find_spec(name, *a)
    )
    result = CliRunner().invoke(app, [command])
    assert result.exit_code == 2
    assert result.stderr == (
        f"weisu {command}: the simulators are not installed: they come with the source tree (fixtures/), "
        "not the wheel\n"
    )
