"""The documented query language of task lists (`GET /plans/{plan}/tasks`, `GET /units/{id}/tasks`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlencode

from fastapi import Depends, Query, Request
from sqlmodel import Session

from app.api.params import IsoDate, check_query_params, query_values
from app.api.responses import Rendered, render_csv, render_json, wants_csv
from app.core.clock import county_today
from app.errors import InvalidParameter, ProblemError
from app.models import Plan, Role, TaskStatus
from app.schemas.common import Page
from app.schemas.task import TASK_FIELDS, TaskOut, matched_via_out, task_detail_bytes, task_fragments, task_out
from app.services import jurisdictions, read_model, units
from app.services.lights import LIGHT_LABELS, Light
from app.services.read_model import Lookups, ReadModel
from app.services.tasks import (
    TaskFilter,
    TaskPage,
    TaskSort,
    TaskView,
    check_section,
    find_task,
    get_task,
    query_tasks,
    readable_title,
)
from app.services.templates import ROLE_LABELS
from app.services.units import ResolvedUnit

DEFAULT_LIMIT = 50


@dataclass
class TaskQueryParams:
    jurisdiction: str | None
    unit: str | None
    include_groups: bool
    roles: tuple[Role, ...]
    section: str | None
    statuses: tuple[TaskStatus, ...]
    due_before: date | None
    due_after: date | None
    overdue: bool | None
    as_of: date
    lights: tuple[Light, ...]
    q: str | None
    sort: TaskSort
    limit: int | None  # None: not given (JSON pages by DEFAULT_LIMIT; CSV exports everything)
    cursor: str | None
    count: bool
    fields: tuple[str, ...] | None
    format: Literal["json", "csv"] | None

    @property
    def page_size(self) -> int:
        return self.limit or DEFAULT_LIMIT


def _split(values: list[str] | None) -> list[str]:
    return [v.strip() for value in values or [] for v in value.replace(",", ",").split(",") if v.strip()]


def parse_roles(values: list[str] | None) -> tuple[Role, ...]:
    """`role=lead,responsible` or `role=lead&role=responsible`: any of these roles."""
    roles = []
    for value in _split(values):
        try:
            roles.append(Role(value))
        except ValueError:
            allowed = "、".join(r.value for r in Role)
            raise InvalidParameter("role", f"未知角色“{value}”,可选:{allowed}", kind="enum") from None
    return tuple(dict.fromkeys(roles))


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
        list[str] | None,
        Query(
            description="角色,可多值(任一):`role=lead,responsible` 或 `role=lead&role=responsible`;"
            "取值 lead 牵头、cooperating 配合、responsible 责任。与 unit 同用时为该单位的角色。"
            " / one or several roles (any of them): with unit, the unit's role; alone, tasks having that role.",
            examples=["lead,responsible"],
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
    limit: Annotated[
        int | None,
        Query(
            ge=1,
            le=500,
            description="每页条数(1–500),默认 50。CSV 默认导出整个列表;给出 limit 或 cursor 时分页,"
            '下一页地址在 `Link: <…>; rel="next"` 头,游标在 `X-Next-Cursor` 头,count=true 的总数在 `X-Total-Count` 头'
            " / page size (default 50); CSV exports the whole list unless limit or cursor is given, then pages"
            " with the next page in a Link header (and X-Next-Cursor), the total in X-Total-Count",
        ),
    ] = None,
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
    return parse_task_query(
        jurisdiction=jurisdiction,
        unit=unit,
        include_groups=include_groups,
        role=role,
        section=section,
        status=status,
        due_before=due_before,
        due_after=due_after,
        overdue=overdue,
        as_of=as_of,
        light=light,
        q=q,
        sort=sort,
        limit=limit,
        cursor=cursor,
        count=count,
        fields=fields,
        format=format,
    )


def parse_task_query(
    *,
    jurisdiction: str | None,
    unit: str | None,
    include_groups: bool,
    role: list[str] | None,
    section: str | None,
    status: list[str] | None,
    due_before: date | None,
    due_after: date | None,
    overdue: bool | None,
    as_of: date | None,
    light: list[str] | None,
    q: str | None,
    sort: TaskSort,
    limit: int | None,
    cursor: str | None,
    count: bool,
    fields: str | None,
    format: Literal["json", "csv"] | None,
) -> TaskQueryParams:
    """The rules of the query language beyond each parameter's type: `task_query_params` (the
    route's, values validated by FastAPI) and the fast path (`query_values`) both end here."""
    statuses = []
    for value in _split(status):
        try:
            statuses.append(TaskStatus(value))
        except ValueError:
            allowed = "、".join(s.value for s in TaskStatus)
            raise InvalidParameter("status", f"未知状态“{value}”,可选:{allowed}", kind="enum") from None
    roles = parse_roles(role)
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
        roles=roles,
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

ListBuild = Callable[..., Rendered]
"""A task list's rendering: `build(request=, session=, params=, version=)`, the path's names in
`request.path_params`. The route builds with it, and so does the fast path on a miss."""


def cold_task_list(request: Request, build: ListBuild) -> Callable[[Session, int], Rendered] | None:
    """The response cache's fast path on a task list's miss (`read_cache.CachedReads`): the query
    checked and parsed by the route's own definitions (`check_query_params`, the fields of
    `task_query_params` as FastAPI validates them, then `parse_task_query`), and the build the route
    would run. None when the route would answer anything else, or otherwise than from the read model:
    a 400 or 422, a past or future `as_of`, the read model off. The route then answers as always."""
    if not request.app.state.read_model.max_bytes:
        return None
    try:
        check_query_params(request)
        values = query_values(request.scope["route"], task_query_params, request)
        if values is None:
            return None
        params = parse_task_query(**values)
    except ProblemError:
        return None
    if params.as_of != county_today():
        return None
    return lambda session, version: build(request=request, session=session, params=params, version=version)


def plan_task_list(*, request: Request, session: Session, params: TaskQueryParams, version: int | None) -> Rendered:
    """`GET /plans/{plan}/tasks`."""
    lookups = request.app.state.read_model.lookups(session=session, version=version)
    plan = lookups.plan(request.path_params["plan"])
    flt = to_filter(session=session, params=params, plan=plan, lookups=lookups)
    return render_tasks(
        request=request,
        session=session,
        params=params,
        flt=flt,
        filename=f"{plan.slug}-tasks.csv",
        plan=plan,
        version=version,
        lookups=lookups,
    )


def unit_task_list(*, request: Request, session: Session, params: TaskQueryParams, version: int | None) -> Rendered:
    """`GET /units/{unit_id}/tasks`: the unit's tasks across plans."""
    ref = request.path_params["unit_id"]
    scope = (
        jurisdictions.resolve(session=session, ref=params.jurisdiction, param="jurisdiction")
        if params.jurisdiction
        else None
    )
    row = units.get_unit(session=session, ref=ref, jurisdiction=scope)
    flt = to_filter(session=session, params=params, plan=None, unit=ResolvedUnit(unit=row, as_typed=ref))
    return render_tasks(
        request=request,
        session=session,
        params=params,
        flt=flt,
        filename=f"unit-{row.id}-tasks.csv",
        version=version,
    )


def to_filter(
    *,
    session: Session,
    params: TaskQueryParams,
    plan: Plan | None,
    unit: ResolvedUnit | None = None,
    lookups: Lookups | None = None,
) -> TaskFilter:
    """`unit` is given when the path already names the unit (`/units/{id}/tasks`); `lookups`, the
    request's (remembered per data version), when it has them."""
    lookups = lookups or Lookups(session=session, memo=None)
    if unit is not None and params.unit:
        raise InvalidParameter("unit", "路径中已指定单位,不能再用 unit 参数 / the path already names the unit")
    within = jurisdictions.scope_ids(session=session, ref=params.jurisdiction)
    if unit is None and params.unit:
        # In a plan's list, a unit's name means a unit of the plan's jurisdiction (or above) unless told otherwise.
        context = within if within is not None or plan is None else lookups.plan_scope(plan)
        unit = lookups.unit(param="unit", ref=params.unit, within=context)
    if params.section and plan is not None:
        check_section(codes=lookups.sections(plan), section=params.section)
    return TaskFilter(
        as_of=params.as_of,
        plan_id=plan.id if plan is not None else None,
        jurisdiction_ids=within,
        unit=unit,
        include_groups=params.include_groups,
        roles=params.roles,
        section=params.section,
        statuses=params.statuses,
        due_before=params.due_before,
        due_after=params.due_after,
        overdue=params.overdue,
        q=params.q,
        lights=params.lights,
    )


def _by_role(view: TaskView, role: Role) -> str:
    return "、".join(link.unit.name for link in view.links if link.role == role)


def _matched(view: TaskView) -> str:
    return "、".join(
        ROLE_LABELS[role] + (f"(经{group.name})" if group is not None else "(直接)")
        for role, group in view.matched or []
    )


_Column = tuple[str, Callable[[TaskView], Any]]
# The CSV's columns per field of `fields=`, headed in Chinese (a spreadsheet is read by people); values
# are the JSON's, with statuses, lights and booleans in Chinese words.
CSV_COLUMNS: dict[str, tuple[_Column, ...]] = {
    "plan": (("方案", lambda v: v.plan_slug),),
    "code": (("任务编号", lambda v: v.task.code),),
    "title": (("任务标题", lambda v: readable_title(v.task)),),
    "title_derived": (("标题系推得", lambda v: "否" if v.task.title else "是"),),
    "text": (("任务内容", lambda v: v.task.text),),
    "chapter": (("章", lambda v: f"{v.chapter.code} {v.chapter.title}"),),
    "section": (("节", lambda v: f"{v.section.code} {v.section.title}"),),
    "due": (("完成期限", lambda v: v.task.due.isoformat() if v.task.due else ""),),
    "status": (("状态", lambda v: TaskStatus(v.status).label),),
    "progress": (("完成百分比", lambda v: v.progress),),
    "overdue": (("已逾期", lambda v: "是" if v.overdue else "否"),),
    "light": (("亮灯", lambda v: LIGHT_LABELS[v.light]),),
    "light_reasons": (("亮灯原因", lambda v: ";".join(r.message for r in v.light_reasons)),),
    "responsibilities": (
        ("牵头单位", lambda v: _by_role(v, Role.lead)),
        ("配合单位", lambda v: _by_role(v, Role.cooperating)),
        ("责任单位", lambda v: _by_role(v, Role.responsible)),
    ),
    "unit_states": (
        (
            "各单位报告状态",
            lambda v: ";".join(
                f"{s.unit.name}:{TaskStatus(s.status).label} {s.percent}%" + (f"({s.period})" if s.period else "")
                for s in v.unit_states
            ),
        ),
    ),
    "updated_at": (("更新时间", lambda v: v.task.updated_at.isoformat()),),
    "provenance": (("原文行号", lambda v: v.task.source_line),),
    "matched_via": (("匹配途径", _matched),),
}
assert set(CSV_COLUMNS) == set(TASK_FIELDS), "every field of the JSON has its CSV column(s)"
CSV_MAX_ROWS = 10_000
# CSV paging (when limit= or cursor= is given): the next page's URL and cursor, and count=true's total.
NEXT_CURSOR_HEADER = "X-Next-Cursor"
TOTAL_COUNT_HEADER = "X-Total-Count"


def render_tasks(
    *,
    request: Request,
    session: Session,
    params: TaskQueryParams,
    flt: TaskFilter,
    filename: str,
    plan: Plan | None = None,
    version: int | None = None,
    lookups: Lookups | None = None,
) -> Rendered:
    """The list as JSON or CSV. Given the data version, a list for today is answered from the read model
    (`app/services/read_model.py`: the plan's picture, or for a unit's list those of the plans linking
    it); a past or future `as_of` by the query."""
    fields: list[str] = list(params.fields or TASK_FIELDS)
    if flt.unit is None:
        fields = [f for f in fields if f != "matched_via"]
    csv = wants_csv(request, params.format)
    # Without limit= or cursor= an export is the whole filtered list (spreadsheets do not paginate);
    # with them, one page, and the next one's address in a Link header (RFC 8288) and X-Next-Cursor.
    paged = not csv or params.limit is not None or params.cursor is not None
    limit = params.page_size if paged else CSV_MAX_ROWS
    store: ReadModel = request.app.state.read_model
    today = county_today()
    if version is not None and store.max_bytes and read_model.serves(flt, today):
        lookups = lookups or store.lookups(session=session, version=version)
        if plan is not None:
            plans = [plan]
        else:  # a unit's tasks across plans: the plans linking it (or its groups)
            assert flt.unit is not None
            plans = lookups.plans_linking(frozenset(lookups.scope_units(flt.unit.unit, flt.include_groups)))
        pictures = [
            store.picture(session=session, plan=p, version=version, today=today, render=task_fragments) for p in plans
        ]
        found = read_model.answer(
            session=session,
            lookups=lookups,
            pictures=pictures,
            flt=flt,
            sort=params.sort,
            limit=limit,
            cursor=params.cursor,
            count=params.count,
        )
        if not csv:
            return _render_rows(found, fields=fields, count=params.count)
        page = found.page
    else:
        page = query_tasks(
            session=session, flt=flt, sort=params.sort, limit=limit, cursor=params.cursor, count=params.count
        )
    if csv:
        return _render_csv(request=request, params=params, page=page, filename=filename, fields=fields)
    body = Page[TaskOut](items=[task_out(v) for v in page.items], next_cursor=page.next_cursor, total=page.total)
    include: dict[str, Any] = {"items": {"__all__": set(fields)}, "next_cursor": True}
    if params.count:
        include["total"] = True
    return render_json(body, include=include)


def _render_rows(found: read_model.RowPage, *, fields: list[str], count: bool) -> Rendered:
    """The JSON page joined from the read model's rendered fields: the bytes `render_json` would make."""
    wanted = [f for f in TASK_FIELDS if f in set(fields)]
    items = []
    for row, view in zip(found.rows, found.page.items, strict=True):
        parts = []
        for name in wanted:
            if name == "matched_via":
                matched = matched_via_out(view)
                parts.append(b'"matched_via":' + (matched.model_dump_json().encode() if matched else b"null"))
            else:
                parts.append(row.fragments[name])
        items.append(b"{" + b",".join(parts) + b"}")
    cursor = found.page.next_cursor
    body = b'{"items":[' + b",".join(items) + b'],"next_cursor":' + json.dumps(cursor).encode()
    if count:
        body += b',"total":' + str(found.page.total).encode()
    return Rendered(body + b"}")


def _render_csv(
    *, request: Request, params: TaskQueryParams, page: TaskPage, filename: str, fields: list[str]
) -> Rendered:
    columns = [column for field in TASK_FIELDS if field in fields for column in CSV_COLUMNS[field]]
    headers: list[tuple[str, str]] = []
    if page.next_cursor is not None:
        query = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor"]
        query.append(("cursor", page.next_cursor))
        # Percent-encoded: a unit's name in the path (`/units/县司法局/tasks`) cannot go in a header as is.
        headers.append(("Link", f'<{quote(request.url.path)}?{urlencode(query)}>; rel="next"'))
        headers.append((NEXT_CURSOR_HEADER, page.next_cursor))
    if params.count and page.total is not None:
        headers.append((TOTAL_COUNT_HEADER, str(page.total)))
    return render_csv(
        [name for name, _ in columns],
        ([value(view) for _, value in columns] for view in page.items),
        filename=filename,
        headers=headers,
    )


def task_detail(
    *, request: Request, session: Session, slug: str, code: str, as_of: date | None, version: int | None
) -> Rendered:
    """`GET …/tasks/{code}`: today's from the read model (its fields joined are `task_detail_bytes`'s
    bytes), a past or future `as_of`'s by `hydrate()`."""
    store: ReadModel = request.app.state.read_model
    lookups = store.lookups(session=session, version=version)
    plan = lookups.plan(slug)
    today = county_today()
    if version is not None and store.max_bytes and (as_of is None or as_of == today):
        picture = store.picture(session=session, plan=plan, version=version, today=today, render=task_fragments)
        row = picture.row(code)
        if row is None:
            find_task(session=session, plan=plan, code=code)  # the 404, said as the query path says it
        else:
            return Rendered(b"{" + b",".join(row.fragments[f] for f in TASK_FIELDS if f != "matched_via") + b"}")
    view = get_task(session=session, plan=plan, code=code, as_of=as_of or today)
    return Rendered(task_detail_bytes(view))
