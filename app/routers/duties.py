"""/api/v1/…/duties and compliance: who owes which report, who has not reported, and a unit's to-do list."""

from __future__ import annotations

import base64
import json
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response

from app.api.deps import SessionDep, SettingsDep
from app.api.lists import CountParam, ListParamsDep, Slice, page_in_memory, render_slice
from app.api.params import IsoDate, UnitJurisdictionParam
from app.api.paths import PlanSlug, UnitRefPath
from app.api.read_cache import ReadCacheDep
from app.api.responses import Rendered, render_csv, render_json, wants_csv
from app.core.clock import county_today
from app.errors import InvalidParameter, NotFound
from app.models import Role, UnitKind
from app.schemas.common import Page
from app.schemas.duty import ComplianceReport, ComplianceSort, DutyOut, compliance_out, duty_out, sort_compliance
from app.services import duties as duty_service
from app.services import plans as plan_service
from app.services import tasks as task_service
from app.services import units as unit_service
from app.services.duties import STATE_LABELS, Duty, DutyState
from app.services.supervision_facts import SupervisionFacts

router = APIRouter(tags=["supervision"])

CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "JSON 或 CSV"}
}
ROLE_LABELS = {Role.lead: "牵头", Role.responsible: "责任", Role.cooperating: "配合"}
CSV_HEADER = (
    "方案",
    "任务编号",
    "单位",
    "角色",
    "经由",
    "报告期",
    "报送期限",
    "状态",
    "报告编号",
    "报送时间",
    "免报理由",
)

PeriodParam = Annotated[
    str | None,
    Query(
        description="报告期,如 2023-Q4(须为本方案报送周期中的一期)/ a period of the plan's calendar",
        examples=["2023"],
    ),
]
AsOfParam = Annotated[
    IsoDate | None,
    Query(
        description="基准日,默认今天:按该日结束时已有的数据计算 / judge with the data as it was at the end of that day"
    ),
]


def _split(values: list[str] | None) -> list[str]:
    return [v.strip() for value in values or [] for v in value.replace(",", ",").split(",") if v.strip()]


def _states(values: list[str] | None) -> set[DutyState]:
    out = set()
    for value in _split(values):
        try:
            out.add(DutyState(value))
        except ValueError:
            allowed = "、".join(s.value for s in DutyState)
            raise InvalidParameter("state", f"未知状态“{value}”,可选:{allowed}", kind="enum") from None
    return out


def _key(facts: SupervisionFacts, duty: Duty) -> list[Any]:
    key = duty.sort_key(facts.tasks[duty.task_id].position)
    return [v.isoformat() if isinstance(v, date) else v for v in key]


def _encode(key: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


def _decode(cursor: str) -> list[Any]:
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(key, list) or len(key) != 6:
            raise ValueError("shape")
        return [str(key[0]), str(key[1]), *(int(v) for v in key[2:])]
    except (ValueError, TypeError) as exc:
        raise InvalidParameter("cursor", "游标无效;请使用上一页响应中的 next_cursor 原值") from exc


def _csv_row(facts: SupervisionFacts, duty: Duty) -> list[Any]:
    out = duty_out(facts, duty)
    return [
        out.plan,
        out.task,
        out.unit.name,
        ROLE_LABELS[duty.role],
        out.via.name,
        out.period,
        out.deadline.isoformat(),
        STATE_LABELS[duty.state],
        out.report_id or "",
        out.sent_at.isoformat() if out.sent_at else "",
        out.excusal.reason if out.excusal else "",
    ]


@router.get("/plans/{plan}/duties", response_model=Page[DutyOut], responses=CSV_RESPONSE)
async def list_duties(
    request: Request,
    plan: PlanSlug,
    session: SessionDep,
    settings: SettingsDep,
    cache: ReadCacheDep,
    period: PeriodParam = None,
    unit: Annotated[
        str | None,
        Query(description="单位 id、名称或别名;组(如 各乡镇)表示其全部成员 / a unit, or a group for its members"),
    ] = None,
    state: Annotated[
        list[str] | None,
        Query(
            description="状态,可多值:submitted、late、missing、due、excused / one or several states",
            examples=["missing,late"],
        ),
    ] = None,
    task: Annotated[str | None, Query(description="任务编号 / task code", examples=["2.3.3"])] = None,
    as_of: AsOfParam = None,
    limit: Annotated[int, Query(ge=1, le=500, description="每页条数(1–500)/ page size")] = 100,
    cursor: Annotated[str | None, Query(description="上一页的 next_cursor / the previous page's next_cursor")] = None,
    count: CountParam = False,
    format: Annotated[
        Literal["json", "csv"] | None,
        Query(description="`csv` 导出(中文表头,UTF-8 带 BOM)/ export as CSV"),
    ] = None,
) -> Response:
    """报送义务:每个报告期每个责任单位对每项任务的报送情况 / Duties: each owner's report per period, and its state."""
    states = _states(state)
    after = _decode(cursor) if cursor else None
    day = as_of or county_today()

    def build() -> Rendered:
        row = plan_service.get_plan(session=session, slug=plan)
        unit_ids = None
        if unit:
            within = unit_service.plan_scope(session=session, plan=row)
            found = unit_service.resolve_unit_param(session=session, param="unit", ref=unit, within=within).unit
            assert found.id is not None
            unit_ids = {found.id}
            if found.kind == UnitKind.group:
                unit_ids = {m.id for m in unit_service.members_of(session=session, group_id=found.id) if m.id}
        task_ids = None
        if task:
            try:
                task_ids = {task_service.find_task(session=session, plan=row, code=task).id or 0}
            except NotFound:
                raise InvalidParameter("task", f"方案中没有编号为 {task} 的任务") from None
        facts, found_duties = duty_service.plan_duties(
            session=session,
            plan=row,
            as_of=day,
            settings=settings,
            period=period,
            task_ids=task_ids,
            unit_ids=unit_ids,
        )
        selected = [d for d in found_duties if not states or d.state in states]
        if wants_csv(request, format):
            rows = (_csv_row(facts, d) for d in selected)
            return render_csv(CSV_HEADER, rows, filename=f"{row.slug}-duties-{period or 'all'}.csv")
        total = len(selected) if count else None
        if after is not None:
            selected = [d for d in selected if _key(facts, d) > after]
        page = selected[:limit]
        next_cursor = _encode(_key(facts, page[-1])) if len(selected) > limit else None
        return render_slice(DutyOut, Slice([duty_out(facts, d) for d in page], next_cursor, total))

    return await cache.respond(build)


@router.get("/plans/{plan}/compliance", response_model=ComplianceReport)
async def get_compliance(
    request: Request,
    plan: PlanSlug,
    session: SessionDep,
    settings: SettingsDep,
    cache: ReadCacheDep,
    page: ListParamsDep,
    period: PeriodParam = None,
    as_of: AsOfParam = None,
    sort: Annotated[
        ComplianceSort,
        Query(
            description="排序:rate(按时报送率升序,最差在前,默认)、-rate、missing、-missing(未报送最多在前)、name"
            " / rate ascending (worst first, default), -rate, missing, -missing, name"
        ),
    ] = ComplianceSort.rate,
) -> Response:
    """各单位报送合规情况(应报、按时、逾期、未报、免报、按时率)及合计 / Compliance per unit and plan-wide."""
    day = as_of or county_today()

    def build() -> Rendered:
        row = plan_service.get_plan(session=session, slug=plan)
        facts, found = duty_service.plan_duties(session=session, plan=row, as_of=day, settings=settings, period=period)
        per_unit, total = duty_service.compliance(found)
        items = page_in_memory(sort_compliance([compliance_out(facts, c) for c in per_unit.values()], sort), page)
        report = ComplianceReport(
            plan=row.slug,
            as_of=day,
            period=period,
            items=items.items,
            next_cursor=items.next_cursor,
            total=items.total,
            totals=compliance_out(facts, total),
        )
        return render_json(report, exclude=None if page.count else {"total"})

    return await cache.respond(build)


@router.get("/units/{unit_id}/duties", response_model=Page[DutyOut])
async def list_unit_duties(
    request: Request,
    unit_id: UnitRefPath,
    session: SessionDep,
    settings: SettingsDep,
    cache: ReadCacheDep,
    page: ListParamsDep,
    period: Annotated[str | None, Query(description="报告期,如 2023-Q4 / period", examples=["2023-Q4"])] = None,
    as_of: AsOfParam = None,
    plan: Annotated[str | None, Query(description="只看某一方案(slug)/ one plan only")] = None,
    jurisdiction: UnitJurisdictionParam = None,
) -> Response:
    """单位待办:尚未报送的义务(待报送与未报送),按期限排序 / A unit's to-do list: what it still owes, by deadline.

    组(如 各乡镇)本身不报送:对组查询返回其各成员的待办 / for a group, what its members owe.
    """
    day = as_of or county_today()

    def build() -> Rendered:
        unit = unit_service.get_unit_in(session=session, ref=unit_id, jurisdiction=jurisdiction)
        plan_row = plan_service.plan_param(session=session, slug=plan)
        facts, found = duty_service.unit_duties(
            session=session, unit=unit, as_of=day, settings=settings, period=period, plan=plan_row
        )
        todo = [d for d in found if d.state in (DutyState.missing, DutyState.due)]
        todo.sort(key=lambda d: (d.deadline, d.plan_id, facts.tasks[d.task_id].position))
        return render_slice(DutyOut, page_in_memory([duty_out(facts, d) for d in todo], page))

    return await cache.respond(build)
