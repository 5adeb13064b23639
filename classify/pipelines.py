"""Factories for the two scikit-learn pipelines: relevance (lead vs noise) and first-level category."""

from __future__ import annotations

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.svm import LinearSVC

from classify.text import char_analyzer, normalise, tokenize_normalised


def build_features(
    word_ngrams: tuple[int, int] = (1, 2),
    min_df: int = 2,
    max_word_features: int = 100_000,
    max_char_features: int = 120_000,
) -> FeatureUnion:
    """Word TF-IDF (jieba tokens) beside character 2–3-gram TF-IDF, both on the stop-word-free text."""
    words = TfidfVectorizer(
        preprocessor=normalise,
        tokenizer=tokenize_normalised,
        token_pattern=None,
        lowercase=False,
        ngram_range=word_ngrams,
        min_df=min_df,
        max_features=max_word_features,
        sublinear_tf=True,
        dtype=np.float32,
    )
    chars = TfidfVectorizer(
        analyzer=char_analyzer,
        min_df=min_df,
        max_features=max_char_features,
        sublinear_tf=True,
        dtype=np.float32,
    )
    return FeatureUnion([("word", words), ("char", chars)])


def build_calibrated_svm_pipeline(
    c: float = 0.5, calibration_folds: int = 3, word_ngrams: tuple[int, int] = (1, 2), min_df: int = 2
) -> Pipeline:
    """TF-IDF features into a class-balanced linear SVM with sigmoid-calibrated probabilities."""
    svm = LinearSVC(C=c, class_weight="balanced", random_state=0)
    return Pipeline(
        [
            ("features", build_features(word_ngrams=word_ngrams, min_df=min_df)),
            ("classifier", CalibratedClassifierCV(svm, cv=calibration_folds, method="sigmoid")),
        ]
    )


def build_relevance_pipeline(
    c: float = 0.5, calibration_folds: int = 3, word_ngrams: tuple[int, int] = (1, 2), min_df: int = 2
) -> Pipeline:
    """Lead vs noise with a calibrated probability."""
    return build_calibrated_svm_pipeline(c, calibration_folds, word_ngrams, min_df)


def build_category_pipeline(
    c: float = 0.5, calibration_folds: int = 3, word_ngrams: tuple[int, int] = (1, 2), min_df: int = 2
) -> Pipeline:
    """First-level category with a calibrated probability per class."""
    return build_calibrated_svm_pipeline(c, calibration_folds, word_ngrams, min_df)
