"""Urgency (加急) rules from config.yaml: exact terms and object-in-state patterns, negation, reasons."""

from __future__ import annotations

import pytest

from classify.urgency import assess
from settings import HazardPattern, load_settings

RULES = load_settings(env={}).classify.urgent_terms


def _verdict(text: str, rules: object = RULES) -> tuple[bool, str | None]:
    urgency = assess(text, rules)  # type: ignore[arg-type]
    return urgency.urgent, urgency.reason


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("楼道里有很浓的煤气味，怕是燃气泄漏", "燃气安全: 煤气味、燃气泄漏"),
        ("小区停水又停电，老人被困在家", "停水: 停水; 停电: 停电; 老人残障受困: 老人被困"),
        # wordings no exact term lists: an object in a hazardous state within one clause
        ("宝安区白沙湾路口的井盖有丢失，晚上很危险", "井盖: 井盖有丢失"),
        ("一个下水道井盖被闯红灯的货车撞飞了", "井盖: 井盖被闯红灯的货车撞飞"),
        ("7栋外墙瓷砖掉落，差点砸到路人", "高空坠物: 外墙瓷砖掉落"),
        ("物业把每层楼的消防通道门都锁住了", "火灾: 消防通道门都锁"),
        ("部分业主私自封堵消防通道，多次投诉没人管", "火灾: 封堵消防通道"),
        ("地下一层墙体严重开裂，还在渗水", "坍塌: 墙体严重开裂"),
        ("还没交房，数栋楼房都出现了沉降开裂", "坍塌: 楼房都出现了沉降"),
        ("桥下台阶断了一块，小孩踩空摔倒", "台阶破损: 台阶断了; 老人残障受困: 小孩踩空摔倒"),
    ],
)
def test_urgency_names_the_rules_and_what_fired(text: str, reason: str) -> None:
    assert _verdict(text) == (True, reason)


@pytest.mark.parametrize(
    "text",
    [
        "今天没有停水，谢谢物业",  # a negated term
        "路口井盖并未丢失，是路灯不亮",  # a negation between the object and its state
        "咨询燃气公司什么时候支持网上缴费",  # a hazard object in no hazardous state
        "井盖噪音扰民，晚上睡不着。路灯也坏了",  # the state is in another clause
        "路边的树很漂亮",
    ],
)
def test_texts_without_a_hazard_are_not_urgent(text: str) -> None:
    assert _verdict(text) == (False, None)


def test_a_pattern_reaches_only_as_far_as_its_window() -> None:
    rules = {"井盖": [HazardPattern(objects=["井盖"], states=["丢失"], window=2)]}
    assert assess("井盖有丢失", rules).urgent is True
    assert assess("井盖那边好像有丢失", rules).urgent is False


def test_rules_given_as_plain_mappings_work_like_settings() -> None:
    rules = {"井盖": ["没有井盖", {"objects": ["井盖"], "states": ["破损"]}]}
    assert _verdict("这里没有井盖，那边的井盖破损", rules) == (True, "井盖: 没有井盖、井盖破损")


def test_each_rule_reports_each_distinct_hit_once() -> None:
    assert _verdict("停水。又停水。还是停水。断水。再次停水") == (True, "停水: 停水、断水")
