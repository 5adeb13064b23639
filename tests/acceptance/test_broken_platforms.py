"""Acceptance (issue 17): in one sweep, a platform that hangs, one that answers 500 to everything and one
that suddenly shows a login wall are each recorded (their crawl run's status and access status) and
alerted (one crawl_health alert each, delivered to a local webhook), while every other platform's posts
are all stored, as the simulator's /_truth lists them.

The sweep before it was clean, so each platform has learned what it usually brings; between the two the
world's clock moves on and new posts appear, which the healthy platforms must bring in too. Two seeds.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from alert_receivers import deliver_after_runs
from crawl.simulated import (
    crawl_runs,
    crawl_settings,
    keys_of,
    migrated_sqlite,
    simulator,
    stored_posts,
)

from crawlers.runner import run_crawl
from settings import Settings
from storage.db import session_factory_for, session_scope
from storage.models import Alert, AlertKind, CrawlRun

SEEDS = (7, 2026)
HANGING, FAILING, WALLED = "douban", "heimao", "jutousu"
HEALTHY = ("weibo", "tieba", "sznews", "szgov", "people_tousu")
BROKEN = (HANGING, FAILING, WALLED)
#: The hanging platform's requests give up after this (and 3 retries): the sweep waits for nothing else.
TIMEOUT_SECONDS = 1.0


@pytest.fixture(scope="module", params=SEEDS)
def sweep(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    with simulator(request.param) as sim, pytest.MonkeyPatch.context() as env:
        env.delenv("WEISU_JUTOUSU_COOKIE", raising=False)
        settings: Settings = crawl_settings(sim.base, migrated_sqlite(tmp_path_factory.mktemp("broken")))
        settings = settings.changed(
            platforms={HANGING: {"politeness": {"download_timeout": TIMEOUT_SECONDS}}}
        )
        platforms = [*HEALTHY, *BROKEN]
        run_crawl(settings, platforms)
        appeared = sim.advance(24 * 60)
        sim.set_faults(failing=FAILING, hanging=HANGING, hang_seconds=4 * TIMEOUT_SECONDS)
        httpx.post(f"{sim.base}/_walls", params={WALLED: "login_redirect"}, timeout=10).raise_for_status()
        run_crawl(settings, platforms)
        injected = sim.injected()
        runs = crawl_runs(settings)
        settings, counts, received = deliver_after_runs(settings, runs)
        with session_scope(session_factory_for(settings.database_url)) as session:
            alerts = [(a.kind, a.platform_id) for a in session.query(Alert).order_by(Alert.id)]
        yield {
            "sim": sim,
            "settings": settings,
            "runs": runs,
            "appeared": appeared,
            "injected": injected,
            "counts": counts,
            "bodies": received.bodies,
            "alerts": alerts,
            "truth": sim.truth(),
        }


def second_run(sweep: dict[str, Any], platform: str) -> CrawlRun:
    first, second = [run for run in sweep["runs"] if run.platform_id == platform]
    assert first.status == "ok" and first.items > 0  # the clean sweep it learned from
    return second


def test_the_hanging_platform_is_recorded_as_failed_with_no_answer(sweep: dict[str, Any]) -> None:
    run = second_run(sweep, HANGING)
    # No page answered. robots.txt (served apart from the pages) is fetched once per host for the
    # whole crawl process, by whichever crawler asks first: this one's answer, or none of its own.
    assert (run.status, run.items) == ("failed", 0)
    assert run.responses_by_status in ({}, {"200": 1})
    assert run.errors > 0
    assert sweep["injected"]["hanging"] > 0


def test_the_platform_answering_500_is_recorded_as_failed_with_only_500s(sweep: dict[str, Any]) -> None:
    run = second_run(sweep, FAILING)
    assert (run.status, run.items) == ("failed", 0)
    assert set(run.responses_by_status) - {"200"} == {"500"}  # beside its robots.txt, only 500s


def test_the_walled_platform_is_recorded_as_behind_a_login_wall(sweep: dict[str, Any]) -> None:
    run = second_run(sweep, WALLED)
    assert (run.access_status, run.items) == ("login_wall", 0)


def test_each_broken_platform_raises_one_crawl_health_alert_and_no_other_platform_any(
    sweep: dict[str, Any],
) -> None:
    assert sweep["counts"] == {"new": 3, "sent": 3, "retrying": 0, "failed": 0}
    assert sorted(sweep["alerts"]) == sorted((AlertKind.CRAWL_HEALTH, key) for key in BROKEN)
    events = sorted(body["event"] for body in sweep["bodies"])
    assert events == sorted(
        [
            f"health:{HANGING}:zero_items:{second_run(sweep, HANGING).id}",
            f"health:{FAILING}:zero_items:{second_run(sweep, FAILING).id}",
            f"health:{WALLED}:access:{second_run(sweep, WALLED).id}",
        ]
    )


def test_every_other_platform_closes_its_run_clean(sweep: dict[str, Any]) -> None:
    # Errors are counted per spider: a failing platform's "Gave up retrying" lines in the same crawl
    # process are not a healthy platform's errors.
    assert {key: (second_run(sweep, key).status, second_run(sweep, key).errors) for key in HEALTHY} == {
        key: ("ok", 0) for key in HEALTHY
    }


def test_every_other_platforms_posts_are_all_stored(sweep: dict[str, Any]) -> None:
    healthy = [post for post in sweep["truth"] if post["platform"] in HEALTHY]
    stored = {(p.platform_id, p.external_id) for p in stored_posts(sweep["settings"])}
    assert {key for key in stored if key[0] in HEALTHY} == keys_of(healthy)
    # The day's new posts on the healthy platforms came in through the broken sweep.
    new = keys_of([post for post in sweep["appeared"] if post["platform"] in HEALTHY])
    assert new and new <= stored
