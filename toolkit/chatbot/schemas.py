"""API shapes of FAQ entries and calibrations.

The limits here are declared for OpenAPI and early 422s; the authority on what an entry
may hold is service.checked_content (it also tidies whitespace and repeated alternatives),
so a value that passes here can still be refused there with the same 422 shape.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# The same numbers as service.MAX_*; not imported from there so that service may import
# these schemas without a cycle.
KEY_PATTERN = r"^[^\x00-\x1f\x7f]{1,64}$"
MAX_KEY = 64
MAX_QUESTION = 1000
# Characters here are upper bounds; the service counts UTF-16 units as LINE does.
MAX_MESSAGE_TEXT = 5000  # one LINE text message
MAX_ANSWER = 5 * MAX_MESSAGE_TEXT  # an answer goes out as up to 5 text messages
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


# Text that is stored or searched for: no control characters but line breaks and tabs
# (PostgreSQL refuses NUL; none belongs in a chat message). One-line values: none at all.
TEXT_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
LINE_PATTERN = r"^[^\x00-\x1f\x7f]*$"


class EntryReplace(BaseModel):
    """An entry's whole content, for PUT by key: created when new, a new version when it
    differs, nothing when it is the same (as a re-import does)."""

    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1, max_length=MAX_QUESTION)
    answer: str = Field(min_length=1, max_length=MAX_ANSWER)
    category: str = Field(default="", max_length=MAX_CATEGORY)
    alt_questions: AltQuestions = Field(default_factory=list, max_length=MAX_ALT_QUESTIONS)
    generated_questions: AltQuestions = Field(default_factory=list, max_length=MAX_ALT_QUESTIONS)
    locale: str = Field(default="zh-TW", pattern=LOCALE_PATTERN, max_length=16)
    active: bool = True
    note: str | None = Field(default=None, max_length=200, pattern=LINE_PATTERN,
                             description="Why it changed (kept with the version).")


# --- trying a question ------------------------------------------------------------------

MAX_QUERY = 5000  # one LINE text message


class MatchQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=MAX_QUERY, examples=["運費多少"])


class MatchCandidate(BaseModel):
    entry_id: str
    score: float
    question: str | None = None


class MatchRead(BaseModel):
    """What the bot would do with `query` now: answer with `entry_id`'s answer, or (answered
    false, entry_id null) say it is not sure and offer a person. `best_id` is the best
    candidate either way; `score` is the decision's confidence (0-1)."""

    query: str
    entry_id: str | None
    best_id: str | None
    score: float
    answered: bool
    answer: str | None = None
    candidates: list[MatchCandidate]
    features: dict[str, float] = Field(default_factory=dict)


# --- the unanswered queue ---------------------------------------------------------------

MAX_ID = 2**63 - 1  # database ids are signed 64-bit: larger is a 422, not a driver error
QuestionIds = list[Annotated[int, Field(ge=1, le=MAX_ID)]]
MAX_SELECTED = 2000  # unanswered.GROUPING_CAP: no group is bigger


class UnansweredQuestionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    text: str
    contact_id: int | None
    best_entry_key: str | None
    score: float
    created_at: datetime


class UnansweredGroupRead(BaseModel):
    """Open questions that ask the same thing; `representative` is the wording asked most."""

    model_config = ConfigDict(from_attributes=True)

    representative: str
    count: int
    best_entry_key: str | None
    latest_at: datetime
    questions: list[UnansweredQuestionRead]


class UnansweredGroupList(BaseModel):
    data: list[UnansweredGroupRead]
    open: int = Field(description="Open questions in the queue (grouped or not)")


class QuestionSelection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question_ids: QuestionIds = Field(min_length=1, max_length=MAX_SELECTED)


class ResolveAsNewEntry(QuestionSelection):
    """A new entry answering the selected questions; their wordings become its alternatives."""

    key: str = Field(pattern=KEY_PATTERN, max_length=MAX_KEY)
    question: str = Field(min_length=1, max_length=MAX_QUESTION)
    answer: str = Field(min_length=1, max_length=MAX_ANSWER)
    category: str = Field(default="", max_length=MAX_CATEGORY)


class ResolveAsAltQuestion(QuestionSelection):
    """The selected questions' wordings become alternative questions of `entry_key`."""

    entry_key: str = Field(pattern=KEY_PATTERN, max_length=MAX_KEY)


class Dismissed(BaseModel):
    dismissed: int


# --- conversations ----------------------------------------------------------------------

ConversationStatus = Literal["bot", "waiting", "human"]


class ConversationRead(BaseModel):
    """status: bot (the bot answers), waiting (handed to people, nobody has it yet), human."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    contact_id: int
    status: str
    assignee_id: int | None
    handoff_reason: str | None
    handoff_at: datetime | None
    misses: int
    last_message_at: datetime
    last_customer_at: datetime | None
    created_at: datetime


class ConversationList(BaseModel):
    data: list[ConversationRead]
    count: int
    waiting: int = Field(description="Conversations waiting for a person, whatever the filter")


class ChatMessageRead(BaseModel):
    """sender: customer, bot, agent or system (a note for staff, never sent). A bot message
    carries the entry it answered with and its confidence; an agent's, its delivery."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    conversation_id: int
    direction: str
    sender: str
    text: str
    entry_key: str | None
    score: float | None
    answered: bool | None
    author_id: int | None
    delivery: str | None
    created_at: datetime


class ChatMessageList(BaseModel):
    data: list[ChatMessageRead]
    count: int


class AgentReplyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=MAX_MESSAGE_TEXT, pattern=TEXT_PATTERN,
                      examples=["您好，我是客服小林，馬上為您查詢訂單。"])
