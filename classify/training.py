"""`weisu train`: fit both models on the labelled corpus, score them on the fixed split, activate."""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from joblib import parallel_config
from sqlalchemy import update
from sqlalchemy.orm import Session

from classify import text as text_module
from classify.corpus import LEAD, NOISE, Example, corpus_hash, load_examples, load_taxonomy
from classify.features import CivicGate
from classify.feedback import FEEDBACK_KIND, FEEDBACK_NOISE_KIND
from classify.metrics import category_metrics, relevance_metrics
from classify.model import TASK, Detector, library_versions, save_model
from classify.pipelines import RELEVANCE_C, build_category_pipeline, build_relevance_pipeline
from classify.request_type import fit_request_type, load_type_examples
from settings import Settings
from storage.models import ModelVersion

CLASSIFY_DIR = Path(__file__).resolve().parent
#: Chosen among 0.1 / 0.3 / 1.0: best on titles, the letters barely differ (docs/benchmarks.md).
CATEGORY_C = 0.3
#: An analyst's decision on a platform post weighs as much as this many corpus complaints.
FEEDBACK_WEIGHT = 2.0
#: A letter's short sentence (the stand-in for a one-line post) weighs this much beside a whole letter or
#: title. The sentences are what teaches the model short posts (without them the simulated world's held-out
#: incident recall falls), but they also teach it that any short text with civic words is a lead. Below
#: full weight, fewer unseen news titles, Weibo comments and food reviews pass at the same held-out title
#: recall; lower still (0.7) costs world recall. Figures: docs/benchmarks.md, "Figures moved out of
#: docstrings".
SENTENCE_WEIGHT = 0.85
#: A question (咨询) is a lead, typed as a question, but weighs half a problem in the relevance model:
#: policy questions read like news headlines, and at full weight unseen news passed more often
#: (docs/benchmarks.md).
QUESTION_WEIGHT = 0.5
#: A noise source's share of the noise weight, where it is not one (1.0). Consumer reviews are complaints
#: too, about a shop or a courier ("打电话没人接", "好几天了"): at a full share they taught the model that
#: complaint wording itself is noise, and short casual complaints to a city scored low. Half a share,
#: with hard negatives (classify.pipelines), moved the leave-one-out folds' trade-off curve a little;
#: the figures are in docs/benchmarks.md (seventh session).
NOISE_SHARES = {"noise:food_delivery_reviews": 0.5}
ACTIVATED = {True: "已启用 (activated)", False: "未启用 (not activated)"}
RELEVANCE_SUBSETS = {
    "titles": "title",
    "letters": "letter",
    "sentences": "sentence",
    "short requests": "short",
}


def code_version() -> str:
    """Hash of the classify package sources and user dictionary: changes whenever the code does."""
    digest = hashlib.sha256()
    for path in sorted([*CLASSIFY_DIR.glob("*.py"), text_module.USER_DICT]):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@dataclass
class TrainReport:
    version: str
    path: Path
    metrics: dict[str, Any]
    train_seconds: float
    counts: dict[str, int]
    activated: bool = True

    def summary(self) -> str:
        rel = self.metrics["relevance"]
        cat = self.metrics["category"]
        lines = [
            f"模型 model {self.version} {ACTIVATED[self.activated]} — {self.train_seconds:.1f}s",
            f"  训练 train: {self.counts['train']}  验证 validation: {self.counts['validation']}  "
            f"(grouped, fixed split)",
            "  相关性 relevance (lead = positive)      precision  recall   FPR",
        ]
        for name, figures in rel.items():
            if name.startswith("fpr_"):
                continue
            precision, recall, fpr = (_pct(figures[k]) for k in ("precision", "recall", "fpr"))
            lines.append(f"    {name:<34}{precision}  {recall}  {fpr}")
        noise = ", ".join(f"{k[4:]} {_pct(v)}" for k, v in rel.items() if k.startswith("fpr_"))
        lines.append(f"    误报率 FPR by noise source: {noise}")
        lines.append("  类别 category                           accuracy  macro-F1")
        for name, figures in cat.items():
            lines.append(f"    {name:<34}{_pct(figures['accuracy'])}  {_pct(figures['macro_f1'])}")
        lines.append(f"  保存于 saved at {self.path}")
        return "\n".join(lines)


def _pct(value: float | None) -> str:
    return "    n/a" if value is None else f"{value * 100:6.2f}%"


#: The calibration folds' SVMs are fitted one after another, so that a training is reproducible to the
#: last bit. Fitted side by side in threads they shared liblinear's process-wide random state: two
#: trainings of the same data differed by up to 1e-5 in probability (in processes each fold would get a
#: pickled copy of the matrix, and four type-model fits took three times as long). Sequential fits give
#: what classify.generalisation's folds, which never ran them side by side, always computed.
#: Figures: docs/benchmarks.md, eleventh session.
FOLD_JOBS = 1


def fit_detector(
    train: list[Example], c: float = RELEVANCE_C, category_c: float = CATEGORY_C, processes: int = 2
) -> tuple[Any, Any]:
    """Fit the relevance pipeline on everything, the category pipeline on the labelled messages alone."""
    text_module.warm_cache([e.text for e in train], processes=processes)
    relevance = build_relevance_pipeline(c=c)
    labelled = [e for e in train if e.category]
    category = build_category_pipeline(c=category_c)
    with parallel_config(n_jobs=FOLD_JOBS):
        relevance.fit(
            [e.text for e in train],
            [e.relevance for e in train],
            classifier__sample_weight=sample_weights(train),
        )
        category.fit([e.text for e in labelled], [e.category for e in labelled])
    relevance.civic_gate_ = fit_gate(train)  # pickled with the pipeline; Detector.predict applies it
    return relevance, category


def fit_gate(train: list[Example]) -> CivicGate:
    """The civic-object gate, learned from the labelled training complaints, the taxonomy's items and
    the civic words of the user dictionary (井盖, 飞线充电 …: rare in the letters, common in posts)."""
    labelled = [e for e in train if e.category]
    taxonomy = load_taxonomy()
    civic_words = [
        line.split()[0]
        for line in text_module.USER_DICT.read_text(encoding="utf-8").splitlines()
        if line.split() and line.split()[-1] != "ns"  # place names are not objects
    ]
    items = [*taxonomy["二级分类"], *taxonomy["三级分类"], *civic_words]
    return CivicGate().fit([e.text for e in labelled], [str(e.category) for e in labelled], items)


def validation_metrics(detector: Detector, validation: list[Example], settings: Settings) -> dict[str, Any]:
    threshold = settings.classify.relevance_threshold
    minimum = settings.classify.category_min_probability
    # Relevance for every row; a category only for the labelled rows it is scored on (a tenth of them).
    predictions = detector.predict([e.text for e in validation], threshold, minimum, categorise_above=2.0)
    labelled_rows = [i for i, e in enumerate(validation) if e.category]
    categorised = detector.predict([validation[i].text for i in labelled_rows], threshold, minimum)
    for i, prediction in zip(labelled_rows, categorised, strict=True):
        predictions[i] = prediction
    noise = [i for i, e in enumerate(validation) if e.relevance == NOISE]
    relevance: dict[str, Any] = {}
    for name, kind in RELEVANCE_SUBSETS.items():
        rows = [i for i, e in enumerate(validation) if e.kind == kind] + noise
        truth = [validation[i].relevance for i in rows]
        guess = [LEAD if predictions[i].is_lead else NOISE for i in rows]
        figures = relevance_metrics(truth, guess)
        relevance[f"{name} vs noise"] = {k: figures[k] for k in ("precision", "recall", "fpr")}
    for source in sorted({e.kind for e in validation if e.relevance == NOISE}):
        rows = [i for i, e in enumerate(validation) if e.kind == source]
        false_leads = sum(predictions[i].is_lead for i in rows)
        relevance[f"fpr_{source.removeprefix('noise:')}"] = round(false_leads / len(rows), 4)
    category: dict[str, Any] = {}
    for name, kind in (("letters", "letter"), ("titles", "title")):
        rows = [i for i, e in enumerate(validation) if e.category and e.kind == kind]
        figures = category_metrics(
            [str(validation[i].category) for i in rows], [predictions[i].best_category or "" for i in rows]
        )
        category[name] = {k: figures[k] for k in ("accuracy", "macro_f1")} | {"support": len(rows)}
    return {"threshold": threshold, "relevance": relevance, "category": category}


def _write_validation_csvs(directory: Path, validation: list[Example]) -> None:
    """The held-out rows as `weisu evaluate` CSVs, so anyone can re-score the model on them."""
    pd.DataFrame({"text": [e.text for e in validation], "label": [e.relevance for e in validation]}).to_csv(
        directory / "validation_relevance.csv", index=False
    )
    rows = [e for e in validation if e.category]
    pd.DataFrame({"text": [e.text for e in rows], "label": [e.category for e in rows]}).to_csv(
        directory / "validation_category.csv", index=False
    )


def sample_weights(train: list[Example]) -> list[float]:
    """Sample weights: every noise source together weighs as much as the complaints, each source an
    equal share (consumer reviews half of one: NOISE_SHARES), so that no single kind of noise (and its
    style) dominates what "noise" means.
    Analysts' feedback counts FEEDBACK_WEIGHT times a complaint: it is the platforms' own text; a letter's
    short sentence SENTENCE_WEIGHT."""
    leads = sum(1 for e in train if e.relevance == LEAD and e.kind != FEEDBACK_KIND)
    sources = Counter(e.kind for e in train if e.relevance == NOISE and e.kind != FEEDBACK_NOISE_KIND)
    share = leads / max(len(sources), 1)
    weights = []
    for e in train:
        if e.kind in (FEEDBACK_KIND, FEEDBACK_NOISE_KIND):
            weights.append(FEEDBACK_WEIGHT)
        elif e.relevance == NOISE:
            weights.append(share * NOISE_SHARES.get(e.kind, 1.0) / sources[e.kind])
        elif e.kind == "sentence":
            weights.append(SENTENCE_WEIGHT)
        elif not e.problem:
            weights.append(QUESTION_WEIGHT)
        else:
            weights.append(1.0)
    return weights


def _data_hash(feedback: list[Example]) -> str:
    if not feedback:
        return corpus_hash()
    digest = hashlib.sha256(corpus_hash().encode())
    for e in feedback:
        digest.update(f"{e.relevance}\t{e.category}\t{e.text}\n".encode())
    return digest.hexdigest()


#: What training does, in order (a progress bar names each step as it starts).
TRAINING_STEPS = ("读取语料", "训练相关性与类别模型", "训练诉求类型模型", "验证", "保存")


def train_model(
    settings: Settings,
    *,
    c: float = RELEVANCE_C,
    processes: int = 2,
    feedback: list[Example] | None = None,
    on_step: Callable[[str], None] | None = None,
) -> tuple[Detector, Path, list[Example]]:
    """Train on the corpus's training split (plus feedback), score on the fixed validation split, save.

    Returns the detector, its directory and the validation examples; nothing is registered yet.
    ``on_step`` is told each of TRAINING_STEPS as it starts."""
    step = on_step or (lambda _name: None)
    started = time.perf_counter()
    step(TRAINING_STEPS[0])
    examples = load_examples(processes=processes)
    validation = [e for e in examples if e.validation]
    held_out = {e.group for e in validation}
    # A feedback text that duplicates a held-out corpus row would flatter the validation figures.
    feedback = [e for e in feedback or [] if e.group not in held_out]
    train = [e for e in examples if not e.validation] + feedback
    step(TRAINING_STEPS[1])
    relevance, category = fit_detector(train, c=c, category_c=CATEGORY_C, processes=processes)
    data_hash = _data_hash(feedback)
    version = f"{datetime.now(UTC):%Y%m%d%H%M%S%f}-{data_hash[:8]}"
    metadata: dict[str, Any] = {
        "version": version,
        "task": TASK,
        "created_at": datetime.now(UTC).isoformat(),
        "data_hash": data_hash,
        "code_version": code_version(),
        "library_versions": library_versions(),
        "params": {
            "c": c,
            "category_c": CATEGORY_C,
            "features": "relevance: complaint-vocabulary word + char 2-3gram (160 chars) TF-IDF, other terms "
            "as one feature, noise sources weighted equally (consumer reviews half), hard negatives ×3 in a "
            "second fit, civic-object gate (cap 0.5); "
            "real place names dropped; "
            "category: anonymised place codes dropped with their suffix, word 1-2gram + char 1-3gram "
            "(600 chars) TF-IDF, the SVM's choice with its calibrated probability",
            "model": "calibrated LinearSVC",
        },
        "counts": {"train": len(train), "validation": len(validation), "feedback": len(feedback)},
    }
    # The request type is learned from the two cities' published types alone (the board has none).
    step(TRAINING_STEPS[2])
    with parallel_config(n_jobs=FOLD_JOBS):  # as in fit_detector
        request_type = fit_request_type(load_type_examples())
    detector = Detector(relevance, category, metadata, request_type)
    step(TRAINING_STEPS[3])
    metadata["metrics"] = validation_metrics(detector, validation, settings)
    metadata["train_seconds"] = round(time.perf_counter() - started, 1)
    step(TRAINING_STEPS[4])
    directory = save_model(settings.model_dir / version, relevance, category, metadata, request_type)
    _write_validation_csvs(directory, validation)
    return detector, directory, validation


def register(session: Session, detector: Detector, directory: Path, *, activate: bool) -> None:
    """Record the version in the models table; when activated, it replaces the active one."""
    metadata = detector.metadata
    if activate:
        session.execute(update(ModelVersion).where(ModelVersion.task == TASK).values(active=False))
    session.add(
        ModelVersion(
            version=metadata["version"],
            task=TASK,
            path=str(directory),
            data_hash=metadata["data_hash"],
            metrics=metadata["metrics"],
            library_versions=metadata["library_versions"],
            active=activate,
        )
    )
    session.flush()


def report_of(detector: Detector, directory: Path, *, activated: bool = True) -> TrainReport:
    metadata = detector.metadata
    return TrainReport(
        version=metadata["version"],
        path=directory,
        metrics=metadata["metrics"],
        train_seconds=metadata["train_seconds"],
        counts=metadata["counts"],
        activated=activated,
    )


def train_and_activate(
    settings: Settings,
    session: Session,
    *,
    c: float = RELEVANCE_C,
    processes: int = 2,
    on_step: Callable[[str], None] | None = None,
) -> TrainReport:
    """Train on the corpus, evaluate on the fixed validation split, save in model_dir/<version>/, activate."""
    detector, directory, _ = train_model(settings, c=c, processes=processes, on_step=on_step)
    text_module.clear_cache()
    register(session, detector, directory, activate=True)
    return report_of(detector, directory)
