"""Every platform's spider, replayed offline on its recorded sample, yields exactly the expected items."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from fixtures.samples.replay import SAMPLES_DIR, replay
from fixtures.serving import serve_in_thread
from fixtures.simulator.app import create_app
from settings import load_settings, rebase_url

SETTINGS = load_settings(env={})
PLATFORMS = sorted(SETTINGS.platforms)


def test_every_configured_platform_has_a_recorded_sample() -> None:
    missing = [key for key in PLATFORMS if not (SAMPLES_DIR / key / "expected.json").exists()]
    assert missing == []


@pytest.mark.parametrize("platform_id", PLATFORMS, ids=PLATFORMS)
def test_spider_turns_recorded_sample_into_expected_items(platform_id: str) -> None:
    expected = json.loads((SAMPLES_DIR / platform_id / "expected.json").read_text(encoding="utf-8"))
    result = replay(SETTINGS, platform_id)
    assert result["items"] == expected["items"]
    assert result["requests"] == expected["requests"]
    assert result["stats"].get("weisu/malformed_pages", 0) == 0


@pytest.fixture(scope="module")
def simulator_base() -> Iterator[str]:
    """The seed-42 simulator, served once for every platform's check (the checks only read from it)."""
    with serve_in_thread(create_app(42)) as base:
        yield base


@pytest.mark.parametrize("platform_id", PLATFORMS, ids=PLATFORMS)
def test_recorded_sample_is_still_what_the_simulator_serves(platform_id: str, simulator_base: str) -> None:
    entries = json.loads((SAMPLES_DIR / platform_id / "responses.json").read_text(encoding="utf-8"))
    base = simulator_base
    with httpx.Client(timeout=10) as client:
        for entry in entries:
            body = entry.get("body")
            response = client.request(
                entry.get("method", "GET"),
                rebase_url(entry["url"], base, platform_id),
                content=body,
                headers={"Content-Type": "application/json"} if body else None,
            )
            assert response.headers["content-type"] == entry["content_type"]
            assert response.content == (SAMPLES_DIR / platform_id / entry["file"]).read_bytes()
