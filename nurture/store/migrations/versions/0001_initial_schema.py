"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-27
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    
    op.create_table('api_idempotency',
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('route', sa.String(length=200), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=False),
    sa.Column('response', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_api_idempotency'))
    )
    op.create_table('definitions',
    sa.Column('id', sa.String(length=100), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('latest_version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_definitions'))
    )
    op.create_table('email_events',
    sa.Column('id', sa.String(length=80), nullable=False),
    sa.Column('message_id', sa.String(length=80), nullable=True),
    sa.Column('enrollment_id', sa.String(length=40), nullable=True),
    sa.Column('record_id', sa.String(length=40), nullable=True),
    sa.Column('type', sa.String(length=32), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('data', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_email_events'))
    )
    with op.batch_alter_table('email_events', schema=None) as batch_op:
        batch_op.create_index('ix_email_events_enrollment', ['enrollment_id'], unique=False)

    op.create_table('enrollments',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('definition_id', sa.String(length=100), nullable=False),
    sa.Column('definition_version', sa.Integer(), nullable=False),
    sa.Column('record_id', sa.String(length=40), nullable=False),
    sa.Column('company_id', sa.String(length=40), nullable=True),
    sa.Column('sender_id', sa.String(length=40), nullable=True),
    sa.Column('workflow_id', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=24), nullable=False),
    sa.Column('exit_reason', sa.String(length=200), nullable=True),
    sa.Column('current_step', sa.Integer(), nullable=True),
    sa.Column('enrolled_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_enrollments'))
    )
    with op.batch_alter_table('enrollments', schema=None) as batch_op:
        batch_op.create_index('ix_enrollments_company_definition', ['company_id', 'definition_id'], unique=False)
        batch_op.create_index('ix_enrollments_definition_status', ['definition_id', 'status'], unique=False)
        batch_op.create_index('ix_enrollments_record_status', ['record_id', 'status'], unique=False)

    op.create_table('lists',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('object_type', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lists')),
    sa.UniqueConstraint('name', name=op.f('uq_lists_name'))
    )
    op.create_table('messages',
    sa.Column('id', sa.String(length=80), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('enrollment_id', sa.String(length=40), nullable=True),
    sa.Column('step_index', sa.Integer(), nullable=True),
    sa.Column('record_id', sa.String(length=40), nullable=True),
    sa.Column('sender_id', sa.String(length=40), nullable=True),
    sa.Column('to_address', sa.String(length=320), nullable=False),
    sa.Column('from_address', sa.String(length=320), nullable=False),
    sa.Column('subject', sa.String(length=998), nullable=False),
    sa.Column('rfc822_message_id', sa.String(length=400), nullable=True),
    sa.Column('provider_message_id', sa.String(length=200), nullable=True),
    sa.Column('thread_id', sa.String(length=200), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_messages')),
    sa.UniqueConstraint('rfc822_message_id', name=op.f('uq_messages_rfc822_message_id'))
    )
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.create_index('ix_messages_enrollment', ['enrollment_id'], unique=False)
        batch_op.create_index('ix_messages_thread', ['thread_id'], unique=False)

    op.create_table('tasks',
    sa.Column('id', sa.String(length=80), nullable=False),
    sa.Column('type', sa.String(length=32), nullable=False),
    sa.Column('title', sa.String(length=500), nullable=False),
    sa.Column('notes', sa.Text(), server_default='', nullable=False),
    sa.Column('priority', sa.String(length=8), server_default='none', nullable=False),
    sa.Column('record_id', sa.String(length=40), nullable=True),
    sa.Column('assignee_id', sa.String(length=40), nullable=True),
    sa.Column('enrollment_id', sa.String(length=40), nullable=True),
    sa.Column('step_index', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tasks'))
    )
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.create_index('ix_tasks_assignee_status', ['assignee_id', 'status'], unique=False)
        batch_op.create_index('ix_tasks_enrollment', ['enrollment_id'], unique=False)

    op.create_table('users',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('name', sa.String(length=200), server_default='', nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=True),
    sa.Column('country', sa.String(length=8), nullable=True),
    sa.Column('properties', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('email', name=op.f('uq_users_email'))
    )
    op.create_table('definition_versions',
    sa.Column('definition_id', sa.String(length=100), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('body', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('checksum', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['definition_id'], ['definitions.id'], name=op.f('fk_definition_versions_definition_id_definitions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('definition_id', 'version', name=op.f('pk_definition_versions'))
    )
    op.create_table('inboxes',
    sa.Column('user_id', sa.String(length=40), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('provider', sa.String(length=16), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('credentials_encrypted', sa.Text(), nullable=True),
    sa.Column('daily_cap', sa.Integer(), server_default='500', nullable=False),
    sa.Column('min_spacing_seconds', sa.Integer(), server_default='30', nullable=False),
    sa.Column('history_id', sa.String(length=40), nullable=True),
    sa.Column('connected_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_inboxes_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_inboxes'))
    )
    op.create_table('records',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('type', sa.String(length=16), nullable=False),
    sa.Column('natural_key', sa.String(length=320), nullable=True),
    sa.Column('owner_id', sa.String(length=40), nullable=True),
    sa.Column('properties', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_records_owner_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_records')),
    sa.UniqueConstraint('type', 'natural_key', name=op.f('uq_records_type_natural_key'))
    )
    with op.batch_alter_table('records', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_records_type'), ['type'], unique=False)

    op.create_table('associations',
    sa.Column('from_id', sa.String(length=40), nullable=False),
    sa.Column('to_id', sa.String(length=40), nullable=False),
    sa.Column('to_type', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['from_id'], ['records.id'], name=op.f('fk_associations_from_id_records'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['to_id'], ['records.id'], name=op.f('fk_associations_to_id_records'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('from_id', 'to_id', name=op.f('pk_associations'))
    )
    op.create_table('list_members',
    sa.Column('list_id', sa.String(length=40), nullable=False),
    sa.Column('record_id', sa.String(length=40), nullable=False),
    sa.Column('added_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['list_id'], ['lists.id'], name=op.f('fk_list_members_list_id_lists'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['record_id'], ['records.id'], name=op.f('fk_list_members_record_id_records'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('list_id', 'record_id', name=op.f('pk_list_members'))
    )
    with op.batch_alter_table('list_members', schema=None) as batch_op:
        batch_op.create_index('ix_list_members_record', ['record_id'], unique=False)

    


def downgrade() -> None:
    
    with op.batch_alter_table('list_members', schema=None) as batch_op:
        batch_op.drop_index('ix_list_members_record')

    op.drop_table('list_members')
    op.drop_table('associations')
    with op.batch_alter_table('records', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_records_type'))

    op.drop_table('records')
    op.drop_table('inboxes')
    op.drop_table('definition_versions')
    op.drop_table('users')
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.drop_index('ix_tasks_enrollment')
        batch_op.drop_index('ix_tasks_assignee_status')

    op.drop_table('tasks')
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index('ix_messages_thread')
        batch_op.drop_index('ix_messages_enrollment')

    op.drop_table('messages')
    op.drop_table('lists')
    with op.batch_alter_table('enrollments', schema=None) as batch_op:
        batch_op.drop_index('ix_enrollments_record_status')
        batch_op.drop_index('ix_enrollments_definition_status')
        batch_op.drop_index('ix_enrollments_company_definition')

    op.drop_table('enrollments')
    with op.batch_alter_table('email_events', schema=None) as batch_op:
        batch_op.drop_index('ix_email_events_enrollment')

    op.drop_table('email_events')
    op.drop_table('definitions')
    op.drop_table('api_idempotency')
    
