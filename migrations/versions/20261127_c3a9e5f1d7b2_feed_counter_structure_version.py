"""feed_counter.structure_version: moved by every committed write except the report path's

What a write needs before it starts (the key and its unit, the plan, its schedule, the key's
jurisdictions) changes only with administration and imports, not with reports: it is remembered per
process at this version, which a report does not move (`app/services/structure_memo.py`).

Revision ID: c3a9e5f1d7b2
Revises: b7e4c1d2a9f0
Create Date: 2026-11-27 22:10:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "c3a9e5f1d7b2"
down_revision: str | Sequence[str] | None = "b7e4c1d2a9f0"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("feed_counter", schema=None) as batch_op:
        batch_op.add_column(sa.Column("structure_version", sa.Integer(), nullable=False, server_default="0"))
    op.execute("UPDATE feed_counter SET structure_version = version")


def downgrade() -> None:
    with op.batch_alter_table("feed_counter", schema=None) as batch_op:
        batch_op.drop_column("structure_version")
