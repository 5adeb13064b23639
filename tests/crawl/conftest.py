"""Fixtures for the crawl tests: one platform simulator per test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from simulated import Simulator, simulator


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    """The seed-42 simulator on a free loopback port, fresh for each module (faults and time included)."""
    with simulator() as running:
        yield running
