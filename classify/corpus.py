"""The labelled training corpus: real messages (positives, categories) and real noise, with a fixed split."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pandas as pd

from classify.text import join_segmented, normalise, stop_words, warm_cache

CORPUS_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "corpus"
RAW_MESSAGE_FILES = ("messages_labelled_raw.csv", "messages_hot_raw.csv", "messages_replied_raw.csv")
NOISE_FILES = {
    "negatives_news_titles.csv": False,
    "negatives_weibo_comments_segmented.csv": True,
    "negatives_chitchat.csv": False,
    "negatives_food_delivery_reviews.csv": False,
}
#: One group in five goes to validation; the assignment hashes the group key, so it never changes.
VALIDATION_BUCKETS = 5
LEAD, NOISE = "lead", "noise"
SENTENCES_PER_LETTER = 3
_SENTENCE_END = re.compile(r"[。！？!?；;\n]")
_CJK = re.compile(r"[\u4e00-\u9fff]")


@dataclass(frozen=True)
class Example:
    text: str
    relevance: str  # lead | noise
    category: str | None  # first-level category, when labelled
    kind: str  # letter | title | sentence | noise:<source>
    group: str
    validation: bool


@lru_cache(maxsize=1)
def _stop_pattern() -> re.Pattern[str]:
    words = sorted((w for w in stop_words() if _CJK.search(w)), key=len, reverse=True)
    return re.compile("|".join(map(re.escape, words)))


def content_key(text: str) -> str:
    """Group key shared by duplicates across files (raw and segmented): the first 24 CJK characters
    once every stop word is cut out. No jieba: the split must not move when the user dictionary does."""
    return "".join(_CJK.findall(_stop_pattern().sub("", normalise(text))))[:24]


def in_validation(group: str) -> bool:
    digest = hashlib.sha1(group.encode("utf-8")).digest()
    return digest[0] % VALIDATION_BUCKETS == 0


def short_sentences(text: str, limit: int = 3, low: int = 8, high: int = 60) -> list[str]:
    """Up to ``limit`` short sentences of a letter: citizens' own words, stand-ins for one-line posts."""
    parts = (part.strip() for part in _SENTENCE_END.split(str(text or "")))
    return [part for part in parts if low <= len(part) <= high][:limit]


def _read(name: str) -> pd.DataFrame:
    return pd.read_csv(CORPUS_DIR / name, dtype=str, keep_default_na=False)


def load_examples(processes: int = 2) -> list[Example]:
    """Every labelled example with its split, deterministic for a given corpus."""
    rows: list[tuple[str, str, str | None, str, str]] = []  # text, relevance, category, kind, group text
    seg = _read("messages_labelled_segmented.csv")
    for text, label in zip(seg["text"], seg["label"], strict=True):
        letter = join_segmented(text)
        rows.append((letter, LEAD, label, "letter", letter))
    for name in RAW_MESSAGE_FILES:
        frame = _read(name)
        labels = frame["label"] if "label" in frame else [""] * len(frame)
        for title, body, label in zip(frame["title"], frame["text"], labels, strict=True):
            letter = f"{title}。{body}"
            rows.append((letter, LEAD, label or None, "letter", letter))
            if title.strip():
                rows.append((title.strip(), LEAD, label or None, "title", letter))
            for sentence in short_sentences(body, limit=SENTENCES_PER_LETTER):
                rows.append((sentence, LEAD, None, "sentence", letter))
    for name, segmented in NOISE_FILES.items():
        source = name.removeprefix("negatives_").removesuffix(".csv").removesuffix("_segmented")
        for text in _read(name)["text"]:
            text = join_segmented(text) if segmented else text.strip()
            if text:
                rows.append((text, NOISE, None, f"noise:{source}", text))
    warm_cache([row[0] for row in rows], processes=processes)
    examples = []
    for text, relevance, category, kind, group_text in rows:
        prefix = "m:" if relevance == LEAD else "n:"
        group = prefix + (content_key(group_text) or group_text)
        examples.append(Example(text, relevance, category, kind, group, in_validation(group)))
    return examples


def corpus_hash() -> str:
    """SHA-256 over the corpus files the model is trained on (names and bytes)."""
    digest = hashlib.sha256()
    names = [
        "messages_labelled_segmented.csv",
        *RAW_MESSAGE_FILES,
        *NOISE_FILES,
        "stop_words_segmented_set.txt",
    ]
    for name in names:
        digest.update(name.encode())
        digest.update((CORPUS_DIR / name).read_bytes())
    return digest.hexdigest()
