"""FAQ embeddings: each entry's questions embedded by the configured model, kept while
the texts stay the same (the optional semantic signal of the FAQ bot).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from toolkit.db import BigId, UtcDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('faq_embedding',
    sa.Column('id', BigId, nullable=False),
    sa.Column('entry_id', BigId, nullable=False),
    sa.Column('model', sa.String(length=200), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('texts_sha256', sa.String(length=64), nullable=False),
    sa.Column('dims', sa.Integer(), nullable=False),
    sa.Column('n_vectors', sa.Integer(), nullable=False),
    sa.Column('vectors', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', UtcDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['entry_id'], ['faq_entry.id'], name=op.f('fk_faq_embedding_entry_id_faq_entry'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_faq_embedding')),
    sa.UniqueConstraint('entry_id', 'model', name=op.f('uq_faq_embedding_entry_id_model'))
    )


def downgrade() -> None:
    op.drop_table('faq_embedding')
