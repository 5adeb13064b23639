"""The labelled training corpus: real messages (positives, categories) and real noise, with a fixed split."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pandas as pd

from classify.text import STOP_WORDS_FILE, join_segmented, listed_stop_words, normalise, warm_cache
from storage.models import title_and_text
from storage.vocabulary import RequestType

CORPUS_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "corpus"
RAW_MESSAGE_FILES = ("messages_labelled_raw.csv", "messages_hot_raw.csv", "messages_replied_raw.csv")
NOISE_FILES = {
    "negatives_news_titles.csv": False,
    "negatives_weibo_comments_segmented.csv": True,
    "negatives_chitchat.csv": False,
    "negatives_food_delivery_reviews.csv": False,
    "negatives_social_cold.csv": False,
}
#: One group in five goes to validation; the assignment hashes the group key, so it never changes.
VALIDATION_BUCKETS = 5
LEAD, NOISE = "lead", "noise"
SENTENCES_PER_LETTER = 3
_SENTENCE_END = re.compile(r"[。！？!?；;\n]")
_CJK = re.compile(r"[\u4e00-\u9fff]")


#: The cities whose requests the corpus holds: the anonymised provincial board and two real cities.
BOARD, JIAMUSI, FUZHOU = "board", "jiamusi", "fuzhou"
#: The real cities' request files: file name → city. Each row has title, text and the published type.
CITY_FILES = {"letters_jiamusi.csv": JIAMUSI, "requests_fuzhou_rivers.csv": FUZHOU}
#: The published Chinese request types of the corpus cities (and of `weisu evaluate --task type`
#: files), each to the one type the product knows. The one place this mapping lives.
PUBLISHED_TYPES: dict[str, RequestType] = {
    "投诉": RequestType.PROBLEM,
    "举报": RequestType.PROBLEM,
    "求助": RequestType.PROBLEM,
    "反映问题": RequestType.PROBLEM,
    "咨询": RequestType.QUESTION,
    "咨询问题": RequestType.QUESTION,
    "建议": RequestType.SUGGESTION,
}
#: A request whose own text is this short is what a one-line post looks like (issue #14's "short").
SHORT_CHARS = 60


@dataclass(frozen=True)
class Example:
    text: str
    relevance: str  # lead | noise
    category: str | None  # first-level category, when labelled
    kind: str  # letter | title | sentence | short | noise:<source>
    group: str
    validation: bool
    city: str = BOARD  # a lead's city (BOARD, JIAMUSI, FUZHOU); the noise's own source for noise
    problem: bool = True  # a lead that is a problem to fix (not a question or a suggestion)


KEY_CHARS = 24


def _trie_pattern(node: dict[str, dict], word_end: bool) -> str:
    """The regex of a trie node: each child's character followed by the child's own pattern; optional
    (greedy, so the longest word is tried first) below a node where a word already ends."""
    branches = "|".join(
        re.escape(char) + _trie_pattern(child, "" in child) for char, child in sorted(node.items()) if char
    )
    if not branches:
        return ""
    return f"(?:{branches})?" if word_end else f"(?:{branches})"


@lru_cache(maxsize=1)
def _stop_pattern() -> tuple[re.Pattern[str], int]:
    """Every CJK stop word as one trie regex (at a position the longest stop word matches, as with the
    alternation of the words sorted longest first, but faster), and the longest word's length."""
    words = [w for w in listed_stop_words() if _CJK.search(w)]
    trie: dict[str, dict] = {}
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}
    return re.compile(_trie_pattern(trie, False)), max(map(len, words))


def content_key(text: str) -> str:
    """Group key shared by duplicates across files (raw and segmented): the first 24 CJK characters
    once every stop word is cut out. No jieba: the split must not move when the user dictionary does.

    Only a text's opening is scanned: whether a stop word starts at a position depends on the next
    ``longest`` characters alone, so the cut of a prefix is exact up to ``longest`` from its end;
    the prefix grows until the key is complete (cutting whole texts was most of loading the corpus)."""
    pattern, longest = _stop_pattern()
    text = normalise(text)
    limit = 4 * KEY_CHARS
    while True:
        prefix = text[:limit]
        exact = len(prefix) if limit >= len(text) else limit - longest + 1  # starts below this are exact
        kept, position = [], 0
        for match in pattern.finditer(prefix):
            if match.start() >= exact:
                break
            kept.append(prefix[position : match.start()])
            position = match.end()
        kept.append(prefix[position:exact])
        key = "".join(_CJK.findall("".join(kept)))[:KEY_CHARS]
        if len(key) == KEY_CHARS or limit >= len(text):
            return key
        limit *= 4


def in_validation(group: str) -> bool:
    digest = hashlib.sha1(group.encode("utf-8")).digest()
    return digest[0] % VALIDATION_BUCKETS == 0


def group_key(text: str, relevance: str) -> str:
    """A text's split group: its relevance, then its content key (duplicates across files share it)."""
    return ("m:" if relevance == LEAD else "n:") + (content_key(text) or text)


def short_sentences(text: str, limit: int = 3, low: int = 8, high: int = 60) -> list[str]:
    """Up to ``limit`` short sentences of a letter: citizens' own words, stand-ins for one-line posts."""
    parts = (part.strip() for part in _SENTENCE_END.split(str(text or "")))
    return [part for part in parts if low <= len(part) <= high][:limit]


def _read(name: str) -> pd.DataFrame:
    return pd.read_csv(CORPUS_DIR / name, dtype=str, keep_default_na=False)


def load_examples(processes: int = 2) -> list[Example]:
    """Every labelled example with its split, deterministic for a given corpus."""
    # text, relevance, category, kind, group text, city, problem
    rows: list[tuple[str, str, str | None, str, str, str, bool]] = []
    seg = _read("messages_labelled_segmented.csv")
    for text, label in zip(seg["text"], seg["label"], strict=True):
        letter = join_segmented(text)
        rows.append((letter, LEAD, label, "letter", letter, BOARD, True))
    for name in RAW_MESSAGE_FILES:
        frame = _read(name)
        labels = frame["label"] if "label" in frame else [""] * len(frame)
        for title, body, label in zip(frame["title"], frame["text"], labels, strict=True):
            letter = title_and_text(title, body)
            rows.append((letter, LEAD, label or None, "letter", letter, BOARD, True))
            if title.strip():
                rows.append((title.strip(), LEAD, label or None, "title", letter, BOARD, True))
            for sentence in short_sentences(body, limit=SENTENCES_PER_LETTER):
                rows.append((sentence, LEAD, None, "sentence", letter, BOARD, True))
    for request in city_requests():
        problem = request.request_type == RequestType.PROBLEM
        rows.append((request.text, LEAD, None, request.kind, request.letter, request.city, problem))
    for name, segmented in NOISE_FILES.items():
        source = name.removeprefix("negatives_").removesuffix(".csv").removesuffix("_segmented")
        for text in _read(name)["text"]:
            text = join_segmented(text) if segmented else text.strip()
            if text:
                rows.append((text, NOISE, None, f"noise:{source}", text, source, False))
    warm_cache([row[0] for row in rows], processes=processes)
    examples = []
    groups: dict[tuple[str, str], str] = {}  # a letter's title and sentences share its group: compute it once
    for text, relevance, category, kind, group_text, city, problem in rows:
        group = groups.get((group_text, relevance))
        if group is None:
            group = groups[(group_text, relevance)] = group_key(group_text, relevance)
        examples.append(Example(text, relevance, category, kind, group, in_validation(group), city, problem))
    return examples


@dataclass(frozen=True)
class CityRequest:
    """One text of a real city's request: the whole letter, its title, or its text alone when short."""

    text: str
    kind: str  # letter | title | short
    city: str
    request_type: RequestType
    letter: str  # the whole letter it comes from (its split group)


def city_requests() -> list[CityRequest]:
    """Every typed request of the cities as its whole letter, its title and (when at most SHORT_CHARS
    characters, the closest real thing to a one-line post) its text alone. Rows without a published type
    are left out; an unknown type is an error (a KeyError naming it)."""
    out: list[CityRequest] = []
    for name, city in CITY_FILES.items():
        frame = _read(name)
        for title, body, label in zip(frame["title"], frame["text"], frame["label"], strict=True):
            label, title, body = label.strip(), title.strip(), body.strip()
            if not label or not (title or body):
                continue
            request_type = PUBLISHED_TYPES[label]
            letter = title_and_text(title, body)
            out.append(CityRequest(letter, "letter", city, request_type, letter))
            if title:
                out.append(CityRequest(title, "title", city, request_type, letter))
            if body and len(body) <= SHORT_CHARS:
                out.append(CityRequest(body, "short", city, request_type, letter))
    return out


def load_taxonomy() -> pd.DataFrame:
    """The shipped three-level taxonomy (一级分类, 二级分类, 三级分类)."""
    return _read("taxonomy.csv")


def corpus_hash() -> str:
    """SHA-256 over the corpus files the model is trained on (names and bytes)."""
    digest = hashlib.sha256()
    corpus = ("messages_labelled_segmented.csv", *RAW_MESSAGE_FILES, *NOISE_FILES, *CITY_FILES)
    files = [
        *(CORPUS_DIR / name for name in corpus),
        STOP_WORDS_FILE,  # shipped in classify/data/ now; hashed by name and bytes as before the move
        CORPUS_DIR / "taxonomy.csv",
    ]
    for path in files:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()
