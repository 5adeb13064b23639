"""Fixtures for the crawl tests: one platform simulator per test module, a Redis key space per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from distributed_helpers import RedisSpace, clean_redis
from simulated import Simulator, simulator


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    """The seed-42 simulator on a free loopback port, fresh for each module (faults and time included)."""
    with simulator() as running:
        yield running


@pytest.fixture
def space() -> Iterator[RedisSpace]:
    """A key space of this test's own in the tests' Redis, empty before and removed after."""
    with clean_redis() as space:
        yield space
