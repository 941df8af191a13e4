"""chatbot.yaml: handoff triggers, business hours and the bot's own words (the brand's in
TOOLKIT_CONFIG_DIR, else the shipped default in toolkit/defaults).

Read again when the file changes (its mtime), so an edit reaches the worker without a
restart, as line.yaml is.
"""

from __future__ import annotations

import re
from datetime import date, time
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from toolkit import defaults
from toolkit.kit.config_files import load_yaml_model
from toolkit.kit.errors import InvalidInput
from toolkit.kit.localised import Localised
from toolkit.settings import get_settings

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_RANGE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


class BotConfigError(InvalidInput):
    code = "chatbot_config_invalid"


class Complaint(BaseModel):
    model_config = ConfigDict(extra="forbid")

    threshold: float = Field(default=2.0, gt=0)
    words: dict[str, float] = Field(default_factory=dict)
    patterns: dict[str, float] = Field(default_factory=dict)

    @field_validator("patterns")
    @classmethod
    def _compiles(cls, patterns: dict[str, float]) -> dict[str, float]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"pattern {pattern!r}: {exc}") from exc
        return patterns


class Handoff(BaseModel):
    model_config = ConfigDict(extra="forbid")

    keywords: list[str] = Field(min_length=1)
    fillers: list[str] = Field(default_factory=list)
    request_words: list[str] = Field(default_factory=list)
    info_words: list[str] = Field(default_factory=list)
    complaint: Complaint = Field(default_factory=Complaint)
    miss_limit: int = Field(default=2, ge=1)


class BusinessHours(BaseModel):
    model_config = ConfigDict(extra="forbid")

    timezone: str = "Asia/Taipei"
    summary: Localised
    weekly: dict[Weekday, list[str]]
    closed_on: list[date] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {name!r}") from exc
        return name

    @field_validator("weekly")
    @classmethod
    def _ranges(cls, weekly: dict[Weekday, list[str]]) -> dict[Weekday, list[str]]:
        for day, ranges in weekly.items():
            for text in ranges:
                parse_range(text, where=day)
        return weekly

    @model_validator(mode="after")
    def _open_sometime(self) -> BusinessHours:
        if not any(self.weekly.values()):
            raise ValueError("business hours: at least one opening range is needed")
        return self

    def ranges(self, weekday: int) -> list[tuple[time, time]]:
        """Opening ranges of a weekday (0 = Monday), in order."""
        return sorted(parse_range(t) for t in self.weekly.get(WEEKDAYS[weekday], []))


def parse_range(text: str, *, where: str = "") -> tuple[time, time]:
    found = _RANGE.match(text)
    if not found:
        raise ValueError(f"{where}: {text!r} is not HH:MM-HH:MM")
    h1, m1, h2, m2 = (int(x) for x in found.groups())
    if h2 == 24 and m2 == 0:
        h2, m2 = 23, 59
    if not (h1 < 24 and h2 < 24 and m1 < 60 and m2 < 60) or (h1, m1) >= (h2, m2):
        raise ValueError(f"{where}: {text!r} is not a range within one day")
    return time(h1, m1), time(h2, m2)


class Texts(BaseModel):
    model_config = ConfigDict(extra="forbid")

    human_button: Localised
    human_button_text: Localised
    acknowledged: Localised
    not_sure: Localised
    handoff_open: Localised
    handoff_closed: Localised
    lead_complaint: Localised
    lead_unsure: Localised
    # A chatbot.yaml written before this text existed still loads.
    waiting_closed: Localised = Localised(
        zh_tw="已收到您的訊息。目前是非服務時間（{hours}），專人將於{next_open}起在這裡回覆您。",
        en="We have your message. We are closed now ({hours}); a person will answer here from {next_open}.",
    )


class BotConfig(BaseModel):
    """chatbot.yaml."""

    model_config = ConfigDict(extra="forbid")

    handoff: Handoff
    idle_release_minutes: int = Field(default=30, ge=1)
    # Out of hours, a customer writing again to a conversation that waits for people is
    # told again when they answer, at most this often (0: never).
    waiting_reminder_minutes: int = Field(default=120, ge=0)
    business_hours: BusinessHours
    acknowledgements: list[str] = Field(default_factory=list)
    offer_human_with_answers: bool = True
    texts: Texts


def config_path() -> Path:
    return defaults.path("chatbot.yaml", get_settings().config_dir)


def load_bot_config(path: Path | None = None) -> BotConfig:
    """The bot's configuration, parsed again only when the file changed."""
    return load_yaml_model(path or config_path(), BotConfig, error=BotConfigError)
