"""The disk world: built once per seed into a file, served page by page from it, its truth streamed."""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from fixtures.serving import serve_in_thread
from fixtures.simulator.disk_world import DISK_PLATFORMS, build_disk_world, create_disk_app, main
from fixtures.simulator.world import all_platforms, build_world

SEEDS = (42, 43, 7)
POSTS = 1500


def _rows(path: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as db:
        posts = db.execute("SELECT * FROM posts ORDER BY platform, rank").fetchall()
        contents = db.execute("SELECT * FROM contents ORDER BY id").fetchall()
    return posts + contents


@pytest.fixture(scope="module")
def world_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("disk") / "world.sqlite"
    build_disk_world(path, POSTS, seed=42)
    return path


@pytest.fixture(scope="module")
def app(world_file: Path) -> Starlette:
    return create_disk_app(world_file)


@pytest.fixture(scope="module")
def client(app: Starlette) -> Iterator[httpx.Client]:
    with serve_in_thread(app) as base, httpx.Client(base_url=base, timeout=30) as client:
        yield client


@pytest.mark.parametrize("seed", SEEDS)
def test_two_builds_of_one_seed_hold_the_same_rows(tmp_path: Path, seed: int) -> None:
    build_disk_world(tmp_path / "a.sqlite", 400, seed=seed)
    build_disk_world(tmp_path / "b.sqlite", 400, seed=seed)
    assert _rows(tmp_path / "a.sqlite") == _rows(tmp_path / "b.sqlite")


@pytest.mark.parametrize(("seed", "other"), [(42, 43), (43, 7)])
def test_two_seeds_build_different_worlds(tmp_path: Path, seed: int, other: int) -> None:
    build_disk_world(tmp_path / "a.sqlite", 400, seed=seed)
    build_disk_world(tmp_path / "b.sqlite", 400, seed=other)
    assert _rows(tmp_path / "a.sqlite") != _rows(tmp_path / "b.sqlite")


@pytest.mark.parametrize("seed", SEEDS)
def test_the_posts_asked_for_are_spread_over_every_disk_platform(tmp_path: Path, seed: int) -> None:
    shares = build_disk_world(tmp_path / "w.sqlite", 999, seed=seed)
    assert sum(shares.values()) == 999
    assert sorted(shares) == sorted(DISK_PLATFORMS)
    assert min(shares.values()) >= 1


def test_a_world_is_built_into_a_new_file_only(world_file: Path) -> None:
    with pytest.raises(FileExistsError, match="built once, into a new file"):
        build_disk_world(world_file, 10)


def test_a_world_of_no_posts_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="posts must be between 1 and 9999999"):
        build_disk_world(tmp_path / "w.sqlite", 0)
    assert not (tmp_path / "w.sqlite").exists()


def test_serving_a_missing_world_stops_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "none.sqlite"
    with pytest.raises(SystemExit) as stopped:
        main(["serve", str(missing)])
    assert stopped.value.code == 2
    assert capsys.readouterr().err == f"disk_world: no disk world at {missing}: build one first\n"


def test_truth_counts_hold_the_disk_posts_and_the_template_world_elsewhere(client: httpx.Client) -> None:
    counts = client.get("/_truth/counts").json()
    template = build_world(42).posts
    assert sum(counts[key] for key in DISK_PLATFORMS) == POSTS
    assert {key: counts[key] for key in all_platforms() if key not in DISK_PLATFORMS} == {
        key: len(template[key]) for key in all_platforms() if key not in DISK_PLATFORMS
    }


def test_streamed_truth_lists_every_post_once(client: httpx.Client) -> None:
    truth = client.get("/_truth").json()
    counts = client.get("/_truth/counts").json()
    assert truth["seed"] == 42
    assert Counter(post["platform"] for post in truth["posts"]) == Counter(
        {key: count for key, count in counts.items() if count}
    )
    keys = [(post["platform"], post["external_id"]) for post in truth["posts"]]
    assert len(keys) == len(set(keys))


def test_the_heimao_feed_pages_through_exactly_the_truths_heimao_posts(client: httpx.Client) -> None:
    truth = client.get("/_truth").json()["posts"]
    expected = [p["external_id"] for p in truth if p["platform"] == "heimao"]
    served: list[str] = []
    page = 1
    while lists := client.get("/p/heimao/api/index/feed", params={"page": page, "page_size": 50}).json()[
        "result"
    ]["data"]["lists"]:
        served += [item["main"]["sn"] for item in lists]
        page += 1
    assert served == expected


def test_sina_roll_pages_serve_the_truths_texts(client: httpx.Client) -> None:
    truth = [p for p in client.get("/_truth").json()["posts"] if p["platform"] == "sina_news_roll"]
    page = client.get("/p/sina_news_roll/api/roll/get", params={"num": 5, "page": 2}).json()["result"]
    assert page["total"] == len(truth)
    assert [(item["docid"], item["intro"]) for item in page["data"]] == [
        (p["external_id"], p["text"]) for p in truth[5:10]
    ]


def test_serving_a_page_reads_only_that_pages_rows(app: Starlette, client: httpx.Client) -> None:
    store = app.state.disk_store
    before = store.rows_read
    answer = client.get("/p/heimao/api/index/feed", params={"page": 30, "page_size": 10}).json()
    assert len(answer["result"]["data"]["lists"]) == 10
    assert store.rows_read - before == 10


def test_truth_of_a_generated_request_names_its_incident(client: httpx.Client) -> None:
    truth = [p for p in client.get("/_truth").json()["posts"] if p["platform"] in DISK_PLATFORMS]
    asking = [p for p in truth if p["incident_id"] is not None]
    noise = [p for p in truth if p["incident_id"] is None]
    assert asking and noise
    assert {p["request_type"] for p in asking} <= {"problem", "question", "suggestion"}
    assert all(p["is_complaint"] == (p["request_type"] == "problem") for p in asking)
    assert all(p["is_complaint"] is False and p["request_type"] is None for p in noise)
