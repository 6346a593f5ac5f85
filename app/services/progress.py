"""Progress reports: the rules a report must meet, how a task's state is derived from them, and
reading the history. Writing them is `app/services/submission.py`.

Derived state is maintained on write: `task_unit_state` holds each owner unit's latest report and
`task.status/progress/updated_at` the overall result, so reads never scan the history.

How a task's overall status is derived (the one rule; `derive_task_state`):
- Each lead/responsible link of the task is an owner *slot*. A slot's state is the latest status
  report from the unit itself or, for a group link (各乡镇), from any of its members.
- No slot reported → `not_started`. Any slot `delayed` → `delayed`. Every slot reported and all
  `completed` → `completed`; all `completed` or `ongoing` (常态化) → `ongoing`. Otherwise, once any
  slot has moved past `not_started` → `in_progress`.
- `progress` is the mean of the slots' percents, a slot that has not reported counting 0.
- An admin correction sets status and progress directly; the next owner report derives them anew.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlmodel import Session, col, select

from app.errors import FieldError, ProblemError
from app.models import (
    ApiKey,
    Plan,
    ProgressReport,
    ReportKind,
    Task,
    TaskStatus,
    TaskUnitState,
    Unit,
)
from app.schemas.progress import ProgressCreate, ProgressOut
from app.schemas.unit import UnitRef


class ReportRejected(ProblemError):
    status = 422
    code = "validation-error"
    title = "Validation Error"


@dataclass(frozen=True)
class SlotState:
    status: TaskStatus
    percent: int


def derive_task_state(slots: list[int], latest: dict[int, SlotState]) -> tuple[TaskStatus, int]:
    """`slots` are the owner links' unit ids; `latest` maps a slot to its newest report's state."""
    reported = [latest[s] for s in slots if s in latest]
    progress = round(sum(s.percent for s in reported) / len(slots)) if slots else 0
    statuses = {s.status for s in reported}
    if not reported:
        return TaskStatus.not_started, 0
    if TaskStatus.delayed in statuses:
        return TaskStatus.delayed, progress
    if len(reported) == len(slots) and statuses == {TaskStatus.completed}:
        return TaskStatus.completed, 100
    if len(reported) == len(slots) and statuses <= {TaskStatus.completed, TaskStatus.ongoing}:
        return TaskStatus.ongoing, progress
    if statuses == {TaskStatus.not_started}:
        return TaskStatus.not_started, 0
    return TaskStatus.in_progress, progress


def check_period(plan: Plan, data: ProgressCreate) -> None:
    # Reports run through the plan's period, plus the year after for the final evaluation.
    year = data.period_year()
    if not plan.period_start <= year <= plan.period_end + 1:
        raise ReportRejected(
            f"报告期 {data.period} 不在方案实施期 {plan.period_start}–{plan.period_end}(及次年终期评估)内 / "
            "period outside the plan",
            errors=[
                FieldError(
                    field="body.period",
                    message=f"应在 {plan.period_start} 至 {plan.period_end + 1} 年之间",
                    type="period_out_of_range",
                )
            ],
        )


def slot_states(session: Session, task_ids: list[int]) -> dict[int, dict[int, SlotState]]:
    """Per task, each owner slot's latest state (the newest report through that slot wins)."""
    latest: dict[int, dict[int, SlotState]] = {}
    # Plain columns, not entities: states loaded earlier in this session would come back from the
    # identity map as they were then, hiding a report another writer committed meanwhile.
    rows = session.exec(
        select(TaskUnitState.task_id, TaskUnitState.via_unit_id, TaskUnitState.status, TaskUnitState.percent)
        .where(col(TaskUnitState.task_id).in_(task_ids))
        .order_by(col(TaskUnitState.report_id))
    )
    for task_id, via_unit_id, status, percent in rows:
        latest.setdefault(task_id, {})[via_unit_id] = SlotState(TaskStatus(status), percent)
    return latest


def list_reports(
    *,
    session: Session,
    task_id: int | None = None,
    unit_id: int | None = None,
    period: str | None = None,
    kind: ReportKind | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[ProgressReport]:
    """Newest first; `before_id` is the keyset cursor."""
    query = select(ProgressReport)
    if task_id is not None:
        query = query.where(ProgressReport.task_id == task_id)
    if unit_id is not None:
        query = query.where(ProgressReport.unit_id == unit_id)
    if period is not None:
        query = query.where(ProgressReport.period == period)
    if kind is not None:
        query = query.where(ProgressReport.kind == kind)
    if before_id is not None:
        query = query.where(col(ProgressReport.id) < before_id)
    return list(session.exec(query.order_by(col(ProgressReport.id).desc()).limit(limit)))


def present_reports(*, session: Session, reports: list[ProgressReport]) -> list[ProgressOut]:
    """Reports with their plan, task, units and key, loaded in a fixed number of queries."""
    if not reports:
        return []
    tasks = {
        t.id: (t, slug)
        for t, slug in session.exec(
            select(Task, Plan.slug)
            .join(Plan, col(Plan.id) == col(Task.plan_id))
            .where(col(Task.id).in_({r.task_id for r in reports}))
        )
    }
    unit_ids = {u for r in reports for u in (r.unit_id, r.via_unit_id) if u is not None}
    units = {u.id: u for u in session.exec(select(Unit).where(col(Unit.id).in_(unit_ids)))}
    keys = {k.id: k for k in session.exec(select(ApiKey).where(col(ApiKey.id).in_({r.api_key_id for r in reports})))}
    out = []
    for r in reports:
        task, slug = tasks[r.task_id]
        unit = units.get(r.unit_id) if r.unit_id is not None else None
        via = units.get(r.via_unit_id) if r.via_unit_id is not None else None
        out.append(report_out(r, plan_slug=slug, task_code=task.code, unit=unit, via=via, key=keys[r.api_key_id]))
    return out


def report_out(
    report: ProgressReport, *, plan_slug: str, task_code: str, unit: Unit | None, via: Unit | None, key: ApiKey
) -> ProgressOut:
    assert report.id is not None
    return ProgressOut(
        id=report.id,
        plan=plan_slug,
        task=task_code,
        kind=report.kind,
        unit=UnitRef.from_unit(unit) if unit else None,
        via=UnitRef.from_unit(via) if via else None,
        submitted_by=f"{unit.name if unit else key.name} ({key.prefix})",
        status=TaskStatus(report.status),
        percent=report.percent,
        summary=report.summary,
        period=report.period,
        evidence=json.loads(report.evidence),
        created_at=report.created_at,
    )
