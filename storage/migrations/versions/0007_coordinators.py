"""coordinators: cancelled dates, status times and confirmations on meetings; feed sources;
who sent a broadcast; a coordinator's Telegram link code

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 20:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.models.common

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('meeting') as batch:
        batch.add_column(sa.Column('cancelled_dates', storage.models.common.JSONText(),
                                   nullable=True))
        batch.add_column(sa.Column('status_changed_at',
                                   storage.models.common.UTCDateTime(timezone=True),
                                   nullable=True))
        batch.add_column(sa.Column('confirmed_running_at',
                                   storage.models.common.UTCDateTime(timezone=True),
                                   nullable=True))
    with op.batch_alter_table('broadcast') as batch:
        batch.add_column(sa.Column('staff_id', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('region', sqlmodel.sql.sqltypes.AutoString(length=100),
                                   nullable=True))
        batch.create_index('ix_broadcast_staff_id', ['staff_id'])
    with op.batch_alter_table('staffuser') as batch:
        batch.add_column(sa.Column('telegram_link_hash',
                                   sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True))
        batch.add_column(sa.Column('telegram_link_expires',
                                   storage.models.common.UTCDateTime(timezone=True),
                                   nullable=True))
    op.create_table('feedsource',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('url', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True),
    sa.Column('format', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('timezone', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('region', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=254), nullable=False),
    sa.Column('created_at', storage.models.common.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_run_at', storage.models.common.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_result', storage.models.common.JSONText(), nullable=True),
    sa.Column('last_error', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )


def downgrade() -> None:
    op.drop_table('feedsource')
    with op.batch_alter_table('staffuser') as batch:
        batch.drop_column('telegram_link_expires')
        batch.drop_column('telegram_link_hash')
    with op.batch_alter_table('broadcast') as batch:
        batch.drop_index('ix_broadcast_staff_id')
        batch.drop_column('region')
        batch.drop_column('staff_id')
    with op.batch_alter_table('meeting') as batch:
        batch.drop_column('confirmed_running_at')
        batch.drop_column('status_changed_at')
        batch.drop_column('cancelled_dates')
