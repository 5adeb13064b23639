"""What a cases export is asked for by: its file format and the cases' progress (no pandas, so the
CLI can offer these as choices without loading it)."""

from __future__ import annotations

import enum


class FileFormat(enum.StrEnum):
    """What a cases export is written as (`weisu export --format`; the web page offers csv and xlsx)."""

    CSV = "csv"
    XLSX = "xlsx"
    PARQUET = "parquet"


class CaseProgress(enum.StrEnum):
    """Where a verified case stands at the dispatch system (`weisu export --state`)."""

    QUEUED = "queued"
    FAILED = "failed"
    OPEN = "open"
    CLOSED = "closed"
