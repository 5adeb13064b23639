"""write_weekly_report: the entry point the CLI and the Monday job call; writes the week's HTML page,
XLSX workbook and PNG charts into one folder per week (re-running a week replaces its files)."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import jinja2
from sqlalchemy.orm import Session, sessionmaker

from settings import Settings
from storage.base import utcnow
from verify.days import local_zone
from verify.reports.build import WeeklyReport, build_weekly_report
from verify.reports.charts import CHARTS, NoChineseFont, write_charts
from verify.reports.spikes import COUNT_MODEL_LABELS
from verify.reports.weeks import IsoWeek
from verify.reports.workbook import write_workbook

log = logging.getLogger(__name__)
TEMPLATES = Path(__file__).resolve().parent.parent / "web" / "templates"
#: The chart files' alternative texts in the HTML page.
CHART_TITLES = {
    "trend.png": "各类别每周线索数",
    "spikes.png": "异常上升的类别 × 区",
    "heat.png": "热度最高的类别 × 区",
    "tickets.png": "各类别首次派单准确率",
}


def html_name(week: IsoWeek) -> str:
    return f"weekly-{week}.html"


def workbook_name(week: IsoWeek) -> str:
    return f"weekly-{week}.xlsx"


def render_file(report: WeeklyReport, pngs: dict[str, str], chart_note: str | None) -> str:
    """The stand-alone HTML page (the app's report template, charts as the PNGs beside it)."""
    # The app's own templates and escaping rules, without the app: autoescape on, no undefined names.
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined
    )
    context = {"report": report, "pngs": pngs, "model_labels": COUNT_MODEL_LABELS, "chart_note": chart_note}
    return env.get_template("report_weekly_file.html").render(context)


def _replace(path: Path, write: Callable[[Path], object]) -> None:
    """Write through a temporary file in the same folder, then rename: a reader never sees half a file."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(handle)
    try:
        write(Path(temporary))
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_weekly_report(
    settings: Settings,
    session_factory: sessionmaker[Session],
    week: IsoWeek | None = None,
    out: Path | None = None,
    now: datetime | None = None,
) -> Path:
    """Write ``week``'s report (default: the last complete week in the display zone) into
    ``out``/<week>/ (default: settings.report.out_dir) and return that folder."""
    zone = local_zone(settings)
    now = now or utcnow()
    week = week or IsoWeek.last_complete(now, zone)
    with session_factory() as session:
        report = build_weekly_report(session, settings.report, week, zone, now)
    folder = (out or settings.resolve_path(settings.report.out_dir)) / str(week)
    folder.mkdir(parents=True, exist_ok=True)
    _replace(folder / workbook_name(week), lambda path: write_workbook(report, path))
    chart_note = None
    try:
        with tempfile.TemporaryDirectory(dir=folder) as drawn:
            for chart in write_charts(report, Path(drawn)):
                os.replace(chart, folder / chart.name)
    except NoChineseFont as error:
        chart_note = str(error)
        log.warning("weekly report %s: %s", week, error)
    pngs = {name: CHART_TITLES[name] for name in CHARTS if chart_note is None}
    page = render_file(report, pngs, chart_note)
    _replace(folder / html_name(week), lambda path: path.write_text(page, encoding="utf-8"))
    log.info("weekly report %s: %d leads, %d spikes → %s", week, report.leads, len(report.spikes), folder)
    return folder
