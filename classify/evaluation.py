"""`weisu evaluate`: score the active model on any labelled CSV (text, label, optional title)."""

from __future__ import annotations

import csv
import io
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd

from classify.corpus import letter_of
from classify.metrics import category_metrics, relevance_metrics
from classify.model import load_active
from settings import Settings
from storage.db import make_engine, make_session_factory, session_scope

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


def _texts(frame: pd.DataFrame) -> list[str]:
    if "title" not in frame.columns:
        return frame["text"].tolist()
    # Joined as the training letters are (classify.corpus.letter_of), so a file scores like the corpus.
    return [letter_of(t, x) if t.strip() else x for t, x in zip(frame["title"], frame["text"], strict=True)]


def evaluate_file(
    settings: Settings, path: str | Path, task: str = "category", plot: str | Path | None = None
) -> dict[str, Any]:
    """accuracy, macro_f1, per_class; for relevance also recall, precision, fpr (lead = positive)."""
    if task not in ("category", "relevance"):
        raise EvaluationError(f"unknown task {task!r}: use category or relevance")
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
    else:
        guess = [p.best_category or "" for p in predictions]  # every text is categorised here
        result = category_metrics(truth, guess)
        result["uncertain"] = sum(p.category is None for p in predictions)
        # A label the model was never trained on (a taxonomy category outside its seven, a typo) can only
        # be wrong: say so beside the figures instead of letting it pass as a weak class.
        known = {str(label) for label in detector.category.classes_}
        result["unknown_labels"] = dict(sorted(Counter(t for t in truth if t not in known).items()))
    result = {"task": task, "file": str(path), "rows": len(truth), "model_version": detector.version} | result
    if plot is not None:
        result["plot"] = str(plot_confusion(truth, guess, Path(plot)))
    return result


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
        lines.append(
            f"{label:<16}{_fmt(figures['precision']):>10}{_fmt(figures['recall']):>10}"
            f"{_fmt(figures['f1']):>10}{figures['support']:>9}"
        )
    overall = ["accuracy", "macro_f1"] + (
        ["precision", "recall", "fpr"] if result["task"] == "relevance" else []
    )
    lines.append("  ".join(f"{key} {_fmt(result.get(key))}" for key in overall))
    if result.get("unknown_labels"):
        unknown = ", ".join(f"{label} ({count})" for label, count in result["unknown_labels"].items())
        lines.append(f"模型不认识的类别 labels the model was not trained on, always counted wrong: {unknown}")
    if "plot" in result:
        labels = ", ".join(f"{i}={label}" for i, label in enumerate(sorted(result["per_class"])))
        lines.append(f"confusion matrix: {result['plot']} ({labels})")
    return "\n".join(lines)
