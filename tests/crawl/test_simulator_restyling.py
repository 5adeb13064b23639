"""The simulator restyles a letter into a short post from its first sentence that says something."""

from __future__ import annotations

import pytest

from fixtures.simulator.groups.boards_styles import key_sentence
from fixtures.simulator.world import Incident, _first_sentence, content_sentences


@pytest.mark.parametrize(
    ("letter", "post"),
    [
        ("尊敬的胡书记：您好！我们小区门口的路灯坏了一个月。请尽快修好。", "我们小区门口的路灯坏了一个月。"),
        ("领导好！楼下餐馆油烟扰民。", "楼下餐馆油烟扰民。"),
        ("尊敬的领导！小区停水三天了。", "小区停水三天了。"),
        ("胡书记：\xa0\xa0 你好！公交站牌被撞倒了。", "公交站牌被撞倒了。"),
        ("尊敬的各位领导，你们好！学校周边交通拥堵。", "学校周边交通拥堵。"),
    ],
)
def test_a_letters_salutation_is_skipped(letter: str, post: str) -> None:
    assert _first_sentence(letter) == post


@pytest.mark.parametrize(
    ("letter", "post"),
    [
        # the salutation runs on into content
        ("胡书记，您好，感谢您查看这份留言。路灯不亮。", "胡书记，您好，感谢您查看这份留言。"),
        ("那里空气很好！后来建了搅拌站。", "那里空气很好！"),  # ends in 好 but greets nobody
        ("尊敬的领导：我是鹏基诺亚山林业主。物业乱收费。", "尊敬的领导：我是鹏基诺亚山林业主。"),
    ],
)
def test_a_sentence_that_says_something_is_kept(letter: str, post: str) -> None:
    assert _first_sentence(letter) == post


def test_a_letter_that_is_only_a_salutation_is_served_as_it_is() -> None:
    assert _first_sentence("领导您好！") == "领导您好！"


def test_content_sentences_drop_every_salutation() -> None:
    text = "尊敬的领导：您好！小区停水三天了。谢谢！"
    assert content_sentences(text) == ["小区停水三天了。", "谢谢！"]


def test_a_board_summary_starts_after_the_salutation() -> None:
    incident = Incident("L-1", "停水", "胡书记，您好！小区停水三天了。请尽快处理。", "城乡建设", None)
    assert key_sentence(incident) == "小区停水三天了。"
