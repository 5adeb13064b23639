"""Text normalisation and jieba tokenising shared by training and inference (module-level: picklable)."""

from __future__ import annotations

import multiprocessing
import re
import threading
import unicodedata
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

import jieba

try:  # jieba's Rust port: the same dictionary and DAG segmentation without HMM, far faster
    import rjieba
except ImportError:  # pragma: no cover - optional dependency
    rjieba = None  # type: ignore[assignment]

HERE = Path(__file__).resolve().parent
USER_DICT = HERE / "data" / "userdict.txt"
STOP_WORDS_FILE = HERE / "data" / "stop_words_segmented_set.txt"
#: Long letters are cut here: the first 1,000 characters carry the complaint, the rest costs time.
MAX_CHARS = 1000
#: The character view looks at the opening only: it is there for short posts, the word view reads the rest.
CHAR_VIEW_CHARS = 160
CHAR_NGRAMS = (2, 3)
#: The category model's character view reads further and includes single characters: a title's topic
#: often hangs on one character (房, 医, 税), and the topic of a letter is rarely only in its opening.
CATEGORY_CHAR_CHARS = 600
CATEGORY_CHAR_NGRAMS = (1, 3)

_URL = re.compile(r"https?://\S+|www\.\S+")
_MENTION = re.compile(r"@[\w\u4e00-\u9fff\-]{1,30}")
# Bracketed codes: platform emoticons (Weibo's "[允悲]", "[抓狂]") and the crawler's own personal-data
# placeholders ("[手机号]", "[电话]"). No training text has them, so each was an out-of-vocabulary word
# that pulled a real post down ("碧海花园小区停水三天了，一直没人管 [抓狂]" scored lower than without it).
_BRACKET_CODE = re.compile(r"\[[^\[\]\n]{1,8}\]")
# The labelled letters are anonymised ("A市", "A3区"): drop the code so the model never learns it.
_ANON_PLACE = re.compile(r"(?<![a-z])[a-z]\d{0,2}(?=[市区县镇])")
# The category model drops the suffix too: a bare "市"/"区" left by every anonymised place is an artefact
# of this corpus (real posts name their place), and it is noise to the topic (titles read better without).
# The relevance model keeps it: it leans on the leftover suffix (see normalise).
_ANON_PLACE_WITH_SUFFIX = re.compile(r"(?<![a-z])[a-z]\d{0,2}[市区县镇]")
#: Administrative place names end so (深圳市, 南山区, 宝安县 …); see place_names.
PLACE_SUFFIXES = ("省", "市", "区", "县", "镇", "乡", "街道")
_DIGITS = re.compile(r"\d+")
# Segmented corpora separate every word by a space; real posts do not: remove spaces next to CJK.
_CJK_SPACE = re.compile(r"\s+(?=[^\x00-\x7f])|(?<=[^\x00-\x7f])\s+")
_SPACES = re.compile(r"\s+")
_WORDLIKE = re.compile(r"[0-9a-z\u4e00-\u9fff]")

_jieba_lock = threading.Lock()
_jieba_ready = False


#: The four vectorisers (two per model) each normalise the same texts: normalise each text once.
NORMALISE_CACHE_LIMIT = 200_000


@lru_cache(maxsize=NORMALISE_CACHE_LIMIT)
def normalise(text: str | None) -> str:
    """Canonical form for the models: NFKC, lower case, no links/mentions/bracketed codes/anonymised codes,
    digits as 0."""
    return _normalise(text, _ANON_PLACE)


@lru_cache(maxsize=NORMALISE_CACHE_LIMIT)
def category_normalise(text: str | None) -> str:
    """normalise for the category model: an anonymised place goes with its suffix ("a3区" → "").

    normalise leaves its output unchanged (bar contrived strings such as "b1a市区"), so the shared tokeniser,
    which normalises, reads it as is."""
    return _normalise(text, _ANON_PLACE_WITH_SUFFIX)


def category_normalise_all(texts: Iterable[str | None]) -> list[str]:
    """category_normalise over a batch: the category pipeline's first step (module-level: picklable)."""
    return [category_normalise(t) for t in texts]


def _normalise(text: str | None, anonymised_place: re.Pattern[str]) -> str:
    if not text:
        return ""
    text = unicodedata.normalize("NFKC", str(text)).lower()
    text = _URL.sub(" ", text)
    text = _MENTION.sub(" ", text)
    text = _BRACKET_CODE.sub(" ", text)
    text = text.replace("#", " ")
    text = anonymised_place.sub("", text)
    text = _DIGITS.sub("0", text)
    text = _CJK_SPACE.sub("", text)
    return _SPACES.sub(" ", text).strip()[:MAX_CHARS]


def join_segmented(text: str | None) -> str:
    """Turn a space-segmented corpus line back into running text, so it is tokenised like a real post."""
    return _CJK_SPACE.sub("", str(text or "")).strip()


#: Words of the shipped stop list that carry a short complaint, so they are kept. The list was made for
#: topic categorisation of long letters, where "不", "没" or "臭" say nothing about the topic; in a
#: one-line post they are most of what it says ("龙津河非常臭" was cut to "龙津 河"; "没人管" to "人").
COMPLAINT_WORDS = frozenset(
    {
        "不",
        "没",
        "没有",
        "臭",
        "管",
        "满",
        "又",
        "老",
        "怎么",
        "为什么",
        "何时",
        "吗",
    }
)


@lru_cache(maxsize=1)
def listed_stop_words() -> frozenset[str]:
    """The shipped stop list as it is (the corpus's split keys are cut with it: they must never move)."""
    words = STOP_WORDS_FILE.read_text(encoding="utf-8").split("\n")
    return frozenset(w.strip().lower() for w in words if w.strip())


@lru_cache(maxsize=1)
def stop_words() -> frozenset[str]:
    """The words the models drop: the shipped list but the complaint words."""
    return listed_stop_words() - COMPLAINT_WORDS


@lru_cache(maxsize=1)
def place_names() -> frozenset[str]:
    """Real administrative place names, dropped from the models' tokens.

    The labelled letters are anonymised ("A市A3区"), so a real place name is a word no complaint in the
    corpus uses and every kind of noise does (news, Weibo): the relevance model learned "names a real
    place → not a complaint" and scored "宝安区西乡街道碧海花园小区停水三天了" below the threshold (above
    it without the names; the simulated world's Shenzhen incidents were found more often). Which place a
    post is about is classify.places' job. Names: jieba's dictionary words tagged ns with an
    administrative suffix, the bare stems of cities and provinces when those are ns words too (深圳,
    广东; a district's stem is often a common word: 天桥区, 和平区), and the ns words of the user
    dictionary."""
    tagged: set[str] = set()
    for path in (Path(jieba.__file__).parent / "dict.txt", USER_DICT):
        for line in path.read_text(encoding="utf-8").splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[-1] == "ns":
                tagged.add(parts[0].lower())
    places = {w for w in tagged if len(w) > 1 and w.endswith(PLACE_SUFFIXES)}
    stems = {w[:-1] for w in places if w[-1] in "省市" and len(w) > 2}
    return frozenset(places | (stems & tagged))


_segmenter: Any = None


def _ensure_jieba() -> None:
    global _jieba_ready, _segmenter
    if _jieba_ready:
        return
    with _jieba_lock:
        if not _jieba_ready:
            if rjieba is not None:
                segmenter = rjieba.Jieba()
                for line in USER_DICT.read_text(encoding="utf-8").splitlines():
                    word, *rest = line.split() or [""]
                    if word:  # the jieba user-dictionary line: word [freq] [tag]
                        freq = int(rest[0]) if rest and rest[0].isdigit() else None
                        segmenter.add_word(word, freq, rest[-1] if rest and not rest[-1].isdigit() else None)
                _segmenter = segmenter
            else:
                jieba.setLogLevel(60)
                jieba.initialize()
                jieba.load_userdict(str(USER_DICT))
            _jieba_ready = True


def segmenter_name() -> str:
    """Which segmenter tokenises here (recorded with a model: token lists may differ in rare ties)."""
    if rjieba is not None:
        from importlib.metadata import version

        return f"rjieba {version('rjieba')}"
    return f"jieba {jieba.__version__}"


def _segment(text: str) -> list[str]:
    if _segmenter is not None:
        return _segmenter.cut(text, False)
    return jieba.lcut(text, HMM=False)


#: Token cache keyed by normalised text: training tokenises each text once for both models.
_TOKEN_CACHE: dict[str, tuple[str, ...]] = {}
TOKEN_CACHE_LIMIT = 200_000


#: Each distinct segment's fate (kept as this stripped word, or "": dropped), decided once: the
#: strip / stop-word / word-like checks on every one of millions of segments were a visible part of training.
_KEPT: dict[str, str] = {}
KEPT_LIMIT = 500_000


def _keep(token: str) -> str:
    word = token.strip()
    dropped = word in stop_words() or word in place_names()
    return word if word and not dropped and _WORDLIKE.search(word) else ""


def _cut(text: str) -> tuple[str, ...]:
    _ensure_jieba()
    segments = _segment(text)
    kept = _KEPT
    new = set(segments).difference(kept)  # in C: most segments were decided before
    if new:
        if len(kept) + len(new) > KEPT_LIMIT:
            kept.clear()
            new = set(segments)  # the text's other segments were just forgotten too
        kept.update((t, _keep(t)) for t in new)
    return tuple(_name_places(list(filter(None, map(kept.__getitem__, segments)))))


#: Words that name a kind of place; the word before one is that place's own name ("龙津 河", "碧海 花园").
PLACE_TYPE_WORDS = frozenset(
    {
        "河",
        "江",
        "湖",
        "溪",
        "桥",
        "路",
        "街",
        "巷",
        "道",
        "大道",
        "村",
        "屯",
        "镇",
        "乡",
        "园",
        "苑",
        "府",
        "城",
        "庄",
        "湾",
        "岛",
        "山",
        "小区",
        "社区",
        "花园",
        "公园",
        "广场",
        "大厦",
        "新村",
        "家园",
    }
)
#: What a place's own name becomes: names are endless and each city's are new to the model, but that a
#: complaint names a place is common to all of them ("龙津河非常臭" scored nothing while "龙津" was an unknown
#: word, counted against it as the noise's vocabulary).
PLACE_NAME = "某地"


def _name_places(words: list[str]) -> list[str]:
    """Each word just before a place-type word becomes PLACE_NAME (one for a name cut into several)."""
    if PLACE_TYPE_WORDS.isdisjoint(words):
        return words  # most texts name no place: no loop over their words
    out: list[str] = []
    for i, word in enumerate(words):
        following = words[i + 1] if i + 1 < len(words) else ""
        if following in PLACE_TYPE_WORDS and word not in PLACE_TYPE_WORDS and not word.isascii():
            if out and out[-1] == PLACE_NAME:
                continue  # a name cut into several words is still one name
            out.append(PLACE_NAME)
        else:
            out.append(word)
    return out


def _tokens_of_normalised(text: str) -> tuple[str, ...]:
    tokens = _TOKEN_CACHE.get(text)
    if tokens is None:
        tokens = _cut(text)
        if len(_TOKEN_CACHE) >= TOKEN_CACHE_LIMIT:
            _TOKEN_CACHE.clear()
        _TOKEN_CACHE[text] = tokens
    return tokens


def _cut_many(texts: list[str]) -> list[tuple[str, ...]]:
    return [_cut(text) for text in texts]


def warm_cache(texts: Iterable[str | None], processes: int = 2) -> None:
    """Tokenise many texts up front, in forked worker processes where the platform allows it."""
    pending = sorted({n for n in map(normalise, texts) if n not in _TOKEN_CACHE})
    if not pending:
        return
    _ensure_jieba()  # before forking, so workers inherit the loaded dictionary
    # rjieba cuts the whole corpus in about a second: forking workers would cost more than it saves.
    forkable = "fork" in multiprocessing.get_all_start_methods()
    if _segmenter is None and processes > 1 and len(pending) > 2000 and forkable:
        chunks = [pending[i::processes] for i in range(processes)]
        with multiprocessing.get_context("fork").Pool(processes) as pool:
            results = pool.map(_cut_many, chunks)
        for chunk, tokens in zip(chunks, results, strict=True):
            _TOKEN_CACHE.update(zip(chunk, tokens, strict=True))
    else:
        _TOKEN_CACHE.update(zip(pending, _cut_many(pending), strict=True))


def tokenize(text: str | None) -> list[str]:
    """Words of a text: normalised, jieba-cut with the civic user dictionary, stop words removed."""
    return list(_tokens_of_normalised(normalise(text)))


def _char_ngrams(text: str | None, limit: int, ngrams: tuple[int, int]) -> list[str]:
    joined = "".join(_tokens_of_normalised(normalise(text)))[:limit]
    low, high = ngrams
    return [joined[i : i + n] for n in range(low, high + 1) for i in range(len(joined) - n + 1)]


def category_char_analyzer(text: str | None) -> list[str]:
    """Character 1–3-grams of the first 600 characters of the token stream (the category model's view)."""
    return _char_ngrams(text, CATEGORY_CHAR_CHARS, CATEGORY_CHAR_NGRAMS)


def clear_cache() -> None:
    """Free the token and normalisation caches (training fills them with the whole corpus)."""
    _TOKEN_CACHE.clear()
    normalise.cache_clear()
    category_normalise.cache_clear()
