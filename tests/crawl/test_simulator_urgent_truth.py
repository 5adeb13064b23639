"""The simulator's truth calls a post urgent only for a hazard or a cut-off, per issue #4's definition."""

from __future__ import annotations

import pytest

from fixtures.simulator.corpus import is_urgent, mentions_hazard


@pytest.mark.parametrize(
    "text",
    [
        "楼道有很浓的煤气味",
        "一个下水道井盖被飞驰下坡的闯红灯机动车撞飞",
        "物业把每层楼的消防通道门都锁住了",
        "外墙瓷砖掉落",
        "小区已经停水三天",
        "独居的老人被困在电梯里",
    ],
)
def test_hazards_and_cut_offs_are_urgent(text: str) -> None:
    assert is_urgent(text) is True


@pytest.mark.parametrize(
    "text",
    [
        "咨询奥新燃气什么时候能够支持网上缴费",  # names gas, no hazard
        "多次申请安装天燃气，燃气公司拒绝安装",
        "反映花卉路井盖噪音扰民及路灯长期不亮的问题",
    ],
)
def test_a_hazard_topic_alone_is_a_candidate_but_not_urgent(text: str) -> None:
    assert (mentions_hazard(text), is_urgent(text)) == (True, False)
