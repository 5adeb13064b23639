"""Sweeping every configured platform of the simulator: exactly /_truth once, then nothing, then the new.

One simulator and one database for the module, swept three times in order (each sweep is a fixture
that depends on the one before): a full sweep; a second sweep with nothing new; an incremental sweep
after ``/_advance``. The expected posts and counts come from ``/_truth`` and config.yaml, so the test
covers every platform that is configured, however many there are.
"""

from __future__ import annotations

import html
import json
import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC
from typing import Any

import httpx
import pytest
from simulated import (
    Simulator,
    crawl_runs,
    crawl_settings,
    entry_point_count,
    keys_of,
    migrated_sqlite,
    platform_of,
    stored_posts,
)

from crawlers.runner import CrawlResult, run_crawl
from crawlers.text import normalise_text
from fixtures.samples.replay import SAMPLES_DIR
from fixtures.simulator.corpus import PLANTED
from settings import Settings
from storage.models import Post
from storage.personal_data import mask_personal_data

GB_CHARSETS = ("gbk", "gb2312", "gb18030")


@dataclass(frozen=True)
class Sweep:
    results: list[CrawlResult]
    #: The rows this sweep added (posts with a larger id than any before it).
    posts: list[Post]
    #: The simulator requests this sweep sent.
    requests: list[str]


@pytest.fixture(scope="module")
def settings(sim: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return crawl_settings(sim.base, migrated_sqlite(tmp_path_factory.mktemp("e2e")))


def _sweep(settings: Settings, sim: Simulator) -> Sweep:
    before_posts = max((p.id for p in stored_posts(settings)), default=0)
    before_requests = len(sim.request_log)
    results = run_crawl(settings, None)
    return Sweep(results, stored_posts(settings, before_posts), sim.request_log[before_requests:])


@pytest.fixture(scope="module")
def truth(sim: Simulator) -> list[dict[str, Any]]:
    return sim.truth()


@pytest.fixture(scope="module")
def full(settings: Settings, sim: Simulator, truth: list[dict[str, Any]]) -> Sweep:
    return _sweep(settings, sim)


@pytest.fixture(scope="module")
def repeat(full: Sweep, settings: Settings, sim: Simulator) -> Sweep:
    return _sweep(settings, sim)


@pytest.fixture(scope="module")
def advanced(repeat: Sweep, settings: Settings, sim: Simulator) -> tuple[list[dict[str, Any]], Sweep]:
    appeared = httpx.post(f"{sim.base}/_advance", params={"minutes": 330}, timeout=30).json()["appeared"]
    return appeared, _sweep(settings, sim)


# --- the full sweep ----------------------------------------------------------------------------


def test_full_sweep_stores_exactly_the_posts_truth_lists(full: Sweep, truth: list[dict[str, Any]]) -> None:
    stored = {(p.platform_id, p.external_id, p.parent_external_id) for p in full.posts}
    assert stored == {(p["platform"], p["external_id"], p["parent_external_id"]) for p in truth}


def test_full_sweep_stores_no_post_twice(full: Sweep, truth: list[dict[str, Any]]) -> None:
    counts = Counter((p.platform_id, p.external_id) for p in full.posts)
    assert [key for key, n in counts.items() if n > 1] == []
    assert len(full.posts) == len(truth)


def test_every_configured_platform_finishes_ok_with_its_truth_count(
    full: Sweep, settings: Settings, truth: list[dict[str, Any]]
) -> None:
    expected = Counter(p["platform"] for p in truth)
    assert [(r.platform_id, r.status, r.errors) for r in full.results] == [
        (key, "ok", 0) for key in settings.enabled_platforms()
    ]
    assert {r.platform_id: r.posts_stored for r in full.results} == {
        key: expected[key] for key in settings.enabled_platforms()
    }
    assert all(expected[key] > 0 for key in settings.enabled_platforms())


def test_planted_personal_data_never_reaches_the_database(full: Sweep, truth: list[dict[str, Any]]) -> None:
    planted = {m for p in truth for m in PLANTED.findall(f"{p['title'] or ''} {p['text']}")}
    assert len(planted) >= 20  # the simulator does plant them, on many platforms
    stored = "\n".join(f"{p.title or ''}\n{p.text}\n{p.url}" for p in full.posts)
    assert [value for value in planted if value in stored] == []
    assert {"[手机号]", "[邮箱]", "[电话]", "[车牌]"} <= set(re.findall(r"\[[^\]]+\]", stored))


def test_authors_are_keyed_hashes_and_times_utc(full: Sweep) -> None:
    assert all(p.author_key is None or re.fullmatch(r"[0-9a-f]{64}", p.author_key) for p in full.posts)
    assert sum(p.author_key is not None for p in full.posts) > len(full.posts) // 2
    assert all(p.published_at is None or p.published_at.tzinfo == UTC for p in full.posts)


def _gb_platforms(settings: Settings) -> list[str]:
    """Platforms whose recorded pages are served in a GB encoding (or configured to be read so)."""
    keys = []
    for key, platform in settings.enabled_platforms().items():
        sample = SAMPLES_DIR / key / "responses.json"
        served = json.loads(sample.read_text("utf-8")) if sample.exists() else []
        labels = [entry["content_type"].lower() for entry in served] + [(platform.encoding or "").lower()]
        if any(charset in label for label in labels for charset in GB_CHARSETS):
            keys.append(key)
    return keys


def test_gbk_and_gb18030_pages_are_stored_as_the_text_truth_holds(
    full: Sweep, settings: Settings, truth: list[dict[str, Any]]
) -> None:
    gb = _gb_platforms(settings)
    assert "tieba" in gb
    # As served: the text HTML-escaped into the page (a literal "<…>" in a post stays text), then
    # the same normalising and masking every stored post goes through.
    expected = {
        (p["platform"], p["external_id"]): mask_personal_data(normalise_text(html.escape(p["text"], False)))[
            0
        ]
        for p in truth
        if p["platform"] in gb
    }
    stored = {(p.platform_id, p.external_id): p.text for p in full.posts if p.platform_id in gb}
    assert stored == expected
    assert any("😡" in text for text in stored.values())  # outside GBK: GB18030 bytes decoded intact


# --- a second sweep with nothing new -----------------------------------------------------------


def test_second_sweep_stores_nothing(repeat: Sweep) -> None:
    assert repeat.posts == []
    assert [r.posts_stored for r in repeat.results] == [0] * len(repeat.results)
    assert {r.status for r in repeat.results} == {"ok"}


def test_second_sweep_sends_at_most_two_requests_per_entry_point(repeat: Sweep, settings: Settings) -> None:
    sent = Counter(platform_of(url) for url in repeat.requests)
    over = {
        key: (sent[key], entry_point_count(settings, key))
        for key in settings.enabled_platforms()
        if sent[key] > 2 * entry_point_count(settings, key)
    }
    assert over == {}
    assert set(sent) == set(settings.enabled_platforms())  # each platform was still asked


# --- after /_advance ---------------------------------------------------------------------------


def test_incremental_sweep_after_advance_stores_exactly_the_new_posts(
    advanced: tuple[list[dict[str, Any]], Sweep],
) -> None:
    appeared, sweep = advanced
    assert len({p["platform"] for p in appeared}) >= 11
    assert {(p.platform_id, p.external_id, p.parent_external_id) for p in sweep.posts} == {
        (p["platform"], p["external_id"], p["parent_external_id"]) for p in appeared
    }
    new = Counter(p["platform"] for p in appeared)
    assert {r.platform_id: r.posts_stored for r in sweep.results} == {
        r.platform_id: new[r.platform_id] for r in sweep.results
    }
    assert {r.status for r in sweep.results} == {"ok"}


def test_incremental_sweep_requests_grow_with_the_new_posts_not_the_platform(
    advanced: tuple[list[dict[str, Any]], Sweep], settings: Settings
) -> None:
    appeared, sweep = advanced
    new = Counter(p["platform"] for p in appeared)
    sent = Counter(platform_of(url) for url in sweep.requests)
    # listing pages as on a repeat sweep, plus at most one detail page per new thread
    over = {
        key: sent[key]
        for key in settings.enabled_platforms()
        if sent[key] > 2 * entry_point_count(settings, key) + new[key]
    }
    assert over == {}


def test_a_new_floor_under_an_old_thread_is_read_through_its_bumped_list_row(
    full: Sweep, advanced: tuple[list[dict[str, Any]], Sweep], settings: Settings
) -> None:
    appeared, sweep = advanced
    [floor] = [p for p in appeared if p["platform"] == "tieba" and p["parent_external_id"]]
    stored = {(p.platform_id, p.external_id, p.parent_external_id) for p in sweep.posts}
    assert ("tieba", floor["external_id"], floor["parent_external_id"]) in stored
    # The thread now holds the count its bumped list row shows, so the next sweep settles it again.
    key = ("tieba", floor["parent_external_id"])
    [before] = [p for p in full.posts if (p.platform_id, p.external_id) == key]
    [after] = [p for p in stored_posts(settings) if (p.platform_id, p.external_id) == key]
    assert after.replies == before.replies + 1
    tieba = [run for run in crawl_runs(settings) if run.platform_id == "tieba"]
    assert tieba[-1].stats.get("weisu/threads_read_again") == 1


def test_after_all_sweeps_the_database_holds_truth_once(
    advanced: tuple[list[dict[str, Any]], Sweep], settings: Settings, sim: Simulator
) -> None:
    every = stored_posts(settings)
    assert len(every) == len({(p.platform_id, p.external_id) for p in every})
    assert {(p.platform_id, p.external_id) for p in every} == keys_of(sim.truth())
    runs = crawl_runs(settings)
    assert len(runs) == 3 * len(settings.enabled_platforms())
    assert all(r.finished_at is not None and r.requests > 0 for r in runs)


# --- runner edges ------------------------------------------------------------------------------


def test_unknown_platform_is_refused_before_crawling(settings: Settings) -> None:
    with pytest.raises(ValueError, match="unknown platform"):
        run_crawl(settings, ["nope"])


def test_child_process_that_fails_is_reported_as_failed(sim: Simulator, sqlite_url: str) -> None:
    broken = crawl_settings(sim.base, sqlite_url)
    nowhere = broken.platforms["sznews"].changed(base_url="http://127.0.0.1:9/p/sznews")  # nothing listens
    broken = broken.changed(platforms={**broken.platforms, "sznews": nowhere})
    [result] = run_crawl(broken, ["sznews"])
    assert result == CrawlResult("sznews", "failed", result.requests, 0, 0, result.errors)
    assert result.errors >= 1
