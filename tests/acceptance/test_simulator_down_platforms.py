"""The simulator's whole-platform outages for the broken-sweep acceptance test: a ``failing`` platform
answers 500 to every request, a ``hanging`` one answers only after ``hang_seconds`` (longer than any
crawl waits), and every other platform is served as usual; a key that names no platform is refused.
And what a crawl waits for an answer: the platform's ``politeness.download_timeout``."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from crawlers.config import crawler_settings
from fixtures.serving import serve_in_thread
from fixtures.simulator.app import create_app
from settings import load_settings

DOUBAN = "/p/douban/group/shenzhen/discussions"
HEIMAO = "/p/heimao/api/index/feed"


@pytest.fixture(scope="module", params=[7, 2026])
def client(request: pytest.FixtureRequest) -> Iterator[httpx.Client]:
    with (
        serve_in_thread(create_app(request.param)) as base,
        httpx.Client(base_url=base, timeout=10) as client,
    ):
        yield client
        client.post("/_faults")


def test_a_failing_platform_answers_500_to_every_request_and_the_others_200(client: httpx.Client) -> None:
    client.post("/_faults", params={"failing": "heimao"}).raise_for_status()
    answers = [client.get(HEIMAO, params={"type": 1, "page_size": 10, "page": page}) for page in (1, 2, 1)]
    assert [(a.status_code, a.text) for a in answers] == [(500, "Internal Server Error")] * 3
    assert client.get(DOUBAN, params={"start": "0"}).status_code == 200
    assert client.get("/_faults").json()["injected"] == {"failing": 3}


def test_a_hanging_platform_answers_only_after_its_hang(client: httpx.Client) -> None:
    client.post("/_faults", params={"hanging": "douban", "hang_seconds": 30}).raise_for_status()
    with pytest.raises(httpx.ReadTimeout):
        client.get(DOUBAN, params={"start": "0"}, timeout=0.5)
    client.post("/_faults", params={"hanging": "douban", "hang_seconds": 0}).raise_for_status()
    assert client.get(DOUBAN, params={"start": "0"}).status_code == 504
    assert client.get(HEIMAO, params={"type": 1, "page_size": 10, "page": 1}).status_code == 200


def test_an_unknown_platform_in_an_outage_is_refused_naming_it(client: httpx.Client) -> None:
    answer = client.post("/_faults", params={"failing": "heimao,nosuch"})
    assert (answer.status_code, answer.json()) == (400, {"error": "failing: unknown platform(s) nosuch"})


def test_a_platforms_download_timeout_is_the_one_its_crawler_waits() -> None:
    """What bounds a hanging platform's cost: 30 s a try unless its politeness says otherwise."""
    shipped = load_settings(env={})
    quick = shipped.changed(platforms={"douban": {"politeness": {"download_timeout": 1.0}}})
    assert crawler_settings(shipped, "douban")["DOWNLOAD_TIMEOUT"] == 30.0
    assert crawler_settings(quick, "douban")["DOWNLOAD_TIMEOUT"] == 1.0
    assert crawler_settings(quick, "weibo")["DOWNLOAD_TIMEOUT"] == 30.0
