"""Personal data out of everything stored: mask IDs, cards, phones, QQ/WeChat IDs, e-mails and plates;
keyed author pseudonyms; content hashes. Shared by the crawl pipelines and the data migrations."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass

# --- personal data -------------------------------------------------------------------------------
# Each mask finds candidates with a pattern and may check a candidate before replacing it (a
# birth date inside an ID number, the Luhn digit of a card), so ordinary numbers stay readable.
#
# Speed: raw bodies are masked too (hundreds of KB of JSON and HTML a sweep), so every pattern starts
# with a character or a branch of characters, which lets the regex engine skip ahead to where one
# occurs; the "not after a digit/letter" check therefore sits right after that first character, as a
# two-character lookbehind ("[1-9](?<![0-9A-Za-z][1-9])"), not in front of it (2–3× faster).

_NOT_ALNUM_AFTER = r"(?![0-9A-Za-z])"
_SEPARATORS = str.maketrans("", "", " -")

# 18-digit IDs as written (straight, or in groups: "440301 19900101 123X", "4403 0119 9001 0112 3X"),
# and the old 15-digit ones (region, YYMMDD birth date, sequence), checked against their structure.
_ID_CANDIDATE = re.compile(
    r"[1-9](?<![0-9A-Za-z][1-9])(?:(?:[ -]?\d){16}[ -]?[\dXx]|\d{14})" + _NOT_ALNUM_AFTER
)
_ID_18 = re.compile(r"[1-9]\d{5}(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx]")
_ID_15 = re.compile(r"[1-9]\d{7}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}")

# Card numbers: 16–19 digits. Written in groups of four or after a card word they are masked
# whatever they are (some older Chinese debit cards fail the Luhn check; a hand-typed digit may be
# wrong). A bare run is masked only when it is a UnionPay number (62…) that passes Luhn: bare runs
# of that length are mostly order numbers (Taobao's run 18–19 digits) and platform ids (Weibo's
# 16-digit mids, Toutiao's 19-digit ids): with Visa's, Mastercard's and JCB's prefixes allowed too, 8
# of the simulator's 307 post ids of that length were taken for cards; with 62 alone, none.
_CARD = re.compile(r"\d(?<![0-9A-Za-z]\d)(?:[ -]?\d){15,18}" + _NOT_ALNUM_AFTER)
#: A card word just before the number (looked for behind a candidate, not scanned for everywhere).
_CARD_WORD_BEFORE = re.compile(r"(?:银行卡|信用卡|储蓄卡|借记卡|卡号|账号|帐号)(?:号码|号)?\s*[:：]?\s*$")
_CARD_GROUPS = re.compile(r"\d{4}(?:[ -]\d{4}){2,3}[ -]\d{1,4}")

# QQ and WeChat IDs only where the writer names them: a bare number or word is no account.
_QQ = re.compile(
    r"(?P<label>(?:Q(?<![A-Za-z]Q)[Qq]|q(?<![A-Za-z]q)[Qq]|扣扣|企鹅)(?:群|号码|号)?\s*[:：]?\s*)"
    r"(?P<number>[1-9]\d{4,10})(?!\d)"
)
# ASCII introducers (vx, wx, weixin) need a separator, so markup such as class="wxshare1" is no ID.
_WECHAT = re.compile(
    r"(?P<label>(?:(?:微信|薇信|威信|维信|V(?<![A-Za-z]V)信|v(?<![A-Za-z]v)信)(?:号码|号|ID|id)?\s*[:：]?\s*"
    r"|(?:V(?<![A-Za-z]V)[Xx]|v(?<![A-Za-z]v)[Xx]|W(?<![A-Za-z]W)(?:[Xx]|ei[Xx]in|e[Cc]hat)"
    r"|w(?<![A-Za-z]w)(?:[Xx]|ei[Xx]in|e[Cc]hat))(?:\s*(?:号码|号|ID|id)?\s*[:：]\s*|\s+|号码?)))"
    r"(?P<number>[A-Za-z][-_A-Za-z0-9]{5,19}|\d{5,11})(?![-_A-Za-z0-9])"
)

_MOBILE = re.compile(r"(?:\+86[- ]?1|8(?<!\d8)6[- ]?1|1(?<!\d1))[3-9]\d(?:[- ]?\d{4}){2}(?!\d)")
# Landlines with the area code bracketed or hyphenated, or written straight on (075512345678,
# 02188886666): straight, only real area-code shapes (010, 02X, 0XXX) count.
_LANDLINE = re.compile(
    r"(?:\(0\d{2,3}\)\s?|0(?<!\d0)(?:\d{2,3}-|(?:10|2\d|[3-9]\d{2}) ?))\d{7,8}(?:-\d{1,4})?(?!\d)"
)
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
# Ordinary plates (粤B12345, new-energy 粤BD12345) and those ending in a class character: trailer 挂,
# learner 学, police 警, Hong Kong / Macau 港 / 澳.
_PLATE = re.compile(
    r"[京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼][A-HJ-NP-Z][·・]?"
    r"(?:[A-HJ-NP-Z0-9]{4}[挂学警港澳]|[A-HJ-NP-Z0-9]{5,6}(?![A-Za-z0-9]))"
)


def _luhn(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def _id_number(match: re.Match[str]) -> str | None:
    digits = match.group().translate(_SEPARATORS)
    valid = _ID_18.fullmatch(digits) if len(digits) == 18 else _ID_15.fullmatch(digits)
    return "[身份证号]" if valid else None


def _card(match: re.Match[str]) -> str | None:
    number = match.group()
    digits = number.translate(_SEPARATORS)
    if not 16 <= len(digits) <= 19:
        return None
    labelled = _CARD_WORD_BEFORE.search(match.string, max(0, match.start() - 12), match.start())
    if labelled or _CARD_GROUPS.fullmatch(number) or (digits.startswith("62") and _luhn(digits)):
        return "[银行卡号]"
    return None


def _labelled(placeholder: str) -> Callable[[re.Match[str]], str | None]:
    return lambda match: f"{match['label']}{placeholder}"


def _fixed(placeholder: str) -> Callable[[re.Match[str]], str | None]:
    return lambda match: placeholder


@dataclass(frozen=True)
class Mask:
    """One kind of personal data: where it may be, and what replaces it (None: keep the match)."""

    name: str
    pattern: re.Pattern[str]
    replace: Callable[[re.Match[str]], str | None]


# Order matters: an ID or card number contains digit runs the phone patterns would also match,
# and a QQ or WeChat ID may be a mobile number (then masked as one).
MASKS: tuple[Mask, ...] = (
    Mask("id_number", _ID_CANDIDATE, _id_number),
    Mask("bank_card", _CARD, _card),
    Mask("email", _EMAIL, _fixed("[邮箱]")),
    Mask("mobile", _MOBILE, _fixed("[手机号]")),
    Mask("landline", _LANDLINE, _fixed("[电话]")),
    Mask("qq", _QQ, _labelled("[QQ号]")),
    Mask("wechat", _WECHAT, _labelled("[微信号]")),
    Mask("plate", _PLATE, _fixed("[车牌]")),
)


def mask_personal_data(text: str) -> tuple[str, dict[str, int]]:
    """Replace ID, card, mobile, landline, QQ and WeChat numbers, e-mails and licence plates with
    placeholders; return the text and how many of each kind were replaced."""
    counts: dict[str, int] = {}
    for mask in MASKS:
        replaced = 0

        def substitute(match: re.Match[str], mask: Mask = mask) -> str:
            nonlocal replaced
            placeholder = mask.replace(match)
            if placeholder is None:
                return match.group()
            replaced += 1
            return placeholder

        text = mask.pattern.sub(substitute, text)
        if replaced:
            counts[mask.name] = replaced
    return text, counts


def author_key(secret: str, platform_id: str, handle: str) -> str:
    """Pseudonymous author key: HMAC-SHA256 (hex) of the platform and handle; the handle is never stored."""
    message = f"{platform_id}\x00{handle}".encode()
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
