"""The supervisors' dashboard: daily counts, SLA, precision, throughput and crawl health as server SVG."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
