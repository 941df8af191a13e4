"""Foundation: contacts, consent registry, suppression, users and tokens, audit chain,
generated secrets and APScheduler's job store.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from toolkit.db import BigId, JsonDoc, UtcDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


GENESIS_HASH = "0" * 64


def upgrade() -> None:
    op.create_table('app_secret',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('value', sa.String(length=128), nullable=False),
    sa.Column('created_at', UtcDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_app_secret'))
    )
    op.create_table('audit_head',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_head'))
    )
    op.create_table('audit_log',
    sa.Column('id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('occurred_at', UtcDateTime(), nullable=False),
    sa.Column('actor', sa.String(length=128), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('target_type', sa.String(length=32), nullable=True),
    sa.Column('target_id', sa.String(length=128), nullable=True),
    sa.Column('details', JsonDoc, nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_log_action'), ['action'], unique=False)

    op.create_table('contact',
    sa.Column('id', BigId, nullable=False),
    sa.Column('display_name', sa.String(length=200), nullable=True),
    sa.Column('locale', sa.String(length=16), nullable=True),
    sa.Column('tz', sa.String(length=64), nullable=True),
    sa.Column('tier', sa.String(length=32), nullable=True),
    sa.Column('created_at', UtcDateTime(), nullable=False),
    sa.Column('updated_at', UtcDateTime(), nullable=False),
    sa.Column('erased_at', UtcDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contact'))
    )
    op.create_table('purpose',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('lawful_basis', sa.String(length=32), nullable=False),
    sa.Column('name_zh', sa.String(length=200), nullable=False),
    sa.Column('name_en', sa.String(length=200), nullable=False),
    sa.Column('notice_zh', sa.Text(), nullable=False),
    sa.Column('notice_en', sa.Text(), nullable=False),
    sa.Column('notice_version', sa.String(length=32), nullable=False),
    sa.Column('retention_days', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('updated_at', UtcDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_purpose')),
    sa.UniqueConstraint('code', name=op.f('uq_purpose_code'))
    )
    op.create_table('suppression',
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.Column('created_at', UtcDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('hash', name=op.f('pk_suppression'))
    )
    op.create_table('user',
    sa.Column('id', BigId, nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('display_name', sa.String(length=200), nullable=True),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('roles', JsonDoc, nullable=False),
    sa.Column('locale', sa.String(length=16), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', UtcDateTime(), nullable=False),
    sa.Column('last_login_at', UtcDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user')),
    sa.UniqueConstraint('email', name=op.f('uq_user_email'))
    )
    op.create_table('api_token',
    sa.Column('id', BigId, nullable=False),
    sa.Column('user_id', BigId, nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', UtcDateTime(), nullable=False),
    sa.Column('expires_at', UtcDateTime(), nullable=True),
    sa.Column('last_used_at', UtcDateTime(), nullable=True),
    sa.Column('revoked_at', UtcDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_api_token_user_id_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_token')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_api_token_token_hash'))
    )
    with op.batch_alter_table('api_token', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_token_user_id'), ['user_id'], unique=False)

    op.create_table('consent_event',
    sa.Column('id', BigId, nullable=False),
    sa.Column('contact_id', BigId, nullable=False),
    sa.Column('purpose_id', sa.Integer(), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('notice_version', sa.String(length=32), nullable=True),
    sa.Column('evidence', JsonDoc, nullable=False),
    sa.Column('actor', sa.String(length=128), nullable=True),
    sa.Column('occurred_at', UtcDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['contact_id'], ['contact.id'], name=op.f('fk_consent_event_contact_id_contact'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['purpose_id'], ['purpose.id'], name=op.f('fk_consent_event_purpose_id_purpose')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consent_event'))
    )
    with op.batch_alter_table('consent_event', schema=None) as batch_op:
        batch_op.create_index('ix_consent_event_contact_occurred', ['contact_id', 'occurred_at'], unique=False)

    op.create_table('contact_identity',
    sa.Column('id', BigId, nullable=False),
    sa.Column('contact_id', BigId, nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('external_id', sa.String(length=128), nullable=False),
    sa.Column('external_hash', sa.String(length=64), nullable=False),
    sa.Column('followed', sa.Boolean(), nullable=False),
    sa.Column('blocked_at', UtcDateTime(), nullable=True),
    sa.Column('created_at', UtcDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['contact_id'], ['contact.id'], name=op.f('fk_contact_identity_contact_id_contact'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contact_identity')),
    sa.UniqueConstraint('channel', 'external_id', name=op.f('uq_contact_identity_channel_external_id'))
    )
    with op.batch_alter_table('contact_identity', schema=None) as batch_op:
        batch_op.create_index('ix_contact_identity_contact_channel', ['contact_id', 'channel'], unique=False)
        batch_op.create_index(batch_op.f('ix_contact_identity_external_hash'), ['external_hash'], unique=False)

    op.create_table('consent_state',
    sa.Column('contact_id', BigId, nullable=False),
    sa.Column('purpose_id', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('notice_version', sa.String(length=32), nullable=True),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('changed_at', UtcDateTime(), nullable=False),
    sa.Column('event_id', BigId, nullable=False),
    sa.ForeignKeyConstraint(['contact_id'], ['contact.id'], name=op.f('fk_consent_state_contact_id_contact'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['event_id'], ['consent_event.id'], name=op.f('fk_consent_state_event_id_consent_event')),
    sa.ForeignKeyConstraint(['purpose_id'], ['purpose.id'], name=op.f('fk_consent_state_purpose_id_purpose')),
    sa.PrimaryKeyConstraint('contact_id', 'purpose_id', name=op.f('pk_consent_state'))
    )
    with op.batch_alter_table('consent_state', schema=None) as batch_op:
        batch_op.create_index('ix_consent_state_purpose_state_contact', ['purpose_id', 'state', 'contact_id'], unique=False)

    # The audit chain starts from one head row that every appender locks.
    op.bulk_insert(
        sa.table("audit_head", sa.column("id", sa.Integer), sa.column("seq", sa.BigInteger), sa.column("hash", sa.String)),
        [{"id": 1, "seq": 0, "hash": GENESIS_HASH}],
    )

    # APScheduler 3.x SQLAlchemyJobStore's table, exactly as it defines it.
    op.create_table('apscheduler_jobs',
    sa.Column('id', sa.Unicode(length=191), nullable=False),
    sa.Column('next_run_time', sa.Float(precision=25), nullable=True),
    sa.Column('job_state', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_apscheduler_jobs_next_run_time', 'apscheduler_jobs', ['next_run_time'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_apscheduler_jobs_next_run_time', table_name='apscheduler_jobs')
    op.drop_table('apscheduler_jobs')
    with op.batch_alter_table('consent_state', schema=None) as batch_op:
        batch_op.drop_index('ix_consent_state_purpose_state_contact')

    op.drop_table('consent_state')
    with op.batch_alter_table('contact_identity', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_contact_identity_external_hash'))
        batch_op.drop_index('ix_contact_identity_contact_channel')

    op.drop_table('contact_identity')
    with op.batch_alter_table('consent_event', schema=None) as batch_op:
        batch_op.drop_index('ix_consent_event_contact_occurred')

    op.drop_table('consent_event')
    with op.batch_alter_table('api_token', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_token_user_id'))

    op.drop_table('api_token')
    op.drop_table('user')
    op.drop_table('suppression')
    op.drop_table('purpose')
    op.drop_table('contact')
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_log_action'))

    op.drop_table('audit_log')
    op.drop_table('audit_head')
    op.drop_table('app_secret')
