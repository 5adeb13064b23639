"""Property: no query string, however hostile, gets a 5xx from the queue page, the API or the exports.

Runs on SQLite and, with WEISU_TEST_DATABASE_URL, on PostgreSQL (NUL bytes and out-of-range numbers
fail differently there). The page and the API read one model, so they must also agree: the API
refuses a query (422) exactly when the page names a problem (400).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from review_client import submit_login

from storage.models import LeadState, Priority, RequestType
from verify.web.filters import FIELD_HINTS

pytestmark = pytest.mark.usefixtures("cheap_hashing")

# Enough to find the kinds of value that broke before, small enough for CI on two databases.
MAX_EXAMPLES = 150
KEYS = [*FIELD_HINTS, "page_size", "unknown"]
EDGES = [
    "1000000000000000000", "-1", "0", "1", "2", "100000", "100001", "2147483648", "1e309", "nan", "inf",
    "-0.0", "0.5", "9999-12-31", "0001-01-01", "2000-01-01", "2099-12-31", "2100-01-01", "2026-11-29",
    "2026-02-30", "\x00", "a\x00b", "路灯" * 60, "%", "_", "' OR 1=1 --", "new", "merged", "urgent",
    "score", "uncertainty", "南山区", "weibo", " ", "question", "suggestion",
]  # fmt: skip
values = st.one_of(
    st.sampled_from(EDGES),
    st.text(max_size=120),
    st.integers().map(str),
    st.floats().map(str),
    st.dates().map(str),
    st.sampled_from([*LeadState, *Priority, *RequestType]).map(str),
)
queries = st.dictionaries(st.sampled_from(KEYS), values, max_size=5)
EXPORTS = ["leads.csv", "leads.xlsx", "cases.csv", "cases.xlsx"]


@pytest.fixture
def client(app, session, make_lead) -> Iterator[TestClient]:
    make_lead(district="南山区", summary="南山路灯 50%")
    make_lead(district="福田区", priority=Priority.URGENT, state=LeadState.PROMOTED)
    make_lead(state=LeadState.MERGED, score=0.5, request_type=RequestType.QUESTION)
    with TestClient(app, follow_redirects=False) as test_client:
        assert submit_login(test_client, "alice", "alice-pw").status_code == 303
        yield test_client


def test_no_query_gets_a_server_error_and_page_and_api_agree(client) -> None:
    # Driven through Hypothesis directly, so the fixtures (a database per backend) are built once.
    @given(query=queries, export=st.sampled_from(EXPORTS))
    @example(query={"page": "1000000000000000000"}, export="leads.csv")
    @example(query={"found_to": "9999-12-31"}, export="cases.csv")
    @example(query={"found_from": "0001-01-01"}, export="leads.xlsx")
    @example(
        query={"text": "\x00", "district": "\x00", "category": "\x00", "platform": "\x00"}, export="leads.csv"
    )
    @hypothesis_settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    def never_a_server_error(query: dict[str, str], export: str) -> None:
        page = client.get("/leads", params=query)
        api = client.get("/api/v1/leads", params=query)
        page_export = client.get(f"/exports/{export}", params=query)
        api_export = client.get(f"/api/v1/exports/{export}", params=query)
        assert page.status_code in (200, 400), (query, page.status_code)
        assert page_export.status_code == page.status_code, (query, page_export.status_code)
        assert api.status_code in (200, 422), (query, api.status_code)
        assert api_export.status_code == api.status_code, (query, api_export.status_code)
        if "page_size" not in query:  # the page sets its own size, the API reads it from the URL
            assert (page.status_code == 400) == (api.status_code == 422), query

    never_a_server_error()
