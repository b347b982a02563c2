"""signed passes: signing keys (private half sealed), pass claim columns

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('signing_keys',
    sa.Column('kid', sa.String(length=8), nullable=False),
    sa.Column('public_key', sa.LargeBinary(length=32), nullable=False),
    sa.Column('private_sealed', sa.LargeBinary(length=128), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('retired_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('kid')
    )
    with op.batch_alter_table('passes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('signed', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('rotating', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('kid', sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column('claim_from', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('claim_until', sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('passes', schema=None) as batch_op:
        batch_op.drop_column('claim_until')
        batch_op.drop_column('claim_from')
        batch_op.drop_column('kid')
        batch_op.drop_column('rotating')
        batch_op.drop_column('signed')
    op.drop_table('signing_keys')
