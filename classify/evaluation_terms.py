"""What `weisu evaluate` can score (no pandas, so the CLI can offer the choices without loading it)."""

from __future__ import annotations

import enum


class EvaluationTask(enum.StrEnum):
    """`weisu evaluate --task`: the first-level category, relevance (lead or noise), or the request type."""

    CATEGORY = "category"
    RELEVANCE = "relevance"
    TYPE = "type"
