"""jurisdictions: plans, units, aliases, keys and the change feed belong to a division

Everything stored before this revision is 西吉县's (the service served one county), so the data
migrates in place: the revision creates 宁夏回族自治区 640000 → 固原市 640400 → 西吉县 640422 itself
(a migration must not depend on the data package, which may change), points every plan, unit, alias,
key and change event at 西吉县, and only then makes the plan's and unit's columns NOT NULL. Ids,
keys, reports and the change feed's numbers are untouched.

Revision ID: 954f18424e9e
Revises: 4f610f3260ea
Create Date: 2026-11-27 12:21:23.222028

"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
import sqlmodel
from alembic import op

import app.models.base

# revision identifiers, used by Alembic.
revision: str = "954f18424e9e"
down_revision: str | Sequence[str] | None = "4f610f3260ea"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The divisions the existing data belongs to, top down: (code, name, level).
XIJI_CHAIN = (
    ("640000", "宁夏回族自治区", "province"),
    ("640400", "固原市", "prefecture"),
    ("640422", "西吉县", "county"),
)


def _create_xiji() -> int:
    """Inserts 西吉县 and its ancestors; returns 西吉县's id."""
    jurisdiction = sa.table(
        "jurisdiction",
        sa.column("id", sa.Integer),
        sa.column("code", sa.String),
        sa.column("name", sa.String),
        sa.column("level", sa.String),
        sa.column("parent_id", sa.Integer),
        sa.column("created_at", app.models.base.UTCDateTime(timezone=True)),
    )
    connection = op.get_bind()
    parent_id = None
    now = datetime.now(UTC)
    for code, name, level in XIJI_CHAIN:
        op.execute(jurisdiction.insert().values(code=code, name=name, level=level, parent_id=parent_id, created_at=now))
        parent_id = connection.execute(sa.select(jurisdiction.c.id).where(jurisdiction.c.code == code)).scalar_one()
    assert parent_id is not None
    return int(parent_id)


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "jurisdiction",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["jurisdiction.id"], name=op.f("fk_jurisdiction_parent_id_jurisdiction")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jurisdiction")),
        sa.UniqueConstraint("code", name=op.f("uq_jurisdiction_code")),
    )
    with op.batch_alter_table("jurisdiction", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_jurisdiction_parent_id"), ["parent_id"], unique=False)
    xiji = _create_xiji()

    # New columns arrive nullable, are filled, then (plan, unit, alias) become NOT NULL.
    for table in ("plan", "unit", "unit_alias", "api_key", "change_event"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("jurisdiction_id", sa.Integer(), nullable=True))

    for table in ("plan", "unit", "unit_alias"):
        op.execute(sa.text(f'UPDATE "{table}" SET jurisdiction_id = :j').bindparams(j=xiji))
    # Unit keys and the existing admin keys were the county's: its rule-of-law office issued them.
    op.execute(sa.text("UPDATE api_key SET jurisdiction_id = :j").bindparams(j=xiji))
    # Events about a plan or a unit are the county's; key events of admins too (they are in its audit log).
    op.execute(sa.text("UPDATE change_event SET jurisdiction_id = :j").bindparams(j=xiji))

    with op.batch_alter_table("api_key", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_key_jurisdiction_id"), ["jurisdiction_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_api_key_jurisdiction_id_jurisdiction"), "jurisdiction", ["jurisdiction_id"], ["id"]
        )

    with op.batch_alter_table("change_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_change_event_jurisdiction_id"), ["jurisdiction_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_change_event_jurisdiction_id_jurisdiction"), "jurisdiction", ["jurisdiction_id"], ["id"]
        )

    with op.batch_alter_table("plan", schema=None) as batch_op:
        batch_op.alter_column("jurisdiction_id", existing_type=sa.Integer(), nullable=False)
        batch_op.create_index(batch_op.f("ix_plan_jurisdiction_id"), ["jurisdiction_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_plan_jurisdiction_id_jurisdiction"), "jurisdiction", ["jurisdiction_id"], ["id"]
        )

    with op.batch_alter_table("unit", schema=None) as batch_op:
        batch_op.alter_column("jurisdiction_id", existing_type=sa.Integer(), nullable=False)
        batch_op.drop_constraint(batch_op.f("uq_unit_name"), type_="unique")
        batch_op.create_index(batch_op.f("ix_unit_jurisdiction_id"), ["jurisdiction_id"], unique=False)
        batch_op.create_unique_constraint(batch_op.f("uq_unit_jurisdiction_id_name"), ["jurisdiction_id", "name"])
        batch_op.create_foreign_key(
            batch_op.f("fk_unit_jurisdiction_id_jurisdiction"), "jurisdiction", ["jurisdiction_id"], ["id"]
        )

    with op.batch_alter_table("unit_alias", schema=None) as batch_op:
        batch_op.alter_column("jurisdiction_id", existing_type=sa.Integer(), nullable=False)
        batch_op.drop_constraint(batch_op.f("uq_unit_alias_alias"), type_="unique")
        batch_op.create_unique_constraint(
            batch_op.f("uq_unit_alias_jurisdiction_id_alias"), ["jurisdiction_id", "alias"]
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_unit_alias_jurisdiction_id_jurisdiction"), "jurisdiction", ["jurisdiction_id"], ["id"]
        )


def downgrade() -> None:
    """Downgrade schema. Only possible while no two jurisdictions share a unit name or alias."""
    with op.batch_alter_table("unit_alias", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_unit_alias_jurisdiction_id_jurisdiction"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("uq_unit_alias_jurisdiction_id_alias"), type_="unique")
        batch_op.create_unique_constraint(batch_op.f("uq_unit_alias_alias"), ["alias"])
        batch_op.drop_column("jurisdiction_id")

    with op.batch_alter_table("unit", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_unit_jurisdiction_id_jurisdiction"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("uq_unit_jurisdiction_id_name"), type_="unique")
        batch_op.drop_index(batch_op.f("ix_unit_jurisdiction_id"))
        batch_op.create_unique_constraint(batch_op.f("uq_unit_name"), ["name"])
        batch_op.drop_column("jurisdiction_id")

    with op.batch_alter_table("plan", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_plan_jurisdiction_id_jurisdiction"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_plan_jurisdiction_id"))
        batch_op.drop_column("jurisdiction_id")

    with op.batch_alter_table("change_event", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_change_event_jurisdiction_id_jurisdiction"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_change_event_jurisdiction_id"))
        batch_op.drop_column("jurisdiction_id")

    with op.batch_alter_table("api_key", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_api_key_jurisdiction_id_jurisdiction"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_api_key_jurisdiction_id"))
        batch_op.drop_column("jurisdiction_id")

    with op.batch_alter_table("jurisdiction", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_jurisdiction_parent_id"))

    op.drop_table("jurisdiction")
