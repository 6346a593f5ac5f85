"""A task's picture as of a date: status, progress, owner states, light and reasons.

For today the maintained columns (`task.status/progress`, `task_unit_state`) are used as they are
(the fast path); for a past date they are reconstructed with `cycle.task_state` from the reports that
existed at the end of that local day. Both must agree (tested): the write side maintains the columns
with the same rule.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from app.core.config import Settings
from app.models import ReviewState, TaskStatus, TaskUnitState
from app.services.cycle import ReportFacts, current_heads, local_date, task_state, unit_states
from app.services.duties import DutyState, compute_duties, latest_closed_period
from app.services.lights import Light, LightReason, LightThresholds, MissingDuty, ReturnedReport, evaluate
from app.services.supervision_facts import SupervisionFacts


@dataclass(frozen=True)
class OwnerState:
    unit_id: int
    via_unit_id: int
    status: TaskStatus
    percent: int
    period: str
    report_id: int
    updated_at: datetime


@dataclass
class TaskPicture:
    status: TaskStatus
    progress: int
    states: list[OwnerState] | None  # None: the maintained task_unit_state rows apply (fast path)
    light: Light = Light.green
    reasons: list[LightReason] = field(default_factory=list)


def thresholds(settings: Settings) -> LightThresholds:
    return LightThresholds(
        missing_days=settings.light_missing_days,
        due_soon_days=settings.light_due_soon_days,
        lag_tolerance=settings.light_lag_tolerance,
    )


def current_owner_states(*, session: Session, task_ids: list[int]) -> dict[int, list[tuple[int, TaskStatus]]]:
    """Today's maintained (unit, status) per task, for the fast path."""
    out: dict[int, list[tuple[int, TaskStatus]]] = defaultdict(list)
    for task_id, unit_id, status in session.execute(
        sa_select(col(TaskUnitState.task_id), col(TaskUnitState.unit_id), col(TaskUnitState.status))
        .where(col(TaskUnitState.task_id).in_(task_ids))
        .order_by(col(TaskUnitState.task_id), col(TaskUnitState.unit_id))
    ):
        out[task_id].append((unit_id, TaskStatus(status)))
    return out


def _reconstructed(facts: SupervisionFacts, task_id: int) -> TaskPicture:
    reports = facts.reports.get(task_id, [])
    state = task_state(owner_slots=facts.owner_slots(task_id), reports=reports, at=facts.cutoff)
    owners = unit_states(reports, facts.cutoff)
    states = [
        OwnerState(unit_id, r.via_unit_id or unit_id, r.status, r.percent, r.period, r.id, r.counting_since())
        for (_, unit_id), r in sorted(owners.items())
    ]
    if state is None:
        return TaskPicture(TaskStatus.not_started, 0, states)
    return TaskPicture(state[0], state[1], states)


def unit_name(facts: SupervisionFacts, unit_id: int) -> str:
    return facts.unit(unit_id)[0]


def pictures(
    facts: SupervisionFacts,
    *,
    as_of: date,
    settings: Settings,
    current: dict[int, list[tuple[int, TaskStatus]]] | None = None,
) -> dict[int, TaskPicture]:
    """Every loaded task's picture as of `as_of`. With `current` (today's maintained owner states,
    given only when `as_of` is today or later) status and progress are the maintained columns."""
    tz = settings.timezone
    fast = current is not None
    out: dict[int, TaskPicture] = {}
    delayed: dict[int, list[int]] = {}
    for task in facts.tasks.values():
        if fast:
            assert current is not None
            picture = TaskPicture(task.status, task.progress, None)
            delayed[task.id] = [u for u, s in current.get(task.id, []) if s == TaskStatus.delayed]
        else:
            picture = _reconstructed(facts, task.id)
            delayed[task.id] = [s.unit_id for s in picture.states or [] if s.status == TaskStatus.delayed]
        out[task.id] = picture
    closed = {p.label for plan_id in facts.plans if (p := latest_closed_period(facts, plan_id, as_of)) is not None}
    missing: dict[int, list[MissingDuty]] = defaultdict(list)
    if closed:
        for duty in compute_duties(facts, as_of=as_of, tz=tz, periods=closed):
            if duty.state == DutyState.missing:
                missing[duty.task_id].append(
                    MissingDuty(unit_name(facts, duty.unit_id), duty.period.label, duty.deadline)
                )
    returned = _returned(facts, tz)
    limits = thresholds(settings)
    for task_id, picture in out.items():
        task = facts.tasks[task_id]
        picture.light, picture.reasons = evaluate(
            due=task.due,
            status=picture.status,
            progress=picture.progress,
            as_of=as_of,
            term_start=facts.plans[task.plan_id].starts,
            delayed_units=[unit_name(facts, u) for u in delayed[task_id]],
            missing=missing.get(task_id, []),
            returned=returned.get(task_id, []),
            thresholds=limits,
        )
    return out


def _returned(facts: SupervisionFacts, tz: str) -> dict[int, list[ReturnedReport]]:
    at = facts.cutoff
    out: dict[int, list[ReturnedReport]] = defaultdict(list)
    all_reports: list[ReportFacts] = [r for rs in facts.reports.values() for r in rs]
    for (task_id, unit_id, period), head in sorted(current_heads(all_reports, at).items(), key=lambda kv: kv[1].id):
        if unit_id is None or head.review_state != ReviewState.returned:
            continue
        if head.reviewed_at is None or head.reviewed_at > at:
            continue
        if head.withdrawn_at is not None and head.withdrawn_at <= at:
            continue
        out[task_id].append(
            ReturnedReport(unit_name(facts, unit_id), period, head.id, local_date(head.reviewed_at, tz))
        )
    return out
