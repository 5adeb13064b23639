"""What the relevance model weighs: each noise source's share, and the hard negatives of a second fit."""

from __future__ import annotations

import numpy as np
from sklearn.svm import LinearSVC

from classify.corpus import LEAD, NOISE, Example
from classify.pipelines import HardNegativeCalibratedSVM
from classify.training import sample_weights


def test_each_noise_source_has_an_equal_share_and_consumer_reviews_half_of_one() -> None:
    rows = [Example(t, LEAD, None, "title", t, False) for t in ("停水", "停电")]
    rows += [Example(t, NOISE, None, "noise:news_titles", t, False) for t in ("股市", "球赛")]
    rows += [Example(t, NOISE, None, "noise:food_delivery_reviews", t, False) for t in ("好吃", "太慢")]
    assert sample_weights(rows) == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]


def _fit(hard_weight: float) -> HardNegativeCalibratedSVM:
    # Six leads and one noise row at x = 1 (noise that reads like a lead), six noise rows at x = -1.
    x = np.array([[1.0]] * 7 + [[-1.0]] * 6)
    y = [LEAD] * 6 + [NOISE] * 7
    return HardNegativeCalibratedSVM(LinearSVC(random_state=0), cv=2, hard_weight=hard_weight).fit(x, y)


def test_noise_the_first_fit_calls_a_lead_weighs_more_in_the_second_and_scores_lower() -> None:
    emphasised, plain = _fit(3.0), _fit(1.0)
    assert emphasised.hard_negatives_ == 1
    lead_at_one = [round(float(m.predict_proba(np.array([[1.0]]))[0, 0]), 2) for m in (emphasised, plain)]
    assert lead_at_one == [0.63, 0.72]
