"""Progress reports: submit (single, batch), read the history of a task, a unit or a whole plan."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from sqlmodel import Session

from app.api.deps import (
    ReadingKeyDep,
    SessionDep,
    SettingsDep,
    WriterWritesDep,
    client_address,
)
from app.api.lists import CountParam
from app.api.openapi import WRITE_RESPONSES
from app.api.params import COUNTER_PATTERN, IsoDate, UnitJurisdictionParam, parse_counter
from app.api.paths import PlanSlug, ReportId, TaskCode, UnitRefPath
from app.api.responses import json_response
from app.errors import NotFound, Problem
from app.models import ProgressReport, ReportKind, ReviewState
from app.schemas.common import IdempotencyKeyValue, Page
from app.schemas.progress import BatchIn, BatchOut, BatchProblem, ProgressCreate, ProgressOut
from app.services import batches, preconditions, submission
from app.services import plans as plan_service
from app.services import progress as progress_service
from app.services import tasks as task_service
from app.services import units as unit_service
from app.services.cycle import end_of_day
from app.services.keys import Principal

router = APIRouter(responses=WRITE_RESPONSES, tags=["progress"])

IdempotencyKey = Annotated[
    IdempotencyKeyValue | None,
    Header(
        description="重试安全:同一密钥下相同的键和请求体返回最初的结果,不会重复创建;1–200 个可见字符"
        " / retry-safe key, remembered per API key; 1-200 visible characters",
    ),
]
IfMatch = Annotated[
    str | None,
    Header(
        min_length=1,
        description="任务当前的 ETag(取自 GET 任务详情);不一致返回 412 / the task's ETag, for optimistic concurrency",
    ),
]


@router.post(
    "/plans/{plan}/tasks/{code}/progress",
    status_code=201,
    response_description="已创建;重放时带 Idempotent-Replayed: true 头 / created (or replayed, flagged by header)",
    response_model=ProgressOut,
    responses={412: {"model": Problem, "description": "If-Match 与任务当前 ETag 不一致 / stale ETag"}},
)
def submit_progress(
    request: Request,
    plan: PlanSlug,
    code: TaskCode,
    data: ProgressCreate,
    writes: WriterWritesDep,  # the key checked first (audited, throttled), again inside the write
    idempotency_key: IdempotencyKey = None,
    if_match: IfMatch = None,
) -> Response:
    """报送一条进展 / Submit a progress report for a task.

    牵头、责任单位(直接或经所属组)的报告决定任务状态;配合单位的报告作为配合情况记入历史;依法治县办的管理密钥可对任何任务作更正。
    Lead/responsible units' reports set the task's status; cooperating units' are contributions; admin keys correct.
    """
    remote_addr = client_address(request)

    def work(session: Session, principal: Principal) -> submission.Outcome:
        # Authorized and validated on its own, whoever it shares a transaction with.
        row = plan_service.plan_to_read(session=session, slug=plan)
        unchanged = preconditions.task_unchanged(session=session, if_match=if_match) if if_match is not None else None
        [outcome] = submission.submit(
            session=session,
            plan=row,
            principal=principal,
            submissions=[submission.Submission(index=0, code=code, data=data, idempotency_key=idempotency_key)],
            remote_addr=remote_addr,
            precondition=unchanged,
        )
        if outcome.problem is not None:
            raise outcome.problem
        return outcome

    outcome = writes.run(work)  # returns once the report is committed
    assert outcome.report is not None and outcome.body is not None
    headers = {"Location": f"/api/v1/progress/{outcome.report.id}"}
    if outcome.replayed:
        headers["Idempotent-Replayed"] = "true"
    # A replay answers exactly as the original did (201, the same bytes), flagged so a script can tell.
    return Response(outcome.body, status_code=201, headers=headers, media_type="application/json")


@router.post("/plans/{plan}/progress:batch", response_model=BatchOut, responses={422: {"model": BatchProblem}})
def submit_batch(
    request: Request,
    plan: PlanSlug,
    body: BatchIn,
    writes: WriterWritesDep,  # the key checked first (audited, throttled), again inside the write
    atomic: Annotated[bool, Query(description="全部成功才写入,否则整批不写 / all-or-nothing")] = False,
    dry_run: Annotated[
        bool,
        Query(
            description="仅校验:逐条执行全部检查(内容、权限、报告期与报送周期、幂等键),答复每条将会如何"
            "(would_create / would_replay / error),不写入任何数据 / validate only: every check, nothing written"
        ),
    ] = False,
) -> Response:
    """批量报送(最多 500 条),逐条答复 / Submit up to 500 reports; answered per item.

    每条可带 `idempotency_key`,重试整批时已成功的条目会重放而非重复。`atomic=true` 时任一条失败则整批不写入(返回 422)。
    `dry_run=true` 时只校验、不写入,答复同样逐条(失败时仍为 200)/ with dry_run=true nothing is written.
    """
    remote_addr = client_address(request)
    items = batches.parse_items(body.items)  # outside the write: parsing needs no lock

    def work(session: Session, principal: Principal) -> BatchOut:
        # One piece of work in a group commit: its items share its savepoint, so an atomic batch that
        # fails, or a dry run, takes back all of its own writes and nobody else's.
        row = plan_service.plan_to_read(session=session, slug=plan)
        return batches.submit_batch(
            session=session,
            plan=row,
            principal=principal,
            items=items,
            remote_addr=remote_addr,
            atomic=atomic,
            dry_run=dry_run,
        )

    out_body = writes.run(work)  # returns once the batch is committed (or, for a dry run, undone)
    return JSONResponse(out_body.model_dump(mode="json"), status_code=200)


HistoryLimit = Annotated[int, Query(ge=1, le=500, description="每页条数 / page size")]
HistoryCursor = Annotated[
    str | None,
    Query(
        description="上一页的 next_cursor / previous page's next_cursor",
        json_schema_extra={"pattern": COUNTER_PATTERN},
    ),
]
PeriodFilter = Annotated[str | None, Query(description="按报告期过滤 / filter by period", examples=["2022-H2"])]
KindFilter = Annotated[ReportKind | None, Query(description="status / contribution / correction")]
ReviewFilter = Annotated[
    ReviewState | None,
    Query(description="审核状态:pending 待审核 / accepted 已通过 / returned 已退回 / not_required 无需审核"),
]


def history_page(
    session: Session,
    request: Request,
    flt: progress_service.ReportFilter,
    *,
    limit: int,
    cursor: str | None,
    count: bool,
    reader: Principal | None,
) -> Response:
    """One page of reports, newest first. Key metadata is shown to an admin reader, and to a key
    about its own reports; everyone else reads the public form."""
    before_id = parse_counter(cursor, "cursor") if cursor is not None else None
    reports = progress_service.list_reports(session=session, flt=flt, before_id=before_id, limit=limit + 1)
    next_cursor = str(reports[limit - 1].id) if len(reports) > limit else None
    items = progress_service.present_reports(
        session=session,
        reports=reports[:limit],
        public=not (reader and reader.is_admin),
        own_key_id=reader.key.id if reader else None,
    )
    total = progress_service.count_reports(session=session, flt=flt) if count else None
    body = Page[ProgressOut](items=items, next_cursor=next_cursor, total=total)
    return json_response(request, body, exclude=None if count else {"total"})


@router.get("/plans/{plan}/tasks/{code}/progress", response_model=Page[ProgressOut])
def task_history(
    request: Request,
    plan: PlanSlug,
    code: TaskCode,
    session: SessionDep,
    reader: ReadingKeyDep,
    unit: Annotated[str | None, Query(description="报送单位 id、名称或别名 / reporting unit")] = None,
    period: PeriodFilter = None,
    kind: KindFilter = None,
    review: ReviewFilter = None,
    limit: HistoryLimit = 50,
    cursor: HistoryCursor = None,
    count: CountParam = False,
) -> Response:
    """任务的进展历史,最新在前 / A task's report history, newest first."""
    row = plan_service.get_plan(session=session, slug=plan)
    task = task_service.find_task(session=session, plan=row, code=code)
    within = unit_service.plan_scope(session=session, plan=row)
    unit_id = (
        unit_service.resolve_unit_param(session=session, param="unit", ref=unit, within=within).unit.id
        if unit
        else None
    )
    flt = progress_service.ReportFilter(task_id=task.id, unit_id=unit_id, period=period, kind=kind, review=review)
    return history_page(session, request, flt, limit=limit, cursor=cursor, count=count, reader=reader)


@router.get("/plans/{plan}/progress", response_model=Page[ProgressOut])
def plan_history(
    request: Request,
    plan: PlanSlug,
    session: SessionDep,
    settings: SettingsDep,
    reader: ReadingKeyDep,
    unit: Annotated[str | None, Query(description="报送单位 id、名称或别名(组:其成员)/ reporting unit")] = None,
    period: PeriodFilter = None,
    kind: KindFilter = None,
    review: ReviewFilter = None,
    since: Annotated[IsoDate | None, Query(description="报送日期不早于(县的日历日)/ sent on or after")] = None,
    until: Annotated[IsoDate | None, Query(description="报送日期不晚于(县的日历日)/ sent on or before")] = None,
    limit: HistoryLimit = 50,
    cursor: HistoryCursor = None,
    count: CountParam = False,
) -> Response:
    """计划内全部报告,最新在前 / Every report of the plan, newest first (the dashboard's recent reports)."""
    row = plan_service.get_plan(session=session, slug=plan)
    unit_ids = None
    if unit:
        within = unit_service.plan_scope(session=session, plan=row)
        found = unit_service.resolve_unit_param(session=session, param="unit", ref=unit, within=within).unit
        unit_ids = progress_service.reporting_units(session=session, unit=found)
    flt = progress_service.ReportFilter(
        plan_id=row.id,
        unit_ids=unit_ids,
        period=period,
        kind=kind,
        review=review,
        until=end_of_day(until, settings.timezone) if until else None,
        after=end_of_day(since - timedelta(days=1), settings.timezone) if since and since > date.min else None,
    )
    return history_page(session, request, flt, limit=limit, cursor=cursor, count=count, reader=reader)


@router.get("/units/{unit_id}/progress", response_model=Page[ProgressOut])
def unit_history(
    request: Request,
    unit_id: UnitRefPath,
    session: SessionDep,
    reader: ReadingKeyDep,
    period: PeriodFilter = None,
    kind: KindFilter = None,
    review: ReviewFilter = None,
    limit: HistoryLimit = 50,
    cursor: HistoryCursor = None,
    count: CountParam = False,
    jurisdiction: UnitJurisdictionParam = None,
) -> Response:
    """单位自己报送的全部报告,最新在前 / The unit's own reports, newest first.

    `review=returned` 列出被退回、需重新报送的报告 / lists the reports returned in review, to resubmit.
    """
    unit = unit_service.get_unit_in(session=session, ref=unit_id, jurisdiction=jurisdiction)
    flt = progress_service.ReportFilter(unit_id=unit.id, period=period, kind=kind, review=review)
    return history_page(session, request, flt, limit=limit, cursor=cursor, count=count, reader=reader)


@router.get("/progress/{report_id}", response_model=ProgressOut)
def get_report(request: Request, report_id: ReportId, session: SessionDep, reader: ReadingKeyDep) -> Response:
    """一条进展报告 / One report (the Location of a created report)."""
    report = session.get(ProgressReport, report_id)
    if report is None:
        raise NotFound(f"没有编号为 {report_id} 的进展报告 / no report {report_id}")
    shown = progress_service.present_reports(
        session=session,
        reports=[report],
        public=not (reader and reader.is_admin),
        own_key_id=reader.key.id if reader else None,
    )
    return json_response(request, shown[0])
