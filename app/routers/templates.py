"""Fill-in templates for departments: `GET /units/{unit}/template.xlsx|.csv`."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query, Request, Response

from app.api.deps import SessionDep
from app.api.params import UnitJurisdictionParam
from app.api.paths import UnitRefPath
from app.api.read_cache import ReadCacheDep
from app.api.responses import CSV, Rendered
from app.services import plans as plan_service
from app.services import templates as template_service
from app.services import units as unit_service

router = APIRouter(prefix="/units", tags=["toolkit"])

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PlanParam = Annotated[str | None, Query(description="方案 slug;单位参与多个方案时必填 / plan slug")]
PeriodParam = Annotated[
    str | None, Query(description="预填的报告期,如 2024-Q1 / prefill the report period", examples=["2024-Q1"])
]


def _build(
    session: SessionDep, unit_ref: str, jurisdiction: str | None, plan: str | None, period: str | None, fmt: str
) -> Rendered:
    unit = unit_service.get_unit_in(session=session, ref=unit_ref, jurisdiction=jurisdiction)
    plan_row, rows = template_service.template_rows(
        session=session, unit=unit, plan=plan_service.plan_param(session=session, slug=plan), period=period
    )
    filename = f"{plan_row.slug}-{unit.name}-template.{fmt}"
    disposition = f"attachment; filename=\"template.{fmt}\"; filename*=UTF-8''{quote(filename)}"
    if fmt == "csv":
        body = template_service.render_csv(rows, period=period)
        return Rendered(body, CSV, (("Content-Disposition", disposition),))
    body = template_service.render_xlsx(rows, plan=plan_row, unit=unit, period=period)
    return Rendered(body, XLSX, (("Content-Disposition", disposition),))


@router.get(
    "/{unit_id}/template.xlsx",
    response_class=Response,
    responses={200: {"content": {XLSX: {"schema": {"type": "string", "format": "binary"}}}, "description": "XLSX"}},
)
async def unit_template_xlsx(
    request: Request,
    unit_id: UnitRefPath,
    session: SessionDep,
    cache: ReadCacheDep,
    plan: PlanParam = None,
    period: PeriodParam = None,
    jurisdiction: UnitJurisdictionParam = None,
) -> Response:
    """单位报送模板(XLSX)/ The unit's fill-in template as XLSX.

    每个需报送(直接或经所属组;牵头、责任、配合)的任务一行,预填编号、标题、本单位角色、当前状态与进度;状态下拉、百分比 0–100 校验。
    填好后用 `plan-api submit` 报送 / one row per task; fill in and send with `plan-api submit`.
    """
    return await cache.respond(lambda: _build(session, unit_id, jurisdiction, plan, period, "xlsx"))


@router.get(
    "/{unit_id}/template.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "CSV (UTF-8 with BOM)"}},
)
async def unit_template_csv(
    request: Request,
    unit_id: UnitRefPath,
    session: SessionDep,
    cache: ReadCacheDep,
    plan: PlanParam = None,
    period: PeriodParam = None,
    jurisdiction: UnitJurisdictionParam = None,
) -> Response:
    """单位报送模板(CSV)/ The unit's fill-in template as CSV (the same columns as the XLSX)."""
    return await cache.respond(lambda: _build(session, unit_id, jurisdiction, plan, period, "csv"))
