"""Worker heartbeats: one row per running worker, rewritten every few seconds, read by
/healthz and /metrics of every web process. (Events refused on arrival need no schema
change: status 'refused' fits webhook_event.status, the reason goes into last_error.)

Revision ID: 0007
Revises: 0005
Create Date: 2026-11-27
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from toolkit.db import UtcDateTime

revision = "0007"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('worker_heartbeat',
    sa.Column('worker_id', sa.String(length=255), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('started_at', UtcDateTime(), nullable=False),
    sa.Column('last_beat_at', UtcDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('worker_id', name=op.f('pk_worker_heartbeat'))
    )


def downgrade() -> None:
    op.drop_table('worker_heartbeat')
