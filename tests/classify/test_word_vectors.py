"""Local word vectors: words in the same company get close vectors; a text's vector is its words' mean."""

from __future__ import annotations

import numpy as np

from classify.pipelines import build_relevance_pipeline
from classify.word_vectors import LocalWordVectors

# 井盖 and 窨井盖 share every neighbour; 外卖 and 奶茶 share theirs, and no neighbour of the first pair.
CORPUS = [
    "小区 门口 井盖 丢失 危险",
    "小区 门口 窨井盖 丢失 危险",
    "路口 井盖 破损 危险",
    "路口 窨井盖 破损 危险",
    "今天 外卖 好吃 送得 很快",
    "今天 奶茶 好吃 送得 很快",
    "周末 外卖 好喝 便宜",
    "周末 奶茶 好喝 便宜",
] * 3


def _fitted(**params: object) -> LocalWordVectors:
    return LocalWordVectors(dimensions=4, min_count=2, **params).fit(CORPUS)  # type: ignore[arg-type]


def _cosine(vectors: LocalWordVectors, a: str, b: str) -> float:
    return float(vectors.vectors_[vectors.index_[a]] @ vectors.vectors_[vectors.index_[b]])


def test_words_used_in_the_same_company_get_closer_vectors_than_words_that_are_not() -> None:
    vectors = _fitted()
    assert _cosine(vectors, "井盖", "窨井盖") > _cosine(vectors, "井盖", "外卖") + 0.5


def test_a_texts_vector_has_the_given_weight_as_its_length() -> None:
    rows = _fitted(weight=0.3).transform(["井盖 丢失", "奶茶 好喝"]).toarray()
    assert [round(float(n), 4) for n in np.linalg.norm(rows, axis=1)] == [0.3, 0.3]


def test_a_text_without_a_known_word_gets_no_vector() -> None:
    assert _fitted().transform(["火锅 涨价"]).nnz == 0


def test_texts_longer_than_max_chars_get_no_vector() -> None:
    rows = _fitted(max_chars=6).transform(["井盖 丢失", "小区 门口 井盖 丢失 危险"]).toarray()
    assert [bool(row.any()) for row in rows] == [True, False]


def test_the_same_texts_give_the_same_vectors() -> None:
    assert np.array_equal(_fitted().vectors_, _fitted().vectors_)


def test_with_positive_only_the_leads_words_get_vectors() -> None:
    labels = ["lead" if "危险" in text else "noise" for text in CORPUS]
    vectors = LocalWordVectors(dimensions=4, min_count=2, positive="lead").fit(CORPUS, labels)
    assert "井盖" in vectors.index_ and "外卖" not in vectors.index_


def test_with_positive_a_text_mostly_about_something_else_gets_a_shorter_vector() -> None:
    labels = ["lead" if "危险" in text else "noise" for text in CORPUS]
    vectors = LocalWordVectors(dimensions=4, min_count=2, positive="lead").fit(CORPUS, labels)
    rows = vectors.transform(["井盖 井盖", "井盖 外卖 奶茶 好吃"]).toarray()
    assert [round(float(n), 4) for n in np.linalg.norm(rows, axis=1)] == [1.0, 0.25]


def test_the_relevance_pipeline_has_the_view_only_when_given_a_weight() -> None:
    def views(pipeline: object) -> list[str]:
        return [name for name, _ in pipeline.named_steps["features"].transformer_list]  # type: ignore[attr-defined]

    assert views(build_relevance_pipeline()) == ["word", "char"]
    with_vectors = build_relevance_pipeline(word_vectors=0.3)
    assert views(with_vectors) == ["word", "char", "vectors"]
    assert with_vectors.named_steps["features"].transformer_list[2][1].weight == 0.3
