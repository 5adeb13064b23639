"""Acceptance (issue 17): a spike planted in the simulator (one category in one district rising sharply in
one week) is that week's first finding in the weekly class-case report, and the same week of the world
without it reports no spike.

The whole path: the platform simulator → crawl → detect (the session-trained model) → the report of
that week, with the shipped report settings (eight trailing weeks, FDR 5 %, at least 3 leads). The
world's own posts on the crawled platforms start in 2026-W47, so fixtures/simulator/spike.py brings the
history: ten real short problems a week on Weibo from W38 on, then in W46 eight labelled 城乡建设
messages placed in 南山区 (the spike); the quiet world is the same history without the spike. Two seeds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session

from bootstrap import detect_and_stamp
from classify.training import TrainReport
from crawlers.runner import run_crawl
from fixtures.serving import serve_in_thread
from fixtures.simulator.app import create_app
from fixtures.simulator.spike import Spike
from settings import load_settings
from storage.db import session_factory_for, session_scope, upgrade
from verify.reports.build import WeeklyReport, build_weekly_report
from verify.reports.weeks import IsoWeek

SEEDS = (7, 2026)
WEEK = IsoWeek(2026, 46)
SPIKE = Spike(category="城乡建设", district="南山区", monday=date(2026, 11, 9), posts=8)
QUIET = Spike(category="城乡建设", district="南山区", monday=date(2026, 11, 9), posts=0)
PLATFORMS = ["weibo", "tieba", "heimao", "sznews"]
ZONE = ZoneInfo("Asia/Shanghai")


def report_of_world(
    seed: int,
    spike: Spike | None,
    folder: Path,
    trained: TrainReport,
    activate: Callable[[Session, TrainReport], None],
) -> WeeklyReport:
    url = f"sqlite:///{folder / 'weisu.db'}"
    upgrade(url)
    with serve_in_thread(create_app(seed, spike=spike)) as base:
        settings = load_settings(
            env={
                "WEISU_DATABASE_URL": url,
                "WEISU_SIMULATOR_URL": base,
                "WEISU_MODEL_DIR": str(folder / "models"),
            }
        )
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
        "quiet": report_of_world(seed, QUIET, tmp_path_factory.mktemp("quiet"), trained, activate_model),
    }


def test_the_planted_spike_is_the_weeks_first_finding(reports: dict[str, WeeklyReport]) -> None:
    report = reports["planted"]
    assert report.week == WEEK and len(report.trailing) == 8
    first = report.spikes[0]
    assert (first.category, first.district) == (SPIKE.category, SPIKE.district)
    assert first.q_value <= report.options.fdr_level and first.count >= report.options.min_count


def test_the_planted_spike_is_the_only_finding(reports: dict[str, WeeklyReport]) -> None:
    assert [(s.category, s.district) for s in reports["planted"].spikes] == [(SPIKE.category, SPIKE.district)]


def test_the_same_week_without_the_spike_reports_no_spike(reports: dict[str, WeeklyReport]) -> None:
    report = reports["quiet"]
    assert report.leads > 0  # the week had its usual leads: quiet, not empty
    assert report.spikes == ()
