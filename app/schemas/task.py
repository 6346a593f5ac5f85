"""API shapes of tasks and their responsibilities."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field

from app.models import Role, TaskStatus
from app.schemas.common import Page
from app.schemas.progress import UnitState
from app.schemas.unit import UnitRef
from app.services.lights import Light
from app.services.tasks import TaskView, readable_title


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


class LightReasonOut(BaseModel):
    rule: str = Field(
        description="规则编号:overdue 逾期、owner_delayed 单位报告滞后、duty_missing 逾期未报送、"
        "behind_schedule 进度落后、due_soon 临近期限、returned_unresolved 报告被退回未重报 / stable rule id",
        examples=["duty_missing"],
    )
    light: Light = Field(description="该规则给出的灯色 / the light this rule gives", examples=["red"])
    message: str = Field(
        description="说明(含具体数字)/ a sentence with the figures",
        examples=["县司法局 未报送 2023-Q4 进展,已超过报送期限 2024-01-10 12 天(阈值 10 天)"],
    )
    figures: dict[str, Any] = Field(description="规则依据的数字 / the figures behind it")


class TaskOut(BaseModel):
    plan: str = Field(description="所属方案 slug / plan slug", examples=["xiji-fzsh-2021-2025"])
    code: str = Field(description="方案内稳定编号 章.节.条 / stable code chapter.subsection.item", examples=["2.2.1"])
    title: str = Field(
        description="标题:原文给出的标题;原文没有时取正文首句(最多 40 字),并以 title_derived 标明"
        " / the source's title, else the text's first clause (title_derived=true)",
        examples=["加强宪法宣传教育"],
    )
    title_derived: bool = Field(
        description="标题由正文首句推得(原文未给标题)/ the title was derived from the text", examples=[False]
    )
    text: str = Field(description="任务全文 / full text")
    chapter: SectionRef
    section: SectionRef
    due: date | None = Field(
        description="完成期限;实施期限未定的方案中原文未给年份的任务为 null / due date; null in an open-term plan",
        examples=["2025-12-31"],
    )
    status: TaskStatus = Field(
        description="状态(由进展报告派生;有 as_of 时为当日的状态)/ status derived from reports, as of as_of if given"
    )
    progress: int = Field(ge=0, le=100, description="完成百分比 / percent complete", examples=[0])
    overdue: bool = Field(
        description="已过期限且未完成(以今天或 as_of 计)/ past due and not completed, as of today or as_of"
    )
    light: Light = Field(
        description="亮灯:red 红、yellow 黄、green 绿(以今天或 as_of 计,规则见 app/services/lights.py)"
        " / warning light as of today or as_of",
        examples=["yellow"],
    )
    light_reasons: list[LightReasonOut] = Field(description="亮灯原因(绿灯为空)/ why the light is not green")
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


class TaskPartial(BaseModel):
    """A task as `fields=` returns it: only the fields asked for, so every one is optional here.
    Same names and types as TaskOut; a client that asked for `fields=code,title` reads this shape."""

    plan: str | None = None
    code: str | None = None
    title: str | None = None
    title_derived: bool | None = None
    text: str | None = None
    chapter: SectionRef | None = None
    section: SectionRef | None = None
    due: date | None = None
    status: TaskStatus | None = None
    progress: int | None = Field(default=None, ge=0, le=100)
    overdue: bool | None = None
    light: Light | None = None
    light_reasons: list[LightReasonOut] | None = None
    responsibilities: list[ResponsibilityOut] | None = None
    unit_states: list[UnitState] | None = None
    updated_at: datetime | None = None
    provenance: Provenance | None = None
    matched_via: MatchedVia | None = None


# The task lists' 200: whole tasks, or with `fields=` the partial ones (documented as either).
TaskListPage = Page[TaskOut] | Page[TaskPartial]

assert set(TaskPartial.model_fields) == set(TaskOut.model_fields), "TaskPartial must mirror TaskOut"


def matched_via_out(view: TaskView) -> MatchedVia | None:
    if view.matched is None:
        return None
    assert view.matched_unit is not None
    return MatchedVia(
        as_typed=view.matched_unit.as_typed,
        unit=UnitRef.from_unit(view.matched_unit.unit),
        links=[GroupMatch(role=role, through_group=UnitRef.from_unit(g) if g else None) for role, g in view.matched],
    )


def task_fragments(view: TaskView) -> dict[str, bytes]:
    """Each field of the task's JSON rendered alone, as `"name":value` (the read model keeps them, and
    a list joins the ones asked for); `matched_via` is the request's, so it is not among them."""
    out = task_out(view)
    return {f: out.model_dump_json(include={f}).encode()[1:-1] for f in TASK_FIELDS if f != "matched_via"}


def task_out(view: TaskView) -> TaskOut:
    task = view.task
    return TaskOut(
        plan=view.plan_slug,
        code=task.code,
        title=readable_title(task),
        title_derived=not task.title,
        text=task.text,
        chapter=SectionRef(code=view.chapter.code, title=view.chapter.title),
        section=SectionRef(code=view.section.code, title=view.section.title),
        due=task.due,
        status=view.status,
        progress=view.progress,
        overdue=view.overdue,
        light=view.light,
        light_reasons=[
            LightReasonOut(rule=r.rule, light=r.light, message=r.message, figures=r.figures) for r in view.light_reasons
        ],
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
                period=state.period,
                report_id=state.report_id,
                updated_at=state.updated_at,
            )
            for state in view.unit_states
        ],
        updated_at=task.updated_at,
        provenance=Provenance(source_line=task.source_line, number_inferred=task.number_inferred),
        matched_via=matched_via_out(view),
    )


def task_detail_bytes(view: TaskView) -> bytes:
    """The body of `GET …/tasks/{code}`; its hash is the task's ETag, which `If-Match` is checked against."""
    return task_out(view).model_dump_json(exclude={"matched_via"}).encode()
