"""audit append-only: triggers refuse UPDATE and DELETE of auditevent rows

The audit trail only grows: on SQLite a BEFORE trigger raises ABORT, on PostgreSQL a
plpgsql trigger function raises an exception (see storage.audit_q.install_append_only,
which storage.db.create_all runs too). Erasure keeps audit rows: they hold no personal data.

Note for later revisions: on SQLite, a batch_alter_table("auditevent") copies the table and
drops these triggers with the old one; call install_append_only again after it.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29 23:30:00
"""

from collections.abc import Sequence

from alembic import op

from storage.audit_q import install_append_only, remove_append_only

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    install_append_only(op.get_bind())


def downgrade() -> None:
    remove_append_only(op.get_bind())
