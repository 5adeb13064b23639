"""Request type: is a lead a problem to fix, a question to answer, or a suggestion?

Trained on the request types two real cities publish with their letters (fixtures/corpus:
letters_jiamusi.csv, requests_fuzhou_rivers.csv), mapped once to storage.models.RequestType by
classify.corpus.PUBLISHED_TYPES. ``python -m classify.request_type`` prints the leave-one-city-out
folds.

Questions are told mostly by words the shared tokeniser drops as stop words or as punctuation (请问, 吗,
是否, 能否, 什么时候, ？): classify.text.tokenize keeps "请问" and "吗" but drops "？" and "是否". So
beside the shared word and character views (classify.features.NgramTfidf) the pipeline has a third view of its
own, SurfaceCues, that reads the normalised text with its particles and punctuation kept.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from weakref import WeakKeyDictionary

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.svm import LinearSVC

from classify.corpus import city_requests
from classify.features import NgramTfidf, char_keys, gram_keys
from classify.metrics import category_metrics, expected_calibration_error
from classify.model import svm_choices
from classify.text import normalise, warm_cache
from storage.models import RequestType

KINDS = ("letter", "title", "short")


@dataclass(frozen=True)
class TypeExample:
    text: str
    request_type: RequestType
    city: str
    kind: str  # letter (title and text joined) | title | short (a text of ≤ SHORT_CHARS characters)


def load_type_examples() -> list[TypeExample]:
    """Every labelled request of the type files as its whole letter, its title and (when it is short)
    its text alone. Rows with an empty label are skipped; an unknown label is an error."""
    return [TypeExample(r.text, r.request_type, r.city, r.kind) for r in city_requests()]


# --- Surface cues -----------------------------------------------------------------------------------

#: Words and marks that ask. The shared tokeniser drops most of them (stop words, punctuation).
QUESTION_CUES = (
    "请问",
    "吗",
    "呢",
    "是否",
    "能否",
    "可否",
    "可不可以",
    "能不能",
    "是不是",
    "有没有",
    "什么时候",
    "何时",
    "怎么",
    "如何",
    "哪里",
    "哪些",
    "多少",
    "办理",
    "咨询",
    "?",
)
#: Words that propose rather than complain or ask.
SUGGESTION_CUES = ("建议", "希望", "能否考虑", "应该", "可以考虑", "增设", "增加")
_SENTENCES = re.compile(r"[^。！!？?；;\n]+[。！!？?；;\n]?")
SURFACE_CHARS = 200
#: Words that make a clause a question when they open it ("请问…", "能否…", "什么时候…").
QUESTION_OPENERS = (
    "请问",
    "想问",
    "问一下",
    "咨询",
    "能否",
    "可否",
    "是否",
    "能不能",
    "可不可以",
    "是不是",
    "有没有",
    "怎么",
    "怎样",
    "如何",
    "何时",
    "什么时候",
    "为什么",
    "为何",
    "哪里",
    "哪些",
    "多少",
)
#: Particles that make a clause a question (or a soft request) when they close it.
FINAL_PARTICLES = ("吗", "呢", "么", "吧")
_CLAUSES = re.compile(r"[^。！!？?；;，,\n]+[。！!？?；;，,\n]?")
_CLAUSE_END = "。！!？?；;，,\n "
#: The first of QUESTION_OPENERS a clause opens with (an alternation tries them in their order).
_OPENER = re.compile("|".join(map(re.escape, QUESTION_OPENERS)))


def surface_terms(text: str | None) -> list[str]:
    """A text's cue words, the last two characters of each sentence with its end mark ("吗?", "理。"),
    and character 1–2-grams of its opening, all on the normalised text with particles and
    punctuation kept (module-level: picklable)."""
    normal = normalise(text)[:SURFACE_CHARS]
    grams = (normal[i : i + n] for n in (1, 2) for i in range(len(normal) - n + 1))
    return [*_cue_terms(normal), *grams, *question_form_terms(normal)]


_CUES = (*QUESTION_CUES, *SUGGESTION_CUES)


def _cue_terms(normal: str) -> list[str]:
    """The cue words a normalised opening holds, and each of its sentences' end terms."""
    terms = [f"cue:{cue}" for cue in _CUES if cue in normal]
    for sentence in _SENTENCES.findall(normal):
        sentence = sentence.strip()
        if len(sentence) >= 2:
            terms.append(f"end:{sentence[-2:]}")
            terms.append(f"end1:{sentence[-1]}")
    return terms


def question_form_terms(normal: str) -> list[str]:
    """Where a text asks, not which words it uses: per clause, the question word it opens with and the
    particle it closes with; how many clauses ask (0, 1, 2, 3+) and what share of them; whether the first
    and the last clause ask. A topic the model never saw (an unseen city's 医保 beside the training
    city's rivers) still asks in the same form."""
    clauses = [clause.strip() for clause in _CLAUSES.findall(normal) if clause.strip()]
    if not clauses:
        return []
    terms: list[str] = []
    asking = []
    for clause in clauses:
        body = clause.rstrip(_CLAUSE_END)
        opened = _OPENER.match(body)
        opener = opened.group() if opened else None
        particle = body[-1] if body.endswith(FINAL_PARTICLES) else None
        if opener:
            terms.append(f"open:{opener}")
        if particle:
            terms.append(f"final:{particle}")
        asking.append(bool(opener or particle or clause.endswith("?")))
    count = sum(asking)
    share = "none" if count == 0 else ("most" if 2 * count >= len(asking) else "some")
    terms += [
        f"asks:{min(count, 3)}",
        f"ask_share:{share}",
        f"first_asks:{asking[0]}",
        f"last_asks:{asking[-1]}",
    ]
    return terms


class SurfaceCues(TransformerMixin, BaseEstimator):
    """TF-IDF over surface_terms (terms in ≥ ``min_df`` texts)."""

    def __init__(self, min_df: int = 2) -> None:
        self.min_df = min_df

    def fit(self, texts: Iterable[str], y: Any = None) -> SurfaceCues:
        self.fit_transform(texts, y)
        return self

    def fit_transform(self, texts: Iterable[str], y: Any = None, **_: Any) -> Any:
        # One pass over the texts where fit then transform would cut every text's terms twice.
        self.tfidf_ = TfidfVectorizer(
            analyzer=surface_terms, min_df=self.min_df, sublinear_tf=True, dtype=np.float32
        )
        return self.tfidf_.fit_transform(list(texts))

    def transform(self, texts: Iterable[str]) -> Any:
        """The fitted TF-IDF of each text's surface terms, as ``tfidf_.transform`` gives it, with the
        character n-grams (nearly all of the terms) counted by numpy over the whole batch: building
        and looking up hundreds of strings per text was most of the type model's time."""
        texts = list(texts)
        normals = [normalise(text)[:SURFACE_CHARS] for text in texts]
        if any("\x00" in normal for normal in normals):
            return self.tfidf_.transform(texts)  # the batch joins texts with NUL: the plain path
        vocabulary = self.tfidf_.vocabulary_
        table_keys, table_columns = _gram_table(self)
        rows, keys = char_keys(normals, (1, 2))
        position = np.minimum(np.searchsorted(table_keys, keys), max(len(table_keys) - 1, 0))
        found = table_keys[position] == keys if len(table_keys) else np.zeros(len(keys), dtype=bool)
        other_rows, other_columns = [], []
        for row, normal in enumerate(normals):
            for term in (*_cue_terms(normal), *question_form_terms(normal)):
                column = vocabulary.get(term)
                if column is not None:
                    other_rows.append(row)
                    other_columns.append(column)
        width = len(vocabulary)
        cells = np.concatenate(
            (
                rows[found] * width + table_columns[position[found]],
                np.asarray(other_rows, dtype=np.int64) * width + np.asarray(other_columns, dtype=np.int64),
            )
        )
        # Counted per (row, column) and sorted by column within a row, like CountVectorizer's matrix.
        pairs, counts = np.unique(cells, return_counts=True)
        pair_rows, pair_columns = np.divmod(pairs, width)
        indptr = np.concatenate(([0], np.cumsum(np.bincount(pair_rows, minlength=len(texts)))))
        counted = sp.csr_matrix(
            (counts.astype(np.float32), pair_columns.astype(np.int32), indptr.astype(np.int32)),
            shape=(len(texts), width),
        )
        return self.tfidf_._tfidf.transform(counted, copy=False)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return self.tfidf_.get_feature_names_out()


#: Per fitted SurfaceCues: its vocabulary's character 1–2-grams as sorted packed keys (classify.features'
#: char_keys packing) and their columns. Built on first use, never pickled with the model.
_GRAM_TABLES: WeakKeyDictionary[SurfaceCues, tuple[np.ndarray, np.ndarray]] = WeakKeyDictionary()


def _gram_table(cues: SurfaceCues) -> tuple[np.ndarray, np.ndarray]:
    table = _GRAM_TABLES.get(cues)
    if table is None:
        # Every other surface term is longer than two characters ("cue:…", "end:…", "asks:…"). A term
        # with a NUL is left out: its packed key would equal a shorter n-gram's, and no text matches it.
        grams = [(t, c) for t, c in cues.tfidf_.vocabulary_.items() if len(t) <= 2 and "\x00" not in t]
        keys = gram_keys([t for t, _ in grams])
        columns = np.array([c for _, c in grams], dtype=np.int64)
        order = np.argsort(keys, kind="stable")
        table = _GRAM_TABLES[cues] = (keys[order], columns[order])
    return table


# --- The pipeline ---------------------------------------------------------------------------------


#: The word and character views weigh this much beside the surface cues. They say what a text is about,
#: and each city writes about its own topics (福州's requests are all about rivers): at half weight the
#: form of a question counts for more, and every leave-one-city-out macro-F1 rose (0.3: about the same;
#: docs/benchmarks.md, eighth session).
TOPIC_VIEW_WEIGHT = 0.5


def build_request_type_pipeline(
    c: float = 0.1, calibration_folds: int = 3, min_df: int = 2, topic_weight: float = TOPIC_VIEW_WEIGHT
) -> Pipeline:
    """jieba words and character n-grams (as the category model reads them, at ``topic_weight``) beside
    the surface cues, into a class-balanced LinearSVC with sigmoid-calibrated probabilities."""
    features = FeatureUnion(
        [
            ("word", NgramTfidf("word", ngrams=(1, 2), min_df=min_df, max_features=50_000)),
            ("char", NgramTfidf("char", ngrams=(1, 3), chars=600, min_df=min_df, max_features=50_000)),
            ("surface", SurfaceCues(min_df=min_df)),
        ],
        transformer_weights={"word": topic_weight, "char": topic_weight, "surface": 1.0},
    )
    svm = LinearSVC(C=c, class_weight="balanced", random_state=0)
    calibrated = CalibratedClassifierCV(svm, cv=calibration_folds, method="sigmoid", ensemble=False)
    return Pipeline([("features", features), ("classifier", calibrated)])


def fit_request_type(examples: Sequence[TypeExample], **options: Any) -> Pipeline:
    """The type pipeline fitted on ``examples`` (options go to build_request_type_pipeline)."""
    texts = [e.text for e in examples]
    warm_cache(texts)
    pipeline = build_request_type_pipeline(**options)
    return pipeline.fit(texts, [e.request_type.value for e in examples])


def predict_request_types(pipeline: Pipeline, texts: Sequence[str]) -> tuple[list[RequestType], np.ndarray]:
    """Each text's type and the calibrated probability of every type (columns: ``pipeline.classes_``).

    The type is the class-balanced SVM's own choice (highest decision value), as the category model's
    is (classify.model.svm_choices), not the most probable type: the sigmoids are calibrated on
    the training mix, where suggestions are rare, so a suggestion is never the most probable type
    (Fuzhou folds: suggestions are found at all, problems and questions gain a little). The cost is on
    the city whose priors differ most from the training mix (Jiamusi held out, trained on Fuzhou).
    Figures: docs/benchmarks.md."""
    if not texts:
        return [], np.zeros((0, len(pipeline.classes_)))
    choice, probabilities = svm_choices(pipeline, list(texts))
    classes = [RequestType(c) for c in pipeline.classes_]
    return [classes[i] for i in choice], probabilities


# --- Leave one city out ---------------------------------------------------------------------------


def leave_one_city_out(examples: Sequence[TypeExample], **options: Any) -> dict[str, dict[str, Any]]:
    """Per held-out city and kind: per-type P/R/F1, macro-F1 over the types present there and the
    expected calibration error of the type given (its probability against being right), from a model
    trained on every other city's examples."""
    out: dict[str, dict[str, Any]] = {}
    for city in sorted({e.city for e in examples}):
        train = [e for e in examples if e.city != city]
        model = fit_request_type(train, **options)
        figures: dict[str, Any] = {}
        for kind in KINDS:
            held_out = [e for e in examples if e.city == city and e.kind == kind]
            if not held_out:
                continue
            guesses, probabilities = predict_request_types(model, [e.text for e in held_out])
            truth = [e.request_type.value for e in held_out]
            guess = [g.value for g in guesses]
            columns = [list(model.classes_).index(g) for g in guess]
            confidence = probabilities[np.arange(len(guess)), columns].tolist()
            right = [t == g for t, g in zip(truth, guess, strict=True)]
            figures[kind] = category_metrics(truth, guess) | {
                "texts": len(held_out),
                "expected_calibration_error": expected_calibration_error(confidence, right),
            }
        out[city] = figures
    return out


def format_folds(folds: dict[str, dict[str, Any]]) -> str:
    lines = []
    for city, kinds in folds.items():
        for kind, figures in kinds.items():
            per_type = "  ".join(
                f"{t} P {v['precision']} R {v['recall']} F1 {v['f1']} (n {v['support']})"
                for t, v in figures["per_class"].items()
            )
            lines.append(
                f"held out {city:<8} {kind:<6} n {figures['texts']:>5}  "
                f"macro-F1 {figures['macro_f1']}  ECE {figures['expected_calibration_error']}  {per_type}"
            )
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover - a report, run by hand
    print(format_folds(leave_one_city_out(load_type_examples())))
