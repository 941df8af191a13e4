"""The outbound pipeline: one row per message the product sends over LINE (messaging).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from toolkit.db import BigId, JsonDoc, UtcDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

STATES = ("queued", "sending", "reply_sent", "push_sent", "unknown", "failed", "suppressed")


def upgrade() -> None:
    op.create_table(
        "outbound_message",
        sa.Column("id", BigId, nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("source_id", sa.BigInteger(), nullable=True),
        sa.Column("contact_id", sa.BigInteger(), nullable=True),
        sa.Column("recipient", sa.String(length=64), nullable=False),
        sa.Column("group_key", sa.String(length=64), nullable=True),
        sa.Column("purpose", sa.String(length=64), nullable=False),
        sa.Column("messages", JsonDoc, nullable=False),
        sa.Column("reply_token", sa.String(length=255), nullable=True),
        sa.Column("push_allowed", sa.Boolean(), nullable=False),
        sa.Column("retry_key", sa.String(length=36), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UtcDateTime(), nullable=False),
        sa.Column("locked_until", UtcDateTime(), nullable=True),
        sa.Column("line_request_id", sa.String(length=64), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("sent_at", UtcDateTime(), nullable=True),
        sa.CheckConstraint("state IN (" + ", ".join(f"'{s}'" for s in STATES) + ")",
                           name=op.f("ck_outbound_message_state")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbound_message")),
        sa.UniqueConstraint("retry_key", name=op.f("uq_outbound_message_retry_key")),
    )
    op.create_index("ix_outbound_message_state_next_attempt", "outbound_message", ["state", "next_attempt_at"])
    op.create_index("ix_outbound_message_source", "outbound_message", ["source", "source_id"])
    op.create_index(op.f("ix_outbound_message_contact_id"), "outbound_message", ["contact_id"])
    op.create_index(op.f("ix_outbound_message_recipient"), "outbound_message", ["recipient"])
    op.create_index(op.f("ix_outbound_message_group_key"), "outbound_message", ["group_key"])


def downgrade() -> None:
    op.drop_table("outbound_message")
