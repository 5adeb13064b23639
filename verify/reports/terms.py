"""Each class's top terms this week: the words that set its leads apart from the week's other leads.

Words come from the project's one tokenizer (classify.text.tokenize: jieba with the civic user
dictionary), less the whole shipped stop list (the models keep a few short complaint words such as
不 and 没; a report has no use for them), less the placeholder a place name becomes (某地), and only
words of at least two characters with a letter or a Chinese character in them. A lead counts a word
once, however many of its posts repeat it.

A word is ranked by the log odds ratio of "a lead of this class uses it" against "a lead of another
class this week uses it", with half a count added to each cell of the 2×2 table (Haldane–Anscombe),
divided by its standard error: a z-score, so a word shared by many of the class's leads outranks one
that a single lead happens to use.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

import pandas as pd

from classify.text import PLACE_NAME, listed_stop_words, tokenize

HALF = 0.5
_WORD = re.compile(r"[a-z\u4e00-\u9fff]")


@dataclass(frozen=True)
class Term:
    term: str
    leads: int  # the class's leads using it this week
    other_leads: int  # the week's other leads using it
    z: float  # log odds ratio over its standard error


def words(text: str) -> set[str]:
    """The report's words of a text (see the module's docstring)."""
    stop = listed_stop_words()
    return {
        w for w in tokenize(text) if len(w) >= 2 and w != PLACE_NAME and w not in stop and _WORD.search(w)
    }


def log_odds_z(in_class: int, class_size: int, elsewhere: int, rest_size: int) -> float:
    """z-score of the log odds ratio of a word's use in a class against the rest (half-count corrected)."""
    a, b = in_class + HALF, class_size - in_class + HALF
    c, d = elsewhere + HALF, rest_size - elsewhere + HALF
    return math.log((a / b) / (c / d)) / math.sqrt(1 / a + 1 / b + 1 / c + 1 / d)


def top_terms(texts: pd.DataFrame, limit: int) -> dict[str, list[Term]]:
    """Per category: its ``limit`` best words, best first (ties: more of its leads, then the word).

    ``texts`` has one row per post: lead_id, category, text (data.post_texts)."""
    if texts.empty:
        return {}
    lead_words: dict[int, set[str]] = {}
    lead_class: dict[int, str] = {}
    for lead_id, category, text in texts.itertuples(index=False):
        lead_words.setdefault(lead_id, set()).update(words(text))
        lead_class[lead_id] = category
    sizes = Counter(lead_class.values())
    total = sum(sizes.values())
    by_class: dict[str, Counter[str]] = {c: Counter() for c in sizes}
    overall: Counter[str] = Counter()
    for lead_id, found in lead_words.items():
        by_class[lead_class[lead_id]].update(found)
        overall.update(found)
    result: dict[str, list[Term]] = {}
    for category in sorted(sizes):
        counts = by_class[category]
        terms = [
            Term(
                word,
                n,
                overall[word] - n,
                log_odds_z(n, sizes[category], overall[word] - n, total - sizes[category]),
            )
            for word, n in counts.items()
        ]
        terms.sort(key=lambda t: (-t.z, -t.leads, t.term))
        result[category] = terms[:limit]
    return result
