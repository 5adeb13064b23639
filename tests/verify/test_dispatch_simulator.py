"""The Open311 GeoReport v2 dispatch simulator: services, validation, idempotent request creation."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from waiting import wait_until

from fixtures.dispatch_simulator.app import SimulatorOptions, create_app
from fixtures.dispatch_simulator.faults import FaultPlan
from fixtures.serving import serve_in_thread
from verify.reconcile import w3c

FORM = {
    "jurisdiction_id": "shenzhen",
    "service_code": "urban-construction",
    "description": "南山区科技园路灯不亮",
    "address_string": "深圳南山区粤海街道科技园",
    "attribute[urgency]": "ordinary",
    "attribute[lead_id]": "7",
    "attribute[idempotency_key]": "weisu-lead-7",
}


def test_services_lists_the_configured_service_codes(dispatch_db: Path) -> None:
    client = TestClient(create_app(dispatch_db))
    codes = {s["service_code"]: s["service_name"] for s in client.get("/services.json").json()}
    assert codes["urban-construction"] == "城乡建设"
    assert codes["other"] == "其他"
    assert len(codes) == 8


def test_repeated_post_with_one_idempotency_key_returns_the_same_id_and_stores_once(dispatch_db) -> None:
    client = TestClient(create_app(dispatch_db))
    first = client.post("/requests.json", data=FORM)
    again = client.post("/requests.json", data=FORM)
    assert first.status_code == 201 and again.status_code == 200
    assert first.json() == [{"service_request_id": "sr-000001", "service_notice": "已受理"}]
    assert again.json() == first.json()
    stored = client.get("/_requests").json()["requests"]
    assert len(stored) == 1
    assert stored[0]["idempotency_key"] == "weisu-lead-7"
    assert stored[0]["submissions"] == 2
    assert stored[0]["attributes"] == {
        "urgency": "ordinary",
        "lead_id": "7",
        "idempotency_key": "weisu-lead-7",
    }


def test_unknown_service_code_is_a_400_in_open311_error_format(dispatch_db) -> None:
    client = TestClient(create_app(dispatch_db))
    response = client.post("/requests.json", data={**FORM, "service_code": "nope"})
    assert response.status_code == 400
    assert response.json() == [{"code": 400, "description": "unknown service_code: 'nope'"}]
    assert client.get("/_requests").json() == {"requests": []}


def test_a_stored_request_can_be_read_back(dispatch_db) -> None:
    client = TestClient(create_app(dispatch_db))
    client.post("/requests.json", data=FORM)
    [one] = client.get("/requests/sr-000001.json").json()
    assert (one["service_request_id"], one["status"], one["address"]) == (
        "sr-000001",
        "open",
        FORM["address_string"],
    )
    assert [r["service_request_id"] for r in client.get("/requests.json").json()] == ["sr-000001"]
    assert client.get("/requests/sr-999999.json").status_code == 404


def test_requests_survive_a_restart_of_the_simulator(dispatch_db) -> None:
    TestClient(create_app(dispatch_db)).post("/requests.json", data=FORM)
    again = TestClient(create_app(dispatch_db)).post("/requests.json", data=FORM)
    assert again.json()[0]["service_request_id"] == "sr-000001"


def test_a_fault_hook_can_answer_instead_of_the_simulator(dispatch_db) -> None:
    async def unavailable(request: Request) -> Response | None:
        return JSONResponse([{"code": 503, "description": "down"}], status_code=503)

    options = SimulatorOptions(services={"urban-construction": "城乡建设"}, faults=[unavailable])
    client = TestClient(create_app(dispatch_db, options))
    assert client.post("/requests.json", data=FORM).status_code == 503
    assert client.get("/_requests").json() == {"requests": []}


SERVICES = {"urban-construction": "城乡建设"}


def faulty(dispatch_db: Path, **knobs: float) -> TestClient:
    options = SimulatorOptions(services=SERVICES, fault_plan=FaultPlan(**knobs))  # type: ignore[arg-type]
    return TestClient(create_app(dispatch_db, options))


def draws(plan: FaultPlan, keys: list[str]) -> dict[tuple[str, int], str | None]:
    """Two submissions of every key, in the given order; keyed by (key, submission number)."""
    return {(key, n): plan.draw(key) for n in (1, 2) for key in keys}


def test_fault_draws_depend_only_on_seed_key_and_submission_number() -> None:
    keys = [f"weisu-lead-{n}" for n in range(1000)]
    knobs = {"error_rate": 0.1, "throttle_rate": 0.1, "drop_after_store_rate": 0.1}
    in_order = draws(FaultPlan(**knobs, seed=7), keys)
    assert draws(FaultPlan(**knobs, seed=7), keys[::-1]) == in_order
    assert draws(FaultPlan(**knobs, seed=8), keys) != in_order
    first = [in_order[(key, 1)] for key in keys]
    assert {kind: first.count(kind) for kind in ("error", "throttle", "drop", "slow", None)} == {
        "error": 95,
        "throttle": 113,
        "drop": 97,
        "slow": 0,
        None: 695,
    }


def test_rates_above_one_in_total_are_refused() -> None:
    with pytest.raises(ValueError, match="add up to at most 1"):
        FaultPlan(error_rate=0.6, drop_after_store_rate=0.6)


def test_an_error_fault_answers_500_and_stores_nothing(dispatch_db) -> None:
    client = faulty(dispatch_db, error_rate=1.0)
    response = client.post("/requests.json", data=FORM)
    assert (response.status_code, response.json()) == (
        500,
        [{"code": 500, "description": "internal server error"}],
    )
    assert client.get("/_stats").json() == {"requests": 0, "submissions": 1, "fault_error": 1}


def test_a_throttle_fault_answers_429_with_retry_after(dispatch_db) -> None:
    client = faulty(dispatch_db, throttle_rate=1.0, retry_after_seconds=7)
    response = client.post("/requests.json", data=FORM)
    assert (response.status_code, response.headers["Retry-After"]) == (429, "7")
    assert client.get("/_requests").json() == {"requests": []}


def test_a_dropped_connection_after_store_keeps_the_request_and_a_retry_recovers_its_id(dispatch_db) -> None:
    plan = FaultPlan(drop_after_store_rate=1.0)
    with serve_in_thread(
        create_app(dispatch_db, SimulatorOptions(services=SERVICES, fault_plan=plan))
    ) as url:
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.post(f"{url}/requests.json", data=FORM)
        plan.drop_after_store_rate = 0.0
        again = httpx.post(f"{url}/requests.json", data=FORM)
        stored = httpx.get(f"{url}/_requests").json()["requests"]
    assert (again.status_code, again.json()[0]["service_request_id"]) == (200, "sr-000001")
    assert [(r["service_request_id"], r["submissions"]) for r in stored] == [("sr-000001", 2)]


def test_a_slow_answer_times_the_client_out_but_the_request_is_still_stored(dispatch_db) -> None:
    plan = FaultPlan(slow_rate=1.0, slow_seconds=1.0)
    with serve_in_thread(
        create_app(dispatch_db, SimulatorOptions(services=SERVICES, fault_plan=plan))
    ) as url:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{url}/requests.json", data=FORM, timeout=0.2)
        wait_until(
            lambda: httpx.get(f"{url}/_stats").json()["requests"] > 0, 10, "the slow request to be stored"
        )
        stats = httpx.get(f"{url}/_stats").json()
    assert stats == {"requests": 1, "submissions": 1, "fault_slow": 1}


def test_the_city_can_close_a_request_with_a_note(dispatch_db) -> None:
    client = TestClient(create_app(dispatch_db))
    client.post("/requests.json", data=FORM)
    answer = client.post(
        "/_requests/sr-000001/status", data={"status": "closed", "status_notes": "路灯已修复"}
    )
    [one] = client.get("/requests/sr-000001.json").json()
    assert answer.status_code == 200
    assert (one["status"], one["status_notes"]) == ("closed", "路灯已修复")
    assert client.post("/_requests/sr-999999/status", data={"status": "closed"}).status_code == 404
    assert client.post("/_requests/sr-000001/status", data={"status": "gone"}).status_code == 400


def test_a_simulator_that_answers_duplicates_with_409_names_the_stored_request(dispatch_db) -> None:
    client = TestClient(create_app(dispatch_db, SimulatorOptions(services=SERVICES, duplicate_status=409)))
    assert client.post("/requests.json", data=FORM).status_code == 201
    again = client.post("/requests.json", data=FORM)
    assert (again.status_code, again.json()) == (
        409,
        [{"code": 409, "description": "duplicate idempotency key", "service_request_id": "sr-000001"}],
    )


def test_the_city_can_hand_a_request_to_another_unit(dispatch_db) -> None:
    client = TestClient(create_app(dispatch_db))
    client.post("/requests.json", data={**FORM, "attribute[responsible_unit]": "南山区城管局"})
    [before] = client.get("/requests/sr-000001.json").json()
    client.post("/_requests/sr-000001/status", data={"agency_responsible": "粤海街道办事处"})
    [after] = client.get("/requests/sr-000001.json").json()
    assert (before["agency_responsible"], after["agency_responsible"], after["status"]) == (
        "南山区城管局",
        "粤海街道办事处",
        "open",
    )


def test_a_return_rate_outside_zero_to_one_is_refused() -> None:
    with pytest.raises(ValueError, match="return_rate must be between 0 and 1, not 1.5"):
        FaultPlan(return_rate=1.5)


def test_a_simulator_that_ignores_the_key_stores_a_request_asked_twice_twice(dispatch_db) -> None:
    options = SimulatorOptions(services=SERVICES, honour_idempotency_key=False)
    client = TestClient(create_app(dispatch_db, options))
    first = client.post("/requests.json", data=FORM)
    again = client.post("/requests.json", data=FORM)
    stored = client.get("/_requests").json()["requests"]
    assert (first.status_code, again.status_code) == (201, 201)
    assert [answer.json()[0]["service_request_id"] for answer in (first, again)] == ["sr-000001", "sr-000002"]
    assert [(r["idempotency_key"], r["attributes"]["idempotency_key"]) for r in stored] == [
        (None, "weisu-lead-7"),
        (None, "weisu-lead-7"),
    ]


def listed_ids(client: TestClient, **params: str) -> list[str]:
    answer = client.get("/requests.json", params=params)
    assert answer.status_code == 200, answer.text
    return [record["service_request_id"] for record in answer.json()]


def test_requests_are_listed_by_the_geo_report_v2_query_parameters(dispatch_db) -> None:
    services = {**SERVICES, "transport": "交通运输"}
    client = TestClient(create_app(dispatch_db, SimulatorOptions(services=services)))
    for n, code in enumerate(["urban-construction", "transport", "urban-construction"], start=1):
        key = {"attribute[idempotency_key]": f"weisu-lead-{n}"}
        client.post("/requests.json", data={**FORM, **key, "service_code": code})
    client.post("/_requests/sr-000002/status", data={"status": "closed"})
    [record] = client.get("/requests.json", params={"service_request_id": "sr-000002"}).json()
    requested = datetime.fromisoformat(record["requested_datetime"])
    assert listed_ids(client) == ["sr-000001", "sr-000002", "sr-000003"]
    assert listed_ids(client, service_request_id="sr-000003,sr-000001") == ["sr-000001", "sr-000003"]
    assert listed_ids(client, service_code="transport") == ["sr-000002"]
    assert listed_ids(client, status="open") == ["sr-000001", "sr-000003"]
    assert listed_ids(client, status="open,closed") == ["sr-000001", "sr-000002", "sr-000003"]
    assert listed_ids(client, **{"attribute[idempotency_key]": "weisu-lead-3"}) == ["sr-000003"]
    earlier, later = w3c(requested - timedelta(minutes=5)), w3c(requested + timedelta(minutes=5))
    assert listed_ids(client, start_date=earlier, end_date=later) == ["sr-000001", "sr-000002", "sr-000003"]
    assert listed_ids(client, start_date=later) == []
    assert listed_ids(client, end_date=earlier) == []


def test_a_listing_stops_at_the_servers_limit_and_refuses_a_date_it_cannot_read(dispatch_db) -> None:
    client = TestClient(create_app(dispatch_db, SimulatorOptions(services=SERVICES, max_results=2)))
    for n in range(3):
        client.post("/requests.json", data={**FORM, "attribute[idempotency_key]": f"weisu-lead-{n}"})
    assert listed_ids(client) == ["sr-000001", "sr-000002"]
    answer = client.get("/requests.json", params={"start_date": "yesterday"})
    assert (answer.status_code, answer.json()) == (
        400,
        [{"code": 400, "description": "start_date is not a W3C date-time: 'yesterday'"}],
    )
