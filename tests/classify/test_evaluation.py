"""`weisu evaluate`: figures on small CSVs, nulls on one-label files, JSON keys, errors, the PNG."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from classify.corpus import CORPUS_DIR, content_key, in_validation
from classify.evaluation import EvaluationError, evaluate_file, format_report
from classify.metrics import relevance_metrics
from settings import Settings

LEADS = ["小区门口井盖丢失三天了没人管，晚上很危险", "楼下工地夜间施工噪音扰民，严重影响休息"]
HELD_OUT_IDS = ["100080", "161600", "12128", "47762", "52270", "52803", "52767"]
NOISE = ["今天的外卖真好吃，送餐也快", "股市今天大涨，券商板块领涨", "你好呀，你叫什么名字"]


def _csv(path: Path, rows: dict[str, list[str]]) -> Path:
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_relevance_evaluation_returns_every_key_and_lead_positive_figures(
    active_settings: Settings, tmp_path: Path
) -> None:
    data = _csv(tmp_path / "r.csv", {"text": LEADS + NOISE, "label": ["lead"] * 2 + ["noise"] * 3})
    result = evaluate_file(active_settings, data, task="relevance")
    assert {"accuracy", "macro_f1", "per_class", "recall", "precision", "fpr"} <= set(result)
    assert (result["accuracy"], result["recall"], result["precision"], result["fpr"]) == (1.0, 1.0, 1.0, 0.0)
    assert result["per_class"]["lead"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 2}
    json.loads(json.dumps(result))


def test_noise_only_file_reports_fpr_and_nulls_for_undefined_figures(
    active_settings: Settings, tmp_path: Path
) -> None:
    data = _csv(tmp_path / "n.csv", {"text": NOISE, "label": ["noise"] * 3})
    result = evaluate_file(active_settings, data, task="relevance")
    assert (result["recall"], result["precision"], result["fpr"], result["accuracy"]) == (
        None,
        None,
        0.0,
        1.0,
    )
    assert result["macro_f1"] == 1.0
    assert "n/a" in format_report(result)


def test_single_label_arithmetic_gives_nulls_where_a_ratio_has_no_denominator() -> None:
    result = relevance_metrics(["noise", "noise"], ["lead", "noise"])
    assert (result["recall"], result["precision"], result["fpr"]) == (None, 0.0, 0.5)
    assert result["per_class"]["lead"] == {"precision": 0.0, "recall": None, "f1": None, "support": 0}
    assert result["macro_f1"] == 0.6667


def test_category_evaluation_on_held_out_real_letters_with_titles_and_confusion_png(
    active_settings: Settings, tmp_path: Path
) -> None:
    # One held-out (validation-split) labelled letter per category, with its real title and label.
    frame = pd.read_csv(CORPUS_DIR / "messages_labelled_raw.csv", dtype=str, keep_default_na=False)
    rows = frame[frame["id"].isin(HELD_OUT_IDS)][["title", "text", "label"]]
    letters = [f"{t}。{x}" for t, x in zip(rows["title"], rows["text"], strict=True)]
    assert all(in_validation("m:" + content_key(letter)) for letter in letters)
    data = _csv(tmp_path / "c.csv", rows.to_dict("list"))
    result = evaluate_file(active_settings, data, plot=tmp_path / "cm.png")
    assert (result["rows"], result["accuracy"], result["macro_f1"]) == (7, 0.8571, 0.8095)  # 6 of 7 right
    assert set(result["per_class"]) >= set(rows["label"])
    assert (tmp_path / "cm.png").read_bytes()[:4] == b"\x89PNG"
    assert "教育文体" in format_report(result)


def test_missing_column_is_a_clear_error(active_settings: Settings, tmp_path: Path) -> None:
    data = _csv(tmp_path / "bad.csv", {"content": ["x"], "label": ["noise"]})
    with pytest.raises(EvaluationError, match="missing column\\(s\\) text"):
        evaluate_file(active_settings, data, task="relevance")


@pytest.mark.parametrize("encoding", ["gbk", "gb18030", "utf-8-sig"])
def test_a_csv_saved_by_excel_is_read_in_its_encoding(
    active_settings: Settings, tmp_path: Path, encoding: str
) -> None:
    rows = "text,label\n" + "".join(f"{t},lead\n" for t in LEADS) + "".join(f"{t},noise\n" for t in NOISE)
    (tmp_path / "excel.csv").write_bytes(rows.encode(encoding))
    result = evaluate_file(active_settings, tmp_path / "excel.csv", task="relevance")
    assert (result["rows"], result["recall"], result["fpr"]) == (5, 1.0, 0.0)


def test_unreadable_file_is_a_clear_error(active_settings: Settings, tmp_path: Path) -> None:
    (tmp_path / "binary.csv").write_bytes(b"text,label\n\xff\xfe\x80\x80,lead\n")
    with pytest.raises(EvaluationError, match="neither UTF-8 nor GB18030"):
        evaluate_file(active_settings, tmp_path / "binary.csv", task="relevance")
    with pytest.raises(EvaluationError, match="file not found"):
        evaluate_file(active_settings, tmp_path / "absent.csv", task="relevance")


def test_a_relevance_label_other_than_lead_or_noise_is_a_clear_error(
    active_settings: Settings, tmp_path: Path
) -> None:
    data = _csv(tmp_path / "r.csv", {"text": LEADS + NOISE[:1], "label": ["lead", "1", "噪音"]})
    with pytest.raises(EvaluationError, match="relevance labels must be lead or noise, found '1', '噪音'"):
        evaluate_file(active_settings, data, task="relevance")


def test_a_row_without_a_label_is_a_clear_error(active_settings: Settings, tmp_path: Path) -> None:
    data = _csv(tmp_path / "c.csv", {"text": LEADS, "label": ["城乡建设", " "]})
    with pytest.raises(EvaluationError, match="empty label on line\\(s\\) 3"):
        evaluate_file(active_settings, data)


def test_a_category_label_the_model_was_never_trained_on_is_named_in_the_report(
    active_settings: Settings, tmp_path: Path
) -> None:
    data = _csv(tmp_path / "c.csv", {"text": LEADS, "label": ["城乡建设", "政法"]})
    result = evaluate_file(active_settings, data)
    assert result["unknown_labels"] == {"政法": 1}
    assert "labels the model was not trained on, always counted wrong: 政法 (1)" in format_report(result)


@pytest.fixture
def no_model_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if evaluation gets as far as loading the model: a bad file is refused before."""

    def load_active(*args: object) -> None:
        raise AssertionError("the model was loaded before the file was checked")

    monkeypatch.setattr("classify.evaluation.load_active", load_active)


@pytest.mark.usefixtures("no_model_loaded")
@pytest.mark.parametrize(
    ("content", "problem"),
    [
        # One cell too many: pandas would have read "井盖丢失" as the row's index and shifted every cell.
        ("text,label\n路灯坏了,lead\n井盖丢失,lead,多余\n", "line 3: 3 fields, the header has 2"),
        (
            'text,label\n"路灯\n坏了",lead\n\n"井盖\n丢失",lead,多余,又多\n',
            "line 5: 4 fields, the header has 2",
        ),
        ("text,label\n", "no data rows, only the header"),
        ("text,label\n\n\n", "no data rows, only the header"),
        ("", "empty file (needs a header text, label and data rows)"),
        ("text,label,text\n路灯坏了,lead,x\n", "line 1: column(s) named twice: text"),
    ],
    ids=[
        "one extra field",
        "extra fields after multi-line cells",
        "header only",
        "blank rows",
        "empty",
        "dup",
    ],
)
def test_a_malformed_file_is_refused_naming_file_and_line_before_any_model_loads(
    active_settings: Settings, tmp_path: Path, content: str, problem: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(EvaluationError) as caught:
        evaluate_file(active_settings, path, task="relevance")
    assert str(caught.value) == f"{path}: {problem}"


def test_an_empty_label_is_named_by_the_line_it_is_on_past_multi_line_cells(
    active_settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "c.csv"
    path.write_text('text,label\n"路灯\n坏了",城乡建设\n\n井盖丢失,\n', encoding="utf-8")
    with pytest.raises(EvaluationError, match="empty label on line\\(s\\) 5$"):
        evaluate_file(active_settings, path)
