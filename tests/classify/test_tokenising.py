"""Tokenising: civic user dictionary, stop words, segmented corpora read like running text, picklable."""

from __future__ import annotations

import pickle

import jieba
import pytest
from sklearn.base import clone

from classify import text as text_module
from classify.features import OUT_OF_VOCABULARY
from classify.pipelines import build_category_pipeline, build_relevance_pipeline
from classify.text import category_normalise, join_segmented, normalise, tokenize


def test_tokenize_keeps_civic_terms_whole_and_drops_stop_words_and_real_place_names() -> None:
    text_module._ensure_jieba()
    assert text_module._segment("深圳市南山区桃源街道的小区门口井盖缺失了")[:3] == [
        "深圳市",
        "南山区",
        "桃源街道",
    ]
    assert tokenize("深圳市南山区桃源街道的小区门口井盖缺失了") == ["小区", "门口", "井盖", "缺失"]
    assert tokenize("#深圳# 北京市朝阳区小区停水") == ["小区", "停水"]


def test_common_words_that_are_also_district_names_stay_words() -> None:
    assert tokenize("和平天桥") == ["和平", "天桥"]  # 和平区, 天桥区 are districts elsewhere


def test_the_own_name_before_a_kind_of_place_is_one_place_word() -> None:
    assert tokenize("龙津河非常臭") == ["某地", "河", "臭"]
    assert tokenize("碧海花园小区停水三天了") == ["某地", "花园", "小区", "停水", "三天"]
    assert tokenize("深南大道路灯不亮") == ["某地", "大道", "路灯", "不", "亮"]
    assert tokenize("小区门口马路坑洼") == ["小区", "门口", "马路", "坑洼"]  # no name: nothing replaced


def test_words_a_short_complaint_is_made_of_are_not_stop_words() -> None:
    assert tokenize("三捷河怎么又黑臭了") == ["某地", "河", "怎么", "又", "黑", "臭"]
    assert tokenize("垃圾满了没有清运") == ["垃圾", "满", "没有", "清运"]


def test_segmented_corpus_line_tokenises_like_the_running_text() -> None:
    assert join_segmented("小区 停水 三天 物业 不 通知") == "小区停水三天物业不通知"
    assert tokenize(join_segmented("小区 停水 三天 物业 不 通知")) == tokenize("小区停水三天，物业不通知")


def test_normalise_drops_links_mentions_and_anonymised_place_codes() -> None:
    assert normalise("A市A3区 西湖 建筑 @深圳交警 https://t.cn/abc 2024年") == "市区西湖建筑0年"


def test_category_normalise_drops_anonymised_place_codes_with_their_suffix() -> None:
    assert category_normalise("A市A3区 西湖 建筑 @深圳交警 https://t.cn/abc 2024年") == "西湖建筑0年"
    assert category_normalise("K1县丁字街的商户乱摆摊") == "丁字街的商户乱摆摊"


def test_category_normalise_keeps_real_place_names_and_words_ending_in_a_suffix() -> None:
    assert category_normalise("南山区桃源街道小区门口井盖缺失") == "南山区桃源街道小区门口井盖缺失"
    assert category_normalise("iphone市场价格") == "iphone市场价格"  # a word, not a code, before 市


def test_normalise_leaves_category_normalised_text_unchanged() -> None:
    text = category_normalise("投诉A市A1区苑物业违规收停车费，电话13800000000")
    assert text == "投诉苑物业违规收停车费,电话0"
    assert normalise(text) == text


def test_only_the_category_pipeline_normalises_its_text_first() -> None:
    assert [name for name, _ in build_category_pipeline().steps] == ["normalise", "features", "classifier"]
    assert [name for name, _ in build_relevance_pipeline().steps] == ["features", "classifier"]


def test_normalise_drops_emoticon_codes_and_personal_data_placeholders() -> None:
    # Weibo's emoticons come through as "[允悲]"; the crawler masks phone numbers as "[手机号]".
    text = "#深圳# 小区停水三天了 [允悲] 联系电话[手机号] [抓狂]"
    assert normalise(text) == "深圳小区停水三天了联系电话"
    assert tokenize(text) == tokenize("小区停水三天了，联系电话")


def test_the_relevance_char_view_gives_bigrams_and_trigrams_of_the_token_stream() -> None:
    features = build_relevance_pipeline().named_steps["features"]
    char_view = clone(dict(features.transformer_list)["char"]).set_params(min_df=1)
    names = list(char_view.fit(["停水三天"], ["lead"]).get_feature_names_out())
    assert names[0] == OUT_OF_VOCABULARY
    assert sorted(names[1:]) == sorted(["停水", "水三", "三天", "停水三", "水三天"])


def test_pipelines_are_clonable_with_explicit_parameters_and_picklable() -> None:
    relevance = build_relevance_pipeline(c=2.0, calibration_folds=4)
    assert clone(relevance).get_params()["classifier__estimator__C"] == 2.0
    assert clone(relevance).get_params()["classifier__cv"] == 4
    restored = pickle.loads(pickle.dumps(build_category_pipeline()))
    assert restored.get_params()["features__char__chars"] == 600


def test_the_fast_segmenter_cuts_like_jieba_with_the_civic_dictionary() -> None:
    rjieba = pytest.importorskip("rjieba")
    del rjieba
    reference = jieba.Tokenizer()
    reference.load_userdict(str(text_module.USER_DICT))
    sentences = [
        "深圳市南山区桃源街道的小区门口井盖缺失了",
        "宝安区西乡街道碧海花园小区停水三天了一直没人管",
        "楼下工地夜间施工噪音扰民严重影响休息",
        "地铁站出口的台阶破损老人差点摔倒",
    ]
    text_module._ensure_jieba()
    assert text_module.segmenter_name().startswith("rjieba ")
    for sentence in sentences:
        assert text_module._segment(sentence) == reference.lcut(sentence, HMM=False)
