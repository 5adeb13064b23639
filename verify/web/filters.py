"""The queue filter read from a page's URL: the validated LeadFilter, and what was wrong in Chinese."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import ValidationError

from verify.days import FIRST_DAY, LAST_DAY
from verify.review import MAX_FIELD_CHARS, MAX_PAGE, MAX_PLATFORM_CHARS, MAX_SEARCH_CHARS, LeadFilter

_CHOICE = "须为列表中的一项"
_DAY = f"须为 {FIRST_DAY} 至 {LAST_DAY} 之间的日期"
_FRACTION = "须为 0 到 1 之间的数"


def _chars(limit: int) -> str:
    return f"最多 {limit} 个字，不能含控制字符"


#: Each filter field: its label on the queue page and the values it accepts.
FIELD_HINTS: dict[str, tuple[str, str]] = {
    "state": ("状态", _CHOICE),
    "priority": ("优先级", _CHOICE),
    "type": ("诉求类型", _CHOICE),
    "category": ("类别", _chars(MAX_FIELD_CHARS)),
    "district": ("区", _chars(MAX_FIELD_CHARS)),
    "platform": ("平台", _chars(MAX_PLATFORM_CHARS)),
    "found_from": ("发现自", _DAY),
    "found_to": ("发现至", _DAY),
    "score_min": ("置信度下限", _FRACTION),
    "score_max": ("置信度上限", _FRACTION),
    "text": ("搜索", _chars(MAX_SEARCH_CHARS)),
    "sort": ("排序", _CHOICE),
    "page": ("页码", f"须为 1 至 {MAX_PAGE} 之间的整数"),
}


def read_filter(params: Mapping[str, str], page_size: int) -> tuple[LeadFilter, list[str]]:
    """The filter a page URL asks for, and one Chinese line per invalid field (that field is ignored).

    Pages stay usable with a bad link: the valid fields still filter, the page names what it ignored.
    The API answers the same mistakes with a 422 instead (FastAPI validates the same model).
    """
    # The page decides its size, not the URL.
    values = {name: params[name] for name in FIELD_HINTS if name in params}
    try:
        return LeadFilter.model_validate({**values, "page_size": page_size}), []
    except ValidationError as error:
        invalid = {str(detail["loc"][0]) for detail in error.errors() if detail["loc"]}
    kept = {name: value for name, value in values.items() if name not in invalid}
    problems = [f"{label}（{hint}）" for name, (label, hint) in FIELD_HINTS.items() if name in invalid]
    return LeadFilter.model_validate({**kept, "page_size": page_size}), problems


def problems_message(problems: list[str]) -> str:
    return "以下筛选条件无效，已忽略：" + "；".join(problems) + "。"
