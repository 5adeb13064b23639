"""Exports of verified cases: Chinese headers, Shanghai dates, filters, CSV / XLSX / Parquet, the CLI."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
import pandas as pd
import pytest
from typer.testing import CliRunner

from cli import app
from storage.db import make_engine, make_session_factory, session_scope
from storage.models import LeadState, RequestType, Ticket, TicketState
from verify.exports import COLUMNS, ExportError, cases_frame, write_frame

#: The zone the shipped settings show times in (schedules.timezone).
ZONE = ZoneInfo("Asia/Shanghai")

runner = CliRunner()
# 2026-11-28 17:30 UTC is 2026-11-29 01:30 in Shanghai: the case belongs to the 29th.
LATE_EVENING_UTC = datetime(2026, 11, 28, 17, 30, tzinfo=UTC)


def case(session, add_lead, verified_at: datetime, *, ticket: dict | None = None, **fields) -> int:
    """A promoted lead and its ticket, verified (ticket written) at ``verified_at``."""
    lead = add_lead(session, state=LeadState.PROMOTED, **fields)
    values = {"state": TicketState.QUEUED, **(ticket or {})}
    session.add(
        Ticket(
            lead_id=lead.id,
            idempotency_key=f"weisu-lead-{lead.id}",
            payload={},
            created_at=verified_at,
            next_attempt_at=verified_at,
            **values,
        )
    )
    session.commit()
    return lead.id


@pytest.fixture
def cases(session, lead_adder):
    closed = case(
        session,
        lead_adder,
        LATE_EVENING_UTC,
        summary="南山区科技园路灯不亮",
        responsible_unit="深圳市南山区城市管理和综合执法局",
        ticket={
            "state": TicketState.SENT,
            "service_request_id": "sr-000001",
            "sent_at": LATE_EVENING_UTC + timedelta(minutes=5),
            "dispatch_status": "closed",
            "status_notes": "路灯已修复",
            "closed_at": LATE_EVENING_UTC + timedelta(hours=26, minutes=35),
            "reassignments": 1,
        },
    )
    failed = case(
        session,
        lead_adder,
        LATE_EVENING_UTC + timedelta(days=1),
        category="交通运输",
        district="福田区",
        priority="urgent",
        ticket={"state": TicketState.FAILED, "last_error": "HTTP 400"},
    )
    queued = case(session, lead_adder, LATE_EVENING_UTC + timedelta(days=2), summary='=HYPERLINK("http://x")')
    lead_adder(session, state=LeadState.REJECTED)
    lead_adder(session, state=LeadState.NEW)
    return {"closed": closed, "failed": failed, "queued": queued}


def test_every_verified_case_is_a_row_with_chinese_headers_oldest_first(session, cases) -> None:
    frame = cases_frame(session, zone=ZONE)
    assert list(frame.columns) == list(COLUMNS)
    assert list(frame["线索编号"]) == [cases["closed"], cases["failed"], cases["queued"]]
    assert list(frame["办理状态"]) == ["已办结", "推送失败", "待推送"]
    first = frame.iloc[0]
    assert first["核实时间"] == pd.Timestamp("2026-11-29 01:30:00")
    assert first["办结时间"] == pd.Timestamp("2026-11-30 04:05:00")
    assert first["办理时长（小时）"] == 26.5
    assert (first["工单编号"], first["改派次数"], first["办理说明"]) == ("sr-000001", 1, "路灯已修复")
    assert first["责任单位"] == "深圳市南山区城市管理和综合执法局"
    assert list(frame["优先级"]) == ["普通", "加急", "普通"]


def test_each_case_carries_its_request_type_in_chinese(session, lead_adder) -> None:
    question = case(session, lead_adder, LATE_EVENING_UTC, request_type=RequestType.QUESTION)
    problem = case(session, lead_adder, LATE_EVENING_UTC + timedelta(hours=1))
    suggestion = case(session, lead_adder, LATE_EVENING_UTC + timedelta(hours=2), request_type="suggestion")
    frame = cases_frame(session, zone=ZONE)
    assert list(zip(frame["线索编号"], frame["诉求类型"], strict=True)) == [
        (question, "咨询"),
        (problem, "问题"),
        (suggestion, "建议"),
    ]


def test_the_request_type_filter_keeps_only_cases_of_that_type(session, lead_adder) -> None:
    question = case(session, lead_adder, LATE_EVENING_UTC, request_type=RequestType.QUESTION)
    case(session, lead_adder, LATE_EVENING_UTC)
    assert list(cases_frame(session, request_type=RequestType.QUESTION, zone=ZONE)["线索编号"]) == [question]


#: (filters, the cases they keep) — one database for the whole table keeps the test fast.
FILTER_TABLE = [
    ({"since": date(2026, 11, 29), "until": date(2026, 11, 29)}, ["closed"]),
    ({"since": date(2026, 11, 30)}, ["failed", "queued"]),
    ({"until": date(2026, 11, 28)}, []),
    ({"category": "交通运输"}, ["failed"]),
    ({"district": "南山区"}, ["closed", "queued"]),
    ({"state": "closed"}, ["closed"]),
    ({"state": "failed"}, ["failed"]),
    ({"state": "queued"}, ["queued"]),
    ({"state": "open"}, []),
    ({"district": "南山区", "state": "queued", "since": date(2026, 12, 1)}, ["queued"]),
]


def test_filters_pick_cases_by_shanghai_date_category_district_and_state(session, cases) -> None:
    picked = [list(cases_frame(session, **filters, zone=ZONE)["线索编号"]) for filters, _ in FILTER_TABLE]
    assert picked == [[cases[name] for name in expected] for _, expected in FILTER_TABLE]


def test_an_unknown_state_or_format_is_refused_by_name(session) -> None:
    with pytest.raises(ExportError, match="unknown state 'done': choose from queued, failed, open, closed"):
        cases_frame(session, state="done", zone=ZONE)
    with pytest.raises(ExportError, match="unknown format 'json': choose from csv, xlsx, parquet"):
        write_frame(pd.DataFrame(), "json", io.BytesIO())


def test_csv_and_xlsx_defuse_formulas_while_parquet_keeps_the_text_exactly(session, cases) -> None:
    frame = cases_frame(session, zone=ZONE)
    csv_bytes, xlsx_bytes, parquet_bytes = io.BytesIO(), io.BytesIO(), io.BytesIO()
    write_frame(frame, "csv", csv_bytes)
    write_frame(frame, "xlsx", xlsx_bytes)
    write_frame(frame, "parquet", parquet_bytes)
    assert csv_bytes.getvalue().startswith("\ufeff线索编号,核实时间,".encode())
    from_csv = pd.read_csv(io.BytesIO(csv_bytes.getvalue()), encoding="utf-8-sig")
    assert from_csv["摘要"].iloc[2] == '\'=HYPERLINK("http://x")'
    assert from_csv["核实时间"].iloc[0] == "2026-11-29 01:30:00"
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx_bytes.getvalue())).active
    assert (sheet.title, sheet["A1"].value, sheet["I4"].value) == (
        "核实案件",
        "线索编号",
        '\'=HYPERLINK("http://x")',
    )
    assert sheet["H4"].data_type == "s"
    back = pd.read_parquet(io.BytesIO(parquet_bytes.getvalue()))
    pd.testing.assert_frame_equal(back, frame)


def test_weisu_export_writes_the_filtered_cases_to_the_named_file(tmp_path: Path, lead_adder) -> None:
    env = {"WEISU_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}"}
    assert runner.invoke(app, ["init"], env=env).exit_code == 0
    factory = make_session_factory(make_engine(env["WEISU_DATABASE_URL"]))
    with session_scope(factory) as session:
        case(session, lead_adder, LATE_EVENING_UTC, category="交通运输")
        case(session, lead_adder, LATE_EVENING_UTC, category="城乡建设")
    output = tmp_path / "cases.xlsx"
    args = [
        "export",
        "--format",
        "xlsx",
        "--category",
        "交通运输",
        "--since",
        "2026-11-29",
        "-o",
        str(output),
    ]
    result = runner.invoke(app, args, env=env)
    assert (result.exit_code, result.stdout.replace("\n", "")) == (0, f"export: 1 cases → {output}")
    assert pd.read_excel(output)["类别"].tolist() == ["交通运输"]


def test_weisu_export_refuses_a_bad_date_in_one_line(tmp_path: Path) -> None:
    env = {"WEISU_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}"}
    result = runner.invoke(app, ["export", "--since", "29/11/2026", "-o", str(tmp_path / "x.csv")], env=env)
    assert (result.exit_code, result.stderr) == (2, "weisu export: Invalid isoformat string: '29/11/2026'\n")


def test_weisu_export_type_keeps_only_cases_of_that_request_type(tmp_path: Path, lead_adder) -> None:
    env = {"WEISU_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}"}
    assert runner.invoke(app, ["init"], env=env).exit_code == 0
    factory = make_session_factory(make_engine(env["WEISU_DATABASE_URL"]))
    with session_scope(factory) as session:
        case(session, lead_adder, LATE_EVENING_UTC, request_type=RequestType.QUESTION)
        case(session, lead_adder, LATE_EVENING_UTC, request_type=RequestType.PROBLEM)
    output = tmp_path / "questions.csv"
    result = runner.invoke(app, ["export", "--type", "question", "-o", str(output)], env=env)
    assert (result.exit_code, result.stdout.replace("\n", "")) == (0, f"export: 1 cases → {output}")
    assert pd.read_csv(output, encoding="utf-8-sig")["诉求类型"].tolist() == ["咨询"]


def test_weisu_export_refuses_an_unknown_request_type(tmp_path: Path) -> None:
    env = {"WEISU_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}"}
    result = runner.invoke(app, ["export", "--type", "praise", "-o", str(tmp_path / "x.csv")], env=env)
    assert result.exit_code == 2
    assert "'praise' is not one of" in " ".join(result.stderr.replace("│", " ").split())
