"""What goes on the wire: the unit from the list, lat/long, evidence links, a configurable mapping."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select, update

from fixtures.dispatch_simulator.app import SimulatorOptions, configured_services
from fixtures.dispatch_simulator.app import create_app as create_simulator
from fixtures.leads import promote
from fixtures.serving import serve_in_thread
from storage.models import Lead, Post, Ticket, TicketState
from verify import responsibility
from verify.pusher import UnknownServiceCodes, check_service_codes, push_pending
from verify.responsibility import RuleRow
from verify.sync import sync_statuses


def sent_forms(settings, session_factory) -> list[dict[str, str]]:
    """Push every queued ticket to a server that accepts each; the forms it received, in order."""
    forms: list[dict[str, str]] = []

    def accept(request: httpx.Request) -> httpx.Response:
        forms.append(dict(httpx.QueryParams(request.content.decode())))
        return httpx.Response(201, json=[{"service_request_id": "sr-1"}])

    push_pending(settings, session_factory, transport=httpx.MockTransport(accept))
    return forms


@pytest.fixture
def listed(session):
    for row in (
        RuleRow("城乡建设", "深圳市住房和建设局"),
        RuleRow("城乡建设", "深圳市南山区城市管理和综合执法局", district="南山区"),
    ):
        responsibility.create(session=session, row=row, actor="admin")
    session.commit()
    return session


def test_the_request_carries_the_listed_unit_the_district_point_and_the_evidence_links(
    listed, session_factory, make_lead, settings, dispatch_db
) -> None:
    ticket = promote(listed, make_lead, settings, "路灯坏了", "路灯还是不亮")
    urls = list(listed.scalars(select(Post.url).order_by(Post.id)))
    listed.commit()  # SQLite: no open transaction while the pusher writes
    with serve_in_thread(create_simulator(dispatch_db)) as url:
        settings = settings.changed(dispatch={"base_url": url})
        push_pending(settings, session_factory)
        [stored] = httpx.get(f"{url}/_requests").json()["requests"]
    assert (stored["lat"], stored["long"]) == (22.533, 113.93)
    assert stored["agency_responsible"] == "深圳市南山区城市管理和综合执法局"
    assert stored["description"] == (
        f"【{ticket.idempotency_key}】南山区科技园路灯不亮\n责任单位: 深圳市南山区城市管理和综合执法局"
    )
    assert stored["attributes"] == {
        "urgency": "ordinary",
        "lead_id": str(ticket.lead_id),
        "idempotency_key": ticket.idempotency_key,
        "category": "城乡建设",
        "responsible_unit": "深圳市南山区城市管理和综合执法局",
        "evidence": "\n".join(urls),
    }
    listed.expire_all()
    sent = listed.get(Ticket, ticket.id)
    assert (sent.state, sent.agency_responsible) == (TicketState.SENT, "深圳市南山区城市管理和综合执法局")
    assert listed.get(Lead, ticket.lead_id).responsible_unit == "深圳市南山区城市管理和综合执法局"


def test_the_analysts_unit_wins_over_the_list_and_a_lead_without_district_gets_no_point(
    listed, session_factory, make_lead, settings
) -> None:
    promote(listed, make_lead, settings, district=None, street=None, responsible_unit="深圳市水务局")
    forms = sent_forms(settings, session_factory)
    [form] = forms
    assert form["attribute[responsible_unit]"] == "深圳市水务局"
    assert "lat" not in form and "long" not in form


def test_only_whole_http_links_are_sent_as_evidence(session, session_factory, make_lead, settings) -> None:
    ticket = promote(session, make_lead, settings, "甲", "乙", "丙")
    posts = session.scalars(select(Post).order_by(Post.id)).all()
    hostile = {posts[0].id: "javascript:alert(1)", posts[1].id: "https://x.example/a b"}
    for post_id, url in hostile.items():
        session.execute(update(Post).where(Post.id == post_id).values(url=url))
    session.commit()
    forms = sent_forms(settings, session_factory)
    assert forms[0]["attribute[evidence]"] == posts[2].url
    assert forms[0]["attribute[lead_id]"] == str(ticket.lead_id)


def test_field_names_and_paths_from_the_config_serve_another_ticket_api(
    session, session_factory, make_lead, settings
) -> None:
    ticket = promote(session, make_lead, settings)
    field_names = {
        "service_code": "type",
        "description": "content",
        "lat": "latitude",
        "service_request_id": "id",
        "status": "state",
        "status_notes": "remark",
    }
    settings = settings.changed(
        dispatch={
            "request_path": "/api/v2/tickets",
            "status_path": "/api/v2/tickets/{id}",
            "field_names": field_names,
        }
    )
    seen: list[tuple[str, str, list[str]]] = []

    def other_api(request: httpx.Request) -> httpx.Response:
        names = sorted(httpx.QueryParams(request.content.decode()).keys())
        seen.append((request.method, request.url.path, names))
        if request.method == "POST":
            return httpx.Response(201, json={"id": "T-9"})  # an object, not Open311's one-item list
        return httpx.Response(200, json={"id": "T-9", "state": "closed", "remark": "已办结"})

    transport = httpx.MockTransport(other_api)
    pushed = push_pending(settings, session_factory, transport=transport)
    synced = sync_statuses(settings, session_factory, transport=transport)
    assert (pushed.sent, synced.closed) == (1, 1)
    [(_, post_path, names), (method, get_path, _)] = seen
    assert (post_path, method, get_path) == ("/api/v2/tickets", "GET", "/api/v2/tickets/T-9")
    assert {"type", "content", "latitude", "long"} <= set(names)
    assert not {"service_code", "description", "lat"} & set(names)
    session.expire_all()
    row = session.get(Ticket, ticket.id)
    assert (row.service_request_id, row.dispatch_status, row.status_notes) == ("T-9", "closed", "已办结")


def test_service_codes_the_dispatch_system_does_not_offer_are_named_at_start(settings, dispatch_db) -> None:
    typos = {"环境保护": "enviroment", "卫生计生": "helth"}
    settings = settings.changed(dispatch={"service_codes": {**settings.dispatch.service_codes, **typos}})
    services = configured_services()
    with serve_in_thread(create_simulator(dispatch_db, SimulatorOptions(services=services))) as url:
        settings = settings.changed(dispatch={"base_url": url})
        with pytest.raises(UnknownServiceCodes) as raised:
            check_service_codes(settings)
    assert str(raised.value) == "service codes unknown to the dispatch system: enviroment, helth"


def test_tickets_outside_the_pushable_states_are_never_sent(
    session, session_factory, make_lead, settings
) -> None:
    parked = promote(session, make_lead, settings)
    session.execute(update(Ticket).where(Ticket.id == parked.id).values(state=TicketState.ACKNOWLEDGED))
    session.commit()

    def refuse(request: httpx.Request) -> httpx.Response:
        raise AssertionError("nothing should be sent")

    summary = push_pending(settings, session_factory, transport=httpx.MockTransport(refuse))
    assert summary.attempted == 0


def test_the_reference_opens_the_description_even_when_it_is_cut_to_the_limit(
    session, session_factory, make_lead, settings
) -> None:
    ticket = promote(session, make_lead, settings)
    long_payload = {**ticket.payload, "description": "路灯不亮" * 1500}  # as another mapping might build it
    session.execute(update(Ticket).where(Ticket.id == ticket.id).values(payload=long_payload))
    session.commit()
    forms = sent_forms(settings, session_factory)
    [form] = forms
    assert form["description"].startswith(f"【{ticket.idempotency_key}】路灯不亮")
    assert len(form["description"]) == 4000


def test_a_rule_added_after_promotion_does_not_change_the_unit_the_queued_ticket_sends(
    listed, session_factory, make_lead, settings
) -> None:
    """Promotion decides the unit once; the pusher sends what the payload carries."""
    ticket = promote(listed, make_lead, settings, district="南山区", street="粤海街道")
    row = RuleRow("城乡建设", "深圳市南山区粤海街道综合行政执法队", district="南山区", street="粤海街道")
    responsibility.create(session=listed, row=row, actor="admin")
    listed.commit()
    [form] = sent_forms(settings, session_factory)
    assert form["attribute[responsible_unit]"] == "深圳市南山区城市管理和综合执法局"
    assert ticket.payload["attribute[responsible_unit]"] == "深圳市南山区城市管理和综合执法局"


def test_a_ticket_promoted_with_no_listed_unit_is_sent_without_one_and_the_lead_stays_without(
    session, session_factory, make_lead, settings
) -> None:
    ticket = promote(session, make_lead, settings)
    responsibility.create(session=session, row=RuleRow("城乡建设", "深圳市住房和建设局"), actor="admin")
    session.commit()
    [form] = sent_forms(settings, session_factory)
    assert "attribute[responsible_unit]" not in form
    assert "责任单位" not in form["description"]
    session.expire_all()
    assert (session.get(Ticket, ticket.id).state, session.get(Lead, ticket.lead_id).responsible_unit) == (
        TicketState.SENT,
        None,
    )
