"""When the bot hands a conversation to people, and when people are at work. Pure: text
and configuration in, a decision out (no database).

Keywords (真人, 客服, 投訴 ... in chatbot.yaml) are intent words, but customers also
ask FAQ questions that contain them (「客服電話幾號」). The rule:

* a keyword followed by an information word (電話, 時間, 幾點 ...) asks about the service:
  it is answered by the FAQ, never handed off;
* otherwise the message hands off when it is only the keyword once the filler words
  are dropped (「真人」, 「我要真人客服」, 「可以幫我轉客服嗎」, "talk to a person"),
* or when a request word comes right before the keyword (「我要找客服問退款的事」,
  "can I speak to a human about my order").

A complaint is scored: each complaint word or pattern found adds its weight once, and the
message is handed off from the configured threshold — one mild word is not enough.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from toolkit.chatbot.config import BusinessHours, Complaint, Handoff
from toolkit.kit.text import normalise

KEYWORD, COMPLAINT = "keyword", "complaint"
# Between a request word and the keyword: 「找一下客服」, 「轉你們的真人客服」.
_CJK_GAP = "(?:一下|一位|一個|個|位|你們的|你們|妳們|的|真的){0,2}"


def _latin(word: str) -> bool:
    return word.isascii()


def _word_re(word: str) -> str:
    """A Latin word or phrase as a whole word (spaces as any run of spaces)."""
    return r"(?<![a-z0-9])" + r"\s+".join(map(re.escape, word.split())) + r"(?![a-z0-9])"


def _norm_all(words: list[str], *, latin: bool) -> list[str]:
    if latin:
        found = [normalise(w) for w in words if _latin(w)]
    else:
        found = [normalise(w).replace(" ", "") for w in words if not _latin(w)]
    return sorted({w for w in found if w}, key=len, reverse=True)  # longest first


@dataclass(frozen=True)
class Rules:
    """config.Handoff compiled once."""

    cjk_keywords: tuple[str, ...]
    latin_keywords: re.Pattern[str] | None
    cjk_fillers: tuple[str, ...]
    latin_fillers: re.Pattern[str] | None
    cjk_info: tuple[str, ...]
    latin_info: re.Pattern[str] | None
    cjk_request: re.Pattern[str] | None
    latin_request: re.Pattern[str] | None
    cjk_words: dict[str, float]
    latin_words: dict[re.Pattern[str], float]
    patterns: dict[re.Pattern[str], float]
    threshold: float

    @classmethod
    def build(cls, handoff: Handoff) -> Rules:
        def alternation(words: list[str]) -> re.Pattern[str] | None:
            return re.compile("|".join(_word_re(w) for w in words)) if words else None

        cjk_kw, latin_kw = _norm_all(handoff.keywords, latin=False), _norm_all(handoff.keywords, latin=True)
        cjk_req, latin_req = _norm_all(handoff.request_words, latin=False), _norm_all(handoff.request_words, latin=True)
        cjk_request = None
        if cjk_req and cjk_kw:
            cjk_request = re.compile(f"(?:{'|'.join(map(re.escape, cjk_req))}){_CJK_GAP}"
                                     f"(?:{'|'.join(map(re.escape, cjk_kw))})")
        latin_request = None
        if latin_req and latin_kw:
            latin_request = re.compile(f"(?:{'|'.join(_word_re(r) for r in latin_req)})(?:\\s+\\S+){{0,3}}?\\s+"
                                       f"(?:{'|'.join(_word_re(k) for k in latin_kw)})")
        complaint: Complaint = handoff.complaint
        return cls(
            cjk_keywords=tuple(cjk_kw), latin_keywords=alternation(latin_kw),
            cjk_fillers=tuple(_norm_all(handoff.fillers, latin=False)),
            latin_fillers=alternation(_norm_all(handoff.fillers, latin=True)),
            cjk_info=tuple(_norm_all(handoff.info_words, latin=False)),
            latin_info=alternation(_norm_all(handoff.info_words, latin=True)),
            cjk_request=cjk_request, latin_request=latin_request,
            cjk_words={normalise(w).replace(" ", ""): v for w, v in complaint.words.items() if not _latin(w)},
            latin_words={re.compile(_word_re(normalise(w))): v for w, v in complaint.words.items() if _latin(w)},
            patterns={re.compile(p): v for p, v in complaint.patterns.items()},
            threshold=complaint.threshold,
        )


_rules: dict[int, tuple[Handoff, Rules]] = {}
_rules_lock = threading.Lock()


def rules_for(handoff: Handoff) -> Rules:
    """Compiled rules of a (cached, unchanging) configuration object."""
    with _rules_lock:
        cached = _rules.get(id(handoff))
        if cached is None or cached[0] is not handoff:
            cached = (handoff, Rules.build(handoff))
            _rules[id(handoff)] = cached
        return cached[1]


def _cjk_keyword_spans(compact: str, rules: Rules) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    for keyword in rules.cjk_keywords:  # longest first: 真人客服 before 客服
        start = compact.find(keyword)
        while start >= 0:
            end = start + len(keyword)
            if not any(s < end and start < e for s, e in spans):
                spans.append((start, end))
            start = compact.find(keyword, end)
    return spans


def asks_for_person(text: str, handoff: Handoff) -> bool:
    """Does the message ask for a person (see the module's doc)?"""
    rules = rules_for(handoff)
    said = normalise(text)
    compact = said.replace(" ", "")
    cjk = [(s, e) for s, e in _cjk_keyword_spans(compact, rules) if not compact[e:].startswith(rules.cjk_info)]
    latin = []
    if rules.latin_keywords is not None:
        latin = [m for m in rules.latin_keywords.finditer(said)
                 if not (rules.latin_info and rules.latin_info.match(said[m.end():].lstrip()))]
    if not cjk and not latin:
        return False
    # Only the keyword and filler words?
    rest = said
    for pattern in (rules.latin_keywords, rules.latin_fillers):
        if pattern is not None:
            rest = pattern.sub(" ", rest)
    rest = rest.replace(" ", "")
    for word in (*rules.cjk_keywords, *rules.cjk_fillers):
        rest = rest.replace(word, "")
    if not rest:
        return True
    # A request word right before a keyword that is not about information.
    if rules.cjk_request is not None:
        for found in rules.cjk_request.finditer(compact):
            if not compact[found.end():].startswith(rules.cjk_info):
                return True
    if rules.latin_request is not None:
        for found in rules.latin_request.finditer(said):
            if not (rules.latin_info and rules.latin_info.match(said[found.end():].lstrip())):
                return True
    return False


def complaint_score(text: str, handoff: Handoff) -> float:
    """The sum of the weights of the complaint words and patterns in the message."""
    rules = rules_for(handoff)
    said = normalise(text)
    compact = said.replace(" ", "")
    score = sum(weight for word, weight in rules.cjk_words.items() if word in compact)
    score += sum(weight for pattern, weight in rules.latin_words.items() if pattern.search(said))
    typed = unicodedata.normalize("NFKC", text)
    score += sum(weight for pattern, weight in rules.patterns.items() if pattern.search(typed))
    return score


def is_acknowledgement(text: str, words: list[str]) -> bool:
    """The whole message thanks or acknowledges (「謝謝！」, "ok 👍"): nothing to answer."""
    said = normalise(text).replace(" ", "")
    return said in {normalise(w).replace(" ", "") for w in words}


def trigger(text: str, handoff: Handoff) -> str | None:
    """Why this message hands the conversation to people (KEYWORD, COMPLAINT), or None."""
    if asks_for_person(text, handoff):
        return KEYWORD
    if complaint_score(text, handoff) >= rules_for(handoff).threshold:
        return COMPLAINT
    return None


# --- business hours -----------------------------------------------------------------------

def is_open(hours: BusinessHours, at: datetime) -> bool:
    local = at.astimezone(ZoneInfo(hours.timezone))
    if local.date() in hours.closed_on:
        return False
    now = local.time()
    return any(start <= now < end for start, end in hours.ranges(local.weekday()))


def next_opening(hours: BusinessHours, at: datetime) -> datetime:
    """`at` when people are at work then, else when they next start (in the hours' zone)."""
    if is_open(hours, at):
        return at
    zone = ZoneInfo(hours.timezone)
    local = at.astimezone(zone)
    closed = set(hours.closed_on)
    for offset in range(0, 400):
        day = local.date() + timedelta(days=offset)
        if day in closed:
            continue
        for start, _ in hours.ranges(day.weekday()):
            opening = datetime.combine(day, start, tzinfo=zone)
            if opening > local:
                return opening
    return at  # closed for over a year: say "now" rather than nothing


_ZH_WEEKDAYS = "一二三四五六日"
_EN_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_EN_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def describe_opening(hours: BusinessHours, opening: datetime, *, now: datetime, locale: str | None) -> str:
    """「明天（週二）09:00」 / "tomorrow (Tue) at 09:00", in the hours' zone."""
    zone = ZoneInfo(hours.timezone)
    when, today = opening.astimezone(zone), now.astimezone(zone).date()
    clock = when.strftime("%H:%M")
    days = (when.date() - today).days
    weekday = when.weekday()
    if (locale or "").lower().startswith("en"):
        if days == 0:
            return f"today at {clock}"
        if days == 1:
            return f"tomorrow ({_EN_WEEKDAYS[weekday]}) at {clock}"
        return f"{_EN_WEEKDAYS[weekday]} {when.day} {_EN_MONTHS[when.month - 1]} at {clock}"
    if days == 0:
        return f"今天 {clock} "
    if days == 1:
        return f"明天（週{_ZH_WEEKDAYS[weekday]}）{clock} "
    return f"{when.month}月{when.day}日（週{_ZH_WEEKDAYS[weekday]}）{clock} "
