"""All table models; importing this package registers them on SQLModel.metadata (Alembic needs that)."""

from app.importer.parsed import Role
from app.models.base import UTCDateTime, utcnow
from app.models.plan import Plan, PlanImport, Section
from app.models.task import Responsibility, Task, TaskStatus
from app.models.unit import GroupMember, Unit, UnitAlias, UnitKind

__all__ = [
    "GroupMember",
    "Plan",
    "PlanImport",
    "Responsibility",
    "Role",
    "Section",
    "Task",
    "TaskStatus",
    "UTCDateTime",
    "Unit",
    "UnitAlias",
    "UnitKind",
    "utcnow",
]
