"""The trained detector: persistence with metadata, version checks on load, and the active model."""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jieba
import joblib
import numpy as np
import sklearn
from sklearn.pipeline import Pipeline
from sqlalchemy import select
from sqlalchemy.orm import Session

from settings import Settings
from storage.models import ModelVersion

MODEL_FILE = "detector.joblib"
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
    }


@dataclass(frozen=True)
class Prediction:
    relevance: float
    is_lead: bool
    category: str | None  # None when the best category is below category_min_probability
    category_probability: float
    best_category: str
    top_terms: list[list[Any]] = field(default_factory=list)  # [[term, weight], …]


class Detector:
    """Relevance and category pipelines (sharing one fitted feature union) plus their metadata."""

    def __init__(self, relevance: Pipeline, category: Pipeline, metadata: dict[str, Any]) -> None:
        self.relevance = relevance
        self.category = category
        self.metadata = metadata
        self._names: np.ndarray | None = None
        self._coef: np.ndarray | None = None

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
            self._coef = sign * np.mean(coefs, axis=0)
            names = self._features().get_feature_names_out()
            self._names = np.array([n.split("__", 1)[-1] for n in names], dtype=object)
        return self._coef

    def top_terms(self, row: Any, limit: int = TOP_TERMS) -> list[list[Any]]:
        """The features that pushed this text towards "lead" most: TF-IDF value × coefficient."""
        coef = self._relevance_coef()
        row = row.tocsr()
        contributions = row.data * coef[row.indices]
        assert self._names is not None
        # The word and the character view often name the same string: add their weights together.
        merged: dict[str, float] = {}
        for index, value in zip(row.indices, contributions, strict=True):
            if value > 0:
                name = str(self._names[index])
                merged[name] = merged.get(name, 0.0) + float(value)
        ranked = sorted(merged.items(), key=lambda item: -item[1])[:limit]
        return [[name, round(weight, 4)] for name, weight in ranked]

    def predict(
        self,
        texts: list[str],
        threshold: float = 0.5,
        category_min_probability: float = 0.4,
        explain_above: float | None = None,
    ) -> list[Prediction]:
        """Predict each text; top terms are given from ``explain_above`` (default: the threshold) up."""
        if not texts:
            return []
        features = self._features()
        matrix = features.transform(texts)
        relevance_model = self.relevance.named_steps["classifier"]
        lead_column = list(relevance_model.classes_).index(LEAD)
        relevance = relevance_model.predict_proba(matrix)[:, lead_column]
        if self.category.named_steps["features"] is features:
            category_proba = self.category.named_steps["classifier"].predict_proba(matrix)
        else:
            category_proba = self.category.predict_proba(texts)
        classes = self.category.classes_
        explain = threshold if explain_above is None else min(threshold, explain_above)
        out = []
        for i, score in enumerate(relevance):
            best = int(np.argmax(category_proba[i]))
            probability = float(category_proba[i, best])
            is_lead = bool(score >= threshold)
            out.append(
                Prediction(
                    relevance=round(float(score), 4),
                    is_lead=is_lead,
                    category=str(classes[best]) if probability >= category_min_probability else None,
                    category_probability=round(probability, 4),
                    best_category=str(classes[best]),
                    top_terms=self.top_terms(matrix[i]) if score >= explain else [],
                )
            )
        return out


def save_model(directory: Path, relevance: Pipeline, category: Pipeline, metadata: dict[str, Any]) -> Path:
    """Write detector.joblib (both pipelines in one pickle, so the shared features are stored once)."""
    directory.mkdir(parents=True, exist_ok=True)
    joblib.dump({"relevance": relevance, "category": category}, directory / MODEL_FILE, compress=1)
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
    bundle = joblib.load(directory / MODEL_FILE)
    return Detector(bundle["relevance"], bundle["category"], metadata)


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
    return _loaded[key]
