"""Merges never hide a complaint: only open leads receive one, chains stay one step, a race has one winner."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from review_client import csrf_of, submit_login
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from settings import Settings
from storage.models import AuditEvent, Lead, LeadState
from verify import workflow
from verify.users import create_token
from verify.workflow import MergeRefused

S = LeadState
pytestmark = pytest.mark.usefixtures("cheap_hashing")


@pytest.fixture
def merge(session: Session, settings: Settings) -> Callable[[int, int], Lead]:
    """Claim ``source`` as alice and merge it into ``target`` (committed)."""

    def run(source: int, target: int) -> Lead:
        workflow.claim(session=session, lead_id=source, actor="alice", settings=settings)
        try:
            merged = workflow.merge(session=session, lead_id=source, into_id=target, actor="alice")
        except MergeRefused:
            session.rollback()
            raise
        session.commit()
        return merged

    return run


def states(session: Session, *ids: int) -> list[tuple[LeadState, int | None]]:
    session.expire_all()
    return [(lead.state, lead.merged_into_id) for lead in (session.get(Lead, i) for i in ids) if lead]


def test_merging_b_back_into_a_after_a_into_b_is_refused(session, make_lead, merge) -> None:
    a, b = make_lead().id, make_lead().id
    merge(a, b)
    with pytest.raises(MergeRefused, match=f"不能合并到线索 {a}：它已合并到线索 {b}，请直接合并到线索 {b}。"):
        merge(b, a)
    assert states(session, a, b) == [(S.MERGED, b), (S.NEW, None)]


def test_merging_into_a_merged_lead_is_refused_and_names_where_it_went(session, make_lead, merge) -> None:
    a, b, c = make_lead().id, make_lead().id, make_lead().id
    merge(a, b)
    with pytest.raises(MergeRefused, match=f"它已合并到线索 {b}"):
        merge(c, a)
    assert states(session, c) == [(S.NEW, None)]


@pytest.mark.parametrize("closed", [S.VERIFIED, S.PROMOTED, S.REJECTED])
def test_merging_into_a_closed_lead_is_refused(session, make_lead, merge, closed: LeadState) -> None:
    target, source = make_lead(state=closed).id, make_lead().id
    with pytest.raises(MergeRefused, match=f"不能合并到线索 {target}：它已处理完毕"):
        merge(source, target)
    assert states(session, source) == [(S.NEW, None)]


def test_a_lead_cannot_be_merged_into_itself(session, make_lead, merge) -> None:
    lead = make_lead().id
    with pytest.raises(MergeRefused, match="不能把线索合并到它自己"):
        merge(lead, lead)


def test_a_lead_another_analyst_holds_can_receive_a_merge(session, make_lead, merge, settings) -> None:
    target, source = make_lead().id, make_lead().id
    workflow.claim(session=session, lead_id=target, actor="bob", settings=settings)
    session.commit()
    merge(source, target)
    assert states(session, source, target) == [(S.MERGED, target), (S.CLAIMED, None)]


def test_leads_merged_into_a_lead_follow_it_when_it_is_merged(session, make_lead, merge) -> None:
    a, b, c = make_lead().id, make_lead().id, make_lead().id
    merge(c, a)
    merge(a, b)
    assert states(session, a, b, c) == [(S.MERGED, b), (S.NEW, None), (S.MERGED, b)]
    followed = session.scalars(
        select(AuditEvent)
        .where(AuditEvent.lead_id == c, AuditEvent.action == "merge")
        .order_by(AuditEvent.id)
    ).all()
    assert [event.details for event in followed] == [{"into": a}, {"into": b, "previous_into": a}]
    source_event = session.scalars(
        select(AuditEvent).where(AuditEvent.lead_id == a, AuditEvent.action == "merge")
    ).one()
    assert source_event.details == {"into": b, "repointed": [c]}


def test_a_chain_c_into_a_into_b_cannot_be_closed_by_merging_b_into_c(session, make_lead, merge) -> None:
    a, b, c = make_lead().id, make_lead().id, make_lead().id
    merge(c, a)
    merge(a, b)
    with pytest.raises(MergeRefused, match=f"不能合并到线索 {c}：它已合并到线索 {b}"):
        merge(b, c)
    assert states(session, a, b, c) == [(S.MERGED, b), (S.NEW, None), (S.MERGED, b)]


# Two sessions in two threads race for the row locks: each needs a connection of its own.
@pytest.mark.usefixtures("committed_database")
def test_opposite_merges_at_the_same_moment_leave_exactly_one_open_lead(
    session_factory: sessionmaker[Session], make_lead, settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = make_lead().id, make_lead().id
    for actor, lead_id in (("alice", a), ("bob", b)):
        with session_factory() as own:
            workflow.claim(session=own, lead_id=lead_id, actor=actor, settings=settings)
            own.commit()
    # Widen the window between the check and the write: without the row locks both merges would pass.
    # (This sleep is the race under test, not a wait for something.)
    check = workflow._refuse_merge_target

    def slow_check(*args: object) -> None:
        check(*args)  # type: ignore[arg-type]
        time.sleep(0.3)

    monkeypatch.setattr(workflow, "_refuse_merge_target", slow_check)
    barrier = threading.Barrier(2)
    results: dict[str, str] = {}

    def attempt(actor: str, source: int, target: int) -> None:
        with session_factory() as own:
            barrier.wait()
            try:
                workflow.merge(session=own, lead_id=source, into_id=target, actor=actor)
                own.commit()
                results[actor] = "merged"
            except MergeRefused:
                own.rollback()
                results[actor] = "refused"

    threads = [
        threading.Thread(target=attempt, args=("alice", a, b)),
        threading.Thread(target=attempt, args=("bob", b, a)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(results.values()) == ["merged", "refused"]
    with session_factory() as fresh:
        open_leads = fresh.scalars(select(Lead.id).where(Lead.id.in_([a, b]), Lead.state == S.CLAIMED)).all()
    assert len(open_leads) == 1


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    with TestClient(app, follow_redirects=False) as test_client:
        yield test_client


def test_the_lead_page_says_in_chinese_why_a_merge_was_refused(client, make_lead, merge) -> None:
    a, b, c = make_lead().id, make_lead().id, make_lead().id
    merge(a, b)
    assert submit_login(client, "alice", "alice-pw").status_code == 303
    token = csrf_of(client.get(f"/leads/{c}").text)  # opening claims it
    refused = client.post(f"/leads/{c}/merge", data={"into": a, "csrf_token": token})
    assert refused.headers["location"] == f"/leads/{c}"
    page = client.get(f"/leads/{c}").text
    assert f"合并未完成：不能合并到线索 {a}：它已合并到线索 {b}，请直接合并到线索 {b}。" in page


def test_the_api_answers_a_refused_merge_with_409(client, make_lead, merge, session) -> None:
    bearer = {"Authorization": f"Bearer {create_token(session, 'alice')}"}
    session.commit()
    a, b = make_lead().id, make_lead().id
    merge(a, b)
    client.post(f"/api/v1/leads/{b}/claim", headers=bearer)
    refused = client.post(f"/api/v1/leads/{b}/merge", headers=bearer, json={"into": a})
    assert (refused.status_code, refused.json()["detail"]) == (
        409,
        f"不能合并到线索 {a}：它已合并到线索 {b}，请直接合并到线索 {b}。",
    )
