"""Review (审核) by the rule-of-law office, and withdrawing a report: acting on stored reports."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from sqlmodel import Session

from app.api.deps import AdminReaderDep, AdminWritesDep, SessionDep, WriterWritesDep, client_address
from app.api.lists import CountParam
from app.api.openapi import WRITE_RESPONSES
from app.api.paths import PlanSlug, ReportId
from app.errors import Problem
from app.models import ProgressReport, ReviewState
from app.routers.progress import HistoryCursor, HistoryLimit, history_page
from app.schemas.common import Page
from app.schemas.cycle import ReviewBatchIn, ReviewBatchOut, ReviewIn, WithdrawIn
from app.schemas.progress import ProgressOut
from app.services import plans as plan_service
from app.services import progress as progress_service
from app.services import review as review_service
from app.services.keys import Principal
from app.services.permissions import authorize_admin

router = APIRouter(responses=WRITE_RESPONSES, tags=["review"])

CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": Problem, "description": "不是现行版本、已撤回或已审核 / not the current head, or decided"}
}


def _present(session: Session, report: ProgressReport) -> ProgressOut:
    return progress_service.present_reports(session=session, reports=[report])[0]


@router.post("/progress/{report_id}/withdraw", response_model=ProgressOut, responses=CONFLICT)
def withdraw_report(request: Request, report_id: ReportId, body: WithdrawIn, writes: WriterWritesDep) -> ProgressOut:
    """撤回一条报告(报送单位或管理密钥)/ Withdraw a report (its own unit, or an admin).

    只能撤回现行版本;撤回后该单位此任务此报告期不再有计入的报告,直至重新报送。
    Only the current head can be withdrawn; nothing counts for that period until the unit reports again.
    """

    def work(session: Session, principal: Principal) -> ProgressOut:
        report = review_service.withdraw(
            session=session,
            report_id=report_id,
            reason=body.reason,
            principal=principal,
            remote_addr=client_address(request),
        )
        session.flush()
        return _present(session, report)

    return writes.run(work)


@router.post("/progress/{report_id}/review", response_model=ProgressOut, responses=CONFLICT)
def review_report(request: Request, report_id: ReportId, body: ReviewIn, writes: AdminWritesDep) -> ProgressOut:
    """审核一条待审核报告:通过或退回(管理密钥)/ Accept or return a pending report (admin)."""

    def work(session: Session, admin: Principal) -> ProgressOut:
        [outcome] = review_service.decide(
            session=session,
            plan=None,
            decisions=[review_service.Decision(0, report_id, body.decision, body.reason)],
            principal=admin,
            remote_addr=client_address(request),
        )
        if outcome.problem is not None:
            raise outcome.problem
        assert outcome.report is not None
        session.flush()
        return _present(session, outcome.report)

    return writes.run(work)


@router.post("/plans/{plan}/reviews:batch", response_model=ReviewBatchOut)
def review_batch(request: Request, plan: PlanSlug, body: ReviewBatchIn, writes: AdminWritesDep) -> Response:
    """批量审核(最多 500 条),逐条答复 / Decide up to 500 pending reports; answered per item."""
    remote_addr = client_address(request)
    items = review_service.parse_decisions(body.items)  # outside the write: parsing needs no lock

    def work(session: Session, admin: Principal) -> ReviewBatchOut:
        row = plan_service.get_plan(session=session, slug=plan)
        return review_service.decide_batch(
            session=session, plan=row, principal=admin, items=items, remote_addr=remote_addr
        )

    return JSONResponse(writes.run(work).model_dump(mode="json"))


@router.get("/plans/{plan}/reviews", response_model=Page[ProgressOut])
def list_reviews(
    request: Request,
    plan: PlanSlug,
    admin: AdminReaderDep,
    session: SessionDep,
    state: Annotated[
        ReviewState, Query(description="pending 待审核(默认)/ accepted 已通过 / returned 已退回")
    ] = ReviewState.pending,
    limit: HistoryLimit = 50,
    cursor: HistoryCursor = None,
    count: CountParam = False,
) -> Response:
    """审核队列:方案中某审核状态的报告,最新在前(管理密钥)/ The review queue, newest first (admin)."""
    row = plan_service.get_plan(session=session, slug=plan)
    authorize_admin(session=session, principal=admin, plan_id=row.id)
    flt = progress_service.ReportFilter(plan_id=row.id, review=state)
    return history_page(session, request, flt, limit=limit, cursor=cursor, count=count, reader=admin)
