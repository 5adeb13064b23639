"""Issue #18 item 2: detection workers side by side on one PostgreSQL make the leads one worker makes.

Real concurrency needs row locks and advisory locks, which SQLite has not: the tests that run workers
side by side skip there (SQLite takes one writer, and one detection process, at a time)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from bench.detect import simulator_posts
from classify import detection
from classify.detection import detect_new_posts, run_worker
from classify.training import TrainReport
from cli import app
from settings import Settings
from storage.db import make_engine, make_session_factory, session_scope
from storage.models import Classification, Lead, LeadPost, Post
from storage.queries import claim_posts_for_detection, insert_posts, sync_platforms
from storage.vocabulary import DetectionStatus, LeadState

PROJECT_ROOT = Path(__file__).resolve().parents[2]
WATER = "南山区桃园路阳光花园小区已经停水三天了，物业一直不给说法，老人孩子生活很困难，希望有关部门尽快处理。"
WATER_REPOST = "南山区桃园路阳光花园小区停水三天了，物业一直不给说法，老人孩子生活很困难，希望尽快处理！"


@pytest.fixture
def postgres(backend: str, committed_database: str) -> str:
    if backend == "sqlite":
        pytest.skip("SQLite has no row or advisory locks: it takes one detection process at a time")
    return committed_database


@pytest.fixture
def env(
    postgres: str,
    trained: TrainReport,
    activate_model: Callable[[Session, TrainReport], None],
    make_settings: Callable[[str, Path], Settings],
    tmp_path: Path,
) -> Iterator[tuple[Settings, sessionmaker[Session]]]:
    engine = make_engine(postgres)
    factory = make_session_factory(engine)
    with session_scope(factory) as session:
        activate_model(session, trained)
    yield make_settings(postgres, tmp_path / "models"), factory
    engine.dispose()


def _store(factory: sessionmaker[Session], rows: list[dict[str, Any]]) -> None:
    with session_scope(factory) as session:
        sync_platforms(
            session, {key: (key, "json_feed", True) for key in {row["platform_id"] for row in rows}}
        )
        insert_posts(session, rows)


def _lead_set(factory: sessionmaker[Session]) -> set[tuple[Any, ...]]:
    """Each lead as its posts (by external id) and what it says: comparable across runs."""
    with session_scope(factory) as session:
        posts: dict[int, list[str]] = {}
        for lead_id, external_id in session.execute(
            select(LeadPost.lead_id, Post.external_id).join(Post, Post.id == LeadPost.post_id)
        ):
            posts.setdefault(lead_id, []).append(external_id)
        return {
            (
                frozenset(posts[lead.id]),
                lead.category,
                lead.priority,
                lead.request_type,
                lead.district,
                lead.summary,
                lead.evidence_count,
                lead.score,
            )
            for lead in session.scalars(select(Lead))
        }


def _forget_detection(factory: sessionmaker[Session]) -> None:
    """Back to the posts as the crawl stored them: no classification, no lead, every post new."""
    with session_scope(factory) as session:
        for model in (LeadPost, Lead, Classification):
            session.execute(delete(model))
        session.execute(update(Post).values(detection_status=DetectionStatus.NEW))


def _classifications_per_post(factory: sessionmaker[Session]) -> Counter[int]:
    with session_scope(factory) as session:
        rows = session.execute(select(Classification.post_id, func.count()).group_by(Classification.post_id))
        return Counter({post_id: count for post_id, count in rows})


def _worker(url: str, model_dir: Path) -> subprocess.Popen[str]:
    """`weisu detect --worker` in a process of its own, as a deploy runs it."""
    command = [sys.executable, "-m", "cli", "detect", "--worker", "--batch-size", "50", "--idle-exit", "3"]
    environment = {**os.environ, "WEISU_DATABASE_URL": url, "WEISU_MODEL_DIR": str(model_dir)}
    return subprocess.Popen(
        command, cwd=PROJECT_ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _posts_seen(process: subprocess.Popen[str]) -> int:
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err
    found = re.search(r"(\d+) posts seen", out)
    assert found, out
    return int(found.group(1))


@pytest.mark.parametrize("seed", [42, 43, 44])
def test_two_worker_processes_make_exactly_the_leads_one_worker_makes(
    env: tuple[Settings, sessionmaker[Session]], postgres: str, tmp_path: Path, seed: int
) -> None:
    settings, factory = env
    _store(factory, simulator_posts((seed,)))
    with session_scope(factory) as session:
        stored = session.scalar(select(func.count()).select_from(Post))
    alone = detect_new_posts(settings, factory)
    one_worker = _lead_set(factory)
    _forget_detection(factory)

    workers = [_worker(postgres, tmp_path / "models") for _ in range(2)]
    seen = [_posts_seen(worker) for worker in workers]

    assert _lead_set(factory) == one_worker
    assert len(one_worker) == alone.leads_created > 0
    # Both took part, and together they judged every post once.
    assert min(seen) > 0 and sum(seen) == stored
    assert set(_classifications_per_post(factory).values()) == {1}


def test_two_workers_given_one_post_each_of_one_incident_at_the_same_moment_make_one_lead(
    env: tuple[Settings, sessionmaker[Session]], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, factory = env
    _water_posts(factory)
    barrier = threading.Barrier(2, timeout=60)
    claimed: list[list[str]] = []
    met: set[int] = set()  # the threads released into merging once already
    claim, lock = detection.claim_posts_for_detection, detection.lock_merging

    def claim_then_wait(session: Session, limit: int) -> list[Post]:
        posts = claim(session, limit)
        if posts:
            claimed.append([post.external_id for post in posts])
            barrier.wait()  # each holds its post before either classifies
        return posts

    def meet_then_lock(session: Session) -> None:
        if claimed and threading.get_ident() not in met:
            met.add(threading.get_ident())
            barrier.wait()  # both classified: released into merging at the same moment
        lock(session)

    monkeypatch.setattr(detection, "claim_posts_for_detection", claim_then_wait)
    monkeypatch.setattr(detection, "lock_merging", meet_then_lock)
    summaries: list[detection.DetectSummary] = []
    threads = [
        threading.Thread(target=lambda: summaries.append(run_worker(settings, factory, 1, idle_exit=0.5)))
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert sorted(claimed) == [["t1"], ["w1"]]
    assert len(summaries) == 2  # neither worker failed
    [lead] = _lead_set(factory)
    assert (lead[0], lead[6]) == (frozenset({"w1", "t1"}), 2)
    # Merging one post per transaction, whichever worker came second re-read the open leads in the lock
    # and joined the lead the first had just made.
    assert (sum(s.leads_created for s in summaries), sum(s.leads_updated for s in summaries)) == (1, 1)
    assert _classifications_per_post(factory) == Counter({1: 1, 2: 1})


def _water_post(platform: str, external_id: str, text: str) -> dict[str, Any]:
    return {
        "platform_id": platform,
        "external_id": external_id,
        "url": f"https://x.invalid/{external_id}",
        "text": text,
        "content_hash": external_id.ljust(64, "0"),
    }


def _water_posts(factory: sessionmaker[Session]) -> None:
    _store(factory, [_water_post("weibo", "w1", WATER), _water_post("tieba", "t1", WATER_REPOST)])


def test_a_page_held_by_a_worker_that_dies_is_skipped_while_held_and_taken_once_it_is_gone(
    env: tuple[Settings, sessionmaker[Session]],
) -> None:
    settings, factory = env
    _water_posts(factory)
    dying = factory()
    [held] = claim_posts_for_detection(dying, 1)

    first = detect_new_posts(settings, factory)
    # The other post is judged, but waits to be merged: an earlier post is still being judged.
    assert (held.external_id, first.posts_seen, first.leads_created) == ("w1", 1, 0)
    assert _lead_set(factory) == set()

    dying.connection().invalidate()  # the worker's connection dies with it, uncommitted
    dying.close()
    second = detect_new_posts(settings, factory)
    assert (second.posts_seen, second.leads_created, second.leads_updated) == (1, 1, 1)
    [lead] = _lead_set(factory)
    assert (lead[0], lead[6]) == (frozenset({"w1", "t1"}), 2)
    assert _classifications_per_post(factory) == Counter({1: 1, 2: 1})


def test_a_worker_judges_every_post_on_either_database_and_stops_when_idle(
    detect_env: tuple[Settings, sessionmaker[Session]],
) -> None:
    settings, factory = detect_env
    _water_posts(factory)
    summary = run_worker(settings, factory, 1, idle_exit=0.0)
    assert (summary.posts_seen, summary.leads_created, summary.leads_updated) == (2, 1, 1)
    with session_scope(factory) as session:
        statuses = set(session.scalars(select(Post.detection_status)))
    assert statuses == {DetectionStatus.DETECTED}


@pytest.mark.parametrize("option", [["--idle-exit", "5"], ["--batch-size", "10"]])
def test_the_worker_options_without_worker_stop_with_one_clear_line(option: list[str]) -> None:
    result = CliRunner().invoke(app, ["detect", *option])
    assert result.exit_code == 2
    assert "only with --worker" in result.output


def test_a_long_running_worker_rebuilds_its_open_leads_and_so_forgets_a_lead_since_rejected(
    detect_env: tuple[Settings, sessionmaker[Session]], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, factory = detect_env
    run = detection._Run(settings, factory, 10)
    _store(factory, [_water_post("weibo", "w1", WATER)])
    assert run.step() == (1, 1)
    with session_scope(factory) as session:
        session.execute(update(Lead).values(state=LeadState.REJECTED))
    monkeypatch.setattr(detection, "INDEX_MAX_AGE", timedelta(0))  # as if a day had passed
    _store(factory, [_water_post("tieba", "t1", WATER_REPOST)])
    assert run.step() == (1, 1)
    assert (run.summary.leads_created, run.summary.leads_updated) == (2, 0)


def _evidence_by_merge(factory: sessionmaker[Session]) -> list[tuple[str, int]]:
    with session_scope(factory) as session:
        rows = session.execute(
            select(Post.external_id, LeadPost.merge_number)
            .join(LeadPost, LeadPost.post_id == Post.id)
            .order_by(LeadPost.merge_number)
        )
        return [tuple(row) for row in rows]


def test_each_merge_stores_its_evidence_under_the_next_merge_number(
    detect_env: tuple[Settings, sessionmaker[Session]],
) -> None:
    settings, factory = detect_env
    _water_posts(factory)
    run_worker(settings, factory, 1, idle_exit=0.0)
    assert _evidence_by_merge(factory) == [("w1", 1), ("t1", 2)]


def test_a_worker_indexes_each_merge_another_worker_made_once_and_joins_its_lead(
    detect_env: tuple[Settings, sessionmaker[Session]], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, factory = detect_env
    first, second = detection._Run(settings, factory, 10), detection._Run(settings, factory, 10)
    indexed: list[int | object] = []
    add = detection._OpenLeads.add

    def counted(self: detection._OpenLeads, lead: Any, *args: Any, **kwargs: Any) -> None:
        if self is first.open_leads:
            indexed.append(lead)
        add(self, lead, *args, **kwargs)

    monkeypatch.setattr(detection._OpenLeads, "add", counted)
    _store(factory, [_water_post("weibo", "w1", WATER)])
    assert second.step() == (1, 1)  # merge 1: a new lead, made by the other worker
    _store(factory, [_water_post("tieba", "t1", WATER_REPOST)])
    assert first.step() == (1, 1)  # reads merge 1, then joins its lead as merge 2
    _store(factory, [_water_post("douyin", "d1", WATER)])
    assert first.step() == (1, 1)  # nothing merged elsewhere since: nothing read again

    [lead_id] = {lead for lead in indexed}
    # Merge 1 read once; then its own two pieces of evidence.
    assert indexed == [lead_id, lead_id, lead_id]
    assert (first.summary.leads_created, first.summary.leads_updated) == (0, 2)
    assert first.open_leads.merged_through == 3
    assert _evidence_by_merge(factory) == [("w1", 1), ("t1", 2), ("d1", 3)]


def test_a_merge_committed_while_a_worker_starts_is_indexed_once_by_its_first_refresh(
    detect_env: tuple[Settings, sessionmaker[Session]], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, factory = detect_env
    _store(factory, [_water_post("weibo", "w1", WATER)])
    run_worker(settings, factory, 1, idle_exit=0.0)  # merge 1 is stored
    # The new worker reads the last merge number before merge 1 commits, and its evidence after.
    answers = iter([0])
    real = detection.last_merge_number
    monkeypatch.setattr(detection, "last_merge_number", lambda session: next(answers, real(session)))
    run = detection._Run(settings, factory, 10)
    assert (len(run.open_leads.index), run.open_leads.merged_through) == (0, 0)

    _store(factory, [_water_post("tieba", "t1", WATER_REPOST)])
    assert run.step() == (1, 1)
    assert len(run.open_leads.index) == 1
    assert (run.summary.leads_created, run.summary.leads_updated) == (0, 1)
