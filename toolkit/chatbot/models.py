from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from toolkit.contacts.models import Contact
from toolkit.db import Base, BigId, JsonDoc, UtcDateTime
from toolkit.kit.clock import utcnow
from toolkit.kit.personal import Personal


class FaqEntry(Base):
    """One question the bot can answer. `key` is the brand's own id for it (the `id`
    column of an import file): stable across versions, what `toolkit faq match` reports.

    alt_questions are written by staff; generated_questions are drafted by the LLM
    (`toolkit faq expand`) and kept apart so staff can review them and so they are
    counted separately. Both are matched."""

    __tablename__ = "faq_entry"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True, info={"personal": None})
    # Brand content written by staff; a customer's question adopted from the unanswered queue
    # is reworded into the brand's (the queue's row goes with the person).
    question: Mapped[str] = mapped_column(Text, info={"personal": None})
    alt_questions: Mapped[list[str]] = mapped_column(JsonDoc, default=list, info={"personal": None})
    generated_questions: Mapped[list[str]] = mapped_column(JsonDoc, default=list, info={"personal": None})
    answer: Mapped[str] = mapped_column(Text, info={"personal": None})
    category: Mapped[str] = mapped_column(String(100), default="", info={"personal": None})
    locale: Mapped[str] = mapped_column(String(16), default="zh-TW", info={"personal": None})
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(200), default="system", info={"personal": Personal.IDENTIFIER})

    versions: Mapped[list[FaqEntryVersion]] = relationship(
        back_populates="entry", cascade="all, delete-orphan", order_by="FaqEntryVersion.version"
    )


class FaqEntryVersion(Base):
    """Every version an entry has had (the current one included), as it was."""

    __tablename__ = "faq_entry_version"
    __table_args__ = (UniqueConstraint("entry_id", "version"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("faq_entry.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    content: Mapped[dict[str, Any]] = mapped_column(JsonDoc, info={"personal": None})
    changed_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    changed_by: Mapped[str] = mapped_column(String(200), info={"personal": Personal.IDENTIFIER})
    note: Mapped[str | None] = mapped_column(String(200), info={"personal": None})

    entry: Mapped[FaqEntry] = relationship(back_populates="versions")


class FaqDecision(Base):
    """A decision fitted by `toolkit faq calibrate` to the brand's labelled examples, with
    the rates it reached on them. The newest one is used; none means the shipped default."""

    __tablename__ = "faq_decision"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    decision: Mapped[dict[str, Any]] = mapped_column(JsonDoc, info={"personal": None})
    report: Mapped[dict[str, Any]] = mapped_column(JsonDoc, info={"personal": None})
    examples: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(200), info={"personal": None})
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200), info={"personal": Personal.IDENTIFIER})


class Conversation(Base):
    """A contact's chat with the brand on LINE: owned by the bot or by a human agent.

    status: bot (the bot answers), waiting (handed off, no agent has answered yet),
    human (an agent is talking). The bot is silent unless status is bot."""

    __tablename__ = "conversation"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id", ondelete="CASCADE"), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="bot", index=True, info={"personal": None})
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    handoff_reason: Mapped[str | None] = mapped_column(String(64), info={"personal": None})
    handoff_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # Bot answers in a row that were "not sure": a trigger for handing off.
    misses: Mapped[int] = mapped_column(Integer, default=0)
    last_message_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_customer_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    contact: Mapped[Contact] = relationship()


class ChatMessage(Base):
    """One message in a conversation. sender: customer, bot, agent or system."""

    __tablename__ = "chat_message"
    __table_args__ = (Index("ix_chat_message_conversation_id_id", "conversation_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversation.id", ondelete="CASCADE"))
    direction: Mapped[str] = mapped_column(String(3), info={"personal": None})  # in | out
    sender: Mapped[str] = mapped_column(String(16), info={"personal": None})
    text: Mapped[str] = mapped_column(Text, info={"personal": Personal.FREE_TEXT})
    entry_key: Mapped[str | None] = mapped_column(String(64), info={"personal": None})
    score: Mapped[float | None] = mapped_column(Float)
    answered: Mapped[bool | None] = mapped_column(Boolean)
    webhook_event_id: Mapped[int | None] = mapped_column(ForeignKey("webhook_event.id", ondelete="SET NULL"))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    # For an agent's message: reply_sent, push_sent, failed (see toolkit.line.client).
    delivery: Mapped[str | None] = mapped_column(String(16), info={"personal": None})
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class UnansweredQuestion(Base):
    """A customer question the bot was not sure about, queued for staff to turn into an
    entry or an alternative question. status: open, resolved, dismissed."""

    __tablename__ = "unanswered_question"
    __table_args__ = (Index("ix_unanswered_question_status_id", "status", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    text: Mapped[str] = mapped_column(Text, info={"personal": Personal.FREE_TEXT})
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contact.id", ondelete="SET NULL"))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("chat_message.id", ondelete="SET NULL"))
    best_entry_key: Mapped[str | None] = mapped_column(String(64), info={"personal": None})
    score: Mapped[float] = mapped_column(Float, default=0.0)
    status: Mapped[str] = mapped_column(String(16), default="open", info={"personal": None})
    resolved_entry_key: Mapped[str | None] = mapped_column(String(64), info={"personal": None})
    resolved_by: Mapped[str | None] = mapped_column(String(200), info={"personal": Personal.IDENTIFIER})
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class FaqEmbedding(Base):
    """An entry's questions (its question and every alternative) embedded by one model:
    `vectors` holds `n_vectors` float32 vectors of `dims` numbers, little-endian, in the order
    of the texts. Kept for as long as the texts are the same (`texts_sha256`), so a new
    version that only changes the answer is not embedded again. Written by the bot when an
    entry has none yet and by `toolkit faq embed`."""

    __tablename__ = "faq_embedding"
    __table_args__ = (UniqueConstraint("entry_id", "model"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("faq_entry.id", ondelete="CASCADE"))
    model: Mapped[str] = mapped_column(String(200), info={"personal": None})
    version: Mapped[int] = mapped_column(Integer)  # the entry version first embedded with these texts
    texts_sha256: Mapped[str] = mapped_column(String(64), info={"personal": None})
    dims: Mapped[int] = mapped_column(Integer)
    n_vectors: Mapped[int] = mapped_column(Integer)
    vectors: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
