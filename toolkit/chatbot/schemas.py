"""API shapes of FAQ entries and calibrations.

The limits here are declared for OpenAPI and early 422s; the authority on what an entry
may hold is service.checked_content (it also tidies whitespace and repeated alternatives),
so a value that passes here can still be refused there with the same 422 shape.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

# The same numbers as service.MAX_*; not imported from there so that service may import
# these schemas without a cycle.
KEY_PATTERN = r"^[^\x00-\x1f\x7f]{1,64}$"
MAX_KEY = 64
MAX_QUESTION = 1000
MAX_ANSWER = 5000  # UTF-16 units, checked by the service; characters here are an upper bound
MAX_CATEGORY = 100
MAX_ALT_QUESTIONS = 100
LOCALE_PATTERN = r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8}){0,2}$"

AltQuestions = list[str]


class EntryCreate(BaseModel):
    """A new entry. `key` is the brand's own id (the `id` column of an import file)."""

    model_config = ConfigDict(extra="forbid")

    key: str = Field(pattern=KEY_PATTERN, max_length=MAX_KEY, examples=["R10"])
    question: str = Field(min_length=1, max_length=MAX_QUESTION, examples=["訂單什麼時候會到？"])
    answer: str = Field(min_length=1, max_length=MAX_ANSWER)
    category: str = Field(default="", max_length=MAX_CATEGORY, examples=["訂單與配送"])
    alt_questions: AltQuestions = Field(default_factory=list, max_length=MAX_ALT_QUESTIONS)
    locale: str = Field(default="zh-TW", pattern=LOCALE_PATTERN, max_length=16)
    active: bool = True


class EntryUpdate(BaseModel):
    """Fields to change; those left out keep their value. Any change is a new version."""

    model_config = ConfigDict(extra="forbid")

    question: str | None = Field(default=None, min_length=1, max_length=MAX_QUESTION)
    answer: str | None = Field(default=None, min_length=1, max_length=MAX_ANSWER)
    category: str | None = Field(default=None, max_length=MAX_CATEGORY)
    alt_questions: AltQuestions | None = Field(default=None, max_length=MAX_ALT_QUESTIONS)
    generated_questions: AltQuestions | None = Field(default=None, max_length=MAX_ALT_QUESTIONS)
    locale: str | None = Field(default=None, pattern=LOCALE_PATTERN, max_length=16)
    active: bool | None = None
    note: str | None = Field(default=None, max_length=200, description="Why it changed (kept with the version).")

    def changes(self) -> dict[str, Any]:
        """The content fields that were given, as service.update_entry takes them."""
        return self.model_dump(exclude_unset=True, exclude={"note"}, exclude_none=True)


class EntryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    key: str
    question: str
    alt_questions: list[str]
    generated_questions: list[str]
    answer: str
    category: str
    locale: str
    active: bool
    version: int
    created_at: datetime
    updated_at: datetime
    updated_by: str


class EntryList(BaseModel):
    data: list[EntryRead]
    count: int


class EntryVersionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    version: int
    content: dict[str, Any]
    changed_at: datetime
    changed_by: str
    note: str | None


class CalibrationRead(BaseModel):
    """A stored decision and the rates it reached on the brand's examples."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    decision: dict[str, Any]
    report: dict[str, Any]
    examples: int
    source: str
    created_at: datetime
    created_by: str
