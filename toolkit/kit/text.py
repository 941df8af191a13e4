"""Normalising what customers type: full-width forms, Simplified characters, case,
punctuation and emoji, so that 「ＳＴＯＰ！」, "stop" and 「取消订阅」 compare equal to
their canonical keyword."""

from __future__ import annotations

import unicodedata
from functools import lru_cache

import opencc


@lru_cache(maxsize=1)
def _to_taiwan() -> opencc.OpenCC:
    # s2twp: Simplified to Traditional with Taiwan's phrasing (软件 -> 軟體).
    return opencc.OpenCC("s2twp")


def _is_noise(char: str) -> bool:
    category = unicodedata.category(char)
    # P*: punctuation, S*: symbols (emoji are So), Z*/Cc/Cf: spaces and invisible marks.
    return category[0] in "PSZ" or category in ("Cc", "Cf")


def normalise(text: str) -> str:
    """NFKC, Traditional (Taiwan), lower case; punctuation, emoji and runs of space
    become one space."""
    text = _to_taiwan().convert(unicodedata.normalize("NFKC", text)).casefold()
    cleaned = "".join(" " if _is_noise(ch) else ch for ch in text)
    return " ".join(cleaned.split())


def compact(text: str) -> str:
    """The normalised text with no spaces at all, for whole-message keyword matching."""
    return normalise(text).replace(" ", "")
