"""`weisu retrain`: corpus plus analysts' decisions; the new model is activated only if not worse."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from classify.model import TASK, Detector
from classify.training import TrainReport, register
from cli import app
from fixtures.leads import decided_lead
from storage.db import make_engine, make_session_factory, session_scope
from storage.models import AuditEvent, Lead, LeadState, ModelVersion
from storage.queries import sync_platforms

NOW = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)


def _decided_lead(session: Session, number: int, text: str, state: LeadState, category: str | None) -> Lead:
    return decided_lead(session, number, text, state, category, at=NOW)


def test_retrain_learns_from_decisions_scores_both_models_and_activates_a_model_that_is_not_worse(
    sqlite_url: str,
    trained: TrainReport,
    activate_model: Callable[[Session, TrainReport], None],
    tmp_path: Path,
) -> None:
    factory = make_session_factory(make_engine(sqlite_url))
    with session_scope(factory) as session:
        activate_model(session, trained)
        sync_platforms(session, {"weibo": ("微博", "json_feed", True)})
        _decided_lead(
            session, 1, "龙岗区布吉街道大芬村的路灯坏了一个月没人修", LeadState.PROMOTED, "城乡建设"
        )
        rejected = _decided_lead(session, 2, "加微信领红包，低价代购名牌包", LeadState.REJECTED, None)
        session.add(AuditEvent(lead_id=rejected.id, actor="analyst", action="reject", reason="spam"))
    env = {"WEISU_DATABASE_URL": sqlite_url, "WEISU_MODEL_DIR": str(tmp_path / "models")}
    result = CliRunner().invoke(app, ["retrain"], env=env)
    assert result.exit_code == 0, result.output
    assert "反馈 feedback used: lead 1, noise 1" in result.output
    assert f"active {trained.version}" in result.output  # the old model's figures, beside the new one's
    assert "not worse: activated" in result.output
    with session_scope(factory) as session:
        rows = list(session.scalars(select(ModelVersion).order_by(ModelVersion.id)))
    assert [(row.version, row.active) for row in rows] == [(trained.version, False), (rows[1].version, True)]
    assert rows[1].metrics["relevance"]["titles vs noise"]["recall"] >= 0.90


def _bare_detector(version: str) -> Detector:
    """Only the metadata matters to the models table."""
    metadata = {"version": version, "data_hash": "x", "metrics": {}, "library_versions": {}}
    return Detector(relevance=None, category=None, metadata=metadata)  # type: ignore[arg-type]


def test_a_refused_model_is_recorded_but_the_active_one_stays(sqlite_url: str) -> None:
    factory = make_session_factory(make_engine(sqlite_url))
    with session_scope(factory) as session:
        register(session, _bare_detector("old"), Path("old"), activate=True)
        register(session, _bare_detector("refused"), Path("refused"), activate=False)
        rows = session.execute(
            select(ModelVersion.version, ModelVersion.active).where(ModelVersion.task == TASK)
        )
        assert sorted(rows) == [("old", True), ("refused", False)]
