"""Spreadsheet exports of a plan: the workbook, the report history, the statistics (CSV and XLSX)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response

from app.api.deps import SessionDep
from app.api.params import IsoDate
from app.api.paths import PlanSlug
from app.api.read_cache import ReadCacheDep
from app.api.responses import CSV, Rendered, attachment
from app.core.clock import county_today
from app.services import exports as export_service
from app.services import plans as plan_service
from app.services import units as unit_service
from app.services.sheets import XLSX

router = APIRouter(prefix="/plans/{plan}", tags=["toolkit"])

XLSX_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {XLSX: {"schema": {"type": "string", "format": "binary"}}}, "description": "XLSX"}
}
CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "CSV(UTF-8 带 BOM)"}
}
AsOf = Annotated[
    IsoDate | None, Query(description="基准日,默认今天:状态、进度、亮灯为该日结束时的情况 / as of that day's end")
]
Period = Annotated[str | None, Query(description="只导出该报告期 / only this period", examples=["2024-Q1"])]
Unit = Annotated[str | None, Query(description="只导出该单位报送的报告(id、名称或别名)/ only this unit's reports")]
StatsPeriod = Annotated[
    str | None,
    Query(description="合规统计的报告期,默认同 GET /stats / compliance period, as in GET /stats"),
]


def _xlsx(body: bytes, filename: str) -> Rendered:
    return Rendered(body, XLSX, (attachment(filename),))


@router.get("/export.xlsx", response_class=Response, responses=XLSX_RESPONSE)
async def export_plan_xlsx(
    request: Request, plan: PlanSlug, session: SessionDep, cache: ReadCacheDep, as_of: AsOf = None
) -> Response:
    """方案导出(XLSX):任务、单位、单位×任务矩阵 / The plan as a workbook: tasks, units, unit × task matrix.

    工作表 任务(含责任单位与当前状态)、单位(牵头/配合/责任任务数)、矩阵(牵头/配合/责任);表头冻结。
    Sheets 任务 (tasks with their units and state), 单位 (units), 矩阵 (unit × task, 牵头/配合/责任).
    """

    def build() -> Rendered:
        row = plan_service.get_plan(session=session, slug=plan)
        body = export_service.plan_workbook(session=session, plan=row, as_of=as_of or county_today())
        return _xlsx(body, f"{row.slug}.xlsx")

    return await cache.respond(build)


def _history(session: SessionDep, plan: str, unit: str | None, period: str | None) -> tuple[str, list[Any]]:
    row = plan_service.get_plan(session=session, slug=plan)
    unit_id = None
    if unit:
        within = unit_service.plan_scope(session=session, plan=row)
        unit_id = unit_service.resolve_unit_param(session=session, param="unit", ref=unit, within=within).unit.id
    return row.slug, export_service.plan_history(session=session, plan=row, unit_id=unit_id, period=period)


@router.get("/history.csv", response_class=Response, responses=CSV_RESPONSE)
async def export_history_csv(
    request: Request,
    plan: PlanSlug,
    session: SessionDep,
    cache: ReadCacheDep,
    unit: Unit = None,
    period: Period = None,
) -> Response:
    """进展历史(CSV):方案的全部报告,最新在前 / Every report of the plan, newest first, as CSV."""

    def build() -> Rendered:
        slug, reports = _history(session, plan, unit, period)
        return Rendered(export_service.history_csv(reports), CSV, (attachment(f"{slug}-history.csv"),))

    return await cache.respond(build)


@router.get("/history.xlsx", response_class=Response, responses=XLSX_RESPONSE)
async def export_history_xlsx(
    request: Request,
    plan: PlanSlug,
    session: SessionDep,
    cache: ReadCacheDep,
    unit: Unit = None,
    period: Period = None,
) -> Response:
    """进展历史(XLSX)/ Every report of the plan, newest first, as XLSX."""

    def build() -> Rendered:
        slug, reports = _history(session, plan, unit, period)
        return _xlsx(export_service.history_xlsx(reports), f"{slug}-history.xlsx")

    return await cache.respond(build)


@router.get("/stats.csv", response_class=Response, responses=CSV_RESPONSE)
async def export_stats_csv(
    request: Request,
    plan: PlanSlug,
    session: SessionDep,
    cache: ReadCacheDep,
    as_of: AsOf = None,
    period: StatsPeriod = None,
    table: Annotated[
        Literal["units", "chapters"], Query(description="units 按单位(默认)/ chapters 按章 / which table")
    ] = "units",
) -> Response:
    """统计(CSV):按单位或按章,数字同 GET /stats / The statistics by unit or by chapter, as CSV."""

    def build() -> Rendered:
        row = plan_service.get_plan(session=session, slug=plan)
        stats = export_service.plan_stats(session=session, plan=row, as_of=as_of or county_today(), period=period)
        return Rendered(export_service.stats_csv(stats, table), CSV, (attachment(f"{row.slug}-stats-{table}.csv"),))

    return await cache.respond(build)


@router.get("/stats.xlsx", response_class=Response, responses=XLSX_RESPONSE)
async def export_stats_xlsx(
    request: Request,
    plan: PlanSlug,
    session: SessionDep,
    cache: ReadCacheDep,
    as_of: AsOf = None,
    period: StatsPeriod = None,
) -> Response:
    """统计(XLSX):概况、按章、按单位 / The statistics as a workbook: overview, by chapter, by unit."""

    def build() -> Rendered:
        row = plan_service.get_plan(session=session, slug=plan)
        stats = export_service.plan_stats(session=session, plan=row, as_of=as_of or county_today(), period=period)
        return _xlsx(export_service.stats_xlsx(stats), f"{row.slug}-stats.xlsx")

    return await cache.respond(build)
