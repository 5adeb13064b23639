"""Under faults (5xx, 429 + Retry-After, cut-off JSON) a run finishes and stores every recoverable post."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from scrapy.http import Response
from sqlalchemy import select

from crawlers.middlewares.retry_after import retry_after_seconds
from crawlers.runner import run_crawl
from fixtures.serving import serve_in_thread
from fixtures.simulator.app import create_app
from fixtures.simulator.faults import FaultPlan
from settings import Settings, load_settings
from storage.db import make_engine, make_session_factory, session_scope
from storage.models import CrawlRun, Post

#: 10% 503s, 5% 429s (Retry-After: 1), 2% cut-off JSON bodies. Seed 4: every fault is recoverable.
FAULTS = {
    "error_rate": 0.10,
    "throttle_rate": 0.05,
    "malformed_rate": 0.02,
    "retry_after_seconds": 1,
    "seed": 4,
}


@pytest.fixture
def simulator() -> Iterator[str]:
    with serve_in_thread(create_app(42)) as base:
        yield base


@pytest.fixture
def settings(simulator: str, sqlite_url: str) -> Settings:
    return load_settings(env={"WEISU_SIMULATOR_URL": simulator, "WEISU_DATABASE_URL": sqlite_url})


def _stored(settings: Settings) -> tuple[set[tuple[str, str]], list[dict[str, int]]]:
    factory = make_session_factory(make_engine(settings.database_url))
    with session_scope(factory) as session:
        stored = {(p.platform_id, p.external_id) for p in session.scalars(select(Post))}
        stats = [run.stats for run in session.scalars(select(CrawlRun))]
    return stored, stats


def test_crawl_under_faults_finishes_and_stores_every_post(settings: Settings, simulator: str) -> None:
    assert httpx.post(f"{simulator}/_faults", params=FAULTS).status_code == 200
    results = run_crawl(settings, None)
    injected = httpx.get(f"{simulator}/_faults").json()["injected"]
    assert injected == {"error": 13, "throttle": 7, "malformed": 1}

    truth = httpx.get(f"{simulator}/_truth").json()["posts"]
    stored, stats = _stored(settings)
    assert stored == {(p["platform"], p["external_id"]) for p in truth}
    assert sum(r.posts_stored for r in results) == len(truth) == 479
    assert {r.status for r in results} == {"ok"}
    # every 429 was waited out before its retry, and the cut-off page was fetched again
    assert sum(s.get("weisu/retry_after_waits", 0) for s in stats) == 7
    assert sum(s.get("weisu/malformed_retried", 0) for s in stats) == 1


def test_a_page_cut_off_twice_is_logged_and_only_its_posts_are_lost(
    settings: Settings, simulator: str, capfd: pytest.CaptureFixture[str]
) -> None:
    # Seed 7 cuts heimao's page 3 off on both tries: its 10 posts are lost, pages 4 and 5 are not.
    assert httpx.post(f"{simulator}/_faults", params=FAULTS | {"seed": 7}).status_code == 200
    results = run_crawl(settings, None)
    truth = httpx.get(f"{simulator}/_truth").json()["posts"]
    heimao = [p["external_id"] for p in truth if p["platform"] == "heimao"]  # newest first, 10 a page
    page_3 = {("heimao", external_id) for external_id in heimao[20:30]}
    stored, _stats = _stored(settings)
    assert {(p["platform"], p["external_id"]) for p in truth} - stored == page_3
    assert {r.platform_id: r.status for r in results if r.status != "ok"} == {"heimao": "partial"}
    page_url = f"{settings.platforms['heimao'].base_url}/api/index/feed?type=1&page_size=10&page=3"
    expected = f"malformed page skipped: platform=heimao url={page_url} error=JSONDecodeError"
    assert expected in capfd.readouterr().err


def test_fault_draws_are_deterministic_per_url_and_attempt() -> None:
    first = FaultPlan(error_rate=0.5, seed=1)
    second = FaultPlan(error_rate=0.5, seed=1)
    urls = [f"http://sim/p/weibo/x?page={n}" for n in range(20)] * 2
    assert [first.draw(u) for u in urls] == [second.draw(u) for u in urls]
    assert {first.draw("http://sim/a") for _ in range(30)} == {"error", None}


def test_fault_rates_outside_zero_to_one_are_refused(simulator: str) -> None:
    assert httpx.post(f"{simulator}/_faults", params={"error_rate": 1.5}).status_code == 400
    assert (
        httpx.post(f"{simulator}/_faults", params={"error_rate": 0.6, "throttle_rate": 0.6}).status_code
        == 400
    )


def test_retry_after_is_read_in_seconds() -> None:
    def response(value: str | None) -> Response:
        headers = {"Retry-After": value} if value is not None else {}
        return Response("http://x", status=429, headers=headers)

    assert [
        retry_after_seconds(response(v)) for v in ("2", "0.5", None, "Wed, 21 Oct 2015 07:28:00 GMT", "-1")
    ] == [
        2.0,
        0.5,
        None,
        None,
        None,
    ]
