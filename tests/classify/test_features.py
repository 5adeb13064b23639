"""Complaint-vocabulary features: the positives define the vocabulary, every other term is one feature."""

from __future__ import annotations

import pickle

import pytest
from sklearn.base import clone

from classify.features import OUT_OF_VOCABULARY, ComplaintVocabularyVectorizer

TEXTS = ["小区停水", "小区停电", "外卖好吃", "外卖太慢"]
LABELS = ["lead", "lead", "noise", "noise"]


def test_vocabulary_comes_from_the_positive_rows_only() -> None:
    vectorizer = ComplaintVocabularyVectorizer("word", min_df=1).fit(TEXTS, LABELS)
    assert vectorizer.vocabulary_ == frozenset({"小区", "停水", "停电"})
    assert list(vectorizer.get_feature_names_out()) == [OUT_OF_VOCABULARY, "停水", "停电", "小区"]


def test_terms_outside_the_vocabulary_all_count_as_the_one_other_feature() -> None:
    vectorizer = ComplaintVocabularyVectorizer("word", min_df=1).fit(TEXTS, LABELS)
    names = list(vectorizer.get_feature_names_out())
    row = vectorizer.transform(["外卖好吃小区"]).toarray()[0]
    assert {names[i] for i in row.nonzero()[0]} == {OUT_OF_VOCABULARY, "小区"}


def test_min_df_counts_positive_documents() -> None:
    vectorizer = ComplaintVocabularyVectorizer("word", min_df=2).fit(TEXTS, LABELS)
    assert vectorizer.vocabulary_ == frozenset({"小区"})


def test_fitting_without_labels_is_refused() -> None:
    with pytest.raises(ValueError, match="labelled rows"):
        ComplaintVocabularyVectorizer().fit(TEXTS)


def test_the_vectorizer_clones_and_pickles_with_its_parameters() -> None:
    vectorizer = ComplaintVocabularyVectorizer("char", positive="lead", min_df=1)
    assert clone(vectorizer).get_params() == {"analyzer": "char", "positive": "lead", "min_df": 1}
    fitted = vectorizer.fit(TEXTS, LABELS)
    restored = pickle.loads(pickle.dumps(fitted))
    assert (restored.transform(TEXTS) != fitted.transform(TEXTS)).nnz == 0
