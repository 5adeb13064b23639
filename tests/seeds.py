"""The random seed of a test run: one per run, the same in every pytest-xdist worker."""

from __future__ import annotations

import os
import random

#: Set it to repeat a run's random seed: ``WEISU_TEST_RANDOM_SEED=123456 make test``.
RANDOM_SEED_VARIABLE = "WEISU_TEST_RANDOM_SEED"


def random_seed_of_this_run() -> int:
    """This run's random seed, drawn by the first process that asks and kept in the environment.

    The controlling pytest process asks in ``pytest_configure``, before it starts its workers, so every
    worker inherits the same seed and collects the same test ids (xdist refuses workers whose
    collections differ).
    """
    value = os.environ.get(RANDOM_SEED_VARIABLE)
    if not value:
        value = str(random.SystemRandom().randrange(1, 1_000_000))
        os.environ[RANDOM_SEED_VARIABLE] = value
    return int(value)
