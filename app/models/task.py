"""Tasks (the plan's numbered measures) and who is responsible for them."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Column, Index, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.models.base import REPORT_PATH, UTCDateTime, utcnow


class Role(StrEnum):
    lead = "lead"  # 牵头单位
    cooperating = "cooperating"  # 配合单位
    responsible = "responsible"  # 责任单位


class TaskStatus(StrEnum):
    not_started = "not_started"
    in_progress = "in_progress"
    completed = "completed"
    delayed = "delayed"
    ongoing = "ongoing"  # 常态化: a standing mechanism that works but never "finishes"

    @property
    def label(self) -> str:
        """The Chinese word a person reads (messages, spreadsheets); the API keeps the English value."""
        return _STATUS_LABELS[self]


_STATUS_LABELS = {
    TaskStatus.not_started: "未启动",
    TaskStatus.in_progress: "推进中",
    TaskStatus.completed: "已完成",
    TaskStatus.delayed: "滞后",
    TaskStatus.ongoing: "常态化",
}


class Task(SQLModel, table=True):
    __table_args__ = (
        UniqueConstraint("plan_id", "code"),
        Index("ix_task_plan_id_position", "plan_id", "position"),
        REPORT_PATH,  # a report re-derives its task's status; what a task is comes with its import
    )

    id: int | None = Field(default=None, primary_key=True)
    plan_id: int = Field(foreign_key="plan.id", ondelete="CASCADE")
    section_id: int = Field(foreign_key="section.id", index=True)
    code: str = Field(max_length=16)  # chapter.subsection.item, e.g. "2.1.3"
    position: int  # document order, so sorting by code needs no string tricks ("2.10" > "2.9")
    title: str | None = Field(default=None, max_length=200)
    text: str = Field(sa_column=Column(Text, nullable=False))
    due: date | None = None  # None: an open-term plan's task whose text names no year
    source_line: int
    number_inferred: bool = False
    # Derived from progress reports and maintained on write; "not_started" until the first report.
    status: TaskStatus = Field(default=TaskStatus.not_started, sa_type=String(16))
    progress: int = 0
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Responsibility(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("task_id", "unit_id", "role"),)

    id: int | None = Field(default=None, primary_key=True)
    task_id: int = Field(foreign_key="task.id", index=True, ondelete="CASCADE")
    unit_id: int = Field(foreign_key="unit.id", index=True)
    role: Role = Field(sa_type=String(16))
    as_written: str = Field(max_length=100)  # the name exactly as the source spells it
    position: int  # order on the source's unit line
    source_line: int
