"""Masking: no phone number, e-mail, ID or card number survives, whatever surrounds it;
short numbers that questions need (prices, quantities, times) are kept."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toolkit.llm.masking import CARD, EMAIL, NATIONAL_ID, NUMBER, PHONE, mask, mask_details

def n_digits(n: int) -> st.SearchStrategy[str]:
    return st.text(alphabet="0123456789", min_size=n, max_size=n)


separator = st.sampled_from(["", "-", " ", ".", " - ", "－", "‐"])

mobiles = st.builds(lambda a, b, c, s1, s2: f"09{a}{s1}{b}{s2}{c}", n_digits(2), n_digits(3), n_digits(3),
                    separator, separator)
international_mobiles = st.builds(lambda p, a, b, c, s: f"{p}{s}9{a}{s}{b}{s}{c}",
                                  st.sampled_from(["+886", "+886 ", "886", "(+886)"]), n_digits(2), n_digits(3),
                                  n_digits(3), separator)
landlines = st.builds(lambda area, a, b, s: area.format(s=s) + f"{a}{s}{b}",
                      st.sampled_from(["(02)", "02{s}", "(04)", "04{s}", "(049)", "+886{s}2{s}", "(07)"]),
                      n_digits(4), n_digits(4), separator)
foreign_phones = st.builds(lambda cc, a, b, s: f"+{cc}{s}{a}{s}{b}", st.sampled_from(["1", "44", "81", "852", "65"]),
                           n_digits(4), n_digits(4), separator)
national_ids = st.builds(lambda letter, first, rest: letter + first + rest,
                         st.sampled_from("ABCDEFGHJKLMNPQRSTUVXYWZIOabcdefghjk"),
                         st.sampled_from("12ABCD89"), n_digits(8))
cards = st.builds(lambda groups, s: s.join(groups), st.lists(n_digits(4), min_size=4, max_size=4),
                  st.sampled_from(["", " ", "-"]))
account_numbers = n_digits(7).flatmap(lambda head: n_digits(5).map(lambda tail: head + tail))
emails = st.emails()

identifiers = st.one_of(mobiles, international_mobiles, landlines, foreign_phones, national_ids, cards,
                        account_numbers, emails)
surroundings = st.text(max_size=30)
cjk_text = st.text(alphabet="請問我的電話是號碼信箱身分證字號卡謝謝運費退貨 ，。！？abcXYZ", max_size=20)


@settings(max_examples=400)
@given(before=surroundings, identifier=identifiers, after=surroundings)
def test_no_identifier_survives_whatever_surrounds_it(before: str, identifier: str, after: str) -> None:
    masked = mask(before + identifier + after)

    assert identifier not in masked


@settings(max_examples=300)
@given(before=cjk_text, identifier=identifiers, after=cjk_text)
def test_identifiers_inside_chinese_sentences_become_placeholders(before: str, identifier: str, after: str) -> None:
    details = mask_details(before + identifier + after)

    assert identifier not in details.text
    assert details.changed
    assert not re.search(r"\d{7}", details.text)


@given(identifier=identifiers)
def test_full_width_identifiers_are_masked_too(identifier: str) -> None:
    wide = identifier.translate({c: c + 0xFEE0 for c in range(0x21, 0x7F)})

    masked = mask(f"我的資料{wide}謝謝")

    assert wide not in masked
    assert identifier not in masked


@given(text=st.text(max_size=60))
def test_masking_is_idempotent_and_leaves_no_long_digit_run(text: str) -> None:
    once = mask(text)

    assert mask(once) == once
    assert not re.search(r"\d(?:[\s./()_\u2010-\u2015-]*\d){6}", once)


@pytest.mark.parametrize(("text", "expected"), [
    ("我的電話 0912-345-678，信箱 amy.lin@example.com.tw", "我的電話 [PHONE],信箱 [EMAIL]"),
    ("請打 (02)2345-6789 或 +886 912 345 678", "請打 ([PHONE] 或 [PHONE]"),
    ("身分證A123456789，居留證 fc12345678", "身分證[ID],居留證 [ID]"),
    ("卡號 4111 1111 1111 1111 刷不過", "卡號 [CARD] 刷不過"),
    ("訂單編號 20240131001 還沒到", "訂單編號 [NUMBER] 還沒到"),
    ("call me at +44 20 7946 0958", "call me at [PHONE]"),
])
def test_examples(text: str, expected: str) -> None:
    assert mask(text) == expected


@pytest.mark.parametrize("text", [
    "運費990元，滿 1,000 免運嗎", "買 3 件打 85 折", "12:30 到 21:00 有營業嗎", "會員點數 500 點可以折多少",
    "iPhone 15 的殼有貨嗎", "退貨要幾天",
])
def test_the_numbers_questions_need_are_kept(text: str) -> None:
    details = mask_details(text)

    assert not details.changed
    assert details.text == text.replace("，", ",")


def test_counts_say_what_was_masked() -> None:
    details = mask_details("0912345678；amy@example.com；A123456789；4111111111111111；1234567")

    assert details.counts == {PHONE: 1, EMAIL: 1, NATIONAL_ID: 1, CARD: 1, NUMBER: 1}
