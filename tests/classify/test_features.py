"""Features: n-gram TF-IDF, and the complaint vocabulary (the positives define it, the rest is one term)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.feature_extraction.text import TfidfVectorizer

from classify.features import OUT_OF_VOCABULARY, CivicGate, NgramTfidf, char_keys, gram_keys
from classify.text import category_char_analyzer, tokenize

TEXTS = ["小区停水", "小区停电", "外卖好吃", "外卖太慢"]
LABELS = ["lead", "lead", "noise", "noise"]


# --- NgramTfidf: the vectoriser the pipelines build ------------------------------------------------


def test_gram_keys_give_each_ngram_the_key_char_keys_gives_it_inside_a_text() -> None:
    rows, keys = char_keys(["小区停水"], (1, 3))
    inside = dict(zip(keys.tolist(), rows.tolist(), strict=True))
    grams = ["小", "停水", "区停水", "水"]
    assert all(key in inside for key in gram_keys(grams).tolist())
    assert gram_keys(grams).tolist() == [
        ord("小"),
        ord("停") | ord("水") << 21,
        ord("区") | ord("停") << 21 | ord("水") << 42,
        ord("水"),
    ]


def test_gram_keys_refuse_what_no_key_can_hold() -> None:
    for grams in (["四个字儿"], [""], ["a\x00"]):
        with pytest.raises(ValueError):
            gram_keys(grams)


def _columns(vectorizer: NgramTfidf, text: str) -> dict[str, float]:
    names = vectorizer.get_feature_names_out()
    row = vectorizer.transform([text]).toarray()[0]
    return {str(names[i]): round(float(row[i]), 4) for i in row.nonzero()[0]}


def test_ngram_tfidf_learns_its_vocabulary_from_the_positive_rows_and_counts_the_rest_as_one() -> None:
    vectorizer = NgramTfidf("word", min_df=1, positive="lead").fit(TEXTS, LABELS)
    assert list(vectorizer.get_feature_names_out()) == [OUT_OF_VOCABULARY, "小区", "停水", "停电"]
    assert set(_columns(vectorizer, "外卖好吃小区")) == {OUT_OF_VOCABULARY, "小区"}
    assert set(_columns(vectorizer, "火锅涨价")) == {OUT_OF_VOCABULARY}  # words never seen in training


def test_ngram_tfidf_min_df_counts_positive_documents() -> None:
    vectorizer = NgramTfidf("word", min_df=2, positive="lead").fit(TEXTS, LABELS)
    assert list(vectorizer.get_feature_names_out()) == [OUT_OF_VOCABULARY, "小区"]


def test_ngram_tfidf_character_view_reads_the_opening_of_the_token_stream() -> None:
    vectorizer = NgramTfidf("char", ngrams=(2, 3), chars=3, min_df=1).fit(["停水三天"])
    assert sorted(vectorizer.get_feature_names_out()) == sorted(["停水", "水三", "停水三"])


def test_ngram_tfidf_keeps_the_most_frequent_terms_up_to_max_features() -> None:
    texts = ["小区停水", "小区停电", "小区停水"]
    vectorizer = NgramTfidf("word", min_df=1, max_features=2).fit(texts)
    assert sorted(vectorizer.get_feature_names_out()) == ["停水", "小区"]


@pytest.mark.parametrize("view", ["word", "char"])
def test_ngram_tfidf_gives_the_values_of_sklearns_vectoriser_on_the_same_terms(view: str) -> None:
    texts = ["小区门口井盖丢失了三天", "小区停水三天物业不通知", "外卖送得太慢了", "井盖丢失没人管"]
    ours = NgramTfidf(view, ngrams=(1, 2) if view == "word" else (1, 3), chars=600, min_df=1).fit(texts)
    if view == "word":
        reference = TfidfVectorizer(
            tokenizer=tokenize, token_pattern=None, lowercase=False, ngram_range=(1, 2), sublinear_tf=True
        ).fit(texts)
    else:
        reference = TfidfVectorizer(analyzer=category_char_analyzer, sublinear_tf=True).fit(texts)
    queries = ["井盖丢失三天了", "物业不通知停水"]
    order = {name: i for i, name in enumerate(reference.get_feature_names_out())}
    columns = [order[name] for name in ours.get_feature_names_out()]
    assert len(columns) == len(order)
    expected = reference.transform(queries).toarray()[:, columns]
    assert np.allclose(ours.transform(queries).toarray(), expected, atol=1e-6)


def test_ngram_tfidf_clones_and_pickles_with_its_parameters() -> None:
    vectorizer = NgramTfidf("char", ngrams=(2, 3), chars=160, min_df=1, positive="lead")
    assert clone(vectorizer).get_params() == {
        "view": "char",
        "ngrams": (2, 3),
        "chars": 160,
        "min_df": 1,
        "max_features": None,
        "positive": "lead",
    }
    fitted = vectorizer.fit(TEXTS, LABELS)
    restored = pickle.loads(pickle.dumps(fitted))
    assert (restored.transform(TEXTS) != fitted.transform(TEXTS)).nnz == 0


def test_ngram_tfidf_with_positive_refuses_to_fit_without_labels() -> None:
    with pytest.raises(ValueError, match="labelled rows"):
        NgramTfidf(positive="lead").fit(TEXTS)


# --- The civic-object gate ---------------------------------------------------------------------------

LETTERS = [
    "小区停水三天",
    "小区停水物业不管",
    "小区停水电梯故障",
    "学校补课收费",
    "学校收费不合理",
    "学校收费太高",
]
CATEGORIES = ["城乡建设", "城乡建设", "教育文体", "教育文体", "城乡建设", "教育文体"]


def _gate() -> CivicGate:
    return CivicGate(per_category=2).fit(LETTERS, CATEGORIES, taxonomy_items=["燃气安全"])


def test_the_civic_lexicon_holds_each_categorys_own_words_and_the_taxonomys() -> None:
    assert _gate().lexicon == frozenset({"小区", "停水", "学校", "收费", "燃气", "安全"})


def test_a_text_naming_no_civic_object_or_too_short_is_capped_and_the_others_are_kept() -> None:
    texts = ["今天的火锅真好吃啊朋友们", "楼下燃气味很重好几天了", "停水"]
    assert _gate().passes(texts).tolist() == [False, True, False]  # the last has only one word
    assert _gate().apply(texts, np.array([0.9, 0.9, 0.3])).tolist() == [0.5, 0.9, 0.3]


def test_one_civic_word_of_four_characters_is_a_whole_complaint_and_passes() -> None:
    gate = CivicGate(per_category=2).fit(LETTERS, CATEGORIES, taxonomy_items=["噪音扰民"])
    assert gate.passes(["噪音扰民", "停水", "好吃好吃"]).tolist() == [True, False, False]
