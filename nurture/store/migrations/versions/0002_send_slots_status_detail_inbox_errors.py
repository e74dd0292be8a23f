"""send slots, status detail, inbox errors

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""
from alembic import op
import sqlalchemy as sa



revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('send_slots',
    sa.Column('message_key', sa.String(length=80), nullable=False),
    sa.Column('inbox_user_id', sa.String(length=40), nullable=False),
    sa.Column('slot_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['inbox_user_id'], ['inboxes.user_id'], name=op.f('fk_send_slots_inbox_user_id_inboxes'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('message_key', name=op.f('pk_send_slots'))
    )
    with op.batch_alter_table('send_slots', schema=None) as batch_op:
        batch_op.create_index('ix_send_slots_inbox_slot', ['inbox_user_id', 'slot_at'], unique=False)

    with op.batch_alter_table('enrollments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('status_detail', sa.String(length=500), nullable=True))

    with op.batch_alter_table('inboxes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_error', sa.String(length=500), nullable=True))




def downgrade() -> None:

    with op.batch_alter_table('inboxes', schema=None) as batch_op:
        batch_op.drop_column('last_error')

    with op.batch_alter_table('enrollments', schema=None) as batch_op:
        batch_op.drop_column('status_detail')

    with op.batch_alter_table('send_slots', schema=None) as batch_op:
        batch_op.drop_index('ix_send_slots_inbox_slot')

    op.drop_table('send_slots')

