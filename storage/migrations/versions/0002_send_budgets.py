"""shared send budgets and per-address outbox index

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 17:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('ratebucket',
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('tat', sa.Float(), nullable=False),
    sa.Column('hold_crisis', sa.Float(), nullable=False),
    sa.Column('hold_reply', sa.Float(), nullable=False),
    sa.Column('paused', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    with op.batch_alter_table('outboundmessage', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_address_status', ['channel', 'address', 'status'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('outboundmessage', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_address_status')
    op.drop_table('ratebucket')
