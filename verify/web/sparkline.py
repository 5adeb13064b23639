"""A platform's recent crawl volume as sparkline geometry (points of a polyline, the expected level);
the template `_sparkline.html` draws it as inline SVG, autoescaping every label."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

WIDTH, HEIGHT, PAD = 160, 32, 3


@dataclass(frozen=True)
class Point:
    x: float
    y: float


@dataclass(frozen=True)
class Sparkline:
    """Items per run, oldest first, scaled into a WIDTH × HEIGHT box; ``expected_y``: the expected
    volume's level (None when not learned yet)."""

    title: str
    values: tuple[int, ...]
    points: list[Point] = field(default_factory=list)
    expected_y: float | None = None
    width: int = WIDTH
    height: int = HEIGHT


def sparkline(values: Sequence[int], title: str, expected: float | None = None) -> Sparkline:
    """The geometry of ``values`` (oldest first); one value is drawn as a dot at the right end."""
    peak = max([*values, expected or 0, 1])
    plot_h = HEIGHT - 2 * PAD
    step = (WIDTH - 2 * PAD) / max(len(values) - 1, 1)

    def y(value: float) -> float:
        return PAD + plot_h * (1 - value / peak)

    offset = 0.0 if len(values) > 1 else WIDTH - 2 * PAD
    points = [Point(PAD + offset + i * step, y(v)) for i, v in enumerate(values)]
    return Sparkline(title, tuple(values), points, y(expected) if expected is not None else None)
