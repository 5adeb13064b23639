"""Field-mapping paths and time formats that only some platforms use."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from scrapy import Selector
from scrapy.http import HtmlResponse

from crawlers.fields import json_path, parse_time, select, select_first


def test_star_segment_fans_out_over_an_objects_values_in_order() -> None:
    data = {"comments": {"101": {"content": "甲"}, "102": {"content": "乙"}}}
    assert json_path(data, "comments.*.content") == ["甲", "乙"]


def test_star_segment_on_a_list_or_scalar_yields_nothing() -> None:
    assert json_path({"comments": [1, 2]}, "comments.*") == []
    assert json_path({"comments": "x"}, "comments.*") == []


def test_dotnet_json_date_is_epoch_milliseconds() -> None:
    assert parse_time("/Date(1732770000000+0800)/") == datetime(2024, 11, 28, 5, 0, tzinfo=UTC)
    assert parse_time("/Date(1732770000000)/") == datetime(2024, 11, 28, 5, 0, tzinfo=UTC)


def test_a_page_is_queried_once_per_expression_whoever_asks(monkeypatch: pytest.MonkeyPatch) -> None:
    # The wall check asks a board page for its rows before the spider does: one query serves both.
    queries: list[str] = []
    css = Selector.css

    def counted(self: Selector, query: str) -> Any:
        queries.append(query)
        return css(self, query)

    monkeypatch.setattr(Selector, "css", counted)
    body = '<ul><li class="row"><a href="/t/1">甲</a></li><li class="row"><a href="/t/2">乙</a></li></ul>'
    page = HtmlResponse("https://bbs.example/list", body=body, encoding="utf-8")
    rows = select(page, "li.row")
    assert select(page, "li.row") is rows
    assert [select_first(row, "a::text") for row in rows] == ["甲", "乙"]
    assert queries == ["li.row", "a::text", "a::text"]  # rows inside a page are asked as usual
    same_body = HtmlResponse("https://bbs.example/list", body=body, encoding="utf-8")
    assert len(select(same_body, "li.row")) == 2
    assert queries[-1] == "li.row"  # another response is queried afresh
