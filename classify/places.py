"""Place extraction from the config.yaml gazetteer: district, street office, landmark; jurisdiction."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from settings import CitySettings

STREET_SUFFIX = "街道"
#: A landmark name starts after the last of these (location words, verbs, the district/street itself).
_LANDMARK_CUT = re.compile(
    r".*(?:区|市|街道|社区|在|住|的|是|到|于|近|和|与|及|对|从|经|个|我|们|家|旁|边|号)"
)
#: Words ending in a landmark suffix that name no place.
GENERIC_LANDMARKS = frozenset(
    {"马路", "道路", "公路", "一路", "上路", "路上", "网路", "铁路", "出路", "走路", "小区"}
)
_NAME_CHARS = r"[\u4e00-\u9fffA-Za-z0-9]"


@dataclass(frozen=True)
class Place:
    district: str | None = None
    street: str | None = None
    landmark: str | None = None
    other_city: str | None = None  # set when the text is about another city and not about ours

    @property
    def elsewhere(self) -> bool:
        return self.other_city is not None


@lru_cache(maxsize=8)
def _street_index(districts: tuple[tuple[str, tuple[str, ...]], ...]) -> list[tuple[str, str, str]]:
    """(pattern, street, district), longest pattern first; bare street stems only when unambiguous."""
    district_stems = {d.removesuffix("新区").removesuffix("区") for d, _ in districts}
    index = []
    for district, streets in districts:
        for street in streets:
            index.append((street, street, district))
            stem = street.removesuffix(STREET_SUFFIX)
            if len(stem) >= 2 and stem not in district_stems:
                index.append((stem, street, district))
    return sorted(index, key=lambda item: -len(item[0]))


@lru_cache(maxsize=8)
def _any_street(patterns: tuple[str, ...]) -> re.Pattern[str]:
    """One pass over the text tells whether any street pattern occurs (most posts name none)."""
    return re.compile("|".join(map(re.escape, patterns)) or r"(?!)")


def _district(text: str, city: CitySettings) -> str | None:
    for district in city.districts:
        if district in text:
            return district
    for district in city.districts:
        stem = district.removesuffix("新区").removesuffix("区")
        if len(stem) >= 2 and stem in text:
            return district
    return None


def landmark(text: str, suffixes: list[str]) -> str | None:
    """The first named place ending in a configured suffix (in suffix order), e.g. 龙珠花园, 深南大道."""
    for suffix in suffixes:
        for match in re.finditer(rf"({_NAME_CHARS}{{1,8}}?)?{re.escape(suffix)}", text):
            start = max(0, match.start() - 8)
            window = text[start : match.end()]
            name = re.findall(rf"{_NAME_CHARS}+$", window)
            if not name:
                continue
            candidate = _LANDMARK_CUT.sub("", name[0][: -len(suffix)]) + suffix
            if len(candidate) >= len(suffix) + (2 if len(suffix) == 1 else 1) and candidate not in (
                GENERIC_LANDMARKS
            ):
                return candidate
    return None


def extract_place(text: str, city: CitySettings) -> Place:
    districts = tuple((d, tuple(s)) for d, s in city.districts.items())
    street = district = None
    index = _street_index(districts)
    if _any_street(tuple(pattern for pattern, _, _ in index)).search(text):
        for pattern, street_name, street_district in index:
            if pattern in text:
                street, district = street_name, street_district
                break
    district = district or _district(text, city)
    mark = landmark(text, city.landmark_suffixes)
    ours = bool(district or street or city.name in text)
    other = None if ours else next((c for c in city.other_cities if c in text), None)
    return Place(district=district, street=street, landmark=mark, other_city=other)
