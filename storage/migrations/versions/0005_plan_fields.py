"""plan fields: the recorded consent, the actual release time, sessions done inside

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.models.common

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('participant', schema=None) as batch_op:
        batch_op.add_column(sa.Column('consent_recorded_at',
                                      storage.models.common.UTCDateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column('consent_recorded_by', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('consent_wording_version',
                                      sqlmodel.sql.sqltypes.AutoString(length=20),
                                      nullable=True))
        batch_op.add_column(sa.Column('released_at',
                                      storage.models.common.UTCDateTime(timezone=True),
                                      nullable=True))
        # People enrolled before this had no count recorded: none known.
        batch_op.add_column(sa.Column('sessions_inside', sa.Integer(), nullable=False,
                                      server_default='0'))
        batch_op.create_foreign_key('fk_participant_consent_recorded_by_staffuser',
                                    'staffuser', ['consent_recorded_by'], ['id'])
    with op.batch_alter_table('participant', schema=None) as batch_op:
        batch_op.alter_column('sessions_inside', existing_type=sa.Integer(),
                              server_default=None)


def downgrade() -> None:
    with op.batch_alter_table('participant', schema=None) as batch_op:
        batch_op.drop_constraint('fk_participant_consent_recorded_by_staffuser',
                                 type_='foreignkey')
        batch_op.drop_column('sessions_inside')
        batch_op.drop_column('released_at')
        batch_op.drop_column('consent_wording_version')
        batch_op.drop_column('consent_recorded_by')
        batch_op.drop_column('consent_recorded_at')
