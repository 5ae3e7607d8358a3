"""regions: an admin's named areas, by postcode areas or districts or by centre and radius

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.models.common

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('region',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('postcodes', storage.models.common.JSONText(), nullable=True),
    sa.Column('centre_lat', sa.Float(), nullable=True),
    sa.Column('centre_lon', sa.Float(), nullable=True),
    sa.Column('radius_miles', sa.Float(), nullable=True),
    sa.Column('created_at', storage.models.common.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', storage.models.common.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )


def downgrade() -> None:
    op.drop_table('region')
