"""reach: a participant's language, discreet wording and WhatsApp fallback; when an identity
last wrote (WhatsApp's 24-hour window)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 20:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.models.common

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('participant') as batch:
        batch.add_column(sa.Column('language', sqlmodel.sql.sqltypes.AutoString(length=8),
                                   nullable=False, server_default='en'))
        batch.add_column(sa.Column('discreet', sa.Boolean(), nullable=True))
        batch.add_column(sa.Column('whatsapp_fallback',
                                   sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False,
                                   server_default='wait'))
    with op.batch_alter_table('channelidentity') as batch:
        batch.add_column(sa.Column('last_inbound_at',
                                   storage.models.common.UTCDateTime(timezone=True),
                                   nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('channelidentity') as batch:
        batch.drop_column('last_inbound_at')
    with op.batch_alter_table('participant') as batch:
        batch.drop_column('whatsapp_fallback')
        batch.drop_column('discreet')
        batch.drop_column('language')
