"""The weekly report's pure parts on exact numbers: weeks, the spike test and its FDR control,
recurring-place clustering, top terms and ticket outcomes."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from scipy import stats

from verify.reports.outcomes import ALL_CATEGORIES, TicketOutcome, ticket_outcomes
from verify.reports.recurring import RecurringPlace, clusters, place_key, recurring_places
from verify.reports.spikes import CountModel, baseline, cell_tests, spikes, upper_tail
from verify.reports.terms import log_odds_z, top_terms, words
from verify.reports.weeks import IsoWeek, WeekError

ZONE = ZoneInfo("Asia/Shanghai")


def test_a_week_is_read_from_yyyy_www() -> None:
    assert IsoWeek.parse("2026-W48") == IsoWeek(2026, 48)
    assert str(IsoWeek(2026, 5)) == "2026-W05"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("2026-48", "expected YYYY-Www"),
        ("2026-W4", "expected YYYY-Www"),
        ("2026-W54", "2026 has no ISO week 54"),
        ("2025-W53", "2025 has no ISO week 53"),
        ("1999-W10", "must lie between 2000 and 2099"),
    ],
)
def test_a_bad_week_is_refused_saying_why(text: str, reason: str) -> None:
    with pytest.raises(WeekError, match=reason):
        IsoWeek.parse(text)


def test_the_last_complete_week_turns_at_local_monday_midnight() -> None:
    sunday_night = datetime(2026, 11, 29, 15, 59, tzinfo=UTC)  # Sunday 23:59 in Shanghai
    monday = sunday_night + timedelta(minutes=1)  # Monday 00:00 in Shanghai
    assert IsoWeek.last_complete(sunday_night, ZONE) == IsoWeek(2026, 47)
    assert IsoWeek.last_complete(monday, ZONE) == IsoWeek(2026, 48)


def test_a_week_runs_from_local_monday_to_the_next_in_utc() -> None:
    week = IsoWeek(2026, 48)
    assert week.start_utc(ZONE) == datetime(2026, 11, 22, 16, 0, tzinfo=UTC)
    assert week.end_utc(ZONE) == datetime(2026, 11, 29, 16, 0, tzinfo=UTC)
    assert [str(w) for w in week.trailing(3)] == ["2026-W45", "2026-W46", "2026-W47"]
    assert week.label == "2026-W48（11月23日—11月29日）"


def test_the_baseline_adds_half_a_count_to_the_trailing_total() -> None:
    assert baseline([2, 2, 2, 2]) == (2.125, 0.0)
    assert baseline([0, 0, 0, 0]) == (0.125, 0.0)


def test_a_steady_cell_is_tested_against_a_poisson_of_its_mean() -> None:
    expected, spread, model, p = upper_tail(6, [2, 2, 2, 2])
    assert (expected, spread, model) == (2.125, 0.0, CountModel.POISSON)
    assert p == pytest.approx(stats.poisson.sf(5, 2.125))
    assert round(p, 6) == 0.021509


def test_an_over_dispersed_cell_is_tested_against_a_negative_binomial_of_its_mean_and_variance() -> None:
    expected, spread, model, p = upper_tail(7, [0, 6, 1, 5, 0, 7, 2, 3])
    assert model == CountModel.NEGATIVE_BINOMIAL
    assert (expected, round(spread, 6)) == (3.0625, 7.428571)
    # Same mean and variance: n = m²/(v − m), p = m/v.
    n, q = expected**2 / (spread - expected), expected / spread
    assert stats.nbinom.mean(n, q) == pytest.approx(expected)
    assert stats.nbinom.var(n, q) == pytest.approx(spread)
    assert round(p, 4) == 0.1087
    # A Poisson would have called it: 0.0368.
    assert round(stats.poisson.sf(6, expected), 4) == 0.0368


def test_benjamini_hochberg_cuts_a_borderline_cell_among_five() -> None:
    cells = {
        ("城乡建设", "南山区"): (12, [2] * 8),
        ("交通运输", "宝安区"): (4, [1] * 8),
        ("环境保护", "福田区"): (7, [0, 6, 1, 5, 0, 7, 2, 3]),
        ("劳动保障", "罗湖区"): (1, [1] * 8),
        ("教育", "龙华区"): (1, [1, 0, 1, 0, 1, 0, 1, 0]),
    }
    tested = cell_tests(cells)
    assert [(t.category, round(t.p_value, 4), round(t.q_value, 4)) for t in tested] == [
        ("城乡建设", 0.0, 0.0),
        ("交通运输", 0.0231, 0.0577),  # p < 0.05, but q = 0.0231 × 5 / 2 > 0.05
        ("环境保护", 0.1087, 0.1811),
        ("教育", 0.4302, 0.5378),
        ("劳动保障", 0.6544, 0.6544),
    ]
    found = spikes(tested, level=0.05, min_count=3)
    assert [(s.category, s.count, s.expected, round(s.ratio, 3)) for s in found] == [
        ("城乡建设", 12, 2.0625, 5.818)
    ]


def test_a_significant_cell_below_the_minimum_count_is_no_spike() -> None:
    tested = cell_tests({("教育", "龙华区"): (2, [0] * 8)})
    assert round(tested[0].q_value, 4) == 0.0019
    assert spikes(tested, level=0.05, min_count=3) == []
    assert [t.count for t in spikes(tested, level=0.05, min_count=2)] == [2]


def test_no_cells_no_tests() -> None:
    assert cell_tests({}) == []


def test_place_names_written_differently_share_one_key_or_cluster() -> None:
    assert place_key("碧海花园 小区") == "碧海花园"
    assert place_key("ＡＢＣ大厦") == "abc大厦"
    assert clusters(["碧海花园", "碧海花园二期", "科技园", "花园"]) == {
        "花园": "花园",  # two characters name no one place: nothing joins it
        "科技园": "科技园",
        "碧海花园": "碧海花园",
        "碧海花园二期": "碧海花园",
    }


def _leads(rows: list[tuple[str, str | None, str | None]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            (i, week, "城乡建设", "南山区", street, landmark, 1, 0)
            for i, (week, street, landmark) in enumerate(rows)
        ],
        columns=["lead_id", "week", "category", "district", "street", "landmark", "posts", "engagement"],
    )


def test_a_place_recurs_with_leads_this_week_and_in_enough_trailing_weeks() -> None:
    leads = _leads(
        [
            ("W1", None, "碧海花园小区"),
            ("W2", None, "碧海花园二期"),
            ("W4", None, "碧海花园"),
            ("W4", None, "碧海花园"),
            ("W1", "粤海街道", None),
            ("W4", "粤海街道", None),
        ]
    )
    found = recurring_places(leads, "W4", ["W1", "W2", "W3"], min_weeks=2)
    assert found == [RecurringPlace("城乡建设", "南山区", "地标", "碧海花园", ("W1", "W2", "W4"), 4, 2)]
    # Street offices recur too when no landmark is named (one trailing week here).
    streets = recurring_places(leads, "W4", ["W1", "W2", "W3"], min_weeks=1)
    assert [(r.kind, r.place, r.weeks) for r in streets][1] == ("街道", "粤海街道", ("W1", "W4"))


def test_a_place_absent_this_week_does_not_recur() -> None:
    leads = _leads([("W1", None, "科技园"), ("W2", None, "科技园"), ("W3", None, "科技园")])
    assert recurring_places(leads, "W4", ["W1", "W2", "W3"], min_weeks=2) == []


def test_report_words_leave_out_stop_words_place_placeholders_and_single_characters() -> None:
    assert words("路面塌陷很危险，井盖松动") == {"路面", "塌陷", "危险", "井盖", "松动"}
    # The tokenizer gives 某地 (for 龙津), 河, 臭; 不, 亮: none is a report word.
    assert words("龙津河非常臭") == set()
    assert words("我们小区的路灯不亮") == {"小区", "路灯"}


def test_the_log_odds_z_of_a_word_every_lead_of_a_class_uses() -> None:
    # 12 of 12 leads of the class, 0 of the 13 others: log((12.5/0.5)/(0.5/13.5)) / sqrt(2/12.5·… ).
    expected = math.log((12.5 / 0.5) / (0.5 / 13.5)) / math.sqrt(1 / 12.5 + 1 / 0.5 + 1 / 0.5 + 1 / 13.5)
    assert log_odds_z(12, 12, 0, 13) == pytest.approx(expected)
    assert round(expected, 4) == 3.1964


def test_a_word_other_classes_share_ranks_below_one_only_this_class_uses() -> None:
    texts = pd.DataFrame(
        [(1, "城乡建设", "路面塌陷"), (1, "城乡建设", "路面塌陷很危险"), (2, "城乡建设", "路面塌陷")]
        + [(3, "交通运输", "公交车晚点，路面拥堵")],
        columns=["lead_id", "category", "text"],
    )
    terms = top_terms(texts, limit=2)
    # 路面 is in both of the class's leads but also in the other class's: 危险 (one lead) outranks it.
    assert [(t.term, t.leads, t.other_leads) for t in terms["城乡建设"]] == [("塌陷", 2, 0), ("危险", 1, 0)]
    assert [t.term for t in terms["交通运输"]] == ["公交车", "拥堵"]


def test_ticket_outcomes_count_returns_and_resolution_per_category() -> None:
    start = datetime(2026, 11, 22, 16, tzinfo=UTC)
    end = start + timedelta(weeks=1)
    sent = start + timedelta(hours=10)
    rows = [
        (1, "城乡建设", sent, sent + timedelta(hours=2), 0),
        (2, "城乡建设", sent, sent + timedelta(hours=4), 0),
        (3, "城乡建设", sent, sent + timedelta(hours=6), 1),
        (4, "城乡建设", sent, sent + timedelta(hours=10), 2),
        (5, "城乡建设", start - timedelta(hours=20), start + timedelta(hours=10), 1),
        (6, "交通运输", sent, None, 0),
    ]
    frame = pd.DataFrame(rows, columns=["ticket_id", "category", "sent_at", "closed_at", "reassignments"])
    outcomes = ticket_outcomes(frame, start, end)
    assert outcomes == [
        TicketOutcome("交通运输", 1, 0, 0, 0, None, None),
        TicketOutcome("城乡建设", 4, 2, 3, 5, 6.0, 22.0),
        TicketOutcome(ALL_CATEGORIES, 5, 2, 3, 5, 6.0, 22.0),
    ]
    assert [o.first_dispatch_accuracy for o in outcomes] == [1.0, 0.5, 0.6]
