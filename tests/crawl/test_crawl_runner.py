"""The crawl runner's two ways to start its child: forked from the caller, or a fresh interpreter."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from simulated import Simulator, crawl_settings, stored_posts
from sqlalchemy import select, text

from crawlers.runner import can_fork, run_crawl
from storage.db import make_engine, make_session_factory, session_scope, upgrade
from storage.models import CrawlRun


def _weibo_truth(sim: Simulator) -> set[str]:
    return {str(p["external_id"]) for p in sim.truth() if p["platform"] == "weibo"}


def test_a_plain_process_forks_its_crawl_child(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WEISU_CRAWL_SPAWN", raising=False)
    # A plain process has no Twisted reactor; another test file on this pytest worker may have loaded one.
    monkeypatch.delitem(sys.modules, "twisted.internet.reactor", raising=False)
    assert can_fork() is True


def test_weisu_crawl_spawn_asks_for_a_fresh_interpreter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEISU_CRAWL_SPAWN", "1")
    assert can_fork() is False


@pytest.mark.parametrize("spawn", ["0", "1"], ids=["forked", "spawned"])
def test_either_child_stores_the_platforms_posts_once(
    spawn: str, sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEISU_CRAWL_SPAWN", spawn)
    url = f"sqlite:///{tmp_path / 'weisu.db'}"
    upgrade(url)
    settings = crawl_settings(sim.base, url)
    [result] = run_crawl(settings, ["weibo"])
    assert (result.status, result.posts_stored) == ("ok", len(_weibo_truth(sim)))
    assert {p.external_id for p in stored_posts(settings)} == _weibo_truth(sim)


@pytest.mark.parametrize("spawn", ["0", "1"], ids=["forked", "spawned"])
def test_the_caller_is_told_how_many_platforms_finished_until_all_have(
    spawn: str, sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEISU_CRAWL_SPAWN", spawn)
    url = f"sqlite:///{tmp_path / 'weisu.db'}"
    upgrade(url)
    told: list[tuple[int, int]] = []
    results = run_crawl(
        crawl_settings(sim.base, url), ["weibo", "sznews"], on_progress=lambda *p: told.append(p)
    )
    assert [r.status for r in results] == ["ok", "ok"]
    assert told[-1] == (2, 2)
    assert {total for _, total in told} == {2}
    assert [done for done, _ in told] == sorted(done for done, _ in told)  # never counts down


def test_the_callers_open_connection_survives_a_forked_crawl(
    database_url: str, sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The child inherits the caller's pooled connection (on PostgreSQL, a socket): it must neither
    # use nor close it, or the caller's next query fails.
    monkeypatch.delenv("WEISU_CRAWL_SPAWN", raising=False)
    engine = make_engine(database_url)
    factory = make_session_factory(engine)
    with session_scope(factory) as session:
        assert session.execute(text("SELECT 1")).scalar_one() == 1
    try:
        [result] = run_crawl(crawl_settings(sim.base, database_url), ["sznews"])
        with session_scope(factory) as session:
            runs = session.scalars(select(CrawlRun.status)).all()
        assert (result.status, runs) == ("ok", ["ok"])
    finally:
        engine.dispose()


def test_a_forked_crawl_under_a_rich_progress_display_finishes(
    sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `make demo` crawls inside a rich Progress: its refresh thread and its stdout/stderr proxies
    # must not reach the child.
    from rich.console import Console
    from rich.progress import Progress

    monkeypatch.delenv("WEISU_CRAWL_SPAWN", raising=False)
    url = f"sqlite:///{tmp_path / 'weisu.db'}"
    upgrade(url)
    with (
        (tmp_path / "display.txt").open("w") as display,
        Progress(console=Console(force_terminal=True, file=display)) as progress,
    ):
        progress.add_task("crawling")
        [result] = run_crawl(crawl_settings(sim.base, url), ["weibo"], timeout=120)
    assert (result.status, result.posts_stored) == ("ok", len(_weibo_truth(sim)))
