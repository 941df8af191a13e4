"""LINE's message limits as pure checks, shared by the sandbox and the LINE adapter."""

from __future__ import annotations

import pytest

from toolkit.line.limits import (
    MAX_REQUEST_BYTES,
    MessageLimitError,
    Violation,
    check_messages,
    check_push_target,
    check_recipients,
    is_chat_id,
    is_user_id,
    message_violations,
    recipient_violations,
    utf16_units,
)

EMOJI = "\N{GRINNING FACE}"  # U+1F600: one character, two UTF-16 units
USER = "U" + "0" * 31 + "1"


def text(value: str) -> dict[str, str]:
    return {"type": "text", "text": value}


def test_utf16_units() -> None:
    assert utf16_units("abc") == 3
    assert utf16_units("臺北") == 2  # BMP: one unit each
    assert utf16_units(EMOJI) == 2
    assert utf16_units("") == 0


@pytest.mark.parametrize("value, ok", [
    ("a" * 5000, True),
    ("a" * 5001, False),
    (EMOJI * 2500, True),
    ("a" * 4998 + EMOJI, True),
    ("a" * 4999 + EMOJI, False),  # 5,000 characters, 5,001 units
    ("", False),
])
def test_text_limit_in_utf16_units(value: str, ok: bool) -> None:
    assert (message_violations([text(value)]) == []) is ok


def test_one_to_five_messages() -> None:
    assert message_violations([text("x")] * 5) == []
    assert message_violations([text("x")] * 6) == [Violation("messages", "Size must be between 1 and 5")]
    assert message_violations([]) and message_violations(None)
    assert message_violations([{"type": "nope"}])[0].property == "messages[0].type"
    assert message_violations([text("x"), {"type": "sticker", "packageId": "1", "stickerId": "2"}]) == []


def test_multicast_recipients() -> None:
    assert recipient_violations([USER] * 500) == []
    assert recipient_violations([USER] * 501) == [Violation("to", "Size must be between 1 and 500")]
    assert recipient_violations([USER, "C" + "0" * 32]) == [Violation("to[1]", "Invalid user ID")]


def test_ids() -> None:
    assert is_user_id(USER) and not is_user_id("U" + "A" * 32) and not is_user_id(USER + "0")
    assert is_chat_id("C" + "f" * 32) and is_chat_id("R" + "0" * 32) and not is_chat_id(None)


def test_check_functions_raise_for_callers_that_send() -> None:
    check_messages([text("x")])
    check_recipients([USER])
    with pytest.raises(MessageLimitError) as caught:
        check_messages([text("a" * 5001)])
    assert caught.value.violations == [Violation("messages[0].text", "Length must be between 0 and 5000")]
    with pytest.raises(ValueError):
        check_recipients([])
    check_push_target("C" + "0" * 32)  # a group is a push target, not a multicast one
    with pytest.raises(MessageLimitError):
        check_push_target("nobody")


def test_body_limit_is_2_mib() -> None:
    assert MAX_REQUEST_BYTES == 2 * 1024 * 1024


def test_split_text_keeps_a_text_that_fits_and_cuts_at_line_breaks() -> None:
    from toolkit.line.limits import split_text, utf16_units

    assert split_text("短") == ["短"] and split_text("") == [""]
    long = "第一段" * 1000 + "\n" + "第二段" * 1000
    assert split_text(long) == ["第一段" * 1000, "第二段" * 1000]
    no_breaks = "😀" * 6000  # 12,000 UTF-16 units and nowhere better to cut
    pieces = split_text(no_breaks)
    assert "".join(pieces) == no_breaks
    assert [utf16_units(p) for p in pieces] == [5000, 5000, 2000]
