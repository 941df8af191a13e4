"""Masking personal identifiers in customer text before it leaves for a model.

    mask("我的電話 0912-345-678，信箱 amy@example.com")
    -> "我的電話 [PHONE]，信箱 [EMAIL]"

What is masked (after NFKC, so full-width digits and letters are caught too):

    [EMAIL]   e-mail addresses
    [ID]      Taiwan national ID numbers (A123456789) and resident / unified ID numbers
              (old ARC A[A-D]12345678, new UI A[89]12345678), any case, checksum or not
    [PHONE]   Taiwan mobiles (0912-345-678, +886 912 345 678), landlines ((02)2345-6789,
              02-2345-6789, +886-2-2345-6789) and other international numbers (+81 3 ...)
    [CARD]    13 to 19 digits in a run (credit and debit cards)
    [NUMBER]  any other run of 7 or more digits (with spaces, dashes or dots between):
              local phone numbers without area code, account and order numbers

It errs towards masking: a date written 2024-01-31 becomes [NUMBER]; the FAQ match does
not need it, and an identifier sent abroad cannot be called back. Names and street
addresses are not recognised; the bot's prompts never ask the customer for them.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass

EMAIL, NATIONAL_ID, PHONE, CARD, NUMBER = "[EMAIL]", "[ID]", "[PHONE]", "[CARD]", "[NUMBER]"

# RFC 5322 dot-atom characters on the left (what people and `hypothesis.emails()` use),
# a host on the right (a TLD is not required: "amy@gmail" is still hers).
_EMAIL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")
# No word boundaries: in 「證號A123456789」 the letter follows a CJK character, which \b
# treats as a word character too.
_NATIONAL_ID = re.compile(r"[A-Za-z][12ABCDabcd89]\d{8}")
# Digits with separators between them (spaces, dashes of any width, dots, slashes,
# parentheses), optionally after "+": the shape of every phone, card and account number.
_SEP = r"\s./()_\u2010-\u2015-"
_DIGIT_RUN = re.compile(rf"\+?\d(?:[\d{_SEP}]*\d)?")
_SEPARATORS = re.compile(rf"[{_SEP}]")


@dataclass(frozen=True)
class Masked:
    text: str
    counts: dict[str, int]

    @property
    def changed(self) -> bool:
        return bool(self.counts)


def _digit_kind(run: str) -> str | None:
    digits = re.sub(r"\D", "", run)
    n = len(digits)
    if n < 7:
        return None
    international = run.startswith("+") or (digits.startswith("886") and n in (11, 12))
    if international and n <= 15:
        return PHONE
    if digits.startswith("09") and n == 10:  # Taiwan mobile
        return PHONE
    if digits.startswith("0") and n in (9, 10) and _SEPARATORS.search(run):  # landline with area code
        return PHONE
    if 13 <= n <= 19:
        return CARD
    return NUMBER


def mask_details(text: str) -> Masked:
    """The masked text and how many of each kind were masked."""
    counts: Counter[str] = Counter()

    def replace(kind: str):  # noqa: ANN202 - a re.sub callback
        def sub(_: re.Match[str]) -> str:
            counts[kind] += 1
            return kind
        return sub

    def digits(found: re.Match[str]) -> str:
        run = found.group(0)
        kind = _digit_kind(run)
        if kind is None:
            return run
        counts[kind] += 1
        return kind

    text = unicodedata.normalize("NFKC", text)
    text = _EMAIL.sub(replace(EMAIL), text)
    text = _NATIONAL_ID.sub(replace(NATIONAL_ID), text)
    text = _DIGIT_RUN.sub(digits, text)
    return Masked(text, dict(counts))


def mask(text: str) -> str:
    """`text` with e-mails, ID numbers, phone, card and other long numbers replaced by
    placeholders; see the module's docstring."""
    return mask_details(text).text


_PLACEHOLDER = re.compile("|".join(re.escape(p) for p in (EMAIL, NATIONAL_ID, PHONE, CARD, NUMBER)))


def without_identifiers(text: str) -> str:
    """`text` with the identifiers `mask` finds removed rather than replaced: for a
    customer's wording that becomes part of the FAQ bank. A text with none is kept as
    written (mask's NFKC would turn its full-width punctuation half-width)."""
    masked = mask_details(text)
    return " ".join(_PLACEHOLDER.sub(" ", masked.text).split() if masked.changed else text.split())
