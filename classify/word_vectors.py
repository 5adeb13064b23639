"""Word vectors learned locally from the training texts: a dense view of a text's meaning, nothing downloaded.

A short text of an unseen city shares few exact words with the training complaints ("燃气味很重" beside
"煤气泄漏"), so the sparse word and character views give it little to go on. Words that appear in the same
company get similar vectors here: the positive pointwise mutual information of words at most ``window``
apart, over the training texts (leads and noise alike), reduced by a randomised SVD (scikit-learn). A
text's vector is the unit-length mean of its words' unit vectors, times ``weight``; texts longer than
``max_chars`` characters (when set) get none, so the view can serve short texts alone. With ``positive``
set, as in classify.features, only words of the rows so labelled get a vector, and a text's vector is
the plain mean over all its words (those without one count as zero): a text mostly about something else
gets a short vector.

Experimental: the shipped relevance pipeline does not use it (the leave-one-out folds are in
docs/benchmarks.md, ninth session)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.extmath import randomized_svd

from classify.text import normalise, tokenize


class LocalWordVectors(TransformerMixin, BaseEstimator):
    """PPMI + randomised-SVD word vectors fitted on the texts given to ``fit``; transform averages them."""

    def __init__(
        self,
        dimensions: int = 64,
        window: int = 2,
        min_count: int = 3,
        max_words: int = 50_000,
        weight: float = 1.0,
        max_chars: int | None = None,
        positive: str | None = None,
        random_state: int = 0,
    ) -> None:
        self.dimensions = dimensions
        self.window = window
        self.min_count = min_count
        self.max_words = max_words
        self.weight = weight
        self.max_chars = max_chars
        self.positive = positive
        self.random_state = random_state

    def _ids(self, token_lists: list[list[str]]) -> tuple[np.ndarray, np.ndarray]:
        """(row, word id) of every token, -1 for a word without a vector."""
        index = self.index_
        lengths = np.fromiter((len(t) for t in token_lists), dtype=np.int64, count=len(token_lists))
        ids = np.fromiter(
            (index.get(w, -1) for tokens in token_lists for w in tokens),
            dtype=np.int64,
            count=int(lengths.sum()),
        )
        return np.repeat(np.arange(len(token_lists)), lengths), ids

    def fit(self, texts: Iterable[str], y: Any = None) -> LocalWordVectors:
        token_lists = [tokenize(t) for t in texts]
        if self.positive is not None and y is None:
            raise ValueError("LocalWordVectors with `positive` learns its words from labelled rows")
        counted = (
            token_lists
            if self.positive is None
            else [tokens for tokens, label in zip(token_lists, y, strict=True) if label == self.positive]
        )
        counts = Counter(w for tokens in counted for w in tokens)
        frequent = [w for w, n in counts.most_common(self.max_words) if n >= self.min_count]
        self.index_ = {w: i for i, w in enumerate(frequent)}
        size = len(frequent)
        rows, ids = self._ids(token_lists)
        left, right = [], []
        for offset in range(1, self.window + 1):
            same = rows[offset:] == rows[:-offset]
            a, b = ids[:-offset][same], ids[offset:][same]
            known = (a >= 0) & (b >= 0)
            left += [a[known], b[known]]  # both directions: the matrix is symmetric
            right += [b[known], a[known]]
        i, j = np.concatenate(left), np.concatenate(right)
        cooccurrence = sp.csr_matrix((np.ones(len(i), dtype=np.float64), (i, j)), shape=(size, size))
        cooccurrence.sum_duplicates()
        total = cooccurrence.sum()
        word_totals = np.asarray(cooccurrence.sum(axis=1)).ravel()
        coo = cooccurrence.tocoo()
        pmi = np.log(coo.data * total / (word_totals[coo.row] * word_totals[coo.col]))
        positive = pmi > 0
        ppmi = sp.csr_matrix((pmi[positive], (coo.row[positive], coo.col[positive])), shape=(size, size))
        dimensions = min(self.dimensions, max(size - 1, 1))
        u, s, _ = randomized_svd(ppmi, n_components=dimensions, random_state=self.random_state)
        vectors = u * np.sqrt(s)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        self.vectors_ = (vectors / np.where(norms > 0, norms, 1.0)).astype(np.float32)
        return self

    def transform(self, texts: Iterable[str]) -> Any:
        texts = list(texts)
        rows, ids = self._ids([tokenize(t) for t in texts])
        known = ids >= 0
        if self.max_chars is not None:
            short = np.fromiter(
                (len(normalise(t)) <= self.max_chars for t in texts), dtype=bool, count=len(texts)
            )
            known &= short[rows]
        words = sp.csr_matrix(
            (np.ones(int(known.sum()), dtype=np.float32), (rows[known], ids[known])),
            shape=(len(texts), len(self.index_)),
        )
        summed = np.asarray(words @ self.vectors_)
        if self.positive is not None:  # the mean over every word, those without a vector as zero
            every = np.bincount(rows, minlength=len(texts)).reshape(-1, 1)
            mean = summed / np.maximum(every, 1)
            return sp.csr_matrix((mean * self.weight).astype(np.float32))
        norms = np.linalg.norm(summed, axis=1, keepdims=True)
        unit = summed / np.where(norms > 0, norms, 1.0)  # the mean's direction: its unit vector
        return sp.csr_matrix((unit * self.weight).astype(np.float32))

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.array([f"向量{i}" for i in range(self.vectors_.shape[1])], dtype=object)
