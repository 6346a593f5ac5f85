"""Progress reports, the derived per-unit state, API keys, idempotency and the change feed."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, Index, String, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from app.models.base import REPORT_PATH, UTCDateTime, utcnow


class ReportKind(StrEnum):
    status = "status"  # from a lead/responsible unit: moves the task's status
    contribution = "contribution"  # from a cooperating unit: history only
    correction = "correction"  # from the rule-of-law office's admin key: sets the task's status


class ReviewState(StrEnum):
    not_required = "not_required"  # the schedule has review off: the report counts as it arrives
    pending = "pending"  # 待审核: waits for the office; does not count yet
    accepted = "accepted"  # 已通过: counts from reviewed_at on
    returned = "returned"  # 已退回: never counts; the unit resubmits (a new version) to fulfil its duty


# The partial indexes' predicates, which queries spell the same way so that the indexes apply.
RETURNED = "review_state = 'returned'"
COMPLETED = "status = 'completed'"
HEAD = "superseded_by_id IS NULL"  # the newest version of its (task, unit, period)
COUNTING = "withdrawn_at IS NULL AND review_state IN ('not_required', 'accepted')"  # may count, by its own state


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_key"

    id: int | None = Field(default=None, primary_key=True)
    prefix: str = Field(max_length=16, unique=True)  # public part, shown in lists and logs
    secret_hash: str = Field(max_length=64)  # sha256 of the whole key; the key itself is never stored
    name: str = Field(max_length=100)
    unit_id: int | None = Field(default=None, foreign_key="unit.id", index=True)
    is_admin: bool = False
    # A unit key: its unit's jurisdiction. An admin key: the subtree it administers; None only for
    # a platform-wide admin key.
    jurisdiction_id: int | None = Field(default=None, foreign_key="jurisdiction.id", index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ProgressReport(SQLModel, table=True):
    __tablename__ = "progress_report"
    __table_args__ = (
        Index("ix_progress_report_task_id_id", "task_id", "id"),
        Index("ix_progress_report_unit_id_id", "unit_id", "id"),
        # Period before unit: a task's reports on one period (a closed period's duties) are a seek.
        Index("ix_progress_report_task_id_period_unit_id", "task_id", "period", "unit_id"),
        # Returned and completed reports are few, and a task list asks for them on every read: partial
        # indexes covering those lookups (so SQLite picks them even without statistics) keep a list's
        # cost independent of how many reports its tasks hold.
        Index(
            "ix_progress_report_returned",
            "task_id",
            "unit_id",
            "period",
            sqlite_where=text(RETURNED),
            postgresql_where=text(RETURNED),
        ),
        Index(
            "ix_progress_report_completed",
            "task_id",
            "created_at",
            sqlite_where=text(COMPLETED),
            postgresql_where=text(COMPLETED),
        ),
        # A write re-derives its task from each (unit, period)'s head and newest counting version:
        # seeks in these, where the full index would make it read every version the task has ever had
        # (at 10^6 reports, 13,000 for one task: 24 ms a write, against under 3 with these).
        Index(
            "ix_progress_report_head",
            "task_id",
            "period",
            "unit_id",
            sqlite_where=text(HEAD),
            postgresql_where=text(HEAD),
        ),
        Index(
            "ix_progress_report_counting",
            "task_id",
            "period",
            "unit_id",
            sqlite_where=text(COUNTING),
            postgresql_where=text(COUNTING),
        ),
        REPORT_PATH,
    )

    id: int | None = Field(default=None, primary_key=True)
    task_id: int = Field(foreign_key="task.id")
    unit_id: int | None = Field(default=None, foreign_key="unit.id")  # None for the admin office
    via_unit_id: int | None = Field(default=None, foreign_key="unit.id")  # the linked unit (maybe a group)
    api_key_id: int = Field(foreign_key="api_key.id", index=True)
    kind: ReportKind = Field(sa_type=String(16))
    status: str = Field(max_length=16)
    percent: int
    summary: str = Field(sa_column=Column(Text, nullable=False))
    period: str = Field(max_length=10, index=True)
    evidence: str = Field(default="[]", sa_column=Column(Text, nullable=False))  # JSON list
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # Versions: a unit's second report on the same task and period supersedes its first (a correction).
    supersedes_id: int | None = Field(default=None, foreign_key="progress_report.id")
    superseded_by_id: int | None = Field(default=None, foreign_key="progress_report.id")
    withdrawn_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    withdrawn_reason: str | None = Field(default=None, sa_column=Column(Text))
    # Review (审核), when the plan's schedule asks for it.
    review_state: ReviewState = Field(default=ReviewState.not_required, sa_type=String(16))
    reviewed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    review_reason: str | None = Field(default=None, sa_column=Column(Text))
    reviewed_by_key_id: int | None = Field(default=None, foreign_key="api_key.id")


class TaskUnitState(SQLModel, table=True):
    """Each owner unit's latest state on a task, kept on write so reads never scan the history."""

    __tablename__ = "task_unit_state"
    __table_args__ = REPORT_PATH

    task_id: int = Field(foreign_key="task.id", primary_key=True, ondelete="CASCADE")
    unit_id: int = Field(foreign_key="unit.id", primary_key=True)  # the reporting unit
    via_unit_id: int = Field(foreign_key="unit.id")  # the lead/responsible link it reported through
    status: str = Field(max_length=16)
    percent: int
    period: str = Field(default="", max_length=10)  # the period of the report that gives this state
    report_id: int = Field(foreign_key="progress_report.id")
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class IdempotencyRecord(SQLModel, table=True):
    __tablename__ = "idempotency_record"
    __table_args__ = (UniqueConstraint("api_key_id", "key"), REPORT_PATH)

    id: int | None = Field(default=None, primary_key=True)
    api_key_id: int = Field(foreign_key="api_key.id")
    key: str = Field(max_length=200)
    request_hash: str = Field(max_length=64)
    status_code: int
    response: str = Field(sa_column=Column(Text, nullable=False))  # the JSON body first returned
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ChangeEvent(SQLModel, table=True):
    """Audit log and change feed in one. `seq` is assigned just before commit, in commit order (see
    `app/services/feed.py`), so a reader polling `since=` never skips an event that commits late."""

    __tablename__ = "change_event"
    __table_args__ = REPORT_PATH

    id: int | None = Field(default=None, primary_key=True)
    seq: int | None = Field(default=None, unique=True)  # None until the writing transaction commits
    type: str = Field(max_length=40)  # report.created, task.status_changed, key.created, …
    occurred_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    plan_id: int | None = Field(default=None, foreign_key="plan.id", index=True)
    task_id: int | None = Field(default=None, foreign_key="task.id")
    unit_id: int | None = Field(default=None, foreign_key="unit.id")
    report_id: int | None = Field(default=None, foreign_key="progress_report.id")
    api_key_id: int | None = Field(default=None, foreign_key="api_key.id")
    # The plan's or unit's jurisdiction, so the feed and the audit log filter by a subtree.
    jurisdiction_id: int | None = Field(default=None, foreign_key="jurisdiction.id", index=True)
    actor: str = Field(max_length=120)  # who: the key's unit or admin name
    remote_addr: str | None = Field(default=None, max_length=64)
    data: str = Field(default="{}", sa_column=Column(Text, nullable=False))  # JSON


# Read on every request (the read cache, the structure memo): plain SQL, compiled once by the driver.
DATA_VERSION_SQL = "SELECT version FROM feed_counter WHERE id = 1"
STRUCTURE_VERSION_SQL = "SELECT structure_version FROM feed_counter WHERE id = 1"
# `session.info` keys: this session changed data (any table; or a table off the report path) not yet
# committed. Set and cleared by app/services/feed.py.
DATA_CHANGED = "feed_rows_changed"
STRUCTURE_CHANGED = "feed_structure_changed"


class FeedCounter(SQLModel, table=True):
    """One row: the last `seq` given out, and the data's `version` (the read cache keys on it).
    Writers take it as the last thing before commit, which makes seq order commit order; every
    transaction that changed any row bumps `version` (`app/services/feed.py`), events or not, and
    `structure_version` too unless it wrote only the report path's tables (`REPORT_PATH`)."""

    __tablename__ = "feed_counter"
    __table_args__ = REPORT_PATH

    id: int = Field(default=1, primary_key=True)
    seq: int = 0
    version: int = 0
    structure_version: int = 0
