"""The pusher's settings: a lease shorter than a POST can take is refused when config.yaml is loaded."""

from __future__ import annotations

from pathlib import Path

import pytest

from settings import ConfigError, load_settings


def test_a_lease_that_a_slow_post_could_outlive_is_a_config_error(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("dispatch:\n  timeout_seconds: 10\n  lease_seconds: 30\n", encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_settings(config, env={})
    assert str(raised.value) == (
        f"{config}: dispatch: Value error, lease_seconds (30) must exceed 3 × timeout_seconds (10)"
    )


def test_the_shipped_config_gives_the_pusher_a_two_minute_lease_and_thirty_second_backoff() -> None:
    dispatch = load_settings(env={}).dispatch
    assert (dispatch.lease_seconds, dispatch.timeout_seconds) == (120.0, 10.0)
    assert (dispatch.backoff_base_seconds, dispatch.backoff_max_seconds) == (30.0, 3600.0)


def test_the_shipped_config_assumes_the_dispatch_system_does_not_deduplicate_and_looks_up_instead() -> None:
    dispatch = load_settings(env={}).dispatch
    assert (dispatch.honours_idempotency_key, dispatch.lookup_by_attribute) == (False, False)
    assert (dispatch.lookup_max_results, dispatch.lookup_clock_slack_seconds) == (1000, 900.0)
