"""Place extraction from the config.yaml gazetteer: district, street office, landmark; jurisdiction."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

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
_NAME_TAIL = re.compile(rf"{_NAME_CHARS}+$")
#: What a street, road or building named after another city goes on with: every city has a 中山路 or a
#: 北京路, Shenzhen a 中山公园 and a 上海宾馆 ("中山道板破损" is a pavement on 中山路, not 中山市).
NAMED_AFTER_A_CITY = (
    "路",
    "道",
    "街",
    "巷",
    "桥",
    "公园",
    "花园",
    "广场",
    "大厦",
    "宾馆",
    "酒店",
    "小区",
    "新村",
)


@dataclass(frozen=True)
class Place:
    district: str | None = None
    street: str | None = None
    landmark: str | None = None
    other_city: str | None = None  # set when the text is about another city and not about ours
    #: Every district the text names (by name, street office or district stem), first mention first.
    #: A letter may name two ("龙华区…，学校地处罗湖区莲塘路"): merging asks whether two posts share one.
    districts: tuple[str, ...] = field(default=(), compare=False)

    @property
    def elsewhere(self) -> bool:
        return self.other_city is not None


class Gazetteer:
    """A city's place names compiled once: one regex finds every district and street mention in a pass."""

    def __init__(self, city: CitySettings) -> None:
        self.city = city
        district_stems = {d: d.removesuffix("新区").removesuffix("区") for d in city.districts}
        # pattern -> (district, street or None); full names and street stems are strong mentions,
        # a bare district stem ("龙华", "光明") is weak: it is also an ordinary word, so it counts
        # only when the text names nothing stronger.
        strong: dict[str, tuple[str, str | None]] = {}
        weak: dict[str, tuple[str, str | None]] = {}
        for district, streets in city.districts.items():
            strong[district] = (district, None)
            for street in streets:
                strong[street] = (district, street)
                stem = street.removesuffix(STREET_SUFFIX)
                if len(stem) >= 2 and stem not in district_stems.values():
                    strong.setdefault(stem, (district, street))
        for district, stem in district_stems.items():
            if len(stem) >= 2 and stem not in strong:
                weak[stem] = (district, None)
        self.strong, self.weak = strong, weak
        self._strong = _alternation(strong)
        self._weak = _alternation(weak)
        self._other_cities = {
            c: re.compile(rf"{re.escape(c)}(?!{'|'.join(NAMED_AFTER_A_CITY)})") for c in city.other_cities
        }
        self._suffixes = [
            (s, re.compile(rf"({_NAME_CHARS}{{1,8}}?)?{re.escape(s)}")) for s in city.landmark_suffixes
        ]

    def mentions(self, text: str) -> list[tuple[str, str | None]]:
        """(district, street or None) for each place the text names, in text order."""
        found = [self.strong[m.group()] for m in self._strong.finditer(text)]
        return found or [self.weak[m.group()] for m in self._weak.finditer(text)]

    def other_city(self, text: str) -> str | None:
        """The first configured other city named in the text, in the configured order; a city's name
        that goes on as a street's or a park's ("中山路", "中山公园", "上海宾馆") names a place here."""
        return next((c for c in self.city.other_cities if self._other_cities[c].search(text)), None)

    def landmark(self, text: str) -> str | None:
        for suffix, pattern in self._suffixes:
            if suffix in text:
                found = _landmark_for(text, suffix, pattern)
                if found:
                    return found
        return None


def _alternation(names: dict[str, tuple[str, str | None]]) -> re.Pattern[str]:
    """Longest name first, so that at each position the regex takes 龙华区 over 龙华."""
    ordered = sorted(names, key=lambda name: (-len(name), name))
    return re.compile("|".join(map(re.escape, ordered)) or r"(?!)")


_gazetteers: dict[int, Gazetteer] = {}


def gazetteer(city: CitySettings) -> Gazetteer:
    """The compiled gazetteer of ``city``, built once per settings object (it holds the object, so its id
    cannot be reused while cached)."""
    cached = _gazetteers.get(id(city))
    if cached is None or cached.city is not city:
        if len(_gazetteers) >= 8:
            _gazetteers.clear()
        cached = _gazetteers[id(city)] = Gazetteer(city)
    return cached


def _landmark_for(text: str, suffix: str, pattern: re.Pattern[str]) -> str | None:
    for match in pattern.finditer(text):
        start = max(0, match.start() - 8)
        name = _NAME_TAIL.findall(text[start : match.end()])
        if not name:
            continue
        candidate = _LANDMARK_CUT.sub("", name[0][: -len(suffix)]) + suffix
        if len(candidate) >= len(suffix) + (2 if len(suffix) == 1 else 1) and candidate not in (
            GENERIC_LANDMARKS
        ):
            return candidate
    return None


def landmark(text: str, suffixes: list[str]) -> str | None:
    """The first named place ending in a configured suffix (in suffix order), e.g. 龙珠花园, 深南大道."""
    for suffix in suffixes:
        if suffix in text:
            found = _landmark_for(text, suffix, re.compile(rf"({_NAME_CHARS}{{1,8}}?)?{re.escape(suffix)}"))
            if found:
                return found
    return None


def extract_place(text: str, city: CitySettings) -> Place:
    """District and street of the first place the text names; the street only if it lies in that district.

    The first mention wins: a title or opening sentence says where the problem is, while a letter's
    later places are often context (the school "地处罗湖区…" two districts away from the problem)."""
    places = gazetteer(city)
    mentions = places.mentions(text)
    district = street = None
    if mentions:
        district = mentions[0][0]
        street = next((s for d, s in mentions if d == district and s is not None), None)
    mark = places.landmark(text)
    ours = bool(district or city.name in text)
    other = None if ours else places.other_city(text)
    districts = tuple(dict.fromkeys(d for d, _ in mentions))
    return Place(district=district, street=street, landmark=mark, other_city=other, districts=districts)
