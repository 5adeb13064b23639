"""The Open311 GeoReport v2 dispatch simulator: services, validation, idempotent request creation."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from fixtures.dispatch_simulator.app import SimulatorOptions, create_app

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
