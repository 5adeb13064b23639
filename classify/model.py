"""The trained detector: persistence with metadata, version checks on load, and the active model."""

from __future__ import annotations

import gc
import json
import pickle
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jieba
import numpy as np
import sklearn
from sklearn.pipeline import Pipeline
from sqlalchemy import select
from sqlalchemy.orm import Session

from classify import calibrated
from classify.text import segmenter_name
from settings import Settings
from storage.models import ModelVersion

#: A plain pickle (protocol 5): it unpickles several times faster than joblib's compressed file did.
MODEL_FILE = "detector.pkl"
METADATA_FILE = "metadata.json"
TASK = "detector"
LEAD = "lead"
TOP_TERMS = 8


class ModelError(RuntimeError):
    """A model that cannot be used; the message says what to do."""


class NoActiveModelError(ModelError):
    def __init__(self) -> None:
        super().__init__("no active model: run `weisu train`")


class ModelVersionMismatchError(ModelError):
    """The model was pickled by other library versions: unpickling it could silently give wrong answers."""


def library_versions() -> dict[str, str]:
    python = platform.python_version_tuple()
    return {
        "scikit-learn": sklearn.__version__,
        "jieba": jieba.__version__,
        "numpy": np.__version__,
        "python": f"{python[0]}.{python[1]}",
        "segmenter": segmenter_name(),
    }


@dataclass(frozen=True)
class Prediction:
    relevance: float
    is_lead: bool
    category: str | None  # None when the best category is below category_min_probability
    category_probability: float | None  # None when the text was not categorised (see predict)
    best_category: str | None
    top_terms: list[list[Any]] = field(default_factory=list)  # [[term, weight], …]
    request_type: str | None = None  # a storage.models.RequestType value; None from models without one
    request_type_probability: float | None = None


class Detector:
    """Relevance, category and request-type pipelines plus their metadata."""

    def __init__(
        self,
        relevance: Pipeline,
        category: Pipeline,
        metadata: dict[str, Any],
        request_type: Pipeline | None = None,
    ) -> None:
        self.relevance = relevance
        self.category = category
        self.metadata = metadata
        self.request_type = request_type  # None in models trained before issue #14
        self._names: np.ndarray | None = None
        self._coef: np.ndarray | None = None
        self._name_ids: np.ndarray | None = None

    @property
    def version(self) -> str:
        return str(self.metadata["version"])

    def _features(self) -> Any:
        return self.relevance.named_steps["features"]

    def _relevance_coef(self) -> np.ndarray:
        if self._coef is None:
            calibrated = self.relevance.named_steps["classifier"]
            coefs = [np.ravel(c.estimator.coef_) for c in calibrated.calibrated_classifiers_]
            sign = 1.0 if calibrated.classes_[1] == LEAD else -1.0  # coef_ points towards classes_[1]
            names = [n.split("__", 1)[-1] for n in self._features().get_feature_names_out()]
            # The word and the character view often name the same string: one id per distinct name.
            unique, self._name_ids = np.unique(np.array(names, dtype=object), return_inverse=True)
            self._names = unique
            self._coef = sign * np.mean(coefs, axis=0)
        return self._coef

    def top_terms(self, row: Any, limit: int = TOP_TERMS) -> list[list[Any]]:
        """The features that pushed this text towards "lead" most: TF-IDF value × coefficient."""
        row = row.tocsr()
        return self._explain(row.indices, row.data, limit)

    def _explain(self, indices: np.ndarray, values: np.ndarray, limit: int = TOP_TERMS) -> list[list[Any]]:
        coef = self._relevance_coef()
        contributions = values * coef[indices]
        positive = contributions > 0
        if not positive.any():
            return []
        assert self._names is not None and self._name_ids is not None
        ids, inverse = np.unique(self._name_ids[indices[positive]], return_inverse=True)
        weights = np.bincount(inverse, weights=contributions[positive])
        order = np.argsort(-weights, kind="stable")[:limit]
        return [[str(self._names[ids[i]]), round(float(weights[i]), 4)] for i in order]

    def _explain_rows(
        self, matrix: Any, rows: np.ndarray, limit: int = TOP_TERMS
    ) -> dict[int, list[list[Any]]]:
        """Top terms of many rows at once: one sparse slice, one grouping of (row, name) pairs."""
        if not len(rows):
            return {}
        coef = self._relevance_coef()
        assert self._names is not None and self._name_ids is not None
        sub = matrix[rows].tocsr()
        row_of = np.repeat(np.arange(len(rows)), np.diff(sub.indptr))
        contributions = sub.data * coef[sub.indices]
        positive = contributions > 0
        keys = row_of[positive].astype(np.int64) * len(self._names) + self._name_ids[sub.indices[positive]]
        pairs, inverse = np.unique(keys, return_inverse=True)
        weights = np.bincount(inverse, weights=contributions[positive])
        pair_rows, pair_names = np.divmod(pairs, len(self._names))
        order = np.lexsort((-weights, pair_rows))  # by row, then heaviest first (stable on name order)
        # The first ``limit`` of each row's run in that order, found in numpy: only they reach Python.
        ordered_rows = pair_rows[order]
        run_starts = np.flatnonzero(np.r_[True, ordered_rows[1:] != ordered_rows[:-1]])
        rank = np.arange(len(order)) - np.repeat(run_starts, np.diff(np.r_[run_starts, len(order)]))
        kept = order[rank < limit]
        out: dict[int, list[list[Any]]] = {int(row): [] for row in rows}
        names, weighed = self._names[pair_names[kept]].tolist(), weights[kept].tolist()
        for row, name, weight in zip(rows[pair_rows[kept]].tolist(), names, weighed, strict=True):
            out[row].append([str(name), round(weight, 4)])
        return out

    def predict(
        self,
        texts: list[str],
        threshold: float = 0.5,
        category_min_probability: float = 0.4,
        explain_above: float | None = None,
        categorise_above: float | None = None,
    ) -> list[Prediction]:
        """Predict each text; top terms are given from ``explain_above`` (default: the threshold) up.

        With ``categorise_above`` only texts at or above that relevance get a category (detection
        needs none for noise); the others have category, best_category and probability None."""
        if not texts:
            return []
        features = self._features()
        matrix = calibrated.transform(features, texts)
        relevance_model = self.relevance.named_steps["classifier"]
        lead_column = list(relevance_model.classes_).index(LEAD)
        relevance = calibrated.predict_proba(relevance_model, matrix)[0][:, lead_column]
        gate = getattr(self.relevance, "civic_gate_", None)  # models trained before it have none
        if gate is not None:
            relevance = gate.apply(texts, relevance)
        wanted = (
            np.arange(len(texts))
            if categorise_above is None
            else np.flatnonzero(relevance >= categorise_above)
        )
        category_proba = np.zeros((len(texts), len(self.category.classes_)))
        category_choice = np.zeros(len(texts), dtype=int)
        if len(wanted):
            if self.category.named_steps["features"] is features:  # models trained before issue #4
                category_proba[wanted] = self.category.named_steps["classifier"].predict_proba(matrix[wanted])
                category_choice[wanted] = np.argmax(category_proba[wanted], axis=1)
            else:
                choice, proba = svm_choices(self.category, [texts[i] for i in wanted])
                category_proba[wanted], category_choice[wanted] = proba, choice
        categorised = np.zeros(len(texts), dtype=bool)
        categorised[wanted] = True
        types: dict[int, tuple[str, float]] = {}
        # Only a text at or above the threshold is typed: one that becomes a lead only by an urgency
        # rule reports a hazard, a problem (detection's default), and typing every text from the urgency
        # floor up cost a third of the scoring time.
        typed = wanted[relevance[wanted] >= threshold]
        if self.request_type is not None and len(typed):
            from classify.request_type import predict_request_types

            chosen, type_proba = predict_request_types(self.request_type, [texts[i] for i in typed])
            columns = list(self.request_type.classes_)
            for row, kind, probabilities in zip(typed, chosen, type_proba, strict=True):
                types[int(row)] = (kind.value, round(float(probabilities[columns.index(kind.value)]), 4))
        classes = self.category.classes_
        explain = threshold if explain_above is None else min(threshold, explain_above)
        explained = self._explain_rows(matrix, np.flatnonzero(relevance >= explain))
        out = []
        for i, score in enumerate(relevance):
            best = int(category_choice[i])
            probability = float(category_proba[i, best])
            known = bool(categorised[i])
            confident = known and probability >= category_min_probability
            out.append(
                Prediction(
                    relevance=round(float(score), 4),
                    is_lead=bool(score >= threshold),
                    category=str(classes[best]) if confident else None,
                    category_probability=round(probability, 4) if known else None,
                    best_category=str(classes[best]) if known else None,
                    top_terms=explained.get(i, []),
                    request_type=types[i][0] if i in types else None,
                    request_type_probability=types[i][1] if i in types else None,
                )
            )
        return out


def svm_choices(pipeline: Pipeline, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Each text's class (a column of ``classes_``) and the calibrated probabilities of all of them, for
    the category and the request-type pipelines (a calibrated LinearSVC last).

    The category is the SVM's own choice (highest decision value), not the most probable class: the
    sigmoid is calibrated per class, one against the rest, and re-ranks a few held-out texts, mostly
    for the worse (macro-F1 rises on letters and titles). Its probability is still the calibrated one,
    so the uncertainty threshold reads as before. Figures: docs/benchmarks.md."""
    matrix = calibrated.features(pipeline, texts)
    model = pipeline.named_steps["classifier"]
    proba, decisions = calibrated.predict_proba(model, matrix)
    members = getattr(model, "calibrated_classifiers_", [])
    if len(members) == 1:  # ensemble=False: one SVM fitted on all the labelled data
        decision = decisions[0] if decisions else members[0].estimator.decision_function(matrix)
        # With two classes only, the one decision column points towards classes_[1].
        choice = (decision > 0).astype(int) if decision.ndim == 1 else np.argmax(decision, axis=1)
    else:  # an ensemble of SVMs fitted on folds (older models): the calibrated average is all there is
        choice = np.argmax(proba, axis=1)
    return choice, proba


def save_model(
    directory: Path,
    relevance: Pipeline,
    category: Pipeline,
    metadata: dict[str, Any],
    request_type: Pipeline | None = None,
) -> Path:
    """Write detector.pkl (the pipelines in one pickle, so anything they share is stored once)."""
    directory.mkdir(parents=True, exist_ok=True)
    bundle = {"relevance": relevance, "category": category, "request_type": request_type}
    with (directory / MODEL_FILE).open("wb") as file:
        pickle.dump(bundle, file, protocol=5)
    text = json.dumps(metadata, ensure_ascii=False, indent=2, sort_keys=True)
    (directory / METADATA_FILE).write_text(text, encoding="utf-8")
    return directory


def check_versions(metadata: dict[str, Any], current: dict[str, str] | None = None) -> None:
    """Raise ModelVersionMismatchError naming every library whose version differs from the model's."""
    current = current or library_versions()
    built = metadata.get("library_versions", {})
    differences = [
        f"{name} {built.get(name, 'unknown')} (here {version})"
        for name, version in current.items()
        if built.get(name) != version
    ]
    if differences:
        raise ModelVersionMismatchError(
            f"model {metadata.get('version', '?')} was built with different library versions: "
            f"{', '.join(differences)}; retrain with `weisu train`"
        )


def load_model(directory: Path, current_versions: dict[str, str] | None = None) -> Detector:
    """Load a saved detector after checking its metadata against this environment."""
    metadata_path = directory / METADATA_FILE
    if not metadata_path.exists():
        raise ModelError(f"model directory {directory} has no {METADATA_FILE}: retrain with `weisu train`")
    metadata = json.loads(metadata_path.read_text(encoding="utf-8"))
    check_versions(metadata, current_versions)
    if not (directory / MODEL_FILE).exists():
        raise ModelError(f"model directory {directory} has no {MODEL_FILE}: retrain with `weisu train`")
    with (directory / MODEL_FILE).open("rb") as file:
        bundle = pickle.load(file)  # our own file, written by save_model (a pickle, like joblib)
    return Detector(bundle["relevance"], bundle["category"], metadata, bundle.get("request_type"))


_loaded: dict[tuple[str, float], Detector] = {}


def load_active(settings: Settings, session: Session) -> Detector:
    """The active model from the `models` table, loaded once per process per file."""
    row = session.scalars(
        select(ModelVersion).where(ModelVersion.active.is_(True), ModelVersion.task == TASK)
    ).first()
    if row is None:
        raise NoActiveModelError()
    directory = Path(row.path)
    if not directory.is_absolute():
        directory = settings.resolve_path(directory)
    if not (directory / MODEL_FILE).exists():
        raise ModelError(f"active model {row.version} is missing at {directory}: run `weisu train`")
    key = (str(directory), (directory / MODEL_FILE).stat().st_mtime)
    if key not in _loaded:
        _loaded.clear()
        _loaded[key] = load_model(directory)
        # The model's vocabularies are ~300,000 long-lived objects: move them out of the collector's
        # generations so that full collections during detection do not walk them again and again
        # (collect first, so that no cyclic garbage is frozen with them).
        gc.collect()
        gc.freeze()
    return _loaded[key]
