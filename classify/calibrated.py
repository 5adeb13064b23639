"""Features and calibrated probabilities of the fitted pipelines, computed with scikit-learn's own
arithmetic, in its order, but without its per-call machinery.

Each ``predict_proba`` of a calibrated SVM validated its input again in every member and calibrator
(about 50 ``check_array`` calls a page, each asking narwhals whether the matrix is a data frame), and
every FeatureUnion dispatched its views through joblib: together a tenth of scoring a page. Here the
matrices are this package's own (finite float32 CSR built by classify.features), so the checks are
skipped, and the same operations run on them: the results are equal to the last bit (checked on every
bench post and validation text, docs/benchmarks.md, eleventh session). Anything else (another
calibration method, a non-linear estimator) goes through scikit-learn as before.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.special import expit
from sklearn.calibration import CalibratedClassifierCV, _SigmoidCalibration
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.utils.extmath import safe_sparse_dot


def transform(step: Any, texts: Any) -> Any:
    """``step.transform(texts)``, with Pipelines and FeatureUnions walked here instead of dispatched."""
    if isinstance(step, Pipeline):
        for _, inner in step.steps:
            if inner is not None and inner != "passthrough":
                texts = transform(inner, texts)
        return texts
    if isinstance(step, FeatureUnion) and step.n_jobs in (None, 1):
        weight_of = (step.transformer_weights or {}).get
        parts = []
        for name, view in step.transformer_list:
            if view == "drop":
                continue
            if view == "passthrough":
                return step.transform(texts)  # not in our pipelines: scikit-learn's own way
            part = transform(view, texts)
            weight = weight_of(name)
            parts.append(part if weight is None else part * weight)  # as sklearn's _transform_one
        if parts and all(sp.issparse(part) for part in parts):
            return sp.hstack(parts).tocsr()  # as FeatureUnion._hstack
        return step.transform(texts)
    return step.transform(texts)


def features(pipeline: Pipeline, texts: Any) -> Any:
    """What the pipeline's steps before its classifier make of ``texts``."""
    matrix = texts
    for _, step in pipeline.steps[:-1]:
        if step is not None and step != "passthrough":
            matrix = transform(step, matrix)
    return matrix


def _linear_members(model: Any) -> bool:
    members = getattr(model, "calibrated_classifiers_", [])
    return (
        isinstance(model, CalibratedClassifierCV)
        and all(m.method == "sigmoid" for m in members)
        and all(isinstance(c, _SigmoidCalibration) for m in members for c in m.calibrators)
        and all(hasattr(m.estimator, "coef_") for m in members)
    )


def decision(estimator: Any, matrix: Any) -> np.ndarray:
    """A fitted linear classifier's decision_function (LinearClassifierMixin's arithmetic)."""
    coef_t = estimator.coef_.T if estimator.coef_.ndim == 2 else estimator.coef_
    scores = safe_sparse_dot(matrix, coef_t, dense_output=True) + estimator.intercept_
    return np.reshape(scores, (-1,)) if (scores.ndim > 1 and scores.shape[1] == 1) else scores


def predict_proba(model: Any, matrix: Any) -> tuple[np.ndarray, list[np.ndarray]]:
    """(CalibratedClassifierCV.predict_proba, each member's decision values) of a calibrated linear SVM
    on a finite sparse matrix; other models through scikit-learn (their decision values then empty)."""
    if not (_linear_members(model) and sp.issparse(matrix)):
        return model.predict_proba(matrix), []
    classes = model.classes_
    n_classes = classes.shape[0]
    mean = np.zeros((matrix.shape[0], n_classes))
    decisions = []
    for member in model.calibrated_classifiers_:
        values = decision(member.estimator, matrix)
        decisions.append(values)
        # _CalibratedClassifier.predict_proba, sigmoid method.
        predictions = values.reshape(-1, 1) if values.ndim == 1 else values
        proba = np.zeros((matrix.shape[0], n_classes))
        # LabelEncoder().fit(classes).transform(estimator.classes_): positions among the sorted classes.
        columns = np.searchsorted(np.unique(member.classes), member.estimator.classes_)
        for column, this_pred, calibrator in zip(columns, predictions.T, member.calibrators, strict=False):
            if n_classes == 2:
                column += 1
            proba[:, column] = expit(-(calibrator.a_ * this_pred + calibrator.b_))
        if n_classes == 2:
            proba[:, 0] = 1.0 - proba[:, 1]
        else:
            denominator = np.sum(proba, axis=1)[:, np.newaxis]
            uniform = np.full_like(proba, 1 / n_classes)
            proba = np.divide(proba, denominator, out=uniform, where=denominator != 0)
        proba[(proba > 1.0) & (proba <= 1.0 + 1e-5)] = 1.0
        mean += proba
    mean /= len(model.calibrated_classifiers_)
    return mean, decisions
