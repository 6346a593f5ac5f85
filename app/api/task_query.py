"""The documented query language of task lists (`GET /plans/{plan}/tasks`, `GET /units/{id}/tasks`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import Depends, Query, Request
from sqlmodel import Session

from app.api.params import IsoDate
from app.api.responses import Rendered, render_csv, render_json, wants_csv
from app.core.clock import county_today
from app.errors import InvalidParameter
from app.models import Plan, Role, TaskStatus
from app.schemas.common import Page
from app.schemas.task import TASK_FIELDS, TaskOut, task_out
from app.services import jurisdictions
from app.services.lights import LIGHT_LABELS, Light
from app.services.tasks import TaskFilter, TaskSort, TaskView, check_section, query_tasks
from app.services.units import ResolvedUnit, plan_scope, resolve_unit_param


@dataclass
class TaskQueryParams:
    jurisdiction: str | None
    unit: str | None
    include_groups: bool
    role: Role | None
    section: str | None
    statuses: tuple[TaskStatus, ...]
    due_before: date | None
    due_after: date | None
    overdue: bool | None
    as_of: date
    lights: tuple[Light, ...]
    q: str | None
    sort: TaskSort
    limit: int
    cursor: str | None
    count: bool
    fields: tuple[str, ...] | None
    format: Literal["json", "csv"] | None


def _split(values: list[str] | None) -> list[str]:
    return [v.strip() for value in values or [] for v in value.replace(",", ",").split(",") if v.strip()]


async def task_query_params(  # async: pure parsing, no threadpool hop
    jurisdiction: Annotated[
        str | None,
        Query(
            description="行政区划(代码或名称):只含该区划及其下级的方案的任务,并在其中解析 unit"
            " / tasks of plans of this jurisdiction and below; `unit` resolves there",
            examples=["640422"],
        ),
    ] = None,
    unit: Annotated[
        str | None,
        Query(
            description="按单位过滤:id、规范名称或任一别名(`司法局` 即 `县司法局`)。默认只匹配直接关联。"
            " / Filter by unit: id, canonical name or any alias; direct links only unless include_groups=true.",
            examples=["县司法局"],
        ),
    ] = None,
    include_groups: Annotated[
        bool,
        Query(
            description="同时返回分配给该单位所属组(如 各乡镇、各部门(单位))的任务,并在 matched_via 中说明匹配途径。"
            " / Also match tasks assigned to a group the unit belongs to.",
        ),
    ] = False,
    role: Annotated[
        Role | None,
        Query(
            description="角色:lead 牵头、cooperating 配合、responsible 责任。与 unit 同用时为该单位的角色。"
            " / With unit: the unit's role; alone: tasks having that role.",
            examples=["lead"],
        ),
    ] = None,
    section: Annotated[
        str | None,
        Query(
            pattern=r"^\d{1,2}(\.\d{1,2})?$",
            description="章(`2`)或节(`2.1`)/ chapter or subsection code",
            examples=["2.1"],
        ),
    ] = None,
    status: Annotated[
        list[str] | None,
        Query(
            description="状态,可多值:`status=completed&status=ongoing` 或 `status=completed,ongoing`。"
            " 取值 not_started、in_progress、completed、delayed、ongoing(常态化)/ one or several statuses",
            examples=["in_progress,delayed"],
        ),
    ] = None,
    due_before: Annotated[
        IsoDate | None, Query(description="期限不晚于(含)/ due on or before", examples=["2023-12-31"])
    ] = None,
    due_after: Annotated[
        IsoDate | None, Query(description="期限不早于(含)/ due on or after", examples=["2023-01-01"])
    ] = None,
    overdue: Annotated[
        bool | None,
        Query(description="已过期且未完成(以今天或 as_of 计)/ past due and not completed", examples=[True]),
    ] = None,
    as_of: Annotated[
        IsoDate | None,
        Query(
            description="基准日,默认今天:status、progress、unit_states、overdue、light 均为该日结束时的情况"
            "(由当时已有的报告重建);status、overdue 过滤也按该日判断"
            " / reference date (default today): status, progress, owner states, overdue and light as they were"
            " at the end of that day; the status and overdue filters judge that day too",
            examples=["2024-01-01"],
        ),
    ] = None,
    light: Annotated[
        list[str] | None,
        Query(
            description="亮灯,可多值:`light=red,yellow`;取值 red、yellow、green(以今天或 as_of 计)"
            " / one or several lights, as of today or as_of",
            examples=["red,yellow"],
        ),
    ] = None,
    q: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=100,
            description="关键词,在标题和全文中做子串匹配 / substring search in title and text",
            examples=["民法典"],
        ),
    ] = None,
    sort: Annotated[
        TaskSort,
        Query(description="排序:code(方案顺序)、due、updated_at,前加 `-` 为倒序 / sort order"),
    ] = TaskSort.code,
    limit: Annotated[int, Query(ge=1, le=500, description="每页条数(1–500)/ page size")] = 50,
    cursor: Annotated[
        str | None,
        Query(description="上一页响应中的 next_cursor / the next_cursor of the previous page"),
    ] = None,
    count: Annotated[bool, Query(description="返回符合条件的总数 total / include the total count")] = False,
    fields: Annotated[
        str | None,
        Query(
            description="只返回这些字段(逗号分隔)/ comma-separated fields to return: " + ", ".join(TASK_FIELDS),
            examples=["code,title,status,responsibilities"],
        ),
    ] = None,
    format: Annotated[
        Literal["json", "csv"] | None,
        Query(description="`csv` 导出(UTF-8 带 BOM,Excel 可直接打开),也可用 `Accept: text/csv` / export as CSV"),
    ] = None,
) -> TaskQueryParams:
    statuses = []
    for value in _split(status):
        try:
            statuses.append(TaskStatus(value))
        except ValueError:
            allowed = "、".join(s.value for s in TaskStatus)
            raise InvalidParameter("status", f"未知状态“{value}”,可选:{allowed}", kind="enum") from None
    lights = []
    for value in _split(light):
        try:
            lights.append(Light(value))
        except ValueError:
            raise InvalidParameter("light", f"未知亮灯“{value}”,可选:red、yellow、green", kind="enum") from None
    selected = None
    if fields is not None:
        selected = tuple(_split([fields]))
        unknown = [f for f in selected if f not in TASK_FIELDS]
        if unknown or not selected:
            raise InvalidParameter("fields", f"未知字段:{'、'.join(unknown) or '(空)'};可选:{', '.join(TASK_FIELDS)}")
    if due_before and due_after and due_after > due_before:
        raise InvalidParameter("due_after", "due_after 晚于 due_before,结果必为空")
    return TaskQueryParams(
        jurisdiction=jurisdiction,
        unit=unit,
        include_groups=include_groups,
        role=role,
        section=section,
        statuses=tuple(statuses),
        due_before=due_before,
        due_after=due_after,
        overdue=overdue,
        as_of=as_of or county_today(),
        lights=tuple(dict.fromkeys(lights)),
        q=q,
        sort=sort,
        limit=limit,
        cursor=cursor,
        count=count,
        fields=selected,
        format=format,
    )


TaskQueryDep = Annotated[TaskQueryParams, Depends(task_query_params)]


def to_filter(
    *, session: Session, params: TaskQueryParams, plan: Plan | None, unit: ResolvedUnit | None = None
) -> TaskFilter:
    """`unit` is given when the path already names the unit (`/units/{id}/tasks`)."""
    if unit is not None and params.unit:
        raise InvalidParameter("unit", "路径中已指定单位,不能再用 unit 参数 / the path already names the unit")
    within = jurisdictions.scope_ids(session=session, ref=params.jurisdiction)
    if unit is None and params.unit:
        # In a plan's list, a unit's name means a unit of the plan's jurisdiction (or above) unless told otherwise.
        context = within if within is not None or plan is None else plan_scope(session=session, plan=plan)
        unit = resolve_unit_param(session=session, param="unit", ref=params.unit, within=context)
    if params.section and plan is not None:
        check_section(session=session, plan=plan, section=params.section)
    return TaskFilter(
        as_of=params.as_of,
        plan_id=plan.id if plan is not None else None,
        jurisdiction_ids=within,
        unit=unit,
        include_groups=params.include_groups,
        role=params.role,
        section=params.section,
        statuses=params.statuses,
        due_before=params.due_before,
        due_after=params.due_after,
        overdue=params.overdue,
        q=params.q,
        lights=params.lights,
    )


CSV_HEADER = (
    "plan",
    "code",
    "chapter",
    "section",
    "title",
    "text",
    "due",
    "status",
    "progress",
    "overdue",
    "light",
    "light_reasons",
    "lead",
    "cooperating",
    "responsible",
    "updated_at",
)
CSV_MAX_ROWS = 10_000


def render_tasks(
    *, request: Request, session: Session, params: TaskQueryParams, flt: TaskFilter, filename: str
) -> Rendered:
    if wants_csv(request, params.format):
        # An export is the whole filtered list, not one page: spreadsheets do not paginate.
        page = query_tasks(session=session, flt=flt, sort=params.sort, limit=CSV_MAX_ROWS)
        return render_csv(CSV_HEADER, (_csv_row(v) for v in page.items), filename=filename)
    page = query_tasks(
        session=session, flt=flt, sort=params.sort, limit=params.limit, cursor=params.cursor, count=params.count
    )
    body = Page[TaskOut](items=[task_out(v) for v in page.items], next_cursor=page.next_cursor, total=page.total)
    item_fields: set[str] = set(params.fields or TASK_FIELDS)
    if flt.unit is None:
        item_fields.discard("matched_via")
    include: dict[str, Any] = {"items": {"__all__": item_fields}, "next_cursor": True}
    if params.count:
        include["total"] = True
    return render_json(body, include=include)


def _csv_row(view: TaskView) -> list[Any]:
    task = view.task
    by_role = {role: "、".join(link.unit.name for link in view.links if link.role == role) for role in Role}
    return [
        view.plan_slug,
        task.code,
        f"{view.chapter.code} {view.chapter.title}",
        f"{view.section.code} {view.section.title}",
        task.title or "",
        task.text,
        task.due.isoformat() if task.due else "",
        view.status,
        view.progress,
        "是" if view.overdue else "否",
        LIGHT_LABELS[view.light],
        ";".join(r.message for r in view.light_reasons),
        by_role[Role.lead],
        by_role[Role.cooperating],
        by_role[Role.responsible],
        task.updated_at.isoformat(),
    ]


def task_detail_bytes(view: TaskView) -> bytes:
    """The body of `GET …/tasks/{code}`; its hash is the task's ETag, which `If-Match` is checked against."""
    return task_out(view).model_dump_json(exclude={"matched_via"}).encode()
