"""`weisu evaluate`: score the active model on any labelled CSV (text, label, optional title).

Tasks: category (first-level category), relevance (lead or noise, with the calibration of its score) and
type (the published request types of classify.corpus.PUBLISHED_TYPES)."""

from __future__ import annotations

import csv
import io
from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd

from classify.corpus import PUBLISHED_TYPES
from classify.evaluation_terms import EvaluationTask
from classify.metrics import (
    category_metrics,
    expected_calibration_error,
    relevance_metrics,
    reliability_bins,
)
from classify.model import Detector, Prediction, load_active
from settings import Settings
from storage.db import make_engine, make_session_factory, session_scope
from storage.models import title_and_text
from storage.vocabulary import REQUEST_TYPE_LABELS, RequestType

REQUIRED_COLUMNS = ("text", "label")


class EvaluationError(ValueError):
    """A CSV that cannot be evaluated; the message names the file and the problem."""


#: Tried in order: UTF-8 (a byte-order mark, as Excel writes one, is dropped), then GB18030, the superset
#: of GBK in which Excel on a Chinese Windows saves "CSV" files.
ENCODINGS = ("utf-8-sig", "gb18030")
RELEVANCE_LABELS = frozenset({"lead", "noise"})


def _decoded(path: Path) -> str:
    """The file's text in the first of ENCODINGS that decodes it."""
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise EvaluationError(f"{path}: file not found") from exc
    except IsADirectoryError as exc:
        raise EvaluationError(f"{path}: not a readable CSV (a directory)") from exc
    for encoding in ENCODINGS:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise EvaluationError(f"{path}: not a readable CSV (neither UTF-8 nor GB18030 text)")


def read_labelled_csv(path: Path) -> pd.DataFrame:
    """The CSV as strings indexed by line, in the first of ENCODINGS that decodes it, column names stripped.

    Read with the csv module rather than pandas, which takes a row with one cell too many as an index
    and shifts every cell of it silently: such a row is refused here with its line number.
    """
    reader = csv.reader(io.StringIO(_decoded(path), newline=""))
    try:
        header = next((row for row in reader if row), None)
        if header is None:
            raise EvaluationError(f"{path}: empty file (needs a header text, label and data rows)")
        columns = [cell.strip() for cell in header]
        rows: list[list[str]] = []
        lines: list[int] = []  # where each row starts (a quoted cell may span lines)
        while True:
            line = reader.line_num + 1
            row = next(reader, None)
            if row is None:
                break
            if not row:
                continue  # a blank line, as pandas skips them
            if len(row) > len(columns):
                raise EvaluationError(
                    f"{path}: line {line}: {len(row)} fields, the header has {len(columns)}"
                )
            rows.append(row + [""] * (len(columns) - len(row)))
            lines.append(line)
    except csv.Error as exc:
        raise EvaluationError(f"{path}: line {reader.line_num}: not a readable CSV ({exc})") from exc
    if doubled := sorted({c for c in columns if columns.count(c) > 1}):
        raise EvaluationError(f"{path}: line 1: column(s) named twice: {', '.join(doubled)}")
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise EvaluationError(
            f"{path}: missing column(s) {', '.join(missing)} (needs text, label; optional title)"
        )
    if not rows:
        raise EvaluationError(f"{path}: no data rows, only the header")
    # Indexed by line number, so later checks can name the line of a bad row.
    return pd.DataFrame(rows, columns=columns, index=lines, dtype=str)


def _check_labels(path: Path, task: str, labels: list[str], lines: list[int]) -> None:
    """Every row needs a label; a relevance label is lead or noise (a typo would skew every figure)."""
    empty = [line for line, label in zip(lines, labels, strict=True) if not label]
    if empty:
        named = ", ".join(map(str, empty[:5])) + (" …" if len(empty) > 5 else "")
        raise EvaluationError(f"{path}: empty label on line(s) {named}")
    if task == "relevance":
        unknown = sorted(set(labels) - RELEVANCE_LABELS)
        if unknown:
            raise EvaluationError(
                f"{path}: relevance labels must be lead or noise, found {', '.join(map(repr, unknown[:5]))}"
            )
    if task == "type":
        for line, label in zip(lines, labels, strict=True):
            if label not in PUBLISHED_TYPES:
                raise EvaluationError(
                    f"{path}: line {line}: unknown request type {label!r} "
                    f"(use one of {', '.join(PUBLISHED_TYPES)})"
                )


def _texts(frame: pd.DataFrame) -> list[str]:
    if "title" not in frame.columns:
        return frame["text"].tolist()
    # Joined as the training letters and the posts are, so a file scores like the corpus.
    return [title_and_text(t, x) for t, x in zip(frame["title"], frame["text"], strict=True)]


def evaluate_file(
    settings: Settings,
    path: str | Path,
    task: EvaluationTask | str = EvaluationTask.CATEGORY,
    plot: str | Path | None = None,
) -> dict[str, Any]:
    """accuracy, macro_f1, per_class; for relevance also recall, precision, fpr (lead = positive); for
    relevance and type the expected calibration error and the reliability bins it is computed from."""
    if task not in tuple(EvaluationTask):
        *first, last = EvaluationTask
        raise EvaluationError(f"unknown task {task!r}: use {', '.join(first)} or {last}")
    task = EvaluationTask(task)
    path = Path(path)
    frame = read_labelled_csv(path)
    truth = [label.strip() for label in frame["label"]]
    _check_labels(path, task, truth, frame.index.tolist())
    engine = make_engine(settings.database_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            detector = load_active(settings, session)
    finally:
        engine.dispose()
    config = settings.classify
    predictions = detector.predict(_texts(frame), config.relevance_threshold, config.category_min_probability)
    if task == "relevance":
        guess = ["lead" if p.is_lead else "noise" for p in predictions]
        result = relevance_metrics(truth, guess)
        result |= _calibration([p.relevance for p in predictions], [t == "lead" for t in truth])
    elif task == "type":
        truth = [PUBLISHED_TYPES[label].value for label in truth]
        guess, confidence = _request_types(detector, predictions)
        result = category_metrics(truth, guess)
        # The confidence of the type given, against whether it was right: top-label calibration.
        result |= _calibration(confidence, [t == g for t, g in zip(truth, guess, strict=True)])
    else:
        guess = [p.best_category or "" for p in predictions]  # every text is categorised here
        result = category_metrics(truth, guess)
        result["uncertain"] = sum(p.category is None for p in predictions)
        # A label the model was never trained on (a taxonomy category outside its seven, a typo) can only
        # be wrong: say so beside the figures instead of letting it pass as a weak class.
        known = {str(label) for label in detector.category.classes_}
        result["unknown_labels"] = dict(sorted(Counter(t for t in truth if t not in known).items()))
    head: dict[str, Any] = {
        "task": task,
        "file": str(path),
        "rows": len(truth),
        "model_version": detector.version,
    }
    result = head | result
    if plot is not None:
        if task == "relevance":
            scores = [p.relevance for p in predictions]
            drawn = plot_reliability(
                scores, result["reliability"], result["expected_calibration_error"], Path(plot)
            )
        else:
            drawn = plot_confusion(truth, guess, Path(plot))
        result["plot"] = str(drawn)
    return result


def _calibration(scores: list[float], outcomes: list[bool]) -> dict[str, Any]:
    return {
        "expected_calibration_error": expected_calibration_error(scores, outcomes),
        "reliability": reliability_bins(scores, outcomes),
    }


def _request_types(detector: Detector, predictions: list[Prediction]) -> tuple[list[str], list[float]]:
    """Each prediction's request type and its probability; a model without a type model is refused."""
    if any(p.request_type is None or p.request_type_probability is None for p in predictions):
        raise EvaluationError(
            f"model {detector.version} has no request-type model: retrain with `weisu train`"
        )
    return (
        [str(p.request_type) for p in predictions],
        [float(p.request_type_probability or 0.0) for p in predictions],
    )


def plot_confusion(truth: list[str], guess: list[str], path: Path) -> Path:
    """Confusion-matrix PNG; classes are numbered on the axes (no CJK font is assumed) and listed below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import confusion_matrix

    labels = sorted(set(truth) | set(guess))
    matrix = confusion_matrix(truth, guess, labels=labels)
    figure, axes = plt.subplots(figsize=(6, 5))
    axes.imshow(matrix, cmap="Blues")
    for (row, column), count in pd.DataFrame(matrix).stack().items():
        axes.text(column, row, str(count), ha="center", va="center", fontsize=8)
    ticks = list(range(len(labels)))
    axes.set_xticks(ticks, [str(i) for i in ticks])
    axes.set_yticks(ticks, [str(i) for i in ticks])
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title("confusion matrix (class numbers: see the text report)")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(figure)
    return path


#: Characters a font that draws Chinese has each its own glyph for. Matplotlib's own "Last Resort" font
#: maps every one of them to one box glyph: one distinct glyph per character tells the two apart.
_CJK_PROBE = "率线索实际"


def draws_chinese(font_file: str) -> bool:
    """Whether the font file has a glyph of its own for each probe character."""
    from matplotlib import ft2font

    try:
        font = ft2font.FT2Font(font_file)
    except (OSError, RuntimeError):  # an unreadable font file
        return False
    glyphs = {font.get_char_index(ord(char)) for char in _CJK_PROBE}
    return 0 not in glyphs and len(glyphs) == len(_CJK_PROBE)


@lru_cache(maxsize=1)
def cjk_font() -> str | None:
    """The family name of an installed font that draws Chinese, or None (labels then stay English)."""
    from matplotlib import font_manager

    for entry in sorted(font_manager.fontManager.ttflist, key=lambda f: f.name):
        if draws_chinese(entry.fname):
            return str(entry.name)
    # Matplotlib caches its font list when it first runs: a font installed since (as .ci/run installs
    # fonts-wqy-microhei) is only in the system's font folders.
    for path in sorted(font_manager.findSystemFonts()):
        if draws_chinese(path):
            font_manager.fontManager.addfont(path)
            return str(font_manager.FontProperties(fname=path).get_name())
    return None


def reliability_labels(chinese: bool) -> dict[str, str]:
    """The reliability diagram's title and axis labels: Chinese beside English only where a CJK font
    draws them (never boxes)."""
    if chinese:
        return {
            "title": "可靠性图 reliability diagram",
            "x": "模型分数 score",
            "y": "实际线索比例 observed lead rate",
            "count": "文本数 texts",
            "ideal": "完美校准 perfectly calibrated",
            "observed": "实际 observed",
        }
    return {
        "title": "reliability diagram",
        "x": "score",
        "y": "observed lead rate",
        "count": "texts",
        "ideal": "perfectly calibrated",
        "observed": "observed",
    }


def plot_reliability(
    scores: list[float], bins: list[dict[str, Any]], error: float | None, path: Path
) -> Path:
    """Reliability diagram PNG: the diagonal, each bin's observed lead rate at its mean score, and below
    it a histogram of the scores (same equal-width bins as the expected calibration error)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from classify.metrics import CALIBRATION_BINS

    font = cjk_font()
    labels = reliability_labels(font is not None)
    with plt.rc_context({"font.family": [font, "DejaVu Sans"]} if font else None):
        figure, (top, bottom) = plt.subplots(
            2, 1, figsize=(6, 7), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
        )
        top.plot([0, 1], [0, 1], linestyle="--", color="grey", label=labels["ideal"])
        top.plot(
            [b["mean_score"] for b in bins],
            [b["observed_rate"] for b in bins],
            marker="o",
            color="tab:blue",
            label=labels["observed"],
        )
        top.set_xlim(0, 1)
        top.set_ylim(0, 1)
        top.set_ylabel(labels["y"])
        top.set_title(f"{labels['title']} (ECE {_fmt(error)})")
        top.legend(loc="upper left")
        bottom.hist(scores, bins=CALIBRATION_BINS, range=(0, 1), color="tab:blue", edgecolor="white")
        bottom.set_xlabel(labels["x"])
        bottom.set_ylabel(labels["count"])
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=100, bbox_inches="tight")
        plt.close(figure)
    return path


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def format_report(result: dict[str, Any]) -> str:
    """Per-class precision/recall/F1/support table, then the overall figures."""
    lines = [
        f"评估 evaluation: task {result['task']}, {result['rows']} rows, model {result['model_version']}",
        f"{'label':<16}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>9}",
    ]
    for label, figures in result["per_class"].items():
        if result["task"] == "type":  # the analysts' name beside the type's value
            label = f"{label} {REQUEST_TYPE_LABELS[RequestType(label)]}"
        lines.append(
            f"{label:<16}{_fmt(figures['precision']):>10}{_fmt(figures['recall']):>10}"
            f"{_fmt(figures['f1']):>10}{figures['support']:>9}"
        )
    overall = ["accuracy", "macro_f1"] + (
        ["precision", "recall", "fpr"] if result["task"] == "relevance" else []
    )
    lines.append("  ".join(f"{key} {_fmt(result.get(key))}" for key in overall))
    if "expected_calibration_error" in result:
        lines.append(
            f"校准 calibration: expected_calibration_error {_fmt(result['expected_calibration_error'])}"
        )
        lines.append(f"{'bin':<14}{'mean score':>11}{'observed':>10}{'count':>8}")
        for b in result["reliability"]:
            lines.append(
                f"{b['low']:.3f}–{b['high']:.3f}{'':<3}{b['mean_score']:>11.4f}{b['observed_rate']:>10.4f}{b['count']:>8}"
            )
    if result.get("unknown_labels"):
        unknown = ", ".join(f"{label} ({count})" for label, count in result["unknown_labels"].items())
        lines.append(f"模型不认识的类别 labels the model was not trained on, always counted wrong: {unknown}")
    if "plot" in result and result["task"] == "relevance":
        lines.append(f"reliability diagram: {result['plot']}")
    elif "plot" in result:
        labels = ", ".join(f"{i}={label}" for i, label in enumerate(sorted(result["per_class"])))
        lines.append(f"confusion matrix: {result['plot']} ({labels})")
    return "\n".join(lines)
