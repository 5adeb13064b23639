"""Bad query values: 422 from the API, a named problem on pages and exports, no 500 on either database."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from review_client import csrf_of, submit_login

from storage.models import LeadState
from verify.days import EARLIEST, LATEST, end_utc, start_utc
from verify.exports import cases_frame
from verify.review import LeadFilter, QueueSort
from verify.web.filters import FIELD_HINTS, read_filter

#: The zone the shipped settings show times in (schedules.timezone).
ZONE = ZoneInfo("Asia/Shanghai")

pytestmark = pytest.mark.usefixtures("cheap_hashing")

#: (query parameter, value): each one the issue found, or one of its kind.
BAD_VALUES = [
    ("page", "1000000000000000000"),
    ("page", "0"),
    ("found_to", "9999-12-31"),
    ("found_from", "0001-01-01"),
    ("found_from", "2026-02-30"),
    ("score_min", "1.5"),
    ("score_max", "-0.1"),
    ("score_min", "nan"),
    ("score_max", "inf"),
    ("state", "bogus"),
    ("priority", "URGENT!"),
    ("type", "complaint"),
    ("type", "咨询"),
    ("sort", "random"),
    ("text", "路灯" * 51),
    ("category", "x" * 51),
    ("text", "路灯\x00"),
    ("category", "\x00"),
    ("district", "南山\x00区"),
    ("platform", "weibo\x00"),
]


@pytest.mark.parametrize(("name", "value"), BAD_VALUES)
def test_the_filter_model_refuses_each_bad_value(name: str, value: str) -> None:
    with pytest.raises(ValidationError) as refused:
        LeadFilter.model_validate({name: value})
    assert [error["loc"] for error in refused.value.errors()] == [(name,)]


def test_blank_values_mean_no_filter_and_text_is_trimmed() -> None:
    params = {"state": "", "page": "", "found_from": " ", "district": " 南山区 ", "score_min": "0.25"}
    assert LeadFilter.model_validate(params) == LeadFilter(district="南山区", score_min=0.25)


def test_the_edges_of_the_allowed_days_are_accepted() -> None:
    edges = LeadFilter.model_validate(
        {"found_from": "2000-01-01", "found_to": "2099-12-31", "page": "100000"}
    )
    assert (edges.found_from, edges.found_to, edges.page) == (date(2000, 1, 1), date(2099, 12, 31), 100_000)


def test_every_filter_field_but_the_page_size_has_a_chinese_label_and_hint() -> None:
    assert sorted(FIELD_HINTS) == sorted(set(LeadFilter.model_fields) - {"page_size"})


def test_a_page_url_keeps_its_valid_fields_and_names_the_bad_ones_in_chinese() -> None:
    params = {"district": "南山区", "found_to": "9999-12-31", "page": "1000000000000000000", "sort": "score"}
    criteria, problems = read_filter(params, 20)
    assert criteria == LeadFilter(district="南山区", sort=QueueSort.SCORE, page_size=20)
    assert problems == [
        "发现至（须为 2000-01-01 至 2099-12-31 之间的日期）",
        "页码（须为 1 至 100000 之间的整数）",
    ]


def test_shanghai_days_convert_to_utc_bounds_even_at_the_ends_of_the_calendar() -> None:
    assert start_utc(date(2026, 11, 29), ZONE) == datetime(2026, 11, 28, 16, 0, tzinfo=UTC)
    assert end_utc(date(2026, 11, 29), ZONE) == datetime(2026, 11, 29, 16, 0, tzinfo=UTC)
    assert (start_utc(date.min, ZONE), end_utc(date.max, ZONE)) == (EARLIEST, LATEST)
    assert end_utc(date(9999, 12, 30), ZONE) == datetime(9999, 12, 30, 16, 0, tzinfo=UTC)


def test_the_cases_export_takes_the_widest_dates_on_both_databases(session, make_lead) -> None:
    promoted = make_lead(state=LeadState.PROMOTED).id
    frame = cases_frame(session, since=date.min, until=date.max, zone=ZONE)
    assert frame["线索编号"].tolist() == [promoted]


@pytest.fixture
def client(app, session, make_lead) -> Iterator[TestClient]:
    make_lead(district="南山区", summary="南山路灯")
    make_lead(district="福田区", summary="福田噪音")
    with TestClient(app, follow_redirects=False) as test_client:
        assert submit_login(test_client, "alice", "alice-pw").status_code == 303
        yield test_client


@pytest.mark.parametrize("path", ["/api/v1/leads", "/api/v1/exports/leads.csv", "/api/v1/exports/cases.xlsx"])
def test_the_api_answers_each_bad_value_with_422_naming_it(client, path: str) -> None:
    answers = {}
    for name, value in BAD_VALUES:
        response = client.get(path, params={name: value})
        answers[name, value] = (response.status_code, [e["loc"] for e in response.json()["detail"]])
    assert answers == {(name, value): (422, [["query", name]]) for name, value in BAD_VALUES}


def test_the_queue_page_shows_the_valid_filter_and_says_what_it_ignored(client) -> None:
    response = client.get("/leads", params={"district": "南山区", "found_to": "9999-12-31"})
    assert response.status_code == 400
    assert "以下筛选条件无效，已忽略：发现至（须为 2000-01-01 至 2099-12-31 之间的日期）。" in response.text
    assert "南山路灯" in response.text and "福田噪音" not in response.text


def test_a_nul_byte_in_a_page_filter_is_named_not_a_server_error(client) -> None:
    response = client.get("/leads", params={"text": "路灯\x00"})
    assert response.status_code == 400
    assert "搜索（最多 100 个字，不能含控制字符）" in response.text


def test_a_page_export_with_a_bad_value_explains_instead_of_downloading(client) -> None:
    response = client.get("/exports/leads.csv", params={"district": "南山区", "found_from": "0001-01-01"})
    assert (response.status_code, response.headers["content-type"]) == (400, "text/html; charset=utf-8")
    assert "发现自（须为 2000-01-01 至 2099-12-31 之间的日期）" in response.text
    assert 'href="/leads?district=%E5%8D%97%E5%B1%B1%E5%8C%BA&amp;found_from=0001-01-01"' in response.text


def test_a_page_export_with_good_values_still_downloads(client) -> None:
    response = client.get("/exports/leads.csv", params={"district": "南山区", "found_to": "2099-12-31"})
    frame = pd.read_csv(io.BytesIO(response.content), encoding="utf-8-sig")
    assert (response.status_code, frame["摘要"].tolist()) == (200, ["南山路灯"])


def test_a_user_name_with_a_nul_byte_is_an_unknown_user(app) -> None:
    with TestClient(app, follow_redirects=False) as client:
        response = submit_login(client, "alice\x00", "alice-pw")
    assert (response.status_code, "用户名或密码错误" in response.text) == (401, True)


def test_api_writes_refuse_text_with_a_nul_byte(client, make_lead) -> None:
    lead = make_lead().id
    headers = {"X-CSRF-Token": csrf_of(client.get("/leads").text)}
    assert client.post(f"/api/v1/leads/{lead}/claim", headers=headers).status_code == 200
    verify = client.post(f"/api/v1/leads/{lead}/verify", headers=headers, json={"summary": "路灯\x00"})
    note = client.post(f"/api/v1/leads/{lead}/notes", headers=headers, json={"text": "\x00"})
    assert (verify.status_code, note.status_code) == (422, 422)


def test_a_note_form_with_a_nul_byte_is_refused_with_a_message(client, make_lead) -> None:
    lead = make_lead().id
    token = csrf_of(client.get(f"/leads/{lead}").text)
    response = client.post(f"/leads/{lead}/note", data={"text": "备注\x00", "csrf_token": token})
    assert response.status_code == 303
    assert "输入含有无法保存的字符（如 NUL 控制字符），请删除后重试。" in client.get(f"/leads/{lead}").text
