"""FAQ chatbot: entries and their versions, calibrated decisions, conversations, chat
messages and the unanswered-question queue.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from toolkit.db import BigId, JsonDoc, UtcDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('faq_decision',
    sa.Column('id', BigId, nullable=False),
    sa.Column('decision', JsonDoc, nullable=False),
    sa.Column('report', JsonDoc, nullable=False),
    sa.Column('examples', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(length=200), nullable=False),
    sa.Column('created_at', UtcDateTime(), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_faq_decision'))
    )
    op.create_table('faq_entry',
    sa.Column('id', BigId, nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('question', sa.Text(), nullable=False),
    sa.Column('alt_questions', JsonDoc, nullable=False),
    sa.Column('generated_questions', JsonDoc, nullable=False),
    sa.Column('answer', sa.Text(), nullable=False),
    sa.Column('category', sa.String(length=100), nullable=False),
    sa.Column('locale', sa.String(length=16), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', UtcDateTime(), nullable=False),
    sa.Column('updated_at', UtcDateTime(), nullable=False),
    sa.Column('updated_by', sa.String(length=200), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_faq_entry')),
    sa.UniqueConstraint('key', name=op.f('uq_faq_entry_key'))
    )
    op.create_table('conversation',
    sa.Column('id', BigId, nullable=False),
    sa.Column('contact_id', BigId, nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('assignee_id', BigId, nullable=True),
    sa.Column('handoff_reason', sa.String(length=64), nullable=True),
    sa.Column('handoff_at', UtcDateTime(), nullable=True),
    sa.Column('misses', sa.Integer(), nullable=False),
    sa.Column('last_message_at', UtcDateTime(), nullable=False),
    sa.Column('last_customer_at', UtcDateTime(), nullable=True),
    sa.Column('created_at', UtcDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['assignee_id'], ['user.id'], name=op.f('fk_conversation_assignee_id_user'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['contact_id'], ['contact.id'], name=op.f('fk_conversation_contact_id_contact'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_conversation')),
    sa.UniqueConstraint('contact_id', name=op.f('uq_conversation_contact_id'))
    )
    with op.batch_alter_table('conversation', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_conversation_status'), ['status'], unique=False)

    op.create_table('faq_entry_version',
    sa.Column('id', BigId, nullable=False),
    sa.Column('entry_id', BigId, nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('content', JsonDoc, nullable=False),
    sa.Column('changed_at', UtcDateTime(), nullable=False),
    sa.Column('changed_by', sa.String(length=200), nullable=False),
    sa.Column('note', sa.String(length=200), nullable=True),
    sa.ForeignKeyConstraint(['entry_id'], ['faq_entry.id'], name=op.f('fk_faq_entry_version_entry_id_faq_entry'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_faq_entry_version')),
    sa.UniqueConstraint('entry_id', 'version', name=op.f('uq_faq_entry_version_entry_id_version'))
    )
    op.create_table('chat_message',
    sa.Column('id', BigId, nullable=False),
    sa.Column('conversation_id', BigId, nullable=False),
    sa.Column('direction', sa.String(length=3), nullable=False),
    sa.Column('sender', sa.String(length=16), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('entry_key', sa.String(length=64), nullable=True),
    sa.Column('score', sa.Float(), nullable=True),
    sa.Column('answered', sa.Boolean(), nullable=True),
    sa.Column('webhook_event_id', BigId, nullable=True),
    sa.Column('author_id', BigId, nullable=True),
    sa.Column('delivery', sa.String(length=16), nullable=True),
    sa.Column('created_at', UtcDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['author_id'], ['user.id'], name=op.f('fk_chat_message_author_id_user'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversation.id'], name=op.f('fk_chat_message_conversation_id_conversation'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['webhook_event_id'], ['webhook_event.id'], name=op.f('fk_chat_message_webhook_event_id_webhook_event'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_chat_message'))
    )
    with op.batch_alter_table('chat_message', schema=None) as batch_op:
        batch_op.create_index('ix_chat_message_conversation_id_id', ['conversation_id', 'id'], unique=False)

    op.create_table('unanswered_question',
    sa.Column('id', BigId, nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('contact_id', BigId, nullable=True),
    sa.Column('message_id', BigId, nullable=True),
    sa.Column('best_entry_key', sa.String(length=64), nullable=True),
    sa.Column('score', sa.Float(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('resolved_entry_key', sa.String(length=64), nullable=True),
    sa.Column('resolved_by', sa.String(length=200), nullable=True),
    sa.Column('resolved_at', UtcDateTime(), nullable=True),
    sa.Column('created_at', UtcDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['contact_id'], ['contact.id'], name=op.f('fk_unanswered_question_contact_id_contact'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['message_id'], ['chat_message.id'], name=op.f('fk_unanswered_question_message_id_chat_message'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_unanswered_question'))
    )
    with op.batch_alter_table('unanswered_question', schema=None) as batch_op:
        batch_op.create_index('ix_unanswered_question_status_id', ['status', 'id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('unanswered_question', schema=None) as batch_op:
        batch_op.drop_index('ix_unanswered_question_status_id')

    op.drop_table('unanswered_question')
    with op.batch_alter_table('chat_message', schema=None) as batch_op:
        batch_op.drop_index('ix_chat_message_conversation_id_id')

    op.drop_table('chat_message')
    op.drop_table('faq_entry_version')
    with op.batch_alter_table('conversation', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_conversation_status'))

    op.drop_table('conversation')
    op.drop_table('faq_entry')
    op.drop_table('faq_decision')
