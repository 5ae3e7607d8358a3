"""meeting feed fields: unknown time zones, approximate addresses, notes, contacts, group

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TEXT_COLUMNS = (
    ('location_notes', 2000),
    ('conference_url_notes', 1000),
    ('conference_phone_notes', 1000),
    ('contact_name', 300),
    ('contact_phone', 100),
    ('contact_email', 300),
    ('group_name', 300),
    ('district', 200),
)


def upgrade() -> None:
    with op.batch_alter_table('meeting', schema=None) as batch_op:
        # Existing rows all have real addresses, so they start as not approximate.
        batch_op.add_column(sa.Column('approximate', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        for name, length in _TEXT_COLUMNS:
            batch_op.add_column(sa.Column(
                name, sqlmodel.sql.sqltypes.AutoString(length=length), nullable=True))
        batch_op.alter_column('timezone', existing_type=sqlmodel.sql.sqltypes.AutoString(
            length=64), nullable=True)
    with op.batch_alter_table('meeting', schema=None) as batch_op:
        batch_op.alter_column('approximate', existing_type=sa.Boolean(), server_default=None)


def downgrade() -> None:
    # The old schema needs a zone. Zoneless meetings get London only as a placeholder and
    # are suspended, so the old code never offers them at a made-up time.
    op.execute("UPDATE meeting SET status = 'suspended' "
               "WHERE timezone IS NULL AND status = 'active'")
    op.execute("UPDATE meeting SET timezone = 'Europe/London' WHERE timezone IS NULL")
    with op.batch_alter_table('meeting', schema=None) as batch_op:
        batch_op.alter_column('timezone', existing_type=sqlmodel.sql.sqltypes.AutoString(
            length=64), nullable=False)
        for name, _length in reversed(_TEXT_COLUMNS):
            batch_op.drop_column(name)
        batch_op.drop_column('approximate')
