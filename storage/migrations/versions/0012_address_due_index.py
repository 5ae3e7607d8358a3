"""per-address index carries the due time

The claim asks, for each row it may take, whether another due queued row to the same
address waits behind it (it then looks again after the send). With the per-address index
ending at the status, SQLite's planner (it has no statistics) answered that from the
(status, due_at) index instead, walking every due queued row for each candidate: a backlog
made each claim cost its square. With the due time as the index's last column the question
is answered inside one address's rows (and from the index alone); the head-of-line check
uses the same index by its first columns, as before.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 12:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_outbox_address_due', 'outboundmessage',
                    ['channel', 'address', 'status', 'due_at'], unique=False)
    op.drop_index('ix_outbox_address_status', table_name='outboundmessage')


def downgrade() -> None:
    op.create_index('ix_outbox_address_status', 'outboundmessage',
                    ['channel', 'address', 'status'], unique=False)
    op.drop_index('ix_outbox_address_due', table_name='outboundmessage')
