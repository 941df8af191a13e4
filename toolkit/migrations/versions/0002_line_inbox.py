"""LINE webhook inbox: events stored on arrival, handled by the worker.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from toolkit.db import BigId, JsonDoc, UtcDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('webhook_event',
    sa.Column('id', BigId, nullable=False),
    sa.Column('webhook_event_id', sa.String(length=64), nullable=False),
    sa.Column('event_type', sa.String(length=32), nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=True),
    sa.Column('reply_token', sa.String(length=255), nullable=True),
    sa.Column('mode', sa.String(length=16), nullable=False),
    sa.Column('is_redelivery', sa.Boolean(), nullable=False),
    sa.Column('body', JsonDoc, nullable=False),
    sa.Column('received_at', UtcDateTime(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', UtcDateTime(), nullable=False),
    sa.Column('locked_until', UtcDateTime(), nullable=True),
    sa.Column('replies', JsonDoc, nullable=True),
    sa.Column('delivery', sa.String(length=16), nullable=True),
    sa.Column('outcome', sa.String(length=200), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('handled_at', UtcDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_event')),
    sa.UniqueConstraint('webhook_event_id', name=op.f('uq_webhook_event_webhook_event_id'))
    )
    with op.batch_alter_table('webhook_event', schema=None) as batch_op:
        batch_op.create_index('ix_webhook_event_status_next_attempt', ['status', 'next_attempt_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_webhook_event_user_id'), ['user_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('webhook_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_webhook_event_user_id'))
        batch_op.drop_index('ix_webhook_event_status_next_attempt')

    op.drop_table('webhook_event')
