"""After a demo-sized run (every simulated platform crawled, detected, reviewed, pushed), no text
column of any table holds personal data: posts, raw bodies, leads, tickets, audit events, notes."""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from bootstrap import initialise_database
from classify.detection import detect_new_posts
from classify.training import TrainReport
from crawlers.runner import run_crawl
from fixtures.dispatch_simulator.app import create_app as create_dispatch_app
from fixtures.serving import serve_in_thread
from fixtures.simulator.app import create_app as create_platform_app
from fixtures.simulator.corpus import PLANTED
from settings import Settings, load_settings
from storage.body_masking import body_encoding
from storage.db import make_engine, make_session_factory, session_scope
from storage.models import Lead, Post, RawResponse
from storage.personal_data import mask_personal_data
from verify import workflow
from verify.pusher import push_pending

pytestmark = pytest.mark.e2e

#: Digests and password hashes are not personal data, but their digit runs can look like a phone.
NOT_PERSONAL = re.compile(r"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])|\$argon2[^\s\"']+")
KINDS = {"mobile", "email", "landline", "plate", "qq", "wechat", "id_number", "bank_card"}


def _as_text(value: Any, content_type: str | None = None) -> str:
    if isinstance(value, bytes):
        data = gzip.decompress(value) if value[:2] == b"\x1f\x8b" else value
        return data.decode(body_encoding(content_type, data), "replace")
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def every_text_cell(url: str) -> Iterator[tuple[str, str, str]]:
    """(table, column, text) for every non-empty text, JSON or binary cell of every table, reflected
    from the database itself, so a table or column added later is scanned too."""
    engine = make_engine(url)
    metadata = sa.MetaData()
    metadata.reflect(engine)
    textual = (sa.String, sa.Text, sa.JSON, sa.LargeBinary)
    with engine.connect() as connection:
        for table in metadata.sorted_tables:
            columns = [c for c in table.columns if isinstance(c.type, textual)]
            if not columns:
                continue
            types = table.c.content_type if "content_type" in table.c else sa.null()
            for row in connection.execute(sa.select(types, *columns)):
                for column, value in zip(columns, row[1:], strict=True):
                    if value not in (None, "", b""):
                        yield table.name, column.name, _as_text(value, row[0])
    engine.dispose()


def _demo_run(
    settings: Settings, trained: TrainReport, activate: Callable[[Session, TrainReport], None]
) -> None:
    initialise_database(settings)
    factory = make_session_factory(make_engine(settings.database_url))
    with session_scope(factory) as session:
        activate(session, trained)
    assert {run.status for run in run_crawl(settings, None)} == {"ok"}
    assert detect_new_posts(settings, factory).leads_created > 0
    with session_scope(factory) as session:
        # Leads whose evidence had personal data in it first: their summaries become ticket payloads.
        masked_first = sa.case((Lead.summary.contains("["), 0), else_=1)
        chosen = list(session.scalars(sa.select(Lead.id).order_by(masked_first, Lead.id).limit(6)))
    for lead_id in chosen[:4]:
        with session_scope(factory) as session:
            workflow.claim(session=session, lead_id=lead_id, actor="analyst", settings=settings)
        with session_scope(factory) as session:
            workflow.verify_and_promote(session=session, lead_id=lead_id, actor="analyst", settings=settings)
    with session_scope(factory) as session:
        workflow.claim(session=session, lead_id=chosen[4], actor="analyst", settings=settings)
        note = "已电话联系物业，等待回复"
        workflow.add_note(session=session, lead_id=chosen[4], actor="analyst", text=note)
        workflow.reject(session=session, lead_id=chosen[4], actor="analyst", reason="already_handled")
    assert push_pending(settings, factory).sent >= 1


@pytest.fixture(scope="module")
def demo_database(
    tmp_path_factory: pytest.TempPathFactory,
    trained: TrainReport,
    activate_model: Callable[[Session, TrainReport], None],
) -> Iterator[tuple[str, set[str]]]:
    """The database of a demo-sized run, and the personal data the simulator planted in its posts."""
    root = tmp_path_factory.mktemp("no_personal_data")
    with (
        serve_in_thread(create_platform_app(seed=42)) as simulator_url,
        serve_in_thread(create_dispatch_app(root / "dispatch.db")) as dispatch_url,
    ):
        settings = load_settings(
            env={
                "WEISU_DATABASE_URL": f"sqlite:///{root / 'weisu.db'}",
                "WEISU_SIMULATOR_URL": simulator_url,
                "WEISU_DISPATCH_URL": dispatch_url,
                "WEISU_MODEL_DIR": str(root / "models"),
            }
        )
        truth = httpx.get(f"{simulator_url}/_truth", timeout=30).json()["posts"]
        _demo_run(settings, trained, activate_model)
    planted = {m for p in truth for m in PLANTED.findall(f"{p['title'] or ''} {p['text']}")}
    yield settings.database_url, planted


def test_the_simulator_plants_every_kind_of_personal_data(demo_database: tuple[str, set[str]]) -> None:
    _, planted = demo_database
    kinds = {kind for value in planted for kind in mask_personal_data(value)[1]}
    assert kinds == KINDS


def _post_ids(url: str) -> re.Pattern[str]:
    """The ids platforms gave the stored posts: Bilibili's 11-digit comment ids look like mobiles, but
    they name a post, not a person (in a raw body the mask takes them all the same)."""
    engine = make_engine(url)
    with engine.connect() as connection:
        ids = set(connection.scalars(sa.select(Post.external_id)))
        ids |= set(
            connection.scalars(sa.select(Post.parent_external_id).where(Post.parent_external_id.is_not(None)))
        )
    engine.dispose()
    return re.compile(r"(?<!\d)(?:" + "|".join(map(re.escape, sorted(ids))) + r")(?!\d)")


def test_no_text_column_of_any_table_holds_what_the_masks_look_for(
    demo_database: tuple[str, set[str]],
) -> None:
    url, _ = demo_database
    post_ids = _post_ids(url)
    scanned: set[tuple[str, str]] = set()
    found = []
    for table, column, text in every_text_cell(url):
        scanned.add((table, column))
        kinds = mask_personal_data(post_ids.sub(" ", NOT_PERSONAL.sub(" ", text)))[1]
        if kinds:
            found.append((table, column, kinds))
    assert found == []
    must_scan = {
        ("posts", "text"),
        ("posts", "title"),
        ("raw_responses", "body_gz"),
        ("leads", "summary"),
        ("tickets", "payload"),
        ("audit_events", "details"),
        ("audit_events", "reason"),
    }
    assert must_scan <= scanned


def test_no_value_the_simulator_planted_is_stored_anywhere(demo_database: tuple[str, set[str]]) -> None:
    url, planted = demo_database
    assert len(planted) >= 40
    anywhere = re.compile("|".join(map(re.escape, sorted(planted, key=len, reverse=True))))
    assert [(table, column) for table, column, text in every_text_cell(url) if anywhere.search(text)] == []


def test_stored_raw_bodies_carry_their_posts_author_keys_in_place_of_the_handles(
    demo_database: tuple[str, set[str]],
) -> None:
    url, _ = demo_database
    engine = make_engine(url)
    query = (
        sa.select(Post.author_key, RawResponse.body_gz, RawResponse.content_type)
        .join(RawResponse, Post.raw_response_id == RawResponse.id)
        .where(Post.author_key.is_not(None))
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    engine.dispose()
    keyed = sum(1 for key, body, content_type in rows if key in _as_text(body, content_type))
    assert keyed == len(rows) > 0
