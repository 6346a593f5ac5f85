"""feed_counter.version: the data version, bumped by every committed write (events or not)

Until now the read cache keyed on the feed's `seq`, which only moved when a write remembered to
record an event. `version` starts at the current `seq`, so no cached rendering outlives the change.

Revision ID: b7d1c0de9a11
Revises: e08eaa5e4b9a
Create Date: 2026-11-27 16:05:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "b7d1c0de9a11"
down_revision: str | None = "e08eaa5e4b9a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("feed_counter", schema=None) as batch_op:
        batch_op.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="0"))
    op.execute("UPDATE feed_counter SET version = seq")


def downgrade() -> None:
    with op.batch_alter_table("feed_counter", schema=None) as batch_op:
        batch_op.drop_column("version")
