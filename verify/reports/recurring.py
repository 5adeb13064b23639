"""Recurring problems: the same place and category with leads in this week and in several trailing weeks.

A lead's place is its landmark (碧海花园, 科技园) or, without one, its street office (粤海街道); the
district is part of the key, so 中心公园 in two districts are two places. Names are clustered so that
one place written several ways counts once: each is normalised (NFKC, lower case, no spaces or
punctuation, a trailing 小区 dropped), and within one category, district and kind of place a name
that contains another of at least MIN_SHARED_CHARS characters joins it (碧海花园二期 → 碧海花园). The
cluster is shown under its most frequent written name.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pandas as pd

#: The shortest name another may be folded into: two characters (花园, 广场) name no one place.
MIN_SHARED_CHARS = 3
LANDMARK = "地标"
STREET = "街道"
_NOT_NAME = re.compile(r"[\W_]+")
_GENERIC_TAIL = "小区"


@dataclass(frozen=True)
class RecurringPlace:
    category: str
    district: str
    kind: str  # LANDMARK or STREET
    place: str  # the cluster's most frequent written name
    weeks: tuple[str, ...]  # the weeks with leads there, oldest first
    leads: int  # leads there over the whole window
    this_week: int  # of which this week


def place_key(name: str) -> str:
    """The comparable form of a place name (see the module's docstring)."""
    key = _NOT_NAME.sub("", unicodedata.normalize("NFKC", name).lower())
    trimmed = key.removesuffix(_GENERIC_TAIL)
    return trimmed if len(trimmed) >= 2 else key


def clusters(keys: Iterable[str]) -> dict[str, str]:
    """Each key → its cluster's key: the shortest key (of at least MIN_SHARED_CHARS) it contains."""
    known = set(keys)
    roots: dict[str, str] = {}
    for key in sorted(known, key=lambda k: (len(k), k)):
        inside = {
            key[i:j]
            for i in range(len(key))
            for j in range(i + MIN_SHARED_CHARS, len(key) + 1)
            if j - i < len(key) and key[i:j] in known
        }
        roots[key] = roots[min(inside, key=lambda k: (len(k), k))] if inside else key
    return roots


#: Place key → the (week, written name) of each lead there.
_Seen = dict[str, list[tuple[str, str]]]


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def recurring_places(
    leads: pd.DataFrame, week: str, trailing: Sequence[str], min_weeks: int
) -> list[RecurringPlace]:
    """Places with leads of one category this ``week`` and in at least ``min_weeks`` of ``trailing``.

    Most persistent first (weeks with leads), then most leads, then by name."""
    order = {w: i for i, w in enumerate([*trailing, week])}
    # (category, district, kind) → place key → its leads.
    places: dict[tuple[str, str, str], _Seen] = defaultdict(lambda: defaultdict(list))
    columns = ["week", "category", "district", "street", "landmark"]
    # Plain lists: iterating rows of Arrow-backed string columns is many times slower.
    rows = zip(*(leads[c].tolist() for c in columns), strict=True)
    for lead_week, category, district, street, landmark in rows:
        kind, name = (LANDMARK, _text(landmark)) if _text(landmark) else (STREET, _text(street))
        key = place_key(name) if name and lead_week in order else ""
        if key:
            places[(category, district, kind)][key].append((lead_week, name))
    found: list[RecurringPlace] = []
    for (category, district, kind), keyed in places.items():
        grouped: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for key, root in clusters(keyed).items():
            grouped[root] += keyed[key]
        for seen in grouped.values():
            weeks = sorted({w for w, _ in seen}, key=order.__getitem__)
            this_week = sum(1 for w, _ in seen if w == week)
            if this_week == 0 or len(weeks) - 1 < min_weeks:
                continue
            names = Counter(name for _, name in seen)
            place = min(names, key=lambda n: (-names[n], len(n), n))
            found.append(RecurringPlace(category, district, kind, place, tuple(weeks), len(seen), this_week))
    return sorted(found, key=lambda r: (-len(r.weeks), -r.leads, r.category, r.district, r.place))
