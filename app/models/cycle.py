"""The supervision cycle's own tables: each plan's reporting schedule and the duties an admin excused.

The rules that use them (which report counts, duties, lights, review) are stated in
`app/services/cycle.py`; the calendar of periods is `app/services/periods.py`.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.models.base import UTCDateTime, utcnow


class Cadence(StrEnum):
    monthly = "monthly"  # 按月
    quarterly = "quarterly"  # 按季度
    half_yearly = "half_yearly"  # 按半年
    yearly = "yearly"  # 按年


class ReportingSchedule(SQLModel, table=True):
    """How often a plan's owners report, by when, who owes, and whether the office reviews.
    Every plan has exactly one (the importer creates it with the defaults below)."""

    __tablename__ = "reporting_schedule"

    plan_id: int = Field(foreign_key="plan.id", primary_key=True, ondelete="CASCADE")
    cadence: Cadence = Field(default=Cadence.quarterly, sa_type=String(16))
    deadline_days: int = 10  # a period's report is due by this many days after the period ends
    cooperating_units_report: bool = False  # do 配合 units owe reports too?
    review_required: bool = False  # do reports wait for the office's acceptance (审核) before counting?
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class DutyExcusal(SQLModel, table=True):
    """An admin waived one unit's report on one task for one period, with a reason. Kept (revoked_at
    set) rather than deleted when withdrawn, so a past date's picture can be reproduced."""

    __tablename__ = "duty_excusal"
    __table_args__ = (UniqueConstraint("task_id", "unit_id", "period", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    plan_id: int = Field(foreign_key="plan.id", index=True, ondelete="CASCADE")
    task_id: int = Field(foreign_key="task.id", ondelete="CASCADE")
    unit_id: int = Field(foreign_key="unit.id")
    period: str = Field(max_length=10)
    reason: str = Field(sa_column=Column(Text, nullable=False))
    api_key_id: int = Field(foreign_key="api_key.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
