"""Field-mapping paths and time formats that only some platforms use."""

from __future__ import annotations

from datetime import UTC, datetime

from crawlers.fields import json_path, parse_time


def test_star_segment_fans_out_over_an_objects_values_in_order() -> None:
    data = {"comments": {"101": {"content": "甲"}, "102": {"content": "乙"}}}
    assert json_path(data, "comments.*.content") == ["甲", "乙"]


def test_star_segment_on_a_list_or_scalar_yields_nothing() -> None:
    assert json_path({"comments": [1, 2]}, "comments.*") == []
    assert json_path({"comments": "x"}, "comments.*") == []


def test_dotnet_json_date_is_epoch_milliseconds() -> None:
    assert parse_time("/Date(1732770000000+0800)/") == datetime(2024, 11, 28, 5, 0, tzinfo=UTC)
    assert parse_time("/Date(1732770000000)/") == datetime(2024, 11, 28, 5, 0, tzinfo=UTC)
