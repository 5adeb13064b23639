"""Classification figures that stay defined on one-label files: undefined ratios are None, not 0."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

LEAD = "lead"


def _ratio(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


def per_class(truth: Sequence[str], guess: Sequence[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for label in sorted(set(truth) | set(guess)):
        tp = sum(t == label and g == label for t, g in zip(truth, guess, strict=True))
        support = sum(t == label for t in truth)
        predicted = sum(g == label for g in guess)
        precision, recall = _ratio(tp, predicted), _ratio(tp, support)
        if recall is None:
            f1 = None  # the class is absent from the truth: no F1 to speak of
        elif precision is None:
            f1 = 0.0  # present but never predicted: recall is 0, so is F1
        else:
            f1 = round(2 * precision * recall / (precision + recall), 4) if precision + recall else 0.0
        out[label] = {"precision": precision, "recall": recall, "f1": f1, "support": support}
    return out


def category_metrics(truth: Sequence[str], guess: Sequence[str]) -> dict[str, Any]:
    """accuracy, macro_f1 (over classes present in the truth), per_class."""
    classes = per_class(truth, guess)
    f1s = [c["f1"] for c in classes.values() if c["support"] and c["f1"] is not None]
    correct = sum(t == g for t, g in zip(truth, guess, strict=True))
    return {
        "accuracy": _ratio(correct, len(truth)),
        "macro_f1": round(sum(f1s) / len(f1s), 4) if f1s else None,
        "per_class": classes,
    }


def relevance_metrics(truth: Sequence[str], guess: Sequence[str]) -> dict[str, Any]:
    """Category figures plus lead-positive recall, precision and false-positive rate."""
    result = category_metrics(truth, guess)
    pairs = list(zip(truth, guess, strict=True))
    tp = sum(t == LEAD and g == LEAD for t, g in pairs)
    fp = sum(t != LEAD and g == LEAD for t, g in pairs)
    positives = sum(t == LEAD for t in truth)
    negatives = len(truth) - positives
    result["recall"] = _ratio(tp, positives)
    result["precision"] = _ratio(tp, tp + fp)
    result["fpr"] = _ratio(fp, negatives)
    return result


#: Equal-width score bins of the expected calibration error and the reliability diagram.
CALIBRATION_BINS = 15


def _binned(scores: Sequence[float], outcomes: Sequence[bool], bins: int) -> dict[int, list[float]]:
    """Equal-width bins of [0, 1] (a score of 1.0 falls in the last): bin → [score sum, positives, count]."""
    totals: dict[int, list[float]] = {}
    for score, outcome in zip(scores, outcomes, strict=True):
        total = totals.setdefault(min(int(float(score) * bins), bins - 1), [0.0, 0.0, 0.0])
        total[0] += float(score)
        total[1] += bool(outcome)
        total[2] += 1
    return totals


def reliability_bins(
    scores: Sequence[float], outcomes: Sequence[bool], bins: int = CALIBRATION_BINS
) -> list[dict[str, Any]]:
    """Per non-empty equal-width bin of [0, 1] (a score of 1.0 falls in the last): its number, the mean
    score, the observed rate of positive outcomes and the count."""
    return [
        {
            "bin": index,
            "low": round(index / bins, 4),
            "high": round((index + 1) / bins, 4),
            "mean_score": round(score_sum / count, 4),
            "observed_rate": round(positives / count, 4),
            "count": int(count),
        }
        for index, (score_sum, positives, count) in sorted(_binned(scores, outcomes, bins).items())
    ]


def expected_calibration_error(
    scores: Sequence[float], outcomes: Sequence[bool], bins: int = CALIBRATION_BINS
) -> float | None:
    """ECE: over equal-width score bins, |mean score − observed rate| weighted by the bin's share of
    the texts (None without texts). Computed from unrounded bin figures."""
    if not len(scores):
        return None
    totals = _binned(scores, outcomes, bins).values()
    return round(sum(abs(score_sum - positives) for score_sum, positives, _ in totals) / len(scores), 4)
