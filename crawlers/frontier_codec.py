"""How requests are written into the shared Redis frontier: JSON, never pickle.

scrapy-redis pickles queued requests by default; anyone who can write to the Redis the workers share
could then run code in every worker. A request is a plain dict here (``Request.to_dict``): its byte
values (body, headers) are written as base64 strings and read back as bytes. This module is the
``SCHEDULER_SERIALIZER`` scrapy-redis imports: it needs ``dumps`` and ``loads``.
"""

from __future__ import annotations

import base64
import json
from typing import Any

#: The key that marks an encoded bytes value (no request field is named so).
_BYTES = "__weisu_b64__"


def _encode(value: Any) -> Any:
    if isinstance(value, bytes):
        return {_BYTES: base64.b64encode(value).decode("ascii")}
    if isinstance(value, dict):
        # Header names are bytes: keep them as keys of a list of pairs so they round-trip.
        if any(isinstance(key, bytes) for key in value):
            return {"__weisu_pairs__": [[_encode(k), _encode(v)] for k, v in value.items()]}
        return {key: _encode(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(item) for item in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {_BYTES}:
            return base64.b64decode(value[_BYTES])
        if set(value) == {"__weisu_pairs__"}:
            return {_decode(k): _decode(v) for k, v in value["__weisu_pairs__"]}
        return {key: _decode(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_decode(item) for item in value]
    return value


def dumps(request: dict[str, Any]) -> str:
    return json.dumps(_encode(request), ensure_ascii=False, separators=(",", ":"))


def loads(data: bytes | str) -> dict[str, Any]:
    decoded: dict[str, Any] = _decode(json.loads(data))
    return decoded
