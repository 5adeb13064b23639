"""The scheduler's job table: ids, triggers, one instance at a time, per-platform failure isolation."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from apscheduler.schedulers.background import BackgroundScheduler

import schedules
from settings import PROJECT_ROOT, Settings, load_settings
from storage.db import make_engine, make_session_factory, session_scope, upgrade
from storage.queries import set_platform_paused, sync_platforms


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    loaded = load_settings(
        PROJECT_ROOT / "config.yaml", env={"WEISU_DATABASE_URL": f"sqlite:///{tmp_path}/w.db"}
    )
    upgrade(loaded.database_url)
    return loaded


def test_job_table_has_the_sweeps_push_sync_and_claim_expiry(settings: Settings) -> None:
    scheduler = schedules.configure(BackgroundScheduler(timezone="Asia/Shanghai"), settings)
    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert sorted(jobs) == [
        "expire_claims",
        "incremental_sweep",
        "nightly_sweep",
        "push_tickets",
        "retrain_model",
        "sync_ticket_statuses",
    ]
    assert (
        str(jobs["nightly_sweep"].trigger)
        == "cron[month='*', day='*', day_of_week='*', hour='2', minute='0']"
    )
    assert (
        str(jobs["retrain_model"].trigger)
        == "cron[month='*', day='*', day_of_week='sun', hour='4', minute='30']"
    )
    assert str(jobs["push_tickets"].trigger) == "interval[0:00:30]"
    assert str(jobs["incremental_sweep"].trigger) == "interval[0:15:00]"
    assert str(jobs["sync_ticket_statuses"].trigger) == "interval[0:05:00]"
    assert all(job.max_instances == 1 and job.coalesce for job in jobs.values())


def test_configuring_twice_replaces_instead_of_duplicating(settings: Settings) -> None:
    scheduler = BackgroundScheduler(timezone="Asia/Shanghai")
    scheduler.start(paused=True)  # replace_existing applies once jobs reach the job store
    try:
        schedules.configure(scheduler, settings)
        schedules.configure(scheduler, settings)
        assert len(scheduler.get_jobs()) == len(schedules.JOBS)
    finally:
        scheduler.shutdown(wait=False)


@dataclass
class _Result:
    status: str


def test_one_failing_platform_does_not_stop_the_sweep_or_detection(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import classify.detection
    import crawlers.runner

    crawled: list[str] = []
    detected: list[bool] = []
    platform_ids = list(settings.enabled_platforms())
    broken = platform_ids[0]

    def fake_crawl(_settings: Settings, ids: list[str]) -> list[_Result]:
        crawled.extend(ids)
        if ids == [broken]:
            raise RuntimeError("layout changed")
        return [_Result("finished")]

    monkeypatch.setattr(crawlers.runner, "run_crawl", fake_crawl)
    monkeypatch.setattr(classify.detection, "detect_new_posts", lambda *a: detected.append(True))
    outcome = schedules.nightly_sweep(settings)
    assert crawled == platform_ids
    assert outcome[broken] == "error: layout changed"
    assert all(outcome[p] == "finished" for p in platform_ids[1:])
    assert detected == [True]


def test_service_codes_the_dispatch_system_lacks_are_logged_by_name_at_start(
    settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from fixtures.dispatch_simulator.app import SimulatorOptions
    from fixtures.dispatch_simulator.app import create_app as create_simulator
    from fixtures.serving import serve_in_thread

    offered = {code: code for code in settings.dispatch.service_codes.values() if code != "health"}
    offered["other"] = "其他"
    simulator = create_simulator(tmp_path / "dispatch.db", SimulatorOptions(services=offered))
    with serve_in_thread(simulator) as url:
        settings = settings.changed(dispatch={"base_url": url})
        with caplog.at_level("ERROR", logger="weisu.schedules"):
            unknown = schedules.check_dispatch_services(settings)
    assert unknown == ["health"]
    assert caplog.messages == ["service codes unknown to the dispatch system: health"]


def test_an_unreachable_dispatch_system_at_start_is_logged_not_fatal(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    # discard port: nothing listens
    settings = settings.changed(dispatch={"base_url": "http://127.0.0.1:9", "timeout_seconds": 1})
    with caplog.at_level("ERROR", logger="weisu.schedules"):
        assert schedules.check_dispatch_services(settings) == []
    assert caplog.messages[0].startswith("could not read the dispatch system's services: ")


def test_a_sweep_skips_the_platforms_an_admin_paused(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import classify.detection
    import crawlers.runner

    engine = make_engine(settings.database_url)
    with session_scope(make_session_factory(engine)) as session:
        sync_platforms(session, {k: (p.name, p.kind, p.enabled) for k, p in settings.platforms.items()})
        set_platform_paused(session, "tieba", paused=True, actor="admin", reason="改版，待更新选择器")
    engine.dispose()
    crawled: list[str] = []
    monkeypatch.setattr(crawlers.runner, "run_crawl", lambda _s, ids: crawled.extend(ids) or [_Result("ok")])
    monkeypatch.setattr(classify.detection, "detect_new_posts", lambda *a: None)
    outcome = schedules.nightly_sweep(settings)
    assert "tieba" not in crawled and "tieba" not in outcome
    assert crawled == [key for key in settings.enabled_platforms() if key != "tieba"]
