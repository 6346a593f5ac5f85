"""All table models; importing this package registers them on SQLModel.metadata (Alembic needs that)."""

from app.models.base import UTCDateTime, utcnow
from app.models.cycle import Cadence, DutyExcusal, ReportingSchedule
from app.models.jurisdiction import Jurisdiction, JurisdictionLevel
from app.models.plan import Plan, PlanImport, Section
from app.models.progress import (
    ApiKey,
    ChangeEvent,
    FeedCounter,
    IdempotencyRecord,
    ProgressReport,
    ReportKind,
    ReviewState,
    TaskUnitState,
)
from app.models.task import Responsibility, Role, Task, TaskStatus
from app.models.unit import GroupMember, Unit, UnitAlias, UnitKind
from app.models.webhook import (
    DutyMissingSeen,
    MessageState,
    TaskLightSeen,
    WebhookAttempt,
    WebhookEndpoint,
    WebhookMessage,
)

__all__ = [
    "ApiKey",
    "Cadence",
    "ChangeEvent",
    "DutyExcusal",
    "DutyMissingSeen",
    "FeedCounter",
    "GroupMember",
    "IdempotencyRecord",
    "Jurisdiction",
    "JurisdictionLevel",
    "MessageState",
    "Plan",
    "PlanImport",
    "ProgressReport",
    "ReportKind",
    "ReportingSchedule",
    "Responsibility",
    "ReviewState",
    "Role",
    "Section",
    "Task",
    "TaskLightSeen",
    "TaskStatus",
    "TaskUnitState",
    "UTCDateTime",
    "Unit",
    "UnitAlias",
    "UnitKind",
    "WebhookAttempt",
    "WebhookEndpoint",
    "WebhookMessage",
    "utcnow",
]
