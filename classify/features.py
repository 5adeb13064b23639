"""Complaint-vocabulary features: TF-IDF over the words complaints use, every other word counted as one.

A relevance model fitted on a few kinds of noise learns to recognise *those* kinds by their own
words (dishes, game titles, celebrities) and then lets through any other kind it never saw. Here
the vocabulary is learned from the positive class alone; a text's words outside it all become the
single feature ``OUT_OF_VOCABULARY``. The model can then only weigh what complaints talk about,
plus how much of a text is about something else, which holds for unseen sources too.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import chain, repeat
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import TfidfTransformer

from classify.text import tokenize

OUT_OF_VOCABULARY = "<其他>"

# --- Fast n-gram TF-IDF -------------------------------------------------------------------------
# sklearn's vectorisers build a Python list of string n-grams per text and look each up in a dict:
# that was most of a training run and most of the scoring cost (docs/benchmarks.md). Here each text is
# tokenised once (classify.text caches the tokens), its n-grams become int64 keys computed by numpy
# over the whole batch (a character n-gram packs its code points, a word n-gram its token ids),
# and the vocabulary is a sorted key array searched with np.searchsorted.

CODE_BITS = 21  # every Unicode code point fits in 21 bits: three of them fit in one int64 key
CODE_MASK = (1 << CODE_BITS) - 1


def char_keys(strings: list[str], ngrams: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(row, key) of every character n-gram of every string (n in ``ngrams``, at most 3)."""
    low, high = ngrams
    if high > 3:
        raise ValueError("character n-grams longer than 3 do not fit an int64 key")
    joined = "\x00".join(s.replace("\x00", "") for s in strings) + "\x00"
    codes = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
    separator = codes == 0
    before = np.concatenate(([0], np.cumsum(separator)))  # separators before each position
    rows_out, keys_out = [], []
    for n in range(low, high + 1):
        starts = np.arange(len(codes) - n + 1)
        starts = starts[before[starts + n] == before[starts]]  # no separator inside the n-gram
        key = codes[starts].copy()
        for offset in range(1, n):
            key |= codes[starts + offset] << (CODE_BITS * offset)
        rows_out.append(before[starts])
        keys_out.append(key)
    return np.concatenate(rows_out), np.concatenate(keys_out)


def gram_keys(grams: list[str]) -> np.ndarray:
    """The char_keys key of each n-gram itself (1–3 characters, no NUL), in order: the one packing,
    for vocabularies looked up against char_keys' output (classify.request_type)."""
    lengths = np.fromiter(map(len, grams), dtype=np.int64, count=len(grams))
    if len(grams) and (lengths.min() < 1 or lengths.max() > 3 or any("\x00" in g for g in grams)):
        raise ValueError("gram_keys packs n-grams of 1–3 characters without NUL")
    keys = np.zeros(len(grams), dtype=np.int64)
    for n in np.unique(lengths).tolist():
        where = np.flatnonzero(lengths == n)
        rows, packed = char_keys([grams[i] for i in where.tolist()], (n, n))  # one key per string
        keys[where[rows]] = packed
    return keys


#: A hash index per fitted vocabulary (keyed by the keys_ array itself, so a refit never reads a stale
#: one): looking keys up in it is several times faster than np.searchsorted over the sorted keys, whose
#: binary search misses the cache at every step. Built on first use, never pickled with the model.
_KEY_INDEXES: dict[int, tuple[np.ndarray, pd.Index]] = {}


def _key_index(keys: np.ndarray) -> pd.Index:
    cached = _KEY_INDEXES.get(id(keys))
    if cached is None or cached[0] is not keys:
        if len(_KEY_INDEXES) >= 32:  # models retrained in one process: forget the old vocabularies
            _KEY_INDEXES.clear()
        cached = _KEY_INDEXES[id(keys)] = (keys, pd.Index(keys))
    return cached[1]


class NgramTfidf(TransformerMixin, BaseEstimator):
    """TF-IDF (sublinear tf, smooth idf, l2) over word or character n-grams of the token stream.

    ``view`` "word": jieba tokens (classify.text.tokenize), n-grams of ``ngrams``; "char": character
    n-grams of the first ``chars`` characters of the joined token stream. With ``positive`` set, the
    vocabulary comes from the rows labelled ``positive`` alone (terms in ≥ ``min_df`` of them) and
    every other term of a text counts as the one feature OUT_OF_VOCABULARY (see the module
    docstring); without it, terms in ≥ ``min_df`` rows, the ``max_features`` most frequent kept."""

    def __init__(
        self,
        view: str = "word",
        ngrams: tuple[int, int] = (1, 1),
        chars: int = 160,
        min_df: int = 2,
        max_features: int | None = None,
        positive: str | None = None,
    ) -> None:
        self.view = view
        self.ngrams = ngrams
        self.chars = chars
        self.min_df = min_df
        self.max_features = max_features
        self.positive = positive

    # -- keys ----------------------------------------------------------------------------------
    def _keys(self, texts: list[str], index: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
        """(row, key) pairs; a word n-gram with a token outside ``index`` gets key -1 (unknown)."""
        token_lists = [tokenize(t) for t in texts]
        if self.view == "char":
            return char_keys(["".join(tokens)[: self.chars] for tokens in token_lists], self.ngrams)
        lengths = np.fromiter((len(t) for t in token_lists), dtype=np.int64, count=len(token_lists))
        # map() with a second iterable calls index.get(token, -1) in C, without a generator frame per token.
        flat = chain.from_iterable(token_lists)
        ids = np.fromiter(map(index.get, flat, repeat(-1)), dtype=np.int64, count=int(lengths.sum()))
        rows = np.repeat(np.arange(len(token_lists)), lengths)
        size = self.index_size_ if hasattr(self, "index_size_") else len(index)
        low, high = self.ngrams
        rows_out, keys_out = [], []
        for n in range(low, high + 1):
            if n == 1:
                rows_out.append(rows)
                keys_out.append(ids)
                continue
            if n != 2:
                raise ValueError("word n-grams longer than 2 are not supported")
            same = rows[1:] == rows[:-1]
            first, second = ids[:-1][same], ids[1:][same]
            key = size * (1 + first) + second  # above every unigram key
            key[(first < 0) | (second < 0)] = -1
            rows_out.append(rows[1:][same])
            keys_out.append(key)
        return np.concatenate(rows_out), np.concatenate(keys_out)

    def _counts(self, rows: np.ndarray, columns: np.ndarray, n_rows: int, n_columns: int) -> Any:
        data = np.ones(len(rows), dtype=np.float32)
        return sp.csr_matrix((data, (rows, columns)), shape=(n_rows, n_columns))

    # -- fitting -------------------------------------------------------------------------------
    def fit(self, texts: Iterable[str], y: Iterable[str] | None = None) -> NgramTfidf:
        self.fit_transform(texts, y)
        return self

    def fit_transform(self, texts: Iterable[str], y: Iterable[str] | None = None, **_: Any) -> Any:
        texts = list(texts)
        oov = self.positive is not None
        if oov and y is None:
            raise ValueError("NgramTfidf with `positive` learns its vocabulary from labelled rows")
        index: dict[str, int] = {}
        if self.view == "word":
            for text in texts:
                for token in tokenize(text):
                    if token not in index:
                        index[token] = len(index)
            self.index_size_ = len(index)
        rows, keys = self._keys(texts, index)
        known = keys >= 0
        rows, keys = rows[known], keys[known]
        # Hash-based (O(n)) where np.unique would sort all ~20 million keys; the kept ones are sorted below.
        columns, unique = pd.factorize(keys)
        counts = self._counts(rows, columns, len(texts), len(unique))
        if oov:
            assert y is not None  # checked above
            positive_rows = np.asarray([label == self.positive for label in y])
            document_frequency = np.bincount(counts[positive_rows].indices, minlength=len(unique))
        else:
            document_frequency = np.bincount(counts.indices, minlength=len(unique))
        chosen = np.flatnonzero(document_frequency >= self.min_df)
        if self.max_features is not None and len(chosen) > self.max_features:
            totals = np.asarray(counts.sum(axis=0)).ravel()[chosen]
            order = np.lexsort((unique[chosen], -totals))  # most frequent first, ties by key
            chosen = chosen[order[: self.max_features]]
        chosen = chosen[np.argsort(unique[chosen], kind="stable")]  # columns in key order: searchsorted
        self.keys_ = unique[chosen]
        counts = self._select(counts, chosen, oov)
        if self.view == "word":
            self._keep_tokens(index)
        self.tfidf_ = TfidfTransformer(sublinear_tf=True)
        return self.tfidf_.fit_transform(counts).astype(np.float32)

    def _select(self, counts: Any, chosen: np.ndarray, oov: bool) -> Any:
        """Columns ``chosen`` of the count matrix, plus (with ``oov``) the OUT_OF_VOCABULARY column first."""
        kept = counts[:, chosen]
        if not oov:
            return kept.tocsr()
        other = np.asarray(counts.sum(axis=1)).ravel() - np.asarray(kept.sum(axis=1)).ravel()
        return sp.hstack([sp.csr_matrix(other.reshape(-1, 1), dtype=np.float32), kept], format="csr")

    def _keep_tokens(self, index: dict[str, int]) -> None:
        """Keep only the tokens some vocabulary term uses (with their ids): a smaller, faster pickle."""
        size = self.index_size_
        unigrams = self.keys_[self.keys_ < size]
        bigrams = self.keys_[self.keys_ >= size]
        used = set(unigrams.tolist()) | set((bigrams // size - 1).tolist()) | set((bigrams % size).tolist())
        self.tokens_ = {token: i for token, i in index.items() if i in used}

    # -- transforming --------------------------------------------------------------------------
    def transform(self, texts: Iterable[str]) -> Any:
        texts = list(texts)
        oov = self.positive is not None
        rows, keys = self._keys(texts, getattr(self, "tokens_", {}))
        position = _key_index(self.keys_).get_indexer(keys)  # the column of each key, -1 when absent
        found = (position >= 0) & (keys >= 0)
        if oov:
            columns = np.where(found, position + 1, 0)
            counts = self._counts(rows, columns, len(texts), len(self.keys_) + 1)
        else:
            counts = self._counts(rows[found], position[found], len(texts), len(self.keys_))
        return self.tfidf_.transform(counts).astype(np.float32)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        if self.view == "char":
            # Each key's three code points as UTF-32 in one array, read back as strings: numpy drops the
            # trailing NULs of a shorter n-gram (no n-gram holds a NUL: char_keys removes them).
            codes = (self.keys_[:, None] >> (CODE_BITS * np.arange(3))) & CODE_MASK
            names = np.ascontiguousarray(codes.astype("<u4")).view("<U3").ravel().tolist()
        else:
            size = self.index_size_
            token_of = {i: token for token, i in self.tokens_.items()}
            names = [
                token_of[k] if k < size else f"{token_of[k // size - 1]} {token_of[k % size]}"
                for k in self.keys_.tolist()
            ]
        if self.positive is not None:
            names = [OUT_OF_VOCABULARY, *names]
        return np.array(names, dtype=object)


# --- Civic-object gate ----------------------------------------------------------------------------


class CivicGate:
    """Caps the relevance of a text that names no civic object, or has at most ``min_words`` words.

    A lead is about something a city runs or regulates (a road, a lift, water, a school fee …). The
    lexicon of such objects is learned from the labelled complaints alone: per category, the
    ``per_category`` words most tied to it (χ² of word presence, category against the others), plus
    the words of the shipped taxonomy's items. Kinds of noise the model never saw mostly name none
    (leave-one-source-out, fewer chit-chat, Weibo comments and food reviews pass) while a complaint
    title almost always names one (title recall falls by under a point per fold; figures in
    docs/benchmarks.md). A capped text stays above the urgency floor, so an urgent rule can still make
    it a lead."""

    # min_words 1: a two-word title such as "噪音扰民" is a complaint (two capped many of a city's titles).
    # compound_chars 4: a text that is one lexicon word this long is a whole complaint ("噪音扰民" is one
    # word of the user dictionary, and was capped although the model was sure of it; docs/benchmarks.md).
    def __init__(
        self, per_category: int = 300, min_words: int = 1, cap: float = 0.5, compound_chars: int = 4
    ) -> None:
        self.per_category = per_category
        self.min_words = min_words
        self.cap = cap
        self.compound_chars = compound_chars
        self.lexicon: frozenset[str] = frozenset()

    def fit(self, texts: list[str], categories: list[str], taxonomy_items: Iterable[str] = ()) -> CivicGate:
        from sklearn.feature_extraction.text import CountVectorizer
        from sklearn.feature_selection import chi2

        words: set[str] = set()
        counts = CountVectorizer(analyzer=tokenize, binary=True, min_df=3)
        try:
            matrix = counts.fit_transform(texts)
        except ValueError:  # no word in three labelled texts (a tiny corpus): the taxonomy alone
            matrix = None
        names = counts.get_feature_names_out() if matrix is not None else np.array([])
        labels = np.asarray(categories)
        for category in sorted(set(categories)) if matrix is not None and len(set(categories)) > 1 else []:
            inside = labels == category
            scores = np.nan_to_num(chi2(matrix, inside)[0])
            more_often = (
                np.asarray(matrix[inside].mean(axis=0)).ravel()
                > np.asarray(matrix[~inside].mean(axis=0)).ravel()
            )
            ranked = np.argsort(-np.where(more_often, scores, -1.0), kind="stable")[: self.per_category]
            words.update(str(names[i]) for i in ranked if more_often[i])
        for item in taxonomy_items:
            words.update(w for w in tokenize(item) if len(w) > 1)
        self.lexicon = frozenset(words)
        return self

    def passes(self, texts: list[str]) -> np.ndarray:
        """Whether each text names a civic object in more than ``min_words`` words, or is one civic
        word of at least ``compound_chars`` characters (a whole complaint such as "噪音扰民")."""
        lexicon = self.lexicon
        compound = self.compound_chars or 10**9  # 0: no single word passes
        return np.fromiter(
            (
                any(w in lexicon for w in words)
                and (len(words) > self.min_words or (len(words) == 1 and len(words[0]) >= compound))
                for words in map(tokenize, texts)
            ),
            dtype=bool,
            count=len(texts),
        )

    def apply(self, texts: list[str], relevance: np.ndarray) -> np.ndarray:
        """The relevance with every text that does not pass capped at ``cap``."""
        return np.where(self.passes(texts), relevance, np.minimum(relevance, self.cap))
