"""API shapes of tasks and their responsibilities."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field

from app.models import Role, TaskStatus
from app.schemas.progress import UnitState
from app.schemas.unit import UnitRef
from app.services.tasks import TaskView


class SectionRef(BaseModel):
    code: str = Field(examples=["2.1"])
    title: str = Field(examples=["维护宪法法律权威"])


class ResponsibilityOut(BaseModel):
    role: Role = Field(description="lead 牵头 / cooperating 配合 / responsible 责任", examples=["lead"])
    unit: UnitRef
    as_written: str = Field(description="方案原文中的写法 / the name as the source writes it", examples=["司法局"])


class Provenance(BaseModel):
    source_line: int = Field(description="任务在方案原文中的起始行号 / 1-based line in the source", examples=[40])
    number_inferred: bool = Field(
        description="原文丢失了编号,编号为推断所得 / the item number was lost in the source and inferred"
    )


class GroupMatch(BaseModel):
    role: Role
    through_group: UnitRef | None = Field(
        description="经由哪个组匹配;null 表示直接关联 / the group the match came through; null if direct"
    )


class MatchedVia(BaseModel):
    as_typed: str = Field(description="请求中 unit 参数的原值 / the unit parameter as typed", examples=["司法局"])
    unit: UnitRef = Field(description="解析得到的规范单位 / the canonical unit it resolved to")
    links: list[GroupMatch] = Field(description="任务与该单位的关联方式 / how the task is linked to the unit")


class TaskOut(BaseModel):
    plan: str = Field(description="所属方案 slug / plan slug", examples=["xiji-fzsh-2021-2025"])
    code: str = Field(description="方案内稳定编号 章.节.条 / stable code chapter.subsection.item", examples=["2.2.1"])
    title: str | None = Field(description="原文给出的标题(若有)/ title where the source gives one")
    text: str = Field(description="任务全文 / full text")
    chapter: SectionRef
    section: SectionRef
    due: date = Field(description="完成期限 / due date", examples=["2025-12-31"])
    status: TaskStatus = Field(description="当前状态(由进展报告派生)/ current status, derived from reports")
    progress: int = Field(ge=0, le=100, description="完成百分比 / percent complete", examples=[0])
    overdue: bool = Field(description="已过期限且未完成(以今天计)/ past due and not completed, as of today")
    responsibilities: list[ResponsibilityOut]
    unit_states: list[UnitState] = Field(
        description="各牵头/责任单位最近一次报告的状态(任务总体状态据此派生)/ each owner unit's latest reported state"
    )
    updated_at: datetime
    provenance: Provenance
    matched_via: MatchedVia | None = Field(
        default=None, description="仅当按 unit 过滤时:如何匹配到该单位 / with unit=: how the task matched"
    )


TASK_FIELDS = tuple(TaskOut.model_fields)


def task_out(view: TaskView) -> TaskOut:
    task = view.task
    matched = None
    if view.matched is not None:
        assert view.matched_unit is not None
        matched = MatchedVia(
            as_typed=view.matched_unit.as_typed,
            unit=UnitRef.from_unit(view.matched_unit.unit),
            links=[
                GroupMatch(role=role, through_group=UnitRef.from_unit(g) if g else None) for role, g in view.matched
            ],
        )
    return TaskOut(
        plan=view.plan_slug,
        code=task.code,
        title=task.title,
        text=task.text,
        chapter=SectionRef(code=view.chapter.code, title=view.chapter.title),
        section=SectionRef(code=view.section.code, title=view.section.title),
        due=task.due,
        status=task.status,
        progress=task.progress,
        overdue=view.overdue,
        responsibilities=[
            ResponsibilityOut(role=link.role, unit=UnitRef.from_unit(link.unit), as_written=link.as_written)
            for link in view.links
        ],
        unit_states=[
            UnitState(
                unit=UnitRef.from_unit(state.unit),
                via=UnitRef.from_unit(state.via),
                status=state.status,
                percent=state.percent,
                report_id=state.report_id,
                updated_at=state.updated_at,
            )
            for state in view.unit_states
        ],
        updated_at=task.updated_at,
        provenance=Provenance(source_line=task.source_line, number_inferred=task.number_inferred),
        matched_via=matched,
    )
