"""Issue #4's targets on the seed-42 simulated world: crawl it, detect, compare the leads with /_truth."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bench.world import held_out_incidents, run_world, short_of_targets, world_figures
from bootstrap import initialise_database
from classify.training import TrainReport
from fixtures.serving import serve_in_thread
from fixtures.simulator.app import create_app
from settings import load_settings
from storage.db import make_engine, make_session_factory, session_scope
from storage.models import Lead, LeadPost, Post, Priority
from storage.queries import sync_platforms

pytestmark = pytest.mark.e2e


#: The world's targets are bench.world.TARGETS. Since issue #14 the world's short posts and comments are
#: real short requests (佳木斯, 福州); each floor sits just under what the model trained on them measured
#: on seed 42, so that a regression fails.
FLOORS = {
    "incident_recall": 0.95,  # target 0.95; measured 0.987 (short incidents 0.976)
    # Not a target: the same on the 62 incidents whose text is in the validation split (or hand-written),
    # the figure the training data cannot flatter; measured 0.984.
    "incident_recall_held_out": 0.93,
    # A consistency check, not a target of quality: the truth's hazards and the detector's urgency
    # rules are written alike. Measured 0.980 (48 of 49) before "中山道板" stopped reading as 中山市.
    "urgent_recall": 0.97,
    "merge_f1": 0.95,  # target 0.90; measured 1.0
    "district_accuracy": 0.95,  # target 0.90; measured 0.993
    "lead_precision": 0.94,  # target 0.90 (issue #14); measured 0.968
}


def test_the_seed_42_world_holds_the_detection_floors(
    sqlite_url: str,
    trained: TrainReport,
    activate_model: Callable[[Session, TrainReport], None],
    tmp_path: Path,
) -> None:
    with serve_in_thread(create_app(seed=42)) as simulator_url:
        settings = load_settings(
            env={
                "WEISU_DATABASE_URL": sqlite_url,
                "WEISU_SIMULATOR_URL": simulator_url,
                "WEISU_MODEL_DIR": str(tmp_path / "models"),
            }
        )
        initialise_database(settings)
        engine = make_engine(sqlite_url)
        factory = make_session_factory(engine)
        with session_scope(factory) as session:
            activate_model(session, trained)
        figures = run_world(settings, factory, simulator_url)
        with session_scope(factory) as session:
            versions = set(session.scalars(select(Lead.model_version)))
        engine.dispose()
    assert figures["stored_posts"] == figures["truth_posts"]
    short = {name: figures[name] for name, floor in FLOORS.items() if (figures[name] or 0) < floor}
    assert short == {}, figures
    assert versions == {trained.version}  # every lead records the model version that flagged it


def _truth(
    number: int, incident: str | None, urgent: bool = False, district: str | None = None
) -> dict[str, Any]:
    return {
        "platform": "weibo",
        "external_id": str(number),
        "incident_id": incident,
        "is_complaint": incident is not None,
        "urgent": urgent,
        "district": district,
    }


def test_world_figures_score_leads_against_the_truth_exactly(session: Session) -> None:
    sync_platforms(session, {"weibo": ("微博", "json_feed", True)})
    posts = [
        Post(platform_id="weibo", external_id=str(n), url=f"u{n}", text="t", content_hash=f"{n:064d}")
        for n in range(1, 7)
    ]
    session.add_all(posts)
    urgent = Lead(summary="a", priority=Priority.URGENT, district="南山区")  # incident A, both posts
    split = Lead(summary="b", district="福田区")  # incident B, one of its two posts
    noise = Lead(summary="c")  # a noise post
    session.add_all([urgent, split, noise])
    session.flush()
    ids = [p.id for p in posts]
    for lead, post in ((urgent, 0), (urgent, 1), (split, 2), (noise, 5)):
        session.add(LeadPost(lead_id=lead.id, post_id=ids[post]))
    session.flush()
    truth = [
        _truth(1, "A", urgent=True, district="南山区"),
        _truth(2, "A", urgent=True),
        _truth(3, "B", district="罗湖区"),
        _truth(4, "B"),
        _truth(5, "C", urgent=True),  # never became a lead
        _truth(6, None),
        _truth(7, None),  # served but not stored
    ]
    figures = world_figures(truth, session)
    assert figures["stored_posts"] == 6
    assert (figures["incidents"], figures["incident_recall"]) == (3, round(2 / 3, 4))
    assert (figures["urgent_incidents"], figures["urgent_recall"], figures["missed_urgent"]) == (
        2,
        0.5,
        ["C"],
    )
    assert (figures["leads"], figures["lead_precision"]) == (3, round(2 / 3, 4))
    assert (figures["leads_with_truth_district"], figures["district_accuracy"]) == (2, 0.5)
    # Evidence pairs: (1,2) same lead and incident; (1,3), (2,3) neither. Incident B's post 4 is no evidence.
    assert (figures["merge_precision"], figures["merge_recall"], figures["merge_f1"]) == (1.0, 1.0, 1.0)
    assert set(short_of_targets(figures)) == {
        "incident_recall",
        "urgent_recall",
        "district_accuracy",
        "lead_precision",  # 2 of 3 against issue #14's 0.90
    }


def test_held_out_incidents_are_validation_messages_and_hand_written_ones() -> None:
    # L-100080 and L-3742 are in the corpus's validation split, L-100026 and L-24 in training;
    # V-step is the simulator's own hand-written incident.
    incidents = {"L-100080", "L-3742", "L-100026", "L-24", "V-step"}
    assert held_out_incidents(incidents) == {"L-100080", "L-3742", "V-step"}


def test_held_out_short_requests_are_those_of_the_validation_split() -> None:
    # The real short requests split by classify.corpus.in_validation of their letter's lead group.
    incidents = {"J-jms_40348", "J-jms_40355", "F-fz12345_1", "F-fz12345_4"}
    assert held_out_incidents(incidents) == {"J-jms_40348", "F-fz12345_1"}


def test_a_lead_made_of_a_question_is_real_but_no_incident(session: Session) -> None:
    sync_platforms(session, {"weibo": ("微博", "json_feed", True)})
    posts = [
        Post(platform_id="weibo", external_id=str(n), url=f"u{n}", text="t", content_hash=f"{n:064d}")
        for n in range(1, 4)
    ]
    session.add_all(posts)
    asked, problem = Lead(summary="q"), Lead(summary="p")
    session.add_all([asked, problem])
    session.flush()
    session.add_all(
        [LeadPost(lead_id=asked.id, post_id=posts[0].id), LeadPost(lead_id=problem.id, post_id=posts[1].id)]
    )
    session.flush()
    truth = [
        {**_truth(1, "J-q"), "is_complaint": False, "request_type": "question"},
        {**_truth(2, "F-p"), "request_type": "problem"},
        {**_truth(3, "J-s"), "is_complaint": False, "request_type": "suggestion"},  # never a lead
    ]
    figures = world_figures(truth, session)
    assert (figures["incidents"], figures["incident_recall"]) == (1, 1.0)
    assert (figures["questions"], figures["question_recall"]) == (2, 0.5)
    assert (figures["leads"], figures["lead_precision"]) == (2, 1.0)
    assert (figures["short_incidents"], figures["incident_recall_short"]) == (1, 1.0)
