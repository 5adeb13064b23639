"""Leave-one-noise-source-out: each source is scored by a model that never saw it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from classify.corpus import LEAD, NOISE, Example
from classify.generalisation import leave_one_city_out, leave_one_source_out, save_scores
from classify.pipelines import build_relevance_pipeline

LEADS = [
    "小区门口井盖丢失没人管",
    "楼下工地夜间施工噪音扰民",
    "小区停水三天物业不通知",
    "路灯坏了一个月没人修",
]
NEWS = ["股市今天大涨券商板块领涨", "球队昨晚客场取胜", "新款手机发布会今日举行", "央行公布最新利率"]
FOOD = ["外卖送得很快味道不错", "米饭是冷的差评", "分量太少不会再点了", "包装很好汤没有洒"]


def _examples() -> list[Example]:
    rows = [Example(t, LEAD, None, "title", f"m{i}", False) for i, t in enumerate(LEADS * 3)]
    rows += [Example(LEADS[0], LEAD, None, "title", "m-val", True)]
    rows += [Example(t, NOISE, None, "noise:news", f"n{i}", False) for i, t in enumerate(NEWS * 3)]
    rows += [Example(t, NOISE, None, "noise:food", f"f{i}", False) for i, t in enumerate(FOOD * 3)]
    return rows


def _recording_builder(seen: list[set[str]]) -> Callable[[], object]:
    """A relevance-pipeline factory whose every fit records the texts it was trained on in ``seen``."""

    def build() -> object:
        pipeline = build_relevance_pipeline(min_df=1)
        fit = pipeline.fit

        def recording_fit(texts: list[str], labels: list[str], **params: object) -> object:
            seen.append(set(texts))
            return fit(texts, labels, **params)

        pipeline.fit = recording_fit  # type: ignore[method-assign]
        return pipeline

    return build


def test_every_noise_source_is_measured_on_all_its_texts_by_a_model_trained_without_it() -> None:
    seen: list[set[str]] = []
    build = _recording_builder(seen)
    result = leave_one_source_out(_examples(), build=build)
    assert set(result) == {"food", "news"}
    assert (result["food"]["texts"], result["news"]["texts"]) == (12, 12)
    assert not set(FOOD) & seen[0] and set(NEWS) <= seen[0]  # sources in sorted order: food first
    assert not set(NEWS) & seen[1] and set(FOOD) <= seen[1]
    assert all(
        0.0 <= figures["fpr"] <= 1.0 and figures["title_recall"] is not None for figures in result.values()
    )


def test_a_city_left_out_is_scored_on_all_its_requests_by_a_model_that_never_saw_one() -> None:
    rows = [Example(t, LEAD, None, "title", f"b{i}", False, city="board") for i, t in enumerate(LEADS * 3)]
    jiamusi = ["供热温度不达标屋里太冷", "小区门口马路坑洼积水", "什么时候开始供热"]
    rows += [
        Example(t, LEAD, None, "title", f"j{i}", i == 0, city="jiamusi", problem=i != 2)
        for i, t in enumerate(jiamusi)
    ]
    rows += [
        Example(t, NOISE, None, "noise:news", f"n{i}", False, city="news") for i, t in enumerate(NEWS * 3)
    ]
    seen: list[set[str]] = []
    build = _recording_builder(seen)
    result = leave_one_city_out(rows, build=build, cities=("jiamusi",))
    assert list(result) == ["jiamusi"]
    assert not set(jiamusi) & seen[0] and set(LEADS) <= seen[0]
    figures = result["jiamusi"]
    assert (figures["title"]["texts"], figures["short"]["texts"], figures["letter"]["texts"]) == (2, 0, 0)
    assert figures["short"]["recall"] is None and figures["title"]["question_recall"] is not None


def test_each_folds_raw_scores_and_gate_decisions_are_saved_for_comparing_thresholds_later(
    tmp_path: Path,
) -> None:
    result = leave_one_source_out(
        _examples(),
        threshold=0.5,
        build=lambda: build_relevance_pipeline(min_df=1),
        sink=save_scores(tmp_path),
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["food.npz", "news.npz"]
    saved = np.load(tmp_path / "news.npz")
    assert saved["kind"].tolist() == ["noise:news"] * 12 + ["title"]  # the source, then the held-out titles
    assert saved["length"].tolist() == [len(t) for t in NEWS * 3] + [len(LEADS[0])]
    gated = np.where(saved["gate"], saved["score"], np.minimum(saved["score"], 0.5))
    assert round(float((gated[:12] >= 0.5).mean()), 4) == result["news"]["fpr"]
