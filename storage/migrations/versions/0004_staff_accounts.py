"""staff accounts: email sign-in, region, forced password change, lockout, sessions

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.models.common

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('staffuser', schema=None) as batch_op:
        # The old username becomes the sign-in email; its unique constraint goes with it.
        batch_op.alter_column('username', new_column_name='email',
                              existing_type=sa.String(length=100),
                              type_=sa.String(length=254),
                              existing_nullable=False)
        batch_op.add_column(sa.Column('region', sqlmodel.sql.sqltypes.AutoString(length=100),
                                      nullable=True))
        # Existing accounts had scrypt hashes we no longer read: they must set a new password
        # (an admin or `throughcare demo` gives them a one-time one).
        batch_op.add_column(sa.Column('must_change_password', sa.Boolean(), nullable=False,
                                      server_default=sa.true()))
        batch_op.add_column(sa.Column('failed_logins', sa.Integer(), nullable=False,
                                      server_default='0'))
        batch_op.add_column(sa.Column('locked_until',
                                      storage.models.common.UTCDateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column('last_seen_at',
                                      storage.models.common.UTCDateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column('session_epoch', sa.Integer(), nullable=False,
                                      server_default='0'))
    op.execute("UPDATE staffuser SET email = lower(email)")
    with op.batch_alter_table('staffuser', schema=None) as batch_op:
        batch_op.alter_column('must_change_password', existing_type=sa.Boolean(),
                              server_default=None)
        batch_op.alter_column('failed_logins', existing_type=sa.Integer(),
                              server_default=None)
        batch_op.alter_column('session_epoch', existing_type=sa.Integer(),
                              server_default=None)


def downgrade() -> None:
    with op.batch_alter_table('staffuser', schema=None) as batch_op:
        batch_op.drop_column('session_epoch')
        batch_op.drop_column('last_seen_at')
        batch_op.drop_column('locked_until')
        batch_op.drop_column('failed_logins')
        batch_op.drop_column('must_change_password')
        batch_op.drop_column('region')
        batch_op.alter_column('email', new_column_name='username',
                              existing_type=sa.String(length=254),
                              type_=sa.String(length=100),
                              existing_nullable=False)
