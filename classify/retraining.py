"""`weisu retrain`: corpus plus analysts' feedback; the new model replaces the active one only if not worse.

Both models are scored on the same fixed validation split in the same run (the active one is
re-scored rather than trusted from its stored metrics, which another code version may have written).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from classify import text as text_module
from classify.feedback import load_feedback
from classify.model import ModelError, load_active
from classify.pipelines import RELEVANCE_C
from classify.training import (
    TrainReport,
    register,
    report_of,
    train_model,
    validation_metrics,
)
from settings import Settings

#: A new model may lose this much on any one figure (noise of a refit) and still count as not worse.
TOLERANCE = 0.005


def key_figures(metrics: dict[str, Any]) -> dict[str, float]:
    """The figures a new model must hold: recall on titles and letters, the worst noise source's
    false-positive rate (as 1 − FPR: higher is better everywhere), category macro-F1 on letters and titles."""
    relevance, category = metrics["relevance"], metrics["category"]
    worst_fpr = max((v for k, v in relevance.items() if k.startswith("fpr_")), default=0.0)
    return {
        "title_recall": relevance["titles vs noise"]["recall"],
        "letter_recall": relevance["letters vs noise"]["recall"],
        "1-worst_noise_fpr": round(1 - worst_fpr, 4),
        "letter_macro_f1": category["letters"]["macro_f1"],
        "title_macro_f1": category["titles"]["macro_f1"],
    }


def worse_figures(new: dict[str, Any], old: dict[str, Any], tolerance: float = TOLERANCE) -> list[str]:
    """Names of the key figures on which ``new`` is worse than ``old`` by more than ``tolerance``."""
    new_figures, old_figures = key_figures(new), key_figures(old)
    return [name for name, value in new_figures.items() if value < old_figures[name] - tolerance]


@dataclass
class RetrainReport:
    new: TrainReport
    active_version: str | None
    active_metrics: dict[str, Any] | None
    worse: list[str] = field(default_factory=list)
    feedback: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        used = ", ".join(f"{k} {v}" for k, v in sorted(self.feedback.items())) or "none"
        lines = [f"反馈 feedback used: {used}", self.new.summary()]
        if self.active_metrics is None:
            lines.append("  此前无可用模型 no usable active model before: the new one is activated")
            return "\n".join(lines)
        new_figures, old_figures = key_figures(self.new.metrics), key_figures(self.active_metrics)
        lines.append(f"  {'figure':<20}{'active ' + str(self.active_version):>36}{'new':>10}")
        for name, value in new_figures.items():
            lines.append(f"  {name:<20}{old_figures[name]:>36.4f}{value:>10.4f}")
        verdict = (
            "新模型不差于当前模型，已启用 (not worse: activated)"
            if self.new.activated
            else f"新模型更差，未启用 (worse on {', '.join(self.worse)}: kept the active model)"
        )
        lines.append(f"  {verdict}")
        return "\n".join(lines)


def retrain(
    settings: Settings,
    session: Session,
    *,
    c: float = RELEVANCE_C,
    processes: int = 2,
    on_step: Callable[[str], None] | None = None,
) -> RetrainReport:
    """Train on corpus + feedback, score old and new on the held-out split, activate the new if not worse."""
    feedback = load_feedback(session)
    detector, directory, validation = train_model(
        settings, c=c, processes=processes, feedback=feedback.examples, on_step=on_step
    )
    try:
        active = load_active(settings, session)
    except ModelError:
        active = None  # none yet, or unusable here (other library versions): nothing to compare with
    active_metrics = validation_metrics(active, validation, settings) if active is not None else None
    text_module.clear_cache()
    worse = worse_figures(detector.metadata["metrics"], active_metrics) if active_metrics else []
    register(session, detector, directory, activate=not worse)
    return RetrainReport(
        new=report_of(detector, directory, activated=not worse),
        active_version=active.version if active is not None else None,
        active_metrics=active_metrics,
        worse=worse,
        feedback=dict(feedback.counts),
    )
