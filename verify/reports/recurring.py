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
from collections import Counter
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
    roots: dict[str, str] = {}
    ordered = sorted(set(keys), key=lambda k: (len(k), k))
    for key in ordered:
        inside = [k for k in ordered if len(k) >= MIN_SHARED_CHARS and len(k) < len(key) and k in key]
        roots[key] = roots[inside[0]] if inside else key
    return roots


def _places(leads: pd.DataFrame) -> pd.DataFrame:
    """The leads that name a place, with its kind, written name and cluster key."""
    named = leads[leads["landmark"].notna() | leads["street"].notna()].copy()
    has_landmark = named["landmark"].notna() & (named["landmark"].astype(str).str.strip() != "")
    named["kind"] = [LANDMARK if flag else STREET for flag in has_landmark]
    named["name"] = named["landmark"].where(has_landmark, named["street"]).astype(str)
    named["key"] = named["name"].map(place_key)
    named = named[named["key"] != ""]
    named["cluster"] = named["key"]
    for _, group in named.groupby(["category", "district", "kind"]):
        roots = clusters(group["key"])
        named.loc[group.index, "cluster"] = group["key"].map(roots)
    return named


def recurring_places(
    leads: pd.DataFrame, week: str, trailing: Sequence[str], min_weeks: int
) -> list[RecurringPlace]:
    """Places with leads of one category this ``week`` and in at least ``min_weeks`` of ``trailing``.

    Most persistent first (weeks with leads), then most leads, then by name."""
    if leads.empty:
        return []
    named = _places(leads)
    order = {w: i for i, w in enumerate([*trailing, week])}
    found: list[RecurringPlace] = []
    for (category, district, kind, _), group in named.groupby(["category", "district", "kind", "cluster"]):
        weeks = sorted(set(group["week"]) & set(order), key=order.__getitem__)
        this_week = int((group["week"] == week).sum())
        earlier = sum(1 for w in weeks if w != week)
        if this_week == 0 or earlier < min_weeks:
            continue
        names = Counter(group["name"])
        place = sorted(names, key=lambda n: (-names[n], len(n), n))[0]
        in_window = int(group["week"].isin(order).sum())
        found.append(RecurringPlace(category, district, kind, place, tuple(weeks), in_window, this_week))
    return sorted(found, key=lambda r: (-len(r.weeks), -r.leads, r.category, r.district, r.place))
