"""sealed: per-participant data keys; personal columns widened to hold sealed values

Names, addresses, message bodies, notes and tool answers are sealed (see storage.crypto),
so their columns become TEXT. Rows written before this revision stay readable as they
are; `throughcare keys seal` seals them (run it after `throughcare db upgrade`).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 21:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.models.common

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AutoString = sqlmodel.sql.sqltypes.AutoString
# (table, column, type before, nullable)
WIDENED = [
    ('participant', 'display_name', AutoString(length=100), False),
    ('participant', 'phone', AutoString(length=20), True),
    ('channelidentity', 'address', AutoString(length=64), False),
    ('outboundmessage', 'address', AutoString(length=64), False),
    ('checkin', 'note', AutoString(length=500), True),
    ('appointment', 'place', AutoString(length=200), True),
    ('appointment', 'note', AutoString(length=300), True),
    ('keycontact', 'name', AutoString(length=100), False),
    ('keycontact', 'phone', AutoString(length=30), True),
]


def upgrade() -> None:
    op.create_table(
        'participantkey',
        sa.Column('id', AutoString(length=32), nullable=False),
        sa.Column('wrapped', AutoString(length=120), nullable=False),
        sa.Column('created_at', storage.models.common.UTCDateTime(timezone=True),
                  nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    for table in dict.fromkeys(t for t, *_ in WIDENED):  # one rebuild a table on SQLite
        with op.batch_alter_table(table) as batch:
            if table == 'participant':
                batch.add_column(sa.Column('key_id', AutoString(length=32), nullable=True))
            for _, column, before, nullable in (w for w in WIDENED if w[0] == table):
                batch.alter_column(column, existing_type=before, type_=sa.Text(),
                                   existing_nullable=nullable)


def downgrade() -> None:
    for table in dict.fromkeys(t for t, *_ in WIDENED):
        with op.batch_alter_table(table) as batch:
            for _, column, before, nullable in (w for w in WIDENED if w[0] == table):
                batch.alter_column(column, existing_type=sa.Text(), type_=before,
                                   existing_nullable=nullable)
            if table == 'participant':
                batch.drop_column('key_id')
    op.drop_table('participantkey')
