"""open-term plans: a plan's term and a task's due date may be unknown

A plan whose text names no term (a city's 实施意见 without 2021-2025) is imported with its term left
open: plan.period_start / period_end and task.due become nullable. Existing rows keep their values.

Revision ID: b7e4c1d2a9f0
Revises: b7d1c0de9a11
Create Date: 2026-11-27 16:20:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "b7e4c1d2a9f0"
down_revision: str | Sequence[str] | None = "b7d1c0de9a11"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("plan", schema=None) as batch_op:
        batch_op.alter_column("period_start", existing_type=sa.Integer(), nullable=True)
        batch_op.alter_column("period_end", existing_type=sa.Integer(), nullable=True)
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.alter_column("due", existing_type=sa.Date(), nullable=True)


def downgrade() -> None:
    # Fails while an open-term plan is stored: delete or re-import it with a term first.
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.alter_column("due", existing_type=sa.Date(), nullable=False)
    with op.batch_alter_table("plan", schema=None) as batch_op:
        batch_op.alter_column("period_end", existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column("period_start", existing_type=sa.Integer(), nullable=False)
