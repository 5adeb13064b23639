"""Acceptance (issue 17): a spike planted in the simulator (one category in one district rising sharply in
one week) is that week's first finding in the weekly class-case report, and the same week of the world
without it reports no spike.

The whole path: the platform simulator (fixtures/simulator/spike.py plants the spike) → crawl → detect
(the session-trained model) → the report of that week. The world's posts are dated over its last
three and a half weeks (2026-W45 … W48), so the report's baseline is the two complete weeks before the
reported one (``report.trailing_weeks: 2``). Two seeds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session

from classify.training import TrainReport
from crawlers.runner import run_crawl
from fixtures.serving import serve_in_thread
from fixtures.simulator.app import create_app
from fixtures.simulator.spike import Spike
from bootstrap import detect_and_stamp
from settings import load_settings
from storage.db import session_factory_for, session_scope, upgrade
from verify.reports.build import WeeklyReport, build_weekly_report
from verify.reports.weeks import IsoWeek

SEEDS = (7, 2026)
WEEK = IsoWeek(2026, 47)
SPIKE = Spike(category="城乡建设", district="南山区", monday=date(2026, 11, 16), posts=8)
PLATFORMS = ["weibo", "tieba", "heimao", "sznews"]
ZONE = ZoneInfo("Asia/Shanghai")


def report_of_world(
    seed: int, spike: Spike | None, folder: Path, trained: TrainReport, activate: Callable[[Session, TrainReport], None]
) -> WeeklyReport:
    url = f"sqlite:///{folder / 'weisu.db'}"
    upgrade(url)
    with serve_in_thread(create_app(seed, spike=spike)) as base:
        settings = load_settings(
            env={"WEISU_DATABASE_URL": url, "WEISU_SIMULATOR_URL": base, "WEISU_MODEL_DIR": str(folder / "models")}
        )
        settings = settings.changed(report={"trailing_weeks": 2})
        factory = session_factory_for(url)
        with session_scope(factory) as session:
            activate(session, trained)
        results = run_crawl(settings, PLATFORMS)
        assert {r.status for r in results} == {"ok"}
        detect_and_stamp(settings, factory)
    with session_scope(factory) as session:
        return build_weekly_report(session, settings.report, WEEK, ZONE)


@pytest.fixture(scope="module", params=SEEDS)
def reports(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    trained: TrainReport,
    activate_model: Callable[[Session, TrainReport], None],
) -> Iterator[dict[str, WeeklyReport]]:
    seed = request.param
    yield {
        "planted": report_of_world(seed, SPIKE, tmp_path_factory.mktemp("planted"), trained, activate_model),
        "quiet": report_of_world(seed, None, tmp_path_factory.mktemp("quiet"), trained, activate_model),
    }


def test_explore(reports: dict[str, Any]) -> None:
    for name, report in reports.items():
        print(name, report.leads, report.weeks)
        for cell in report.cells[:6]:
            print("  ", cell)
        print("  spikes", report.spikes)
    assert False
