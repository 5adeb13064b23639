"""The one way tests wait for something another thread or process does: until a condition holds."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

#: How often the condition is looked at: short next to any timeout, long next to one look's cost.
POLL_SECONDS = 0.02


def wait_until(predicate: Callable[[], T], timeout: float, what: str) -> T:
    """Return ``predicate()``'s value as soon as it is true; fail naming ``what`` after ``timeout`` seconds.

    For conditions nothing signals in-process (rows another process writes, a port, a pid): where an
    Event, a join or ``Popen.wait`` can say it, use that instead.
    """
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(POLL_SECONDS)
    return value
