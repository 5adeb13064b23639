"""Factories for the two scikit-learn pipelines: relevance (lead vs noise) and first-level category."""

from __future__ import annotations

from numbers import Real
from typing import Any

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.svm import LinearSVC

from classify.features import NgramTfidf
from classify.text import (
    CATEGORY_CHAR_CHARS,
    CATEGORY_CHAR_NGRAMS,
    CHAR_NGRAMS,
    CHAR_VIEW_CHARS,
    category_normalise_all,
)
from classify.word_vectors import LocalWordVectors

LEAD = "lead"


def build_features(
    word_ngrams: tuple[int, int] = (1, 2),
    min_df: int = 2,
    max_word_features: int | None = 100_000,
    max_char_features: int | None = 120_000,
    char_view: str = "relevance",
) -> FeatureUnion:
    """Word TF-IDF (jieba tokens) beside character n-gram TF-IDF, both on the stop-word-free text.

    ``char_view`` "relevance": 2–3-grams of the opening 160 characters; "category": 1–3-grams of 600."""
    chars, ngrams = (
        (CATEGORY_CHAR_CHARS, CATEGORY_CHAR_NGRAMS)
        if char_view == "category"
        else (CHAR_VIEW_CHARS, CHAR_NGRAMS)
    )
    return FeatureUnion(
        [
            ("word", NgramTfidf("word", ngrams=word_ngrams, min_df=min_df, max_features=max_word_features)),
            (
                "char",
                NgramTfidf("char", ngrams=ngrams, chars=chars, min_df=min_df, max_features=max_char_features),
            ),
        ]
    )


#: Noise the first fit still scores at HARD_ABOVE or more weighs HARD_WEIGHT times as much in the second.
HARD_WEIGHT = 3.0
HARD_ABOVE = 0.5


class HardNegativeCalibratedSVM(CalibratedClassifierCV):
    """A calibrated SVM fitted twice: the second time every noise row that the first fit still scored
    ``hard_above`` or more (as a lead) weighs ``hard_weight`` times as much.

    The noise that reads most like a complaint (a comment that blames officials, a courier's late
    delivery) is what the unseen sources' false positives look like; weighing it more teaches the
    model the difference where it matters instead of along the whole curve (the leave-one-out folds
    are in docs/benchmarks.md, seventh session)."""

    _parameter_constraints: dict = {
        **CalibratedClassifierCV._parameter_constraints,
        "hard_weight": [Real],
        "hard_above": [Real],
    }

    def __init__(
        self,
        estimator: Any = None,
        *,
        method: str = "sigmoid",
        cv: Any = None,
        n_jobs: int | None = None,
        ensemble: Any = "auto",
        hard_weight: float = HARD_WEIGHT,
        hard_above: float = HARD_ABOVE,
    ) -> None:
        super().__init__(estimator, method=method, cv=cv, n_jobs=n_jobs, ensemble=ensemble)
        self.hard_weight = hard_weight
        self.hard_above = hard_above

    def fit(self, X: Any, y: Any, sample_weight: Any = None, **fit_params: Any) -> HardNegativeCalibratedSVM:
        labels = np.asarray(y)
        weights = np.ones(len(labels)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        super().fit(X, labels, sample_weight=weights, **fit_params)
        if self.hard_weight == 1.0 or LEAD not in self.classes_:
            return self
        lead = self.predict_proba(X)[:, list(self.classes_).index(LEAD)]
        hard = (labels != LEAD) & (lead >= self.hard_above)
        self.hard_negatives_ = int(hard.sum())
        emphasised = np.where(hard, weights * self.hard_weight, weights)
        super().fit(X, labels, sample_weight=emphasised, **fit_params)
        return self


#: The relevance SVM's C. A smaller C lets fewer texts of unseen noise sources through, a larger one
#: reads short texts of unseen cities better; 0.3 is where the leave-one-city-out and leave-one-source-out
#: folds (classify.generalisation) balance, measured in docs/benchmarks.md ("issue #14").
RELEVANCE_C = 0.3


def build_relevance_pipeline(
    c: float = RELEVANCE_C,
    calibration_folds: int = 3,
    min_df: int = 3,
    word_ngrams: tuple[int, int] = (1, 2),
    hard_weight: float = HARD_WEIGHT,
    word_vectors: float = 0.0,
) -> Pipeline:
    """Lead vs noise with a calibrated probability, on complaint-vocabulary features (classify.features).

    Fit with ``y``: the vocabulary is learned from the "lead" rows. Words and character n-grams that
    complaints do not use each count as one "other" feature, so the model cannot learn to recognise a
    kind of noise by its own words and then miss every kind it has not seen (far fewer unseen news
    titles pass leave-one-source-out at the same threshold). ``c`` is small on purpose: see RELEVANCE_C
    above. Word bigrams beside the words: "相关 部门" or "学校 领导" in an angry comment reads
    differently from "小区 停水" (every unseen source's false-positive rate fell at the same held-out
    title recall, and the simulated world's incident recall rose). Figures: docs/benchmarks.md,
    "Figures moved out of docstrings". ``word_vectors`` above 0 adds classify.word_vectors' view at that
    weight, for the leave-one-out folds only: it is off in the shipped model (ninth session's table)."""
    views: list[tuple[str, Any]] = [
        ("word", NgramTfidf("word", ngrams=word_ngrams, min_df=min_df, positive=LEAD)),
        ("char", NgramTfidf("char", ngrams=CHAR_NGRAMS, chars=CHAR_VIEW_CHARS, min_df=min_df, positive=LEAD)),
    ]
    if word_vectors > 0:
        views.append(("vectors", LocalWordVectors(weight=word_vectors)))
    features = FeatureUnion(views)
    svm = LinearSVC(C=c, class_weight="balanced", random_state=0)
    calibrated = HardNegativeCalibratedSVM(
        svm, cv=calibration_folds, method="sigmoid", hard_weight=hard_weight, hard_above=HARD_ABOVE
    )
    return Pipeline([("features", features), ("classifier", calibrated)])


def build_category_pipeline(
    c: float = 0.3, calibration_folds: int = 3, word_ngrams: tuple[int, int] = (1, 2), min_df: int = 2
) -> Pipeline:
    """First-level category with a calibrated probability per class, on its own features.

    Fitted on labelled messages only, so its vocabulary is the complaints' own (not the noise's), and
    its character view (1–3-grams of 600 characters) reads titles and whole letters alike."""
    svm = LinearSVC(C=c, class_weight="balanced", random_state=0)
    features = build_features(
        word_ngrams=word_ngrams,
        min_df=min_df,
        max_word_features=50_000,
        max_char_features=50_000,
        char_view="category",
    )
    # ensemble=False: one SVM fitted on all the labelled data, calibrated on cross-validated scores.
    # Averaging three SVMs that each saw two thirds of the data loses macro-F1 here (docs/benchmarks.md).
    calibrated = CalibratedClassifierCV(svm, cv=calibration_folds, method="sigmoid", ensemble=False)
    # Its own normalisation first (classify.text.category_normalise): anonymised places go with their suffix.
    normalised = FunctionTransformer(category_normalise_all)
    return Pipeline([("normalise", normalised), ("features", features), ("classifier", calibrated)])
