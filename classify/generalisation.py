"""Leave-one-noise-source-out: how the relevance model treats a kind of noise it never saw in training.

Real platforms carry kinds of non-complaint text absent from the corpus (hotel reviews, game chat …).
Training without one noise source and measuring the false-positive rate on all of that source's texts
is the corpus's proxy for that. ``python -m classify.generalisation`` prints the figures."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from classify.corpus import LEAD, NOISE, Example, load_examples
from classify.features import CivicGate
from classify.pipelines import build_relevance_pipeline
from classify.training import fit_gate, sample_weights


def _lead_scores(model: Any, gate: CivicGate, rows: list[Example]) -> Any:
    texts = [e.text for e in rows]
    return gate.apply(texts, model.predict_proba(texts)[:, list(model.classes_).index(LEAD)])


def leave_one_source_out(
    examples: list[Example],
    threshold: float = 0.5,
    build: Callable[[], Any] = build_relevance_pipeline,
) -> dict[str, dict[str, Any]]:
    """Per noise source: FPR on that whole source when trained without it (civic-object gate applied,
    as in detection), and held-out title recall."""
    titles = [e for e in examples if e.validation and e.relevance == LEAD and e.kind == "title"]
    out: dict[str, dict[str, Any]] = {}
    for source in sorted({e.kind for e in examples if e.relevance == NOISE}):
        train = [e for e in examples if not e.validation and e.kind != source]
        held_out = [e for e in examples if e.kind == source]
        model = build().fit(
            [e.text for e in train],
            [e.relevance for e in train],
            classifier__sample_weight=sample_weights(train),
        )
        gate = fit_gate(train)
        noise = _lead_scores(model, gate, held_out)
        recall = None
        if titles:
            recall = round(float((_lead_scores(model, gate, titles) >= threshold).mean()), 4)
        out[source.removeprefix("noise:")] = {
            "fpr": round(float((noise >= threshold).mean()), 4),
            "texts": len(held_out),
            "title_recall": recall,
        }
    return out


if __name__ == "__main__":  # pragma: no cover - a report, run by hand (about a minute per source)
    from settings import load_settings

    threshold = load_settings().classify.relevance_threshold
    print(f"threshold {threshold} (classify.relevance_threshold)")
    for name, figures in leave_one_source_out(load_examples(), threshold).items():
        print(
            f"without {name:<24} FPR on it {figures['fpr']:7.2%} of {figures['texts']:>6}  "
            f"title recall {figures['title_recall']:.2%}"
        )
