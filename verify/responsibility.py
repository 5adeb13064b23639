"""The responsibility list (职责清单): which unit handles a category where; CSV import and export."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from sqlalchemy import case, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from storage.models import ResponsibilityRule

CSV_COLUMNS = ("category", "district", "street", "unit", "note")
#: Column widths of the table; an import longer than these is refused, not truncated.
LIMITS = {"category": 50, "district": 50, "street": 100, "unit": 200, "note": 500}
#: An uploaded list is data typed by people: a few thousand rows is plenty, more is a mistake.
MAX_ROWS = 5000


class ResponsibilityError(Exception):
    """A rule that cannot be stored: a missing or overlong field, a duplicate, an unreadable CSV."""


@dataclass(frozen=True)
class RuleRow:
    """One rule as typed by an admin or read from CSV; empty district / street mean "anywhere"."""

    category: str
    unit: str
    district: str = ""
    street: str = ""
    note: str = ""

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.category, self.district, self.street)


@dataclass
class ImportSummary:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0

    def summary(self) -> str:
        return (
            f"新增 {self.added} 条，更新 {self.updated} 条，未变 {self.unchanged} 条，删除 {self.removed} 条"
        )


def clean_row(values: Mapping[str, str | None], where: str = "") -> RuleRow:
    """Strip and check one rule's fields; ResponsibilityError names the field (and ``where``)."""
    fields = {name: (values.get(name) or "").strip() for name in CSV_COLUMNS}
    prefix = f"{where}: " if where else ""
    for name in ("category", "unit"):
        if not fields[name]:
            raise ResponsibilityError(f"{prefix}{name} is required")
    for name, limit in LIMITS.items():
        if len(fields[name]) > limit:
            raise ResponsibilityError(f"{prefix}{name} is longer than {limit} characters")
    return RuleRow(**fields)


def suggest_unit(
    session: Session, category: str | None, district: str | None, street: str | None
) -> str | None:
    """The unit of the most specific rule matching the place: street beats district beats city-wide."""
    if not category:
        return None
    specificity = case((ResponsibilityRule.street != "", 2), else_=0) + case(
        (ResponsibilityRule.district != "", 1), else_=0
    )
    statement = (
        select(ResponsibilityRule.unit)
        .where(
            ResponsibilityRule.category == category,
            ResponsibilityRule.district.in_(["", district or ""]),
            ResponsibilityRule.street.in_(["", street or ""]),
        )
        .order_by(specificity.desc(), ResponsibilityRule.id)
        .limit(1)
    )
    return session.scalars(statement).first()


def list_rules(session: Session) -> list[ResponsibilityRule]:
    order = (ResponsibilityRule.category, ResponsibilityRule.district, ResponsibilityRule.street)
    return list(session.scalars(select(ResponsibilityRule).order_by(*order)))


def get_or_raise(*, session: Session, rule_id: int) -> ResponsibilityRule:
    rule = session.get(ResponsibilityRule, rule_id)
    if rule is None:
        raise ResponsibilityError(f"no rule {rule_id}")
    return rule


def _store(session: Session, rule: ResponsibilityRule, row: RuleRow, actor: str) -> None:
    """Write ``row`` into ``rule`` inside a savepoint, so a duplicate undoes only this change."""
    try:
        with session.begin_nested():
            rule.category, rule.district, rule.street = row.key
            rule.unit, rule.note, rule.updated_by = row.unit, row.note or None, actor
            session.add(rule)
            session.flush()
    except IntegrityError:
        place = f"{row.category} / {row.district or '全市'} / {row.street or '全区'}"
        raise ResponsibilityError(f"a rule for {place} already exists") from None


def create(*, session: Session, row: RuleRow, actor: str) -> ResponsibilityRule:
    rule = ResponsibilityRule()
    _store(session, rule, row, actor)
    return rule


def update(*, session: Session, rule_id: int, row: RuleRow, actor: str) -> ResponsibilityRule:
    rule = get_or_raise(session=session, rule_id=rule_id)
    _store(session, rule, row, actor)
    return rule


def remove(*, session: Session, rule_id: int) -> None:
    session.delete(get_or_raise(session=session, rule_id=rule_id))
    session.flush()


def read_csv(stream: TextIO) -> list[RuleRow]:
    """Parse a responsibility CSV (header: category,district,street,unit,note); every row checked."""
    reader = csv.DictReader(stream)
    missing = {"category", "unit"} - set(reader.fieldnames or ())
    if missing:
        raise ResponsibilityError(f"CSV header lacks: {', '.join(sorted(missing))}")
    rows: dict[tuple[str, str, str], RuleRow] = {}
    for number, values in enumerate(reader, start=2):
        if number - 1 > MAX_ROWS:
            raise ResponsibilityError(f"more than {MAX_ROWS} rows")
        if not any((value or "").strip() for value in values.values() if isinstance(value, str)):
            continue  # blank line
        row = clean_row(values, where=f"line {number}")
        if row.key in rows:
            raise ResponsibilityError(
                f"line {number}: {row.category} / {row.district} / {row.street} repeated"
            )
        rows[row.key] = row
    return list(rows.values())


def write_csv(rules: Iterable[ResponsibilityRule], stream: TextIO) -> None:
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for rule in rules:
        writer.writerow([rule.category, rule.district, rule.street, rule.unit, rule.note or ""])


def export_csv(session: Session) -> str:
    buffer = io.StringIO()
    write_csv(list_rules(session), buffer)
    return buffer.getvalue()


def import_rows(*, session: Session, rows: list[RuleRow], actor: str, replace: bool = False) -> ImportSummary:
    """Upsert rows by (category, district, street); with ``replace`` rules absent from ``rows`` go."""
    summary = ImportSummary()
    existing = {(r.category, r.district, r.street): r for r in session.scalars(select(ResponsibilityRule))}
    for row in rows:
        rule = existing.pop(row.key, None)
        if rule is None:
            session.add(
                ResponsibilityRule(
                    category=row.category,
                    district=row.district,
                    street=row.street,
                    unit=row.unit,
                    note=row.note or None,
                    updated_by=actor,
                )
            )
            summary.added += 1
        elif (rule.unit, rule.note or "") != (row.unit, row.note):
            rule.unit, rule.note, rule.updated_by = row.unit, row.note or None, actor
            summary.updated += 1
        else:
            summary.unchanged += 1
    if replace and existing:
        ids = [rule.id for rule in existing.values()]
        session.execute(delete(ResponsibilityRule).where(ResponsibilityRule.id.in_(ids)))
        summary.removed = len(ids)
    session.flush()
    return summary


def seed_if_empty(*, session: Session, path: Path) -> int:
    """Load the starter list into an empty table (a fresh install); rows added. Edited lists are kept."""
    if session.scalar(select(func.count()).select_from(ResponsibilityRule)):
        return 0
    # The path was checked when settings loaded (DispatchSettings): a missing list is an error, not empty.
    with path.open(encoding="utf-8-sig", newline="") as stream:
        rows = read_csv(stream)
    return import_rows(session=session, rows=rows, actor="starter-list").added
