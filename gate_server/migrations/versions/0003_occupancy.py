"""occupancy: site count, timed anti-passback, daily reset; passages, presence, leases

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('sites') as b:
        b.add_column(sa.Column('inside', sa.Integer(), nullable=False, server_default='0'))
        b.add_column(sa.Column('passback_window_s', sa.Integer(), nullable=False,
                               server_default='0'))
        b.add_column(sa.Column('reset_at', sa.String(length=5), nullable=True,
                               server_default='03:00'))
        b.add_column(sa.Column('last_reset_at', sa.DateTime(timezone=True), nullable=True))
    op.create_table('passages',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('gate_id', sa.String(length=128), nullable=False),
    sa.Column('pass_id', sa.String(length=32), nullable=False),
    sa.Column('direction', sa.String(length=3), nullable=False),
    sa.Column('state', sa.String(length=8), nullable=False),
    sa.Column('prev_inside', sa.Boolean(), nullable=False),
    sa.Column('paid', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('passages_site_state', 'passages', ['site_id', 'state'])
    op.create_index('passages_gate_created', 'passages', ['gate_id', 'created_at'])
    op.create_table('presence',
    sa.Column('pass_id', sa.String(length=32), nullable=False),
    sa.Column('inside', sa.Boolean(), nullable=False),
    sa.Column('entered_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('pass_id')
    )
    op.create_table('gate_ledgers',
    sa.Column('gate_id', sa.String(length=128), nullable=False),
    sa.Column('epoch', sa.String(length=64), nullable=False),
    sa.Column('spent', sa.BigInteger(), nullable=False),
    sa.Column('unused', sa.BigInteger(), nullable=False),
    sa.Column('exits', sa.BigInteger(), nullable=False),
    sa.Column('next_seq', sa.BigInteger(), nullable=False),
    sa.Column('reported_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('gate_id')
    )
    op.create_table('leases',
    sa.Column('n', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('gate_id', sa.String(length=128), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('epoch', sa.String(length=64), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('limit', sa.BigInteger(), nullable=False),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reclaim_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('settled', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], ),
    sa.PrimaryKeyConstraint('n')
    )
    op.create_index('leases_site_settled', 'leases', ['site_id', 'settled'])
    op.create_index('leases_gate_seq', 'leases', ['gate_id', 'epoch', 'seq'])


def downgrade() -> None:
    op.drop_index('leases_gate_seq', 'leases')
    op.drop_index('leases_site_settled', 'leases')
    op.drop_table('leases')
    op.drop_table('gate_ledgers')
    op.drop_table('presence')
    op.drop_index('passages_gate_created', 'passages')
    op.drop_index('passages_site_state', 'passages')
    op.drop_table('passages')
    with op.batch_alter_table('sites') as b:
        b.drop_column('last_reset_at')
        b.drop_column('reset_at')
        b.drop_column('passback_window_s')
        b.drop_column('inside')
