"""LINE sandbox state shared by every `toolkit serve` process: message record, retry
keys, reply tokens, rate and quota counters, fault settings.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from toolkit.db import BigId, JsonDoc, UtcDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('sandbox_counter',
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('bucket', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('count', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('name', 'bucket', name=op.f('pk_sandbox_counter'))
    )
    op.create_table('sandbox_message',
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('request_id', sa.String(length=36), nullable=False),
    sa.Column('endpoint', sa.String(length=16), nullable=False),
    sa.Column('recipients', JsonDoc, nullable=False),
    sa.Column('messages', JsonDoc, nullable=False),
    sa.Column('retry_key', sa.String(length=36), nullable=True),
    sa.Column('status', sa.Integer(), nullable=False),
    sa.Column('accepted', sa.Boolean(), nullable=False),
    sa.Column('at', UtcDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sandbox_message'))
    )
    op.create_table('sandbox_reply_token',
    sa.Column('token', sa.String(length=255), nullable=False),
    sa.Column('user_id', sa.String(length=33), nullable=False),
    sa.Column('expires_at', UtcDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('token', name=op.f('pk_sandbox_reply_token'))
    )
    with op.batch_alter_table('sandbox_reply_token', schema=None) as batch_op:
        batch_op.create_index('ix_sandbox_reply_token_expires_at', ['expires_at'], unique=False)

    op.create_table('sandbox_retry_key',
    sa.Column('retry_key', sa.String(length=36), nullable=False),
    sa.Column('request_id', sa.String(length=36), nullable=False),
    sa.Column('endpoint', sa.String(length=16), nullable=False),
    sa.Column('sent_messages', JsonDoc, nullable=False),
    sa.Column('accepted_at', UtcDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('retry_key', name=op.f('pk_sandbox_retry_key'))
    )
    with op.batch_alter_table('sandbox_retry_key', schema=None) as batch_op:
        batch_op.create_index('ix_sandbox_retry_key_accepted_at', ['accepted_at'], unique=False)

    op.create_table('sandbox_setting',
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('value', JsonDoc, nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_sandbox_setting'))
    )


def downgrade() -> None:
    op.drop_table('sandbox_setting')
    with op.batch_alter_table('sandbox_retry_key', schema=None) as batch_op:
        batch_op.drop_index('ix_sandbox_retry_key_accepted_at')

    op.drop_table('sandbox_retry_key')
    with op.batch_alter_table('sandbox_reply_token', schema=None) as batch_op:
        batch_op.drop_index('ix_sandbox_reply_token_expires_at')

    op.drop_table('sandbox_reply_token')
    op.drop_table('sandbox_message')
    op.drop_table('sandbox_counter')
