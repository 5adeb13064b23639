"""The weekly class-case report on a database of nine known weeks (weekly_world), on SQLite and
PostgreSQL: exact figures of every section, the files it writes, the CLI and the app's page."""

from __future__ import annotations

import dataclasses
import io
import warnings
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pytest
from fastapi.testclient import TestClient
from keys_for_tests import TEST_SECRET_KEY
from review_client import review_app, submit_login
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner
from weekly_world import (
    BORDERLINE,
    HOSTILE,
    HOSTILE_PLACE,
    NOISY,
    SPIKE,
    WEEK,
    ZONE,
    plant,
)

from classify.evaluation import draws_chinese
from cli import app as cli_app
from settings import Settings, load_settings
from storage.db import make_engine, make_session_factory
from verify.reports.build import HeatRow, WeeklyReport, build_weekly_report
from verify.reports.charts import CHARTS, chinese_font, write_charts
from verify.reports.outcomes import ALL_CATEGORIES, TicketOutcome
from verify.reports.recurring import RecurringPlace
from verify.reports.spikes import CountModel
from verify.reports.weekly import write_weekly_report
from verify.reports.weeks import IsoWeek
from verify.reports.workbook import SHEETS, write_workbook

pytestmark = pytest.mark.usefixtures("cheap_hashing")

runner = CliRunner()


@pytest.fixture
def report(session: Session, settings: Settings) -> WeeklyReport:
    plant(session)
    return build_weekly_report(session, settings.report, WEEK, ZONE)


def test_the_planted_spike_is_the_weeks_first_finding_and_its_only_one(report: WeeklyReport) -> None:
    assert [(s.category, s.district, s.count, s.expected, s.model) for s in report.spikes] == [
        (*SPIKE, 12, 2.0625, CountModel.POISSON)
    ]
    assert report.cells[0] == report.spikes[0]
    assert round(report.spikes[0].ratio, 3) == 5.818
    assert report.spikes[0].q_value < 1e-5


def test_a_noisy_but_normal_cell_is_tested_as_over_dispersed_and_not_flagged(report: WeeklyReport) -> None:
    noisy = next(c for c in report.cells if (c.category, c.district) == NOISY)
    assert (noisy.count, noisy.expected, noisy.model) == (7, 3.0625, CountModel.NEGATIVE_BINOMIAL)
    assert (round(noisy.p_value, 4), round(noisy.q_value, 4)) == (0.1087, 0.1811)


def test_the_false_discovery_control_cuts_the_borderline_cell(report: WeeklyReport) -> None:
    borderline = next(c for c in report.cells if (c.category, c.district) == BORDERLINE)
    assert borderline.count == 4
    assert (round(borderline.p_value, 4), round(borderline.q_value, 4)) == (0.0231, 0.0577)
    assert borderline not in report.spikes


def test_leads_count_in_their_local_week_and_rejected_or_merged_ones_not_at_all(report: WeeklyReport) -> None:
    assert report.leads == 25  # 12 + 7 + 4 + 1 + 1; the rejected and the merged lead are left out
    assert report.weekly["2026-W47"]["劳动保障"] == 2  # Sunday 23:30 in Shanghai is still W47
    assert report.weekly["2026-W48"][HOSTILE] == 1  # Monday 00:10 in Shanghai is W48 (Sunday in UTC)
    assert report.trailing_mean == 7.625
    assert len(report.cells) == 5


def test_a_quiet_week_reports_no_spike(session: Session, settings: Settings) -> None:
    plant(session)
    quiet = build_weekly_report(session, settings.report, IsoWeek(2026, 47), ZONE)
    assert quiet.leads == 8
    assert quiet.spikes == ()


def test_recurring_places_are_found_clustered_under_their_most_frequent_name(report: WeeklyReport) -> None:
    assert list(report.recurring) == [
        RecurringPlace(*SPIKE, "地标", "碧海花园", ("2026-W45", "2026-W46", "2026-W47", "2026-W48"), 4, 1),
        RecurringPlace(*NOISY, "地标", HOSTILE_PLACE, ("2026-W41", "2026-W43", "2026-W45", "2026-W48"), 4, 1),
    ]  # 科技园 has leads this week but in only two trailing weeks


def test_the_top_terms_of_a_class_are_exact(report: WeeklyReport) -> None:
    assert [(t.term, t.leads, t.other_leads, round(t.z, 3)) for t in report.terms["城乡建设"]] == [
        ("危险", 12, 0, 3.196),
        ("塌陷", 12, 0, 3.196),
        ("路面", 12, 4, 2.556),  # 交通运输's leads use it too
        ("井盖", 6, 0, 2.136),
        ("松动", 6, 0, 2.136),
    ]


def test_heat_sums_each_cells_posts_engagement(report: WeeklyReport) -> None:
    assert list(report.heat) == [
        HeatRow(*SPIKE, leads=12, posts=12, engagement=156),
        HeatRow(*NOISY, leads=7, posts=7, engagement=7),
        HeatRow(*BORDERLINE, leads=4, posts=4, engagement=0),
        HeatRow(HOSTILE, "龙华区", leads=1, posts=1, engagement=0),
        HeatRow("劳动保障", "罗湖区", leads=1, posts=1, engagement=0),
    ]


def test_ticket_outcomes_give_resolution_time_returns_and_first_dispatch_accuracy(
    report: WeeklyReport,
) -> None:
    assert list(report.tickets) == [
        TicketOutcome("交通运输", sent=1, returned=0, returns=0, closed=0, median_hours=None, p90_hours=None),
        TicketOutcome("城乡建设", sent=4, returned=2, returns=3, closed=5, median_hours=6.0, p90_hours=22.0),
        TicketOutcome(
            ALL_CATEGORIES, sent=5, returned=2, returns=3, closed=5, median_hours=6.0, p90_hours=22.0
        ),
    ]
    assert [t.first_dispatch_accuracy for t in report.tickets] == [1.0, 0.5, 0.6]


# --- the written files --------------------------------------------------------------------------


@pytest.fixture
def sqlite_world(sqlite_url: str) -> Iterator[tuple[Settings, sessionmaker[Session]]]:
    engine = make_engine(sqlite_url)
    factory = make_session_factory(engine)
    with factory() as session:
        plant(session)
    yield load_settings(env={"WEISU_DATABASE_URL": sqlite_url}), factory
    engine.dispose()


def test_the_report_writes_a_page_a_workbook_and_charts_into_the_weeks_folder(
    sqlite_world: tuple[Settings, sessionmaker[Session]], tmp_path: Path
) -> None:
    settings, factory = sqlite_world
    folder = write_weekly_report(settings, factory, WEEK, out=tmp_path)
    assert folder == tmp_path / "2026-W48"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["weekly-2026-W48.html", "weekly-2026-W48.xlsx", *CHARTS]
    )
    page = (folder / "weekly-2026-W48.html").read_text(encoding="utf-8")
    assert '<img class="chart" src="spikes.png" alt="异常上升的类别 × 区">' in page
    assert HOSTILE not in page and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    # Written again, the week's files are replaced, not doubled.
    write_weekly_report(settings, factory, WEEK, out=tmp_path)
    assert len(list(folder.iterdir())) == 2 + len(CHARTS)


def test_the_workbook_has_one_sheet_per_section_with_chinese_headers(
    sqlite_world: tuple[Settings, sessionmaker[Session]], tmp_path: Path
) -> None:
    settings, factory = sqlite_world
    folder = write_weekly_report(settings, factory, WEEK, out=tmp_path)
    book = openpyxl.load_workbook(folder / "weekly-2026-W48.xlsx")
    assert book.sheetnames == list(SHEETS)
    header = [cell.value for cell in book["异常上升"][1]]
    assert header == ["类别", "区", "本周线索数", "期望线索数", "倍数", "检验分布", "p 值", "q 值"]
    assert [cell.value for cell in book["异常上升"][2]][:6] == ["城乡建设", "南山区", 12, 2.062, 5.82, "泊松"]
    assert [cell.value for cell in book["工单办理"][1]] == [
        "类别",
        "本周派单",
        "退单工单",
        "退单次数",
        "首次派单准确率",
        "本周办结",
        "办结时长中位数（小时）",
        "办结时长 P90（小时）",
    ]
    assert [cell.value for cell in book["工单办理"][4]] == [ALL_CATEGORIES, 5, 2, 3, 0.6, 5, 6, 22]
    assert [cell.value for cell in book["反复发生"][2]][:5] == ["城乡建设", "南山区", "地标", "碧海花园", 4]
    assert [cell.value for cell in book["高频词"][2]][:4] == ['<script>alert("x")</script>', 1, "alert", 1]


def test_a_place_name_that_would_be_a_spreadsheet_formula_is_written_as_text(
    report: WeeklyReport, tmp_path: Path
) -> None:
    formula = dataclasses.replace(report.recurring[0], place='=HYPERLINK("http://x.invalid","点")')
    write_workbook(dataclasses.replace(report, recurring=(formula,)), tmp_path / "book.xlsx")
    cell = openpyxl.load_workbook(tmp_path / "book.xlsx")["反复发生"]["D2"]
    assert (cell.data_type, cell.value) == ("s", '\'=HYPERLINK("http://x.invalid","点")')


def test_the_charts_draw_chinese_without_a_missing_glyph(report: WeeklyReport, tmp_path: Path) -> None:
    font = chinese_font()
    assert font is not None
    from matplotlib import font_manager

    assert draws_chinese(
        font_manager.findfont(font_manager.FontProperties(family=font), fallback_to_default=False)
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=r"(?i).*glyph.*missing")
        written = write_charts(report, tmp_path)
    assert [p.name for p in written] == list(CHARTS)
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in written)


def test_the_missing_glyph_check_would_catch_a_font_without_chinese(tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots()
    axes.set_title("异常上升")
    with (
        plt.rc_context({"font.family": ["DejaVu Sans"]}),
        warnings.catch_warnings(),
        pytest.raises(UserWarning, match="missing from font"),
    ):
        warnings.filterwarnings("error", message=r"(?i).*glyph.*missing")
        figure.savefig(tmp_path / "boxes.png")
    plt.close(figure)


# --- the CLI ------------------------------------------------------------------------------------


def test_the_cli_writes_the_three_outputs_to_out(
    sqlite_world: tuple[Settings, sessionmaker[Session]], tmp_path: Path
) -> None:
    settings, _ = sqlite_world
    env = {"WEISU_DATABASE_URL": settings.database.url}
    result = runner.invoke(
        cli_app, ["report", "weekly", "--week", "2026-W48", "--out", str(tmp_path)], env=env
    )
    assert result.exit_code == 0, result.output
    names = {p.suffix for p in (tmp_path / "2026-W48").iterdir()}
    assert names == {".html", ".xlsx", ".png"}


def test_the_cli_under_quiet_writes_the_report_and_prints_nothing(
    sqlite_world: tuple[Settings, sessionmaker[Session]], tmp_path: Path
) -> None:
    settings, _ = sqlite_world
    env = {"WEISU_DATABASE_URL": settings.database.url}
    args = ["report", "weekly", "--week", "2026-W48", "--out", str(tmp_path), "--quiet"]
    result = runner.invoke(cli_app, args, env=env)
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")
    assert (tmp_path / "2026-W48" / "weekly-2026-W48.xlsx").exists()


@pytest.mark.parametrize(
    ("week", "message"),
    [("2026-48", "expected YYYY-Www, e.g. 2026-W48"), ("2026-W54", "2026 has no ISO week 54")],
)
def test_the_cli_refuses_a_bad_week_in_one_line_with_exit_2(
    sqlite_url: str, tmp_path: Path, week: str, message: str
) -> None:
    out = tmp_path / "reports"
    env = {"WEISU_DATABASE_URL": sqlite_url}
    result = runner.invoke(cli_app, ["report", "weekly", "--week", week, "--out", str(out)], env=env)
    assert result.exit_code == 2
    assert result.output.splitlines() == [f"weisu report weekly: week {week!r}: {message}"]
    assert not out.exists()


# --- the page -----------------------------------------------------------------------------------


@pytest.fixture
def client(settings: Settings, session: Session) -> Iterator[TestClient]:
    plant(session)
    settings = settings.changed(secret_key=TEST_SECRET_KEY)
    accounts = [("sue", "sue-pw-long-enough", "supervisor"), ("alice", "alice-pw-long-enough", "analyst")]
    with (
        review_app(settings, session, accounts) as application,
        TestClient(application, follow_redirects=False) as test_client,
    ):
        yield test_client


def test_a_supervisor_reads_the_weeks_report_with_hostile_names_escaped(client: TestClient) -> None:
    assert submit_login(client, "sue", "sue-pw-long-enough").status_code == 303
    page = client.get("/reports/weekly", params={"week": "2026-W48"})
    assert page.status_code == 200
    html = page.text
    assert "2026-W48（11月23日—11月29日）" in html
    assert '<dd id="spike-count">1</dd>' in html
    assert "<td>城乡建设</td><td>南山区</td><td>12</td><td>2.06</td><td>5.8</td><td>泊松</td>" in html
    assert HOSTILE not in html and HOSTILE_PLACE not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;公园" in html
    assert '<a href="/reports/weekly">类案周报</a>' in html


def test_the_page_offers_the_weeks_workbook(client: TestClient) -> None:
    submit_login(client, "sue", "sue-pw-long-enough")
    answer = client.get("/reports/weekly.xlsx", params={"week": "2026-W48"})
    assert answer.status_code == 200
    assert answer.headers["content-disposition"] == 'attachment; filename="weekly-2026-W48.xlsx"'
    assert openpyxl.load_workbook(io.BytesIO(answer.content)).sheetnames == list(SHEETS)


def test_a_bad_week_on_the_page_is_a_400_saying_why(client: TestClient) -> None:
    submit_login(client, "sue", "sue-pw-long-enough")
    answer = client.get("/reports/weekly", params={"week": "2026-W99"})
    assert answer.status_code == 400
    assert "2026 has no ISO week 99" in answer.text


def test_an_analyst_may_not_open_the_report(client: TestClient) -> None:
    submit_login(client, "alice", "alice-pw-long-enough")
    assert client.get("/reports/weekly", params={"week": "2026-W48"}).status_code == 403


def test_a_weeks_report_is_built_once_for_several_views(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from verify.web import report_pages

    built: list[IsoWeek] = []

    def counting(session: Session, options, week: IsoWeek, zone, now=None) -> WeeklyReport:  # type: ignore[no-untyped-def]
        built.append(week)
        return build_weekly_report(session, options, week, zone, now)

    monkeypatch.setattr(report_pages, "build_weekly_report", counting)
    submit_login(client, "sue", "sue-pw-long-enough")
    for path in ("/reports/weekly", "/reports/weekly.xlsx", "/reports/weekly"):
        assert client.get(path, params={"week": "2026-W48"}).status_code == 200
    client.get("/reports/weekly", params={"week": "2026-W47"})
    assert built == [WEEK, IsoWeek(2026, 47)]
