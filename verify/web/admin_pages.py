"""Admin pages: the responsibility list (职责清单) and the dispatch tickets (failed, open, closed)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
