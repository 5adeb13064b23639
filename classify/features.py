"""Complaint-vocabulary features: TF-IDF over the words complaints use, every other word counted as one.

A relevance model fitted on a few kinds of noise learns to recognise *those* kinds by their own
words (dishes, game titles, celebrities) and then lets through any other kind it never saw. Here
the vocabulary is learned from the positive class alone; a text's words outside it all become the
single feature ``OUT_OF_VOCABULARY``. The model can then only weigh what complaints talk about,
plus how much of a text is about something else, which holds for unseen sources too.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import TfidfVectorizer

from classify.text import char_analyzer, tokenize

OUT_OF_VOCABULARY = "<其他>"
ANALYZERS: dict[str, Callable[[str | None], list[str]]] = {"word": tokenize, "char": char_analyzer}


class _InVocabulary:
    """A picklable analyzer: the base analyzer's terms, each unknown one replaced by OUT_OF_VOCABULARY."""

    def __init__(self, analyzer: str, vocabulary: frozenset[str]) -> None:
        self.analyzer = analyzer
        self.vocabulary = vocabulary

    def __call__(self, text: str | None) -> list[str]:
        known = self.vocabulary
        return [t if t in known else OUT_OF_VOCABULARY for t in ANALYZERS[self.analyzer](text)]


class ComplaintVocabularyVectorizer(TransformerMixin, BaseEstimator):
    """TF-IDF whose vocabulary comes from the ``positive`` rows only (terms in ≥ ``min_df`` of them).

    ``analyzer`` "word" (jieba tokens) or "char" (character 2–3-grams of the opening)."""

    def __init__(self, analyzer: str = "word", positive: str = "lead", min_df: int = 3) -> None:
        self.analyzer = analyzer
        self.positive = positive
        self.min_df = min_df

    def fit(self, texts: Iterable[str], y: Iterable[str] | None = None) -> ComplaintVocabularyVectorizer:
        texts = list(texts)
        if y is None:
            raise ValueError("ComplaintVocabularyVectorizer learns its vocabulary from labelled rows")
        analyze = ANALYZERS[self.analyzer]
        document_frequency: Counter[str] = Counter()
        for text, label in zip(texts, y, strict=True):
            if label == self.positive:
                document_frequency.update(set(analyze(text)))
        self.vocabulary_ = frozenset(t for t, n in document_frequency.items() if n >= self.min_df)
        self.tfidf_ = TfidfVectorizer(
            analyzer=_InVocabulary(self.analyzer, self.vocabulary_),
            sublinear_tf=True,
            dtype=np.float32,
        ).fit(texts)
        return self

    def transform(self, texts: Iterable[str]) -> Any:
        return self.tfidf_.transform(list(texts))

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return self.tfidf_.get_feature_names_out()
