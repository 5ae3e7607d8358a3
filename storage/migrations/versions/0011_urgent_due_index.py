"""partial index for when the urgent lane's next row is due

The dispatcher asks, each time a lane goes idle, when its next queued row falls due. For the
urgent lane (replies, crisis numbers) that walked every queued row, days of planned
reminders among them, and grew with everyone enrolled. A partial index holds only queued
urgent rows, by due time; the query says the same condition with its constants written in
(storage.models.messages.QUEUED_URGENT), which is what lets SQLite and PostgreSQL use it.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 08:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As storage.models.messages.QUEUED_URGENT was when this revision was written.
QUEUED_URGENT = "status = 'queued' AND priority < 50"


def upgrade() -> None:
    op.create_index('ix_outbox_queued_urgent_due', 'outboundmessage', ['due_at'], unique=False,
                    sqlite_where=sa.text(QUEUED_URGENT), postgresql_where=sa.text(QUEUED_URGENT))


def downgrade() -> None:
    op.drop_index('ix_outbox_queued_urgent_due', table_name='outboundmessage')
