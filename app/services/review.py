"""Acting on a stored report: its unit (or an admin) withdraws it, the office reviews it (审核).

What withdrawal and review mean for which report counts is stated in `app/services/cycle.py`; both
act only on the current head of a report's versions, lock the tasks first (in id order, as the
submission path does), re-derive through `derivation.rederive`, and record their events. Flushes only.

A batch of decisions (`POST /plans/{plan}/reviews:batch`) is answered item by item: each item is
parsed on its own (a bad one is that item's `error`, its field paths pointing into the request body,
`body.items.3.decision`), the rest are decided together, and the answer lists every item in order
and counts them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import ValidationError
from sqlmodel import Session, col, select

from app.errors import Conflict, NotFound, NotYourReport, ProblemError, ReportRejected, field_errors, problem_body
from app.models import Plan, ProgressReport, ReportKind, ReviewState, Task, utcnow
from app.schemas.cycle import ReviewBatchOut, ReviewItem, ReviewResult
from app.services import derivation
from app.services import progress as progress_service
from app.services.feed import record_event
from app.services.keys import Principal
from app.services.permissions import authorize_admin
from app.services.submission import record_status_changes


@dataclass
class Decision:
    index: int
    report_id: int
    decision: Literal["accept", "return"]
    reason: str | None


@dataclass
class DecisionOutcome:
    index: int
    report_id: int
    report: ProgressReport | None = None
    problem: ProblemError | None = None


def _lock(session: Session, report_ids: list[int]) -> tuple[dict[int, ProgressReport], dict[int, Task]]:
    """The reports' tasks locked in id order, then the reports read afresh (another writer may have
    superseded, withdrawn or decided one while we waited)."""
    task_ids = set(session.exec(select(ProgressReport.task_id).where(col(ProgressReport.id).in_(report_ids))).all())
    tasks = {
        t.id: t
        for t in session.exec(select(Task).where(col(Task.id).in_(task_ids)).order_by(col(Task.id)).with_for_update())
        if t.id is not None
    }
    reports = session.exec(
        select(ProgressReport).where(col(ProgressReport.id).in_(report_ids)).execution_options(populate_existing=True)
    )
    return {r.id: r for r in reports if r.id is not None}, tasks


def _not_found(report_id: int) -> NotFound:
    return NotFound(f"没有编号为 {report_id} 的进展报告 / no report {report_id}")


def _not_head(report: ProgressReport, action: str) -> Conflict | None:
    if report.superseded_by_id is not None:
        return Conflict(
            f"报告 {report.id} 已被第 {report.superseded_by_id} 号报告取代,只能{action}现行版本"
            f" / report {report.id} was superseded by {report.superseded_by_id}"
        )
    if report.withdrawn_at is not None:
        return Conflict(
            f"报告 {report.id} 已于 {report.withdrawn_at:%Y-%m-%d %H:%M} (UTC) 撤回 / report {report.id} was withdrawn"
        )
    return None


def withdraw(
    *, session: Session, report_id: int, reason: str, principal: Principal, remote_addr: str | None
) -> ProgressReport:
    """The report's own unit, or an admin, withdraws the current head; nothing counts for that
    (task, unit, period) until the unit reports again."""
    reports, tasks = _lock(session, [report_id])
    report = reports.get(report_id)
    if report is None:
        raise _not_found(report_id)
    task = tasks[report.task_id]
    own = principal.unit is not None and report.unit_id is not None and principal.unit.id == report.unit_id
    if not own:
        if not principal.is_admin:
            raise NotYourReport(
                f"报告 {report_id} 不是{principal.name}报送的,只有报送单位或依法治县办可以撤回 / not your report"
            )
        authorize_admin(session=session, principal=principal, plan_id=task.plan_id)
    problem = _not_head(report, "撤回")
    if problem is not None:
        raise problem
    report.withdrawn_at, report.withdrawn_reason = utcnow(), reason
    session.add(report)
    session.flush()
    plan = session.get(Plan, task.plan_id)
    assert plan is not None
    record_event(
        session=session,
        type="report.withdrawn",
        principal=principal,
        remote_addr=remote_addr,
        plan_id=plan.id,
        task_id=task.id,
        unit_id=report.unit_id,
        report_id=report.id,
        data={"task": task.code, "kind": report.kind, "period": report.period, "reason": reason},
    )
    _rederive(session, plan, principal, remote_addr, [report], report.withdrawn_at)
    return report


def decide(
    *, session: Session, plan: Plan | None, decisions: list[Decision], principal: Principal, remote_addr: str | None
) -> list[DecisionOutcome]:
    """The office accepts or returns pending heads, answered per decision; `plan` None: each report's
    own plan (the single-report endpoint). Only a pending head can be decided (409 otherwise)."""
    outcomes = [DecisionOutcome(index=d.index, report_id=d.report_id) for d in decisions]
    reports, tasks = _lock(session, sorted({d.report_id for d in decisions}))
    plans: dict[int, Plan] = {}
    decided: list[ProgressReport] = []
    now = utcnow()
    for decision, outcome in zip(decisions, outcomes, strict=True):
        try:
            report = reports.get(decision.report_id)
            if report is None or (plan is not None and tasks[report.task_id].plan_id != plan.id):
                raise _not_found(decision.report_id)
            task = tasks[report.task_id]
            authorize_admin(session=session, principal=principal, plan_id=task.plan_id)
            problem = _not_head(report, "审核")
            if problem is not None:
                raise problem
            if report.review_state != ReviewState.pending:
                raise Conflict(
                    f"报告 {report.id} 的审核状态为 {report.review_state},只有待审核(pending)的报告可以审核"
                    f" / report {report.id} is {report.review_state}, not pending"
                )
            accepted = decision.decision == "accept"
            report.review_state = ReviewState.accepted if accepted else ReviewState.returned
            report.reviewed_at, report.review_reason, report.reviewed_by_key_id = now, decision.reason, principal.key.id
            session.add(report)
            outcome.report = report
            decided.append(report)
            found = plan or plans.get(task.plan_id) or session.get(Plan, task.plan_id)
            assert found is not None
            plans[task.plan_id] = found
            record_event(
                session=session,
                type="report.accepted" if accepted else "report.returned",
                principal=principal,
                remote_addr=remote_addr,
                plan_id=found.id,
                task_id=task.id,
                unit_id=report.unit_id,
                report_id=report.id,
                data={"task": task.code, "period": report.period, "reason": decision.reason},
            )
        except ProblemError as exc:
            outcome.problem = exc
    session.flush()
    for plan_id, found in plans.items():
        touched = [r for r in decided if tasks[r.task_id].plan_id == plan_id and r.review_state == ReviewState.accepted]
        _rederive(session, found, principal, remote_addr, touched, now)
    return outcomes


ParsedDecision = Decision | ReviewResult  # a batch item ready to decide, or its `error` answer


def parse_decisions(items: list[dict[str, Any]]) -> list[ParsedDecision]:
    """Every batch item as a decision, or as its `error` with the problem's field paths."""
    parsed: list[ParsedDecision] = []
    for index, raw in enumerate(items):
        try:
            parsed.append(_parse_decision(index, raw))
        except ProblemError as exc:
            report_id = raw.get("report") if isinstance(raw.get("report"), int) else None
            parsed.append(ReviewResult(index=index, report_id=report_id, outcome="error", problem=problem_body(exc)))
    return parsed


def _parse_decision(index: int, raw: dict[str, Any]) -> Decision:
    try:
        item = ReviewItem.model_validate(raw)
    except ValidationError as exc:
        raise ReportRejected(
            f"第 {index} 条审核内容校验未通过 / item {index} is invalid",
            errors=field_errors(exc.errors(), ("body", "items", index)),
        ) from None
    return Decision(index, item.report, item.decision, item.reason)


def decide_batch(
    *, session: Session, plan: Plan, principal: Principal, items: list[ParsedDecision], remote_addr: str | None
) -> ReviewBatchOut:
    """The admin, authorized for the plan, decides the items that parsed; every item is answered, in order."""
    authorize_admin(session=session, principal=principal, plan_id=plan.id)
    decisions = [p for p in items if isinstance(p, Decision)]
    results = {p.index: p for p in items if isinstance(p, ReviewResult)}
    outcomes = (
        decide(session=session, plan=plan, decisions=decisions, principal=principal, remote_addr=remote_addr)
        if decisions
        else []
    )
    session.flush()
    done = [o.report for o in outcomes if o.report is not None]
    presented = {r.id: r for r in progress_service.present_reports(session=session, reports=done)}
    for outcome in outcomes:
        if outcome.problem is not None:
            results[outcome.index] = ReviewResult(
                index=outcome.index, report_id=outcome.report_id, outcome="error", problem=problem_body(outcome.problem)
            )
        else:
            out = presented[outcome.report_id]
            results[outcome.index] = ReviewResult(
                index=outcome.index, report_id=outcome.report_id, outcome=out.review.state, report=out
            )
    ordered = [results[i] for i in sorted(results)]
    return ReviewBatchOut(
        accepted=sum(r.outcome == "accepted" for r in ordered),
        returned=sum(r.outcome == "returned" for r in ordered),
        failed=sum(r.outcome == "error" for r in ordered),
        results=ordered,
    )


def _rederive(
    session: Session,
    plan: Plan,
    principal: Principal,
    remote_addr: str | None,
    reports: list[ProgressReport],
    when: datetime,
) -> None:
    moving = {r.task_id: r for r in reports if r.kind != ReportKind.contribution}
    if not moving:
        return
    tasks = [t for t in session.exec(select(Task).where(col(Task.id).in_(list(moving))))]
    changes, _ = derivation.rederive(session, tasks)
    for change in changes:
        change.task.updated_at = when
        session.add(change.task)
    record_status_changes(
        session=session,
        plan=plan,
        principal=principal,
        remote_addr=remote_addr,
        changes=changes,
        report_ids={task_id: r.id for task_id, r in moving.items()},
    )
