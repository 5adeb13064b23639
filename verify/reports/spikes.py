"""Spikes: this week's count of a (category, district) cell against its trailing weeks, tested for an
unusual rise, with the false-discovery rate of all the week's cells controlled (Benjamini–Hochberg).

Pure functions on counts, so the figures can be checked by hand. A cell's trailing weeks give its
expected count (their mean) and its spread. When the spread is no wider than Poisson's (variance ≤
mean) the count is tested against a Poisson distribution of that mean; when the weeks are
over-dispersed (variance > mean) against a negative binomial with the same mean and variance, so a
cell that is noisy by nature needs a bigger rise to be called a spike.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from statistics import variance

from scipy import stats

#: Added to a cell's trailing total (Jeffreys' half count): a cell never seen before expects 0.5/K leads
#: a week, not 0, so its first lead is surprising but not infinitely so (a Poisson of mean 0 would give
#: every count p = 0).
PRIOR_COUNT = 0.5


class CountModel(enum.StrEnum):
    """The distribution a cell's count was tested against."""

    POISSON = "poisson"
    NEGATIVE_BINOMIAL = "negative_binomial"


#: How the report names the models (workbook, page).
COUNT_MODEL_LABELS = {CountModel.POISSON: "泊松", CountModel.NEGATIVE_BINOMIAL: "负二项"}


@dataclass(frozen=True)
class CellTest:
    """One cell's test: this week's count, what the trailing weeks lead one to expect, p and q."""

    category: str
    district: str
    count: int
    expected: float
    variance: float
    model: CountModel
    p_value: float
    q_value: float = 1.0

    @property
    def ratio(self) -> float:
        """This week's count over the expected count (expected is never 0: see PRIOR_COUNT)."""
        return self.count / self.expected


def baseline(history: Sequence[int]) -> tuple[float, float]:
    """(expected count, variance) from the trailing weeks' counts, oldest first."""
    if not history:
        raise ValueError("a cell needs at least one trailing week")
    expected = (sum(history) + PRIOR_COUNT) / len(history)
    spread = variance(history) if len(history) > 1 else 0.0
    return expected, float(spread)


def upper_tail(count: int, history: Sequence[int]) -> tuple[float, float, CountModel, float]:
    """(expected, variance, model, p): p is the chance of ``count`` or more under the cell's model."""
    expected, spread = baseline(history)
    if spread > expected:
        # Same mean and variance: p = mean/variance, n = mean²/(variance − mean).
        p = expected / spread
        n = expected * expected / (spread - expected)
        return expected, spread, CountModel.NEGATIVE_BINOMIAL, float(stats.nbinom.sf(count - 1, n, p))
    return expected, spread, CountModel.POISSON, float(stats.poisson.sf(count - 1, expected))


def cell_tests(cells: Mapping[tuple[str, str], tuple[int, Sequence[int]]]) -> list[CellTest]:
    """Test every cell ((category, district) → (this week's count, trailing counts)); q-values by
    Benjamini–Hochberg over all of them. Ordered by q, then by ratio (largest first), then by name."""
    tests = []
    for (category, district), (count, history) in cells.items():
        expected, spread, model, p_value = upper_tail(count, history)
        tests.append(CellTest(category, district, count, expected, spread, model, p_value))
    if not tests:
        return []
    q_values = stats.false_discovery_control([t.p_value for t in tests], method="bh")
    tested = [replace(t, q_value=float(q)) for t, q in zip(tests, q_values, strict=True)]
    return sorted(tested, key=lambda t: (t.q_value, -t.ratio, t.category, t.district))


def spikes(tested: Sequence[CellTest], level: float, min_count: int) -> list[CellTest]:
    """The cells that rose: q ≤ ``level``, at least ``min_count`` leads, and above the expected count."""
    return [t for t in tested if t.q_value <= level and t.count >= min_count and t.count > t.expected]
