"""`weisu evaluate`: figures on small CSVs, nulls on one-label files, JSON keys, errors, the PNG."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from classify.corpus import CORPUS_DIR, content_key, in_validation
from classify.evaluation import (
    EvaluationError,
    draws_chinese,
    evaluate_file,
    format_report,
    plot_reliability,
    reliability_labels,
)
from classify.metrics import expected_calibration_error, relevance_metrics, reliability_bins
from classify.model import Prediction
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


# --- Calibration and request types (issue #14) ------------------------------------------------------


def test_expected_calibration_error_weighs_each_bins_gap_by_its_share_of_the_texts() -> None:
    # Bins of 1/15: 0.1 → bin 1 (mean 0.1, rate 0.5, two texts), 0.9 → bin 13, 1.0 → the last bin, 14.
    scores, outcomes = [0.1, 0.1, 0.9, 1.0], [False, True, True, True]
    assert expected_calibration_error(scores, outcomes) == 0.225  # (0.4 × 2 + 0.1 × 1 + 0 × 1) / 4
    assert reliability_bins(scores, outcomes) == [
        {"bin": 1, "low": 0.0667, "high": 0.1333, "mean_score": 0.1, "observed_rate": 0.5, "count": 2},
        {"bin": 13, "low": 0.8667, "high": 0.9333, "mean_score": 0.9, "observed_rate": 1.0, "count": 1},
        {"bin": 14, "low": 0.9333, "high": 1.0, "mean_score": 1.0, "observed_rate": 1.0, "count": 1},
    ]


def test_expected_calibration_error_of_no_texts_is_undefined() -> None:
    assert expected_calibration_error([], []) is None


class StandInDetector:
    """The active model's stand-in: each text's relevance and request type, as given."""

    version = "stand-in"

    def __init__(self, rows: dict[str, tuple[float, str | None, float | None]]) -> None:
        self.rows = rows

    def predict(self, texts: list[str], threshold: float = 0.5, *_: object) -> list[Prediction]:
        out = []
        for text in texts:
            relevance, request_type, probability = self.rows[text]
            out.append(
                Prediction(
                    relevance=relevance,
                    is_lead=relevance >= threshold,
                    category=None,
                    category_probability=None,
                    best_category=None,
                    request_type=request_type,
                    request_type_probability=probability,
                )
            )
        return out


@pytest.fixture
def stand_in(
    monkeypatch: pytest.MonkeyPatch,
    sqlite_url: str,
    tmp_path: Path,
    make_settings: Callable[[str, Path], Settings],
) -> Callable[[dict[str, tuple[float, str | None, float | None]]], Settings]:
    """Settings whose active model is a StandInDetector of the given rows."""

    def activate(rows: dict[str, tuple[float, str | None, float | None]]) -> Settings:
        monkeypatch.setattr("classify.evaluation.load_active", lambda *_: StandInDetector(rows))
        return make_settings(sqlite_url, tmp_path / "models")

    return activate


TYPED = {  # text: (relevance, predicted type, its probability), label
    "小区污水横流没人管": ((0.9, "problem", 0.95), "投诉"),
    "有人往河里偷排废水": ((0.9, "problem", 0.75), "举报"),
    "请问河道什么时候清淤？": ((0.9, "question", 0.85), "咨询"),
    "公积金怎么提取": ((0.9, "problem", 0.65), "咨询问题"),
    "建议河边增设护栏": ((0.9, "suggestion", 0.55), "建议"),
}


def test_type_evaluation_maps_published_labels_and_reports_per_type_figures_and_calibration(
    stand_in: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = stand_in({text: row for text, (row, _) in TYPED.items()})
    data = _csv(tmp_path / "t.csv", {"text": list(TYPED), "label": [label for _, label in TYPED.values()]})
    result = evaluate_file(settings, data, task="type")
    assert result["per_class"] == {
        "problem": {"precision": 0.6667, "recall": 1.0, "f1": 0.8, "support": 2},
        "question": {"precision": 1.0, "recall": 0.5, "f1": 0.6667, "support": 2},
        "suggestion": {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1},
    }
    assert (result["accuracy"], result["macro_f1"]) == (0.8, 0.8222)
    # The type's probability against whether it was right, each in its own bin: |0.95−1|, |0.75−1|,
    # |0.85−1|, |0.65−0|, |0.55−1| averaged.
    assert result["expected_calibration_error"] == 0.31
    assert "question 咨询" in format_report(result)


def test_type_macro_f1_is_over_the_types_present_in_the_file(
    stand_in: Callable[..., Settings], tmp_path: Path
) -> None:
    rows = {"小区污水横流没人管": (0.9, "problem", 0.95), "请问河道什么时候清淤？": (0.9, "suggestion", 0.6)}
    data = _csv(tmp_path / "t.csv", {"text": list(rows), "label": ["投诉", "投诉"]})
    result = evaluate_file(stand_in(rows), data, task="type")
    assert result["per_class"]["suggestion"] == {"precision": 0.0, "recall": None, "f1": None, "support": 0}
    assert result["macro_f1"] == 0.6667  # problem alone: P 1.0, R 0.5


@pytest.mark.usefixtures("no_model_loaded")
def test_an_unpublished_type_label_is_refused_naming_file_line_and_label(
    sqlite_url: str, tmp_path: Path, make_settings: Callable[[str, Path], Settings]
) -> None:
    path = _csv(tmp_path / "t.csv", {"text": LEADS, "label": ["投诉", "表扬"]})
    with pytest.raises(EvaluationError) as caught:
        evaluate_file(make_settings(sqlite_url, tmp_path / "models"), path, task="type")
    published = "投诉, 举报, 求助, 反映问题, 咨询, 咨询问题, 建议"
    assert str(caught.value) == f"{path}: line 3: unknown request type '表扬' (use one of {published})"


def test_a_model_without_a_request_type_model_is_refused_for_the_type_task(
    stand_in: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = stand_in({LEADS[0]: (0.9, None, None)})
    data = _csv(tmp_path / "t.csv", {"text": LEADS[:1], "label": ["投诉"]})
    with pytest.raises(
        EvaluationError, match="^model stand-in has no request-type model: retrain with `weisu train`$"
    ):
        evaluate_file(settings, data, task="type")


RELEVANCE_ROWS = {  # text: relevance, label
    "井盖丢失三天了": (0.95, "lead"),
    "路灯坏了": (0.55, "lead"),
    "今天股市大涨": (0.55, "noise"),
    "外卖真好吃": (0.05, "noise"),
}


def test_relevance_json_gives_the_expected_calibration_error_and_reliability_bins(
    stand_in: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = stand_in({text: (score, None, None) for text, (score, _) in RELEVANCE_ROWS.items()})
    labels = [label for _, label in RELEVANCE_ROWS.values()]
    data = _csv(tmp_path / "r.csv", {"text": list(RELEVANCE_ROWS), "label": labels})
    result = json.loads(
        json.dumps(evaluate_file(settings, data, task="relevance", plot=tmp_path / "rel.png"))
    )
    assert result["expected_calibration_error"] == 0.05  # (0.05 × 1 + 0.05 × 2 + 0.05 × 1) / 4
    assert result["reliability"] == [
        {"bin": 0, "low": 0.0, "high": 0.0667, "mean_score": 0.05, "observed_rate": 0.0, "count": 1},
        {"bin": 8, "low": 0.5333, "high": 0.6, "mean_score": 0.55, "observed_rate": 0.5, "count": 2},
        {"bin": 14, "low": 0.9333, "high": 1.0, "mean_score": 0.95, "observed_rate": 1.0, "count": 1},
    ]
    assert (tmp_path / "rel.png").read_bytes()[:4] == b"\x89PNG"
    report = format_report(result)
    assert f"reliability diagram: {tmp_path / 'rel.png'}" in report
    assert "expected_calibration_error 0.0500" in report


def test_type_plot_is_a_confusion_matrix(stand_in: Callable[..., Settings], tmp_path: Path) -> None:
    settings = stand_in({text: row for text, (row, _) in TYPED.items()})
    data = _csv(tmp_path / "t.csv", {"text": list(TYPED), "label": [label for _, label in TYPED.values()]})
    result = evaluate_file(settings, data, task="type", plot=tmp_path / "cm.png")
    assert "confusion matrix: " in format_report(result)
    assert (tmp_path / "cm.png").read_bytes()[:4] == b"\x89PNG"


def test_reliability_labels_are_english_without_a_cjk_font_and_bilingual_with_one() -> None:
    english, bilingual = reliability_labels(False), reliability_labels(True)
    assert not any(re.search(r"[\u4e00-\u9fff]", label) for label in english.values())
    assert english["title"] == "reliability diagram"
    assert bilingual["title"] == "可靠性图 reliability diagram"
    assert all(label.endswith(english[key]) for key, label in bilingual.items())


def test_the_reliability_diagram_is_drawn_without_a_cjk_font(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr("classify.evaluation.cjk_font", lambda: None)
    bins = reliability_bins([0.1, 0.9], [False, True])
    path = plot_reliability([0.1, 0.9], bins, 0.1, tmp_path / "plain.png")
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_matplotlibs_last_resort_font_is_not_taken_for_one_that_draws_chinese() -> None:
    import matplotlib

    fonts = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    assert not draws_chinese(str(fonts / "LastResortHE-Regular.ttf"))  # one box for every character
    assert not draws_chinese(str(fonts / "DejaVuSans.ttf"))  # no Chinese at all
