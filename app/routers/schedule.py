"""A plan's reporting schedule, its calendar of periods, and excused duties (报送周期)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from sqlmodel import Session

from app.api.deps import AdminReadingDep, AdminWritesDep, SessionDep, SettingsDep, client_address
from app.api.lists import ListParamsDep, page_in_memory, render_slice
from app.api.openapi import WRITE_RESPONSES
from app.api.params import IsoDate
from app.api.paths import PlanSlug
from app.api.responses import json_response, send
from app.errors import Problem
from app.models import Plan, ReportingSchedule
from app.schemas.common import MAX_ID, Page
from app.schemas.cycle import ExcusalIn, ExcusalOut, PeriodOut, PeriodsOut, ScheduleIn, ScheduleOut
from app.services import excusals
from app.services import plans as plan_service
from app.services import schedule as schedule_service
from app.services.keys import Principal
from app.services.permissions import authorize_admin

router = APIRouter(responses=WRITE_RESPONSES, tags=["schedule"])

CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": Problem, "description": "已免除或已撤销 / already excused, or already revoked"}
}
ExcusalId = Annotated[int, Path(ge=1, le=MAX_ID, description="免报记录 id / excusal id", examples=[1])]


def _schedule_out(plan: Plan, schedule: ReportingSchedule) -> ScheduleOut:
    return ScheduleOut(plan=plan.slug, **schedule_service.schedule_values(schedule), updated_at=schedule.updated_at)


@router.get("/plans/{plan}/schedule", response_model=ScheduleOut)
def get_schedule(request: Request, plan: PlanSlug, session: SessionDep) -> Response:
    """方案的报送周期设置 / The plan's reporting schedule."""
    row = plan_service.get_plan(session=session, slug=plan)
    return json_response(request, _schedule_out(row, schedule_service.get_schedule(session=session, plan=row)))


@router.put("/plans/{plan}/schedule", response_model=ScheduleOut)
def put_schedule(request: Request, plan: PlanSlug, body: ScheduleIn, writes: AdminWritesDep) -> ScheduleOut:
    """修改报送周期设置(管理密钥),记入审计与变更订阅 / Change the schedule (admin); audited, in the feed.

    报送周期 cadence、截止天数 deadline_days(报告期结束后 0–90 天)、配合单位是否报送、是否须审核。
    """

    def work(session: Session, admin: Principal) -> ScheduleOut:
        row = plan_service.get_plan(session=session, slug=plan)
        authorize_admin(session=session, principal=admin, plan_id=row.id)
        schedule = schedule_service.set_schedule(
            session=session, plan=row, values=body.model_dump(), principal=admin, remote_addr=client_address(request)
        )
        session.flush()  # updated_at, as stored
        return _schedule_out(row, schedule)

    return writes.run(work)


@router.get("/plans/{plan}/periods", response_model=PeriodsOut)
def list_periods(
    request: Request,
    plan: PlanSlug,
    session: SessionDep,
    settings: SettingsDep,
    as_of: Annotated[IsoDate | None, Query(description="哪一天的当前报告期;默认今天 / the date; default today")] = None,
) -> Response:
    """方案实施期内的报告期日历及截止日 / The calendar of reporting periods with their deadlines."""
    row = plan_service.get_plan(session=session, slug=plan)
    schedule = schedule_service.get_schedule(session=session, plan=row)
    day = as_of or datetime.now(ZoneInfo(settings.timezone)).date()
    rows = schedule_service.calendar(plan=row, schedule=schedule, as_of=day)
    items = [
        PeriodOut(period=r.period.label, start=r.period.start, end=r.period.end, deadline=r.deadline, current=r.current)
        for r in rows
    ]
    body = PeriodsOut(
        plan=row.slug,
        as_of=day,
        cadence=schedule.cadence,
        deadline_days=schedule.deadline_days,
        current=next((i.period for i in items if i.current), None),
        items=items,
    )
    return json_response(request, body)


@router.post("/plans/{plan}/excusals", status_code=201, response_model=ExcusalOut, responses=CONFLICT)
def create_excusal(request: Request, plan: PlanSlug, body: ExcusalIn, writes: AdminWritesDep) -> JSONResponse:
    """免除某单位某任务某报告期的报送义务(管理密钥)/ Waive one duty, with a reason (admin)."""

    def work(session: Session, admin: Principal) -> ExcusalOut:
        row = plan_service.get_plan(session=session, slug=plan)
        excusal = excusals.create(
            session=session, plan=row, data=body, principal=admin, remote_addr=client_address(request)
        )
        session.flush()
        [out] = excusals.present(session=session, plan=row, excusals=[excusal])
        return out

    out = writes.run(work)
    return JSONResponse(out.model_dump(mode="json"), status_code=201)


@router.delete("/plans/{plan}/excusals/{excusal_id}", response_model=ExcusalOut, responses=CONFLICT)
def revoke_excusal(request: Request, plan: PlanSlug, excusal_id: ExcusalId, writes: AdminWritesDep) -> ExcusalOut:
    """撤销免报(记录保留)/ Revoke an excusal (kept, with revoked_at)."""

    def work(session: Session, admin: Principal) -> ExcusalOut:
        row = plan_service.get_plan(session=session, slug=plan)
        excusal = excusals.revoke(
            session=session, plan=row, excusal_id=excusal_id, principal=admin, remote_addr=client_address(request)
        )
        session.flush()
        return excusals.present(session=session, plan=row, excusals=[excusal])[0]

    return writes.run(work)


@router.get("/plans/{plan}/excusals", response_model=Page[ExcusalOut])
def list_excusals(
    request: Request,
    plan: PlanSlug,
    session: SessionDep,
    page: ListParamsDep,
    admin_reading: AdminReadingDep,
    period: Annotated[str | None, Query(description="按报告期过滤 / filter by period", examples=["2023-Q4"])] = None,
) -> Response:
    """方案的免报记录(含已撤销),最新在前 / The plan's excusals, revoked ones too, newest first."""
    row = plan_service.get_plan(session=session, slug=plan)
    items = excusals.present(
        session=session,
        plan=row,
        excusals=excusals.list_excusals(session=session, plan=row, period=period),
        public=not admin_reading,
    )
    return send(request, render_slice(ExcusalOut, page_in_memory(items, page)))
