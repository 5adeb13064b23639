"""The one check every text a user types passes before it reaches the database."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator

NUL = "\x00"
UNSTORABLE = "must not contain NUL characters or unpaired surrogates"


def storable(text: str) -> bool:
    """True when both databases can store and compare ``text``.

    PostgreSQL refuses NUL in text, and neither driver can encode a lone surrogate (JSON bodies can
    carry one as ``"\\ud800"``); either would surface as a driver error, i.e. a 500.
    """
    if NUL in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def require_storable(text: str) -> str:
    """``text`` unchanged; ValueError when it cannot be stored (a pydantic validator, hence ValueError)."""
    if not storable(text):
        raise ValueError(UNSTORABLE)
    return text


#: A str field of a request model that may reach the database.
StorableStr = Annotated[str, AfterValidator(require_storable)]
