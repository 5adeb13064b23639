"""Place extraction from the config.yaml gazetteer."""

from __future__ import annotations

import pytest

from classify.places import Place, extract_place
from settings import load_settings

SETTINGS = load_settings(env={})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("深圳市南山区桃源街道龙珠花园门口井盖缺失", Place("南山区", "桃源街道", "龙珠花园")),
        ("我住在西乡的碧海花园，楼下停水三天了", Place("宝安区", "西乡街道", "碧海花园")),
        ("宝安区新安街道宝安大道与创业路交汇处积水", Place("宝安区", "新安街道", "宝安大道")),
        ("龙岗区布吉地铁站出口的台阶破损", Place("龙岗区", "布吉街道", "布吉地铁站")),
        ("大鹏新区南澳街道海边的路灯坏了", Place("大鹏新区", "南澳街道", None)),
        ("马路上有个坑", Place(None, None, None)),
        ("北京市朝阳区望京小区停电", Place(None, None, "望京小区", other_city="北京")),
        # A street or a park named after another city is a place here.
        ("中山道板破损何时解决", Place(None, None, None)),
        ("中山公园门口路灯不亮", Place(None, None, "中山公园")),
        ("中山市小榄镇停电", Place(None, None, None, other_city="中山")),
        ("深圳的上海宾馆附近路灯坏了", Place(None, None, None)),
    ],
)
def test_extract_place_gives_exact_district_street_landmark(text: str, expected: Place) -> None:
    assert extract_place(text, SETTINGS.city) == expected


def test_gazetteer_covers_every_district_and_74_street_offices() -> None:
    assert len(SETTINGS.city.districts) == 10
    assert sum(len(streets) for streets in SETTINGS.city.districts.values()) == 74


def test_the_first_place_named_wins_and_every_district_named_is_kept() -> None:
    # The problem is where the opening says; the letter's later district is context.
    place = extract_place("龙华区雅礼中学附近垃圾箱长期未清理，学校地处罗湖区莲塘路1号", SETTINGS.city)
    assert place == Place("龙华区", None, "莲塘路")
    assert place.districts == ("龙华区", "罗湖区")


def test_a_street_office_counts_only_in_the_district_named_first() -> None:
    place = extract_place("学校在莲塘，龙华区的家长来反映", SETTINGS.city)
    assert (place.district, place.street, place.districts) == ("罗湖区", "莲塘街道", ("罗湖区", "龙华区"))


def test_a_bare_district_stem_counts_only_when_nothing_stronger_is_named() -> None:
    # "光明" is also an ordinary word: a full district name elsewhere in the text wins.
    assert extract_place("做人要光明正大，福田区的路灯坏了", SETTINGS.city).district == "福田区"
    assert extract_place("光明这边的路灯坏了", SETTINGS.city).district == "光明区"
