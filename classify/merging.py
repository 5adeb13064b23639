"""Near-duplicate detection: character 3-shingles of posts, and an inverted index of open leads' shingles."""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from itertools import chain

from classify.text import normalise

SHINGLE = 3
_DROP = re.compile(r"[^0-9a-z\u4e00-\u9fff]+")
#: Weibo topics (#深圳#) say nothing about the problem: unrelated posts share them (every Weibo post of
#: the city carries #深圳#), and the letter a post repeats lacks them, so they would only blur
#: containment. (Emoji codes such as [允悲] and our personal-data placeholders such as [电话] are
#: platform decoration too; normalise already removes those, for the models.)
_TOPIC = re.compile(r"[#＃][^#＃\n]{1,20}[#＃]")


def merge_text(text: str) -> str:
    """The characters two posts are compared on: normalised, topics removed, letters/digits/CJK only."""
    # Before normalising: normalise turns "#" into a space. Text without topics (most posts) reuses the
    # normalisation the model has just cached.
    if _TOPIC.search(text):
        text = _TOPIC.sub(" ", text)
    return _DROP.sub("", normalise(text))


def shingles(text: str, size: int = SHINGLE) -> frozenset[str]:
    chars = merge_text(text)
    if len(chars) <= size:
        return frozenset([chars]) if chars else frozenset()
    # The size-grams as zip() of shifted copies joined in C: no generator frame per character (the
    # copies differ in length on purpose, zip stops at the shortest).
    return frozenset(map("".join, zip(*(chars[k:] for k in range(size)), strict=False)))


def containment(a: frozenset[str], b: frozenset[str]) -> float:
    """Shared shingles over the smaller set: a one-line title inside the whole letter scores 1."""
    if not a or not b:
        return 0.0
    return len(a & b) / min(len(a), len(b))


#: Texts (or evidence) with fewer distinct 3-shingles than this never merge: about six characters.
MIN_MERGE_SHINGLES = 6
#: At this containment one text repeats the other: a disagreement of the predicted categories is the
#: model's error (a one-line title is categorised far less reliably than the letter), not a difference.
NEAR_IDENTICAL = 0.9
#: A shingle in the evidence of this many distinct open leads (and this share of them) is boilerplate
#: — "尊敬的领导您好", a masked contact line, "希望有关部门尽快处理" — and is left out of containment:
#: sharing it says nothing, and a repost that adds one would otherwise fall below the threshold.
COMMON_MIN_LEADS = 5
COMMON_SHARE = 0.02
#: Two reports of the same hazard at the same named place (district, landmark and urgency rule all
#: equal) are one incident even when told in different words ("台阶断了一截" under a video, "台阶断裂"
#: on Weibo): they merge at this lower containment, and their predicted categories need not agree.
ANCHORED_CONTAINMENT = 0.2


class LeadIndex:
    """Open leads' shingles, inverted-indexed, for "which open lead does this text repeat?".

    A lead's text is the union of its evidence's shingles. Leads are numbered in the order they are
    added; callers keep their own handle per number (an id, or a draft until it is stored)."""

    def __init__(self) -> None:
        # Per lead: its category, shingles, the districts its evidence names, its boilerplate count,
        # its anchors (see match).
        self.categories: list[str | None] = []
        self._grams: list[set[str]] = []
        self._districts: list[set[str]] = []
        self._common_counts: list[int] = []
        self._anchors: list[set[str]] = []
        self._postings: dict[str, list[int]] = defaultdict(list)  # shingle -> lead numbers
        self.common: set[str] = set()

    def __len__(self) -> int:
        return len(self.categories)

    def add(
        self,
        lead: int | None,
        grams: frozenset[str],
        districts: frozenset[str],
        category: str | None,
        anchors: frozenset[str] = frozenset(),
    ) -> int:
        """Index one piece of evidence of ``lead`` (None: of a new lead); returns the lead's number."""
        if lead is None:
            lead = len(self.categories)
            self.categories.append(category)
            self._grams.append(set())
            self._districts.append(set())
            self._common_counts.append(0)
            self._anchors.append(set())
        self._anchors[lead] |= anchors
        union = self._grams[lead]
        new = grams - union if union else grams
        union |= new
        self._districts[lead] |= districts
        common, counts, postings = self.common, self._common_counts, self._postings
        counts[lead] += len(new & common)
        limit = max(COMMON_MIN_LEADS, math.ceil(COMMON_SHARE * len(self.categories)))
        for gram in new:
            leads = postings[gram]
            leads.append(lead)
            if len(leads) >= limit and gram not in common:
                common.add(gram)
                for other in leads:
                    counts[other] += 1
        return lead

    def match(
        self,
        grams: frozenset[str],
        districts: frozenset[str],
        category: str | None,
        threshold: float,
        anchors: frozenset[str] = frozenset(),
    ) -> int | None:
        """The compatible lead whose text contains most of this one (or is most contained in it).

        Containment (shared shingles over the smaller set, boilerplate left out), not Jaccard: the
        same complaint is a one-line title on Weibo and a whole letter on a board, and their Jaccard
        is tiny. Places are compatible when the two name a district in common (or either names
        none): a letter may name two districts, its one-line repost only the first. Categories must
        agree unless the texts are near-identical: a category predicted from one line is a guess.
        ``anchors`` ("district|landmark|urgency rule") shared with a lead lower the bar to
        ANCHORED_CONTAINMENT: the same hazard at the same named place is the same incident."""
        common = self.common
        mine = [gram for gram in grams if gram not in common] if common else list(grams)
        if len(mine) < MIN_MERGE_SHINGLES:
            return None  # too short to tell a repost from a coincidence
        # One counting pass in C over every matching posting list.
        overlaps = Counter(chain.from_iterable(filter(None, map(self._postings.get, mine))))
        best, best_score = None, 0.0
        for lead, overlap in overlaps.items():
            smaller = min(len(mine), len(self._grams[lead]) - self._common_counts[lead])
            if smaller < MIN_MERGE_SHINGLES:
                continue
            score = overlap / smaller
            if score < best_score:
                continue
            anchored = bool(anchors and anchors & self._anchors[lead])
            if score < (ANCHORED_CONTAINMENT if anchored else threshold):
                continue
            if districts and self._districts[lead] and not districts & self._districts[lead]:
                continue
            theirs = self.categories[lead]
            if category and theirs and category != theirs and score < NEAR_IDENTICAL and not anchored:
                continue
            best, best_score = lead, score
        return best
