"""progress_report: partial indexes of version heads and of versions that may count

A write re-derives its task from each (unit, period)'s newest version and newest counting version.
With only the full (task_id, period, unit_id) index, both lookups read every version the task has
ever had: at 10^6 reports a write took 24 ms in SQLite alone. These keep them seeks.

Revision ID: 5d2e8b7a4c10
Revises: c3a9e5f1d7b2
Create Date: 2026-11-28 02:30:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "5d2e8b7a4c10"
down_revision: str | Sequence[str] | None = "c3a9e5f1d7b2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As in app/models/progress.py (a migration keeps its own copy: the model may move on).
HEAD = "superseded_by_id IS NULL"
COUNTING = "withdrawn_at IS NULL AND review_state IN ('not_required', 'accepted')"


def upgrade() -> None:
    with op.batch_alter_table("progress_report", schema=None) as batch_op:
        for name, where in (("ix_progress_report_head", HEAD), ("ix_progress_report_counting", COUNTING)):
            batch_op.create_index(
                name,
                ["task_id", "period", "unit_id"],
                unique=False,
                sqlite_where=sa.text(where),
                postgresql_where=sa.text(where),
            )


def downgrade() -> None:
    with op.batch_alter_table("progress_report", schema=None) as batch_op:
        batch_op.drop_index("ix_progress_report_counting")
        batch_op.drop_index("ix_progress_report_head")
