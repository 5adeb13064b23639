"""The request-type model: the published types' mapping, the examples, the cues it reads, and a
leave-one-city-out floor measured on the real fixtures."""

from __future__ import annotations

from collections import Counter

import pandas as pd
import pytest

from classify.corpus import CORPUS_DIR, PUBLISHED_TYPES
from classify.request_type import (
    build_request_type_pipeline,
    fit_request_type,
    leave_one_city_out,
    load_type_examples,
    predict_request_types,
    question_form_terms,
    surface_terms,
)
from classify.text import tokenize
from storage.models import title_and_text
from storage.vocabulary import RequestType


def test_every_published_type_maps_to_problem_question_or_suggestion() -> None:
    assert PUBLISHED_TYPES == {
        "投诉": RequestType.PROBLEM,
        "举报": RequestType.PROBLEM,
        "求助": RequestType.PROBLEM,
        "反映问题": RequestType.PROBLEM,
        "咨询": RequestType.QUESTION,
        "咨询问题": RequestType.QUESTION,
        "建议": RequestType.SUGGESTION,
    }


def test_examples_are_each_labelled_request_as_letter_title_and_short_text_without_empty_labels() -> None:
    examples = load_type_examples()
    assert Counter((e.city, e.kind) for e in examples) == {
        ("jiamusi", "letter"): 5761,  # 5,765 rows, 4 without a label
        ("jiamusi", "title"): 5761,
        ("jiamusi", "short"): 2241,
        ("fuzhou", "letter"): 1427,
        ("fuzhou", "title"): 1427,
        ("fuzhou", "short"): 496,
    }
    letters = Counter((e.city, e.request_type) for e in examples if e.kind == "letter")
    assert letters == {
        ("jiamusi", RequestType.PROBLEM): 2925,
        ("jiamusi", RequestType.QUESTION): 2836,
        ("fuzhou", RequestType.PROBLEM): 1209,
        ("fuzhou", RequestType.QUESTION): 161,
        ("fuzhou", RequestType.SUGGESTION): 57,
    }


def test_a_letter_is_its_title_and_text_joined_as_the_corpus_joins_them() -> None:
    row = pd.read_csv(CORPUS_DIR / "requests_fuzhou_rivers.csv", dtype=str, keep_default_na=False).iloc[1]
    letter = next(e for e in load_type_examples() if e.city == "fuzhou" and e.kind == "letter")
    assert (row["title"], row["label"]) == ("求助：两个部门进行对接，谢谢。", "求助")
    fuzhou = [e for e in load_type_examples() if e.city == "fuzhou" and e.kind == "letter"]
    assert fuzhou[1].text == title_and_text(row["title"], row["text"])
    assert fuzhou[1].request_type == RequestType.PROBLEM
    assert letter.text.startswith("关于梅峰河")


def test_surface_terms_keep_the_question_particles_and_marks_the_shared_tokeniser_drops() -> None:
    text = "请问公积金怎么提取吗？"
    assert tokenize(text) == ["请问", "公积金", "怎么", "提取", "吗"]  # no "？": it is punctuation
    terms = surface_terms(text)
    assert terms[:6] == ["cue:请问", "cue:吗", "cue:怎么", "cue:?", "end:吗?", "end1:?"]
    assert {"吗", "?", "吗?", "怎么"} <= set(terms)


def test_question_form_marks_each_clause_that_opens_with_a_question_word_or_closes_with_a_particle() -> None:
    # Normalised text: NFKC has turned "，" and "？" into "," and "?".
    assert question_form_terms("小区停水三天了,什么时候能来水,物业不管吗") == [
        "open:什么时候",
        "final:吗",
        "asks:2",
        "ask_share:most",
        "first_asks:False",
        "last_asks:True",
    ]


def test_a_text_that_asks_nowhere_has_only_its_counts_in_question_form() -> None:
    assert question_form_terms("楼下烧烤店油烟太大,晚上十二点还在营业。") == [
        "asks:0",
        "ask_share:none",
        "first_asks:False",
        "last_asks:False",
    ]


def test_surface_terms_end_with_the_question_form_of_the_normalised_text() -> None:
    assert surface_terms("请问公积金怎么提取吗？")[-6:] == [
        "open:请问",
        "final:吗",
        "asks:1",
        "ask_share:most",
        "first_asks:True",
        "last_asks:True",
    ]


def test_predicting_no_texts_gives_no_types() -> None:
    examples = [e for e in load_type_examples() if e.city == "fuzhou" and e.kind == "title"]
    model = fit_request_type(examples)
    types, probabilities = predict_request_types(model, [])
    assert types == [] and probabilities.shape == (0, 3)


@pytest.fixture(scope="module")
def folds() -> dict[str, dict[str, dict]]:
    return leave_one_city_out(load_type_examples())  # two fits on the real fixtures, ~15 s


def test_trained_on_fuzhou_the_model_types_jiamusi_letters_and_titles_at_a_measured_floor(
    folds: dict[str, dict[str, dict]],
) -> None:
    # Measured: letters 0.7896, titles 0.8374, short texts 0.5943 (macro-F1 over problem and question).
    jiamusi = folds["jiamusi"]
    assert jiamusi["letter"]["macro_f1"] >= 0.78
    assert jiamusi["title"]["macro_f1"] >= 0.83
    assert jiamusi["short"]["macro_f1"] >= 0.58
    assert jiamusi["letter"]["expected_calibration_error"] <= 0.07  # measured 0.035


def test_trained_on_jiamusi_the_model_cannot_know_suggestions_but_tells_problems_from_questions(
    folds: dict[str, dict[str, dict]],
) -> None:
    # Jiamusi publishes no suggestions, so Fuzhou's 57 are all missed: F1 0 drags the macro-F1 over
    # its three types down (measured: letters 0.5057, titles 0.4789, short texts 0.5344).
    fuzhou = folds["fuzhou"]
    assert fuzhou["letter"]["per_class"]["suggestion"]["f1"] == 0.0
    assert fuzhou["letter"]["macro_f1"] >= 0.50
    assert fuzhou["letter"]["per_class"]["problem"]["f1"] >= 0.92
    assert fuzhou["letter"]["per_class"]["question"]["f1"] >= 0.57


def test_the_topic_views_weigh_half_the_question_form_in_the_type_pipeline() -> None:
    features = build_request_type_pipeline().named_steps["features"]
    assert features.transformer_weights == {"word": 0.5, "char": 0.5, "surface": 1.0}
