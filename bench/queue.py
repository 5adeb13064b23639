"""Queue page latency with 100,000 leads: p95 of GET /leads (several filters) on SQLite and PostgreSQL.

The whole page is timed through the app (session cookie, queries, counts, template), beside a
bare "first 20 leads by id" query on the same database as the baseline. PostgreSQL is measured
when WEISU_BENCH_POSTGRES_URL (or WEISU_TEST_DATABASE_URL) names a server; a scratch schema is
created and dropped.
"""

from __future__ import annotations

import os
import random
import re
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import insert, select, text

from settings import load_settings
from storage.base import utcnow
from storage.db import make_engine, make_session_factory, temporary_postgres_schema, upgrade
from storage.models import Lead, LeadState, Priority, RequestType
from verify.sla import due_at
from verify.users import create_user
from verify.web.app import create_app

LEADS = 100_000
ROUNDS = 8
CATEGORIES = ("城乡建设", "环境保护", "交通运输", "劳动和社会保障", "教育文体", "卫生计生", "商贸旅游", None)
DISTRICTS = ("南山区", "福田区", "罗湖区", "宝安区", "龙岗区", "龙华区", "坪山区", "光明区", "盐田区", None)
PROBLEMS = ("路灯不亮", "井盖缺失", "噪音扰民", "拖欠工资", "垃圾未清运")
STATES = [LeadState.NEW] * 3 + [LeadState.PROMOTED] * 4 + [LeadState.REJECTED] * 2 + [LeadState.CLAIMED]
#: Mostly problems; questions and suggestions as a hotline's published types have them, roughly.
REQUEST_TYPES = [RequestType.PROBLEM] * 15 + [RequestType.QUESTION] * 4 + [RequestType.SUGGESTION]
VIEWS = (
    "/leads",
    "/leads?state=new",
    "/leads?state=new&priority=urgent",
    "/leads?type=question",
    "/leads?district=南山区&category=城乡建设",
    "/leads?text=路灯",
    "/leads?sort=score",
    "/leads?sort=uncertainty&state=new",
    "/leads?score_min=0.6&score_max=0.8",
    "/leads?page=400",
)


def _rows(count: int) -> Iterator[dict[str, Any]]:
    rng = random.Random(20261129)
    kinds = random.Random(20261202)  # its own stream: every other column is as before types were benched
    review = load_settings(env={}).review  # the shipped allowances, as verify.sla applies them
    now = utcnow()
    for i in range(count):
        found = now - timedelta(minutes=rng.randint(0, 60 * 24 * 30))
        urgent = rng.random() < 0.08
        priority = Priority.URGENT if urgent else Priority.ORDINARY
        yield {
            "state": rng.choice(STATES),
            "priority": priority,
            "category": rng.choice(CATEGORIES),
            "district": rng.choice(DISTRICTS),
            "summary": f"{rng.choice(PROBLEMS)} 第{i}号",
            "score": round(rng.random(), 4),
            "top_terms": [],
            "first_seen_at": found - timedelta(minutes=5),
            "last_seen_at": found,
            "found_at": found,
            "evidence_count": 1,
            "urgent_since": found if urgent else None,
            "sla_due_at": due_at(priority, found, found if urgent else None, review),
            "created_at": found,
            "updated_at": found,
            "request_type": kinds.choice(REQUEST_TYPES),
        }


def _populate(url: str) -> None:
    engine = make_engine(url)
    factory = make_session_factory(engine)
    with factory() as session:
        rows = list(_rows(LEADS))
        for start in range(0, LEADS, 5000):
            session.execute(insert(Lead), rows[start : start + 5000])
        create_user(session, "bench", "bench-pw", "analyst")
        session.commit()
    with engine.connect() as connection:
        connection.execute(text("ANALYZE"))
        connection.commit()
    engine.dispose()


def _p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20)[-1] * 1000


def _time_pages(url: str) -> dict[str, Any]:
    settings = load_settings(env={}).changed(
        database={"url": url},
        secret_key=secrets.token_urlsafe(48),  # the benchmark's own, for this run only
        review={"cookie_secure": False},  # TestClient talks plain http
    )
    app = create_app(settings)
    samples: list[float] = []
    per_view: dict[str, list[float]] = {view: [] for view in VIEWS}
    with TestClient(app) as client:
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
        form = {"username": "bench", "password": "bench-pw", "csrf_token": token.group(1) if token else ""}
        client.post("/login", data=form)
        for view in VIEWS:  # warm the caches once
            assert client.get(view).status_code == 200
        for _ in range(ROUNDS):
            for view in VIEWS:
                started = time.perf_counter()
                response = client.get(view)
                samples.append(time.perf_counter() - started)
                per_view[view].append(samples[-1])
                assert response.status_code == 200
    app.state.engine.dispose()
    baseline = _time_query(
        url, lambda session: list(session.scalars(select(Lead).order_by(Lead.id).limit(20)))
    )
    medians = {view: round(statistics.median(times) * 1000, 1) for view, times in per_view.items()}
    figures = {"p95_ms": round(_p95(samples), 1), "median_ms": round(statistics.median(samples) * 1000, 1)}
    return {**figures, **baseline, "median_ms_per_view": medians}


def _time_query(url: str, query: Callable[[Any], Any]) -> dict[str, float]:
    engine = make_engine(url)
    samples = []
    with make_session_factory(engine)() as session:
        for _ in range(ROUNDS * len(VIEWS)):
            started = time.perf_counter()
            query(session)
            samples.append(time.perf_counter() - started)
            session.rollback()
    engine.dispose()
    return {"baseline_p95_ms": round(_p95(samples), 2)}


def _measure(url: str) -> dict[str, Any]:
    upgrade(url)
    started = time.perf_counter()
    _populate(url)
    loaded = time.perf_counter() - started
    return {**_time_pages(url), "load_seconds": round(loaded, 1)}


def bench_queue() -> dict[str, Any]:
    """p95 of the queue page over 100,000 leads; weisu = SQLite page, baseline = bare 20-row query."""
    with tempfile.TemporaryDirectory() as scratch:
        sqlite = _measure(f"sqlite:///{Path(scratch) / 'queue.db'}")
    result: dict[str, Any] = {
        "unit": "queue page p95 ms (100,000 leads, SQLite)",
        "weisu": sqlite["p95_ms"],
        "baseline": sqlite["baseline_p95_ms"],
        "baseline_name": "bare SELECT of 20 leads by id",
        "sqlite": sqlite,
    }
    postgres_url = os.environ.get("WEISU_BENCH_POSTGRES_URL") or os.environ.get("WEISU_TEST_DATABASE_URL")
    if postgres_url:
        with temporary_postgres_schema(postgres_url, "bench") as url:
            result["postgresql"] = _measure(url)
    return result


if __name__ == "__main__":
    print(bench_queue())
