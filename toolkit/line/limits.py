"""LINE Messaging API limits, as pure checks.

One copy of the numbers for both sides of the wire: the sandbox rejects requests with them
and the LINE adapter checks its own requests with them before sending, so that a message
that LINE would refuse fails fast and identically in tests and in production.
`*_violations` list what is wrong, named as LINE's 400 `details` name it (the sandbox
answers with them); `check_*` raise MessageLimitError instead (for a sender).
Numbers from LINE's messaging-api.yml (specs/line-openapi/) and its API reference.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MAX_MESSAGES = 5
MAX_MULTICAST_RECIPIENTS = 500
MAX_TEXT_UTF16_UNITS = 5000
MAX_REQUEST_BYTES = 2 * 1024 * 1024

# User IDs as LINE issues them; groups (C...) and rooms (R...) look the same.
USER_ID = re.compile(r"U[0-9a-f]{32}")
CHAT_ID = re.compile(r"[UCR][0-9a-f]{32}")

MESSAGE_TYPES = frozenset(
    {"text", "textV2", "sticker", "image", "video", "audio", "location", "imagemap", "template", "flex", "coupon"}
)
TEXT_TYPES = frozenset({"text", "textV2"})


@dataclass(frozen=True)
class RateLimit:
    requests: int
    per_s: int


# Per channel and endpoint (LINE API reference, "Rate limits").
RATE_LIMITS: Mapping[str, RateLimit] = {
    "reply": RateLimit(2000, 1),
    "push": RateLimit(2000, 1),
    "multicast": RateLimit(200, 1),
    "narrowcast": RateLimit(60, 3600),
    "broadcast": RateLimit(60, 3600),
}


@dataclass(frozen=True)
class Violation:
    """One broken rule, named the way LINE's 400 `details` name it."""

    property: str
    message: str


def utf16_units(text: str) -> int:
    """LINE counts text length in UTF-16 code units: an emoji outside the BMP counts 2."""
    return len(text.encode("utf-16-le")) // 2


def is_user_id(value: object) -> bool:
    return isinstance(value, str) and USER_ID.fullmatch(value) is not None


def is_chat_id(value: object) -> bool:
    """A push target: a user, group or room ID."""
    return isinstance(value, str) and CHAT_ID.fullmatch(value) is not None


class MessageLimitError(ValueError):
    """A request LINE would refuse with 400; raised before sending."""

    def __init__(self, violations: list[Violation]) -> None:
        super().__init__("; ".join(f"{v.property}: {v.message}" for v in violations))
        self.violations = violations


def check_messages(messages: object) -> None:
    _raise_if(message_violations(messages))


def check_recipients(to: object) -> None:
    _raise_if(recipient_violations(to))


def check_push_target(to: object) -> None:
    _raise_if(push_target_violations(to))


def _raise_if(violations: list[Violation]) -> None:
    if violations:
        raise MessageLimitError(violations)


def message_violations(messages: object, *, prop: str = "messages") -> list[Violation]:
    """1 to 5 message objects of a known type; texts within 5,000 UTF-16 units."""
    if not isinstance(messages, list | tuple) or not messages or len(messages) > MAX_MESSAGES:
        return [Violation(prop, f"Size must be between 1 and {MAX_MESSAGES}")]
    problems: list[Violation] = []
    for index, message in enumerate(messages):
        problems.extend(_message_violations(message, prop=f"{prop}[{index}]"))
    return problems


def _message_violations(message: object, *, prop: str) -> list[Violation]:
    if not isinstance(message, Mapping):
        return [Violation(prop, "Must be an object")]
    kind = message.get("type")
    if kind not in MESSAGE_TYPES:
        return [Violation(f"{prop}.type", "Must be one of the following values: " + ", ".join(sorted(MESSAGE_TYPES)))]
    if kind in TEXT_TYPES:
        return text_violations(message.get("text"), prop=f"{prop}.text")
    return []


def text_violations(text: Any, *, prop: str = "text") -> list[Violation]:
    if not isinstance(text, str) or not text:
        return [Violation(prop, "May not be empty")]
    if utf16_units(text) > MAX_TEXT_UTF16_UNITS:
        return [Violation(prop, f"Length must be between 0 and {MAX_TEXT_UTF16_UNITS}")]
    return []


def recipient_violations(to: object, *, prop: str = "to") -> list[Violation]:
    """A multicast's `to`: 1 to 500 user IDs."""
    if not isinstance(to, list | tuple) or not to or len(to) > MAX_MULTICAST_RECIPIENTS:
        return [Violation(prop, f"Size must be between 1 and {MAX_MULTICAST_RECIPIENTS}")]
    return [Violation(f"{prop}[{i}]", "Invalid user ID") for i, user in enumerate(to) if not is_user_id(user)]


def push_target_violations(to: object, *, prop: str = "to") -> list[Violation]:
    return [] if is_chat_id(to) else [Violation(prop, "Invalid user, group or room ID")]


def split_text(text: str, *, max_units: int = MAX_TEXT_UTF16_UNITS) -> list[str]:
    """Cut a long text into pieces LINE takes as separate text messages: at the last line
    break (else the last space, else anywhere) before each piece would exceed `max_units`
    UTF-16 units. A text that fits is returned whole."""
    pieces: list[str] = []
    rest = text
    while utf16_units(rest) > max_units:
        cut, units = 0, 0
        for i, ch in enumerate(rest):  # the longest prefix within max_units
            units += 2 if ord(ch) > 0xFFFF else 1
            if units > max_units:
                break
            cut = i + 1
        head = rest[:cut]
        for separator in ("\n", " "):
            at = head.rfind(separator)
            if at > cut // 2:
                head = rest[: at + 1]
                break
        pieces.append(head.rstrip())
        rest = rest[len(head):].lstrip()
    if rest or not pieces:
        pieces.append(rest)
    return pieces
