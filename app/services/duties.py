"""Duties: who owes which report for which period, and its state as of a date (rules: `app/services/cycle.py`).

For each period of the plan's calendar (its schedule's cadence, within the plan's term) that has begun
by `as_of`, every owner of each task owes one report on exactly that period:
- lead and responsible units; a group link (各乡镇) stands for each of its members;
- cooperating units too when `schedule.cooperating_units_report` (their reports are contributions);
- a unit linked twice (directly and through a group, or in two roles) owes once, in its first role
  (lead, then responsible, then cooperating);
- no duty for a period if the task was `completed` at the end of the day before the period began
  (`cycle.task_state` then); `ongoing` (常态化) tasks keep owing.

State, as of the end of the `as_of` local day (`cycle.end_of_day`):
- `submitted` / `late`: a version of the (task, unit, period) counts (`cycle.counting_versions`:
  the head not withdrawn, the newest version accepted when review is on) and the duty was *met* on
  or before / after the deadline, compared in local days. It was met at the sending time of the
  unit's oldest version on that task and period that was neither returned nor withdrawn: a
  correction keeps its predecessor's time; a returned report's resubmission has its own time;
- `excused`: no counting report, and a non-revoked excusal existed at the cutoff;
- `missing`: no counting report and the deadline (inclusive) has passed before `as_of`;
- `due`: no counting report and the deadline is `as_of` or later (a report waiting for review
  leaves its duty `due` or `missing` until accepted, unless an accepted earlier version stands).

Compliance of a unit: owed = all its duties listed; `rate` = on_time / (owed − excused − due) — the
share of the duties that can be judged (deadline passed, not waived) that were met on time; null when
none can be judged. `reported_rate` also counts late reports as reported.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from enum import StrEnum

from sqlalchemy import and_, or_, text
from sqlmodel import Session, col, select

from app.core.config import Settings
from app.errors import InvalidParameter
from app.models import (
    GroupMember,
    Plan,
    ProgressReport,
    ReportKind,
    Responsibility,
    ReviewState,
    Role,
    Task,
    TaskStatus,
    Unit,
    UnitKind,
)
from app.models.progress import COMPLETED, RETURNED
from app.services.cycle import ReportFacts, counting_versions, end_of_day, local_date, task_state
from app.services.derivation import load_reports
from app.services.periods import Period, PeriodError, calendar, label_for, parse_period
from app.services.schedule import CADENCE_ZH
from app.services.supervision_facts import ExcusalFacts, SupervisionFacts, load_facts


class DutyState(StrEnum):
    submitted = "submitted"  # 已按时报送
    late = "late"  # 逾期报送
    missing = "missing"  # 未报送
    due = "due"  # 待报送
    excused = "excused"  # 已免报


STATE_LABELS = {
    DutyState.submitted: "已按时报送",
    DutyState.late: "逾期报送",
    DutyState.missing: "未报送",
    DutyState.due: "待报送",
    DutyState.excused: "已免报",
}
ROLE_ORDER = {Role.lead: 0, Role.responsible: 1, Role.cooperating: 2}


@dataclass(frozen=True)
class Duty:
    plan_id: int
    task_id: int
    unit_id: int
    role: Role
    via_unit_id: int  # the link it owes through: the unit itself, or its group
    period: Period
    deadline: date
    state: DutyState
    report_id: int | None = None  # the counting report (submitted/late)
    sent_at: datetime | None = None
    excusal: ExcusalFacts | None = None

    def sort_key(self, position: int) -> tuple[object, ...]:
        return (self.period.start, self.period.end, self.plan_id, position, ROLE_ORDER[self.role], self.unit_id)


def plan_calendar(facts: SupervisionFacts, plan_id: int) -> list[Period]:
    plan = facts.plans[plan_id]
    schedule = facts.schedules[plan_id]
    return calendar(first_year=plan.period_start, last_year=plan.period_end, cadence=schedule.cadence)


def owed_by(facts: SupervisionFacts, task_id: int) -> list[tuple[int, Role, int]]:
    """(unit, role, via link) of every unit owing reports on the task, each unit once."""
    plan_id = facts.tasks[task_id].plan_id
    cooperating = facts.schedules[plan_id].cooperating_units_report
    seen: dict[int, tuple[int, Role, int]] = {}
    links = sorted(facts.links.get(task_id, []), key=lambda link: ROLE_ORDER[link[1]])
    for linked, role in links:
        if role == Role.cooperating and not cooperating:
            continue
        kind = facts.unit(linked).kind
        for unit_id in facts.members.get(linked, []) if kind == UnitKind.group else [linked]:
            seen.setdefault(unit_id, (unit_id, role, linked))
    return list(seen.values())


def _discarded(report: ReportFacts, at: datetime) -> bool:
    """A version returned or withdrawn by `at`: its sending time never meets a duty."""
    if report.withdrawn_at is not None and report.withdrawn_at <= at:
        return True
    return report.review_state == ReviewState.returned and report.reviewed_at is not None and report.reviewed_at <= at


def sent_at(versions: list[ReportFacts], at: datetime) -> tuple[ReportFacts, datetime] | None:
    """The counting version of one (task, unit, period) at `at` (`cycle.counting_versions`) and the
    time the duty was met: the oldest sending time among its versions neither returned nor withdrawn."""
    existing = [v for v in versions if v.created_at <= at]
    counting = counting_versions(existing, at)
    if not counting:
        return None
    (version,) = counting.values()
    since = min(v.created_at for v in existing if not _discarded(v, at))
    return version, since


def completed_before(facts: SupervisionFacts, task_id: int, period: Period, tz: str) -> bool:
    """Was the task `completed` at the end of the day before the period began?"""
    at = end_of_day(period.start - timedelta(days=1), tz)
    state = task_state(owner_slots=facts.owner_slots(task_id), reports=facts.reports.get(task_id, []), at=at)
    return state is not None and state[0] == TaskStatus.completed


def compute_duties(
    facts: SupervisionFacts,
    *,
    as_of: date,
    tz: str,
    periods: set[str] | None = None,
    task_ids: set[int] | None = None,
    unit_ids: set[int] | None = None,
) -> list[Duty]:
    """Every duty of the loaded tasks for the periods begun by `as_of` (or only `periods`), in order:
    period, plan, task, role, unit. `facts` must be loaded with the cutoff of `as_of`."""
    at = facts.cutoff
    versions: dict[tuple[int, int, str], list[ReportFacts]] = defaultdict(list)
    for task_reports in facts.reports.values():
        for report in task_reports:
            if report.unit_id is not None and report.kind != ReportKind.correction:
                versions[(report.task_id, report.unit_id, report.period)].append(report)
    excused: dict[tuple[int, int, str], ExcusalFacts] = {}
    for excusal in facts.excusals:
        if excusal.active(at):
            excused.setdefault((excusal.task_id, excusal.unit_id, excusal.period), excusal)
    calendars = {plan_id: plan_calendar(facts, plan_id) for plan_id in facts.plans}
    out: list[tuple[tuple[object, ...], Duty]] = []
    for task in facts.tasks.values():
        if task_ids is not None and task.id not in task_ids:
            continue
        owers = [o for o in owed_by(facts, task.id) if unit_ids is None or o[0] in unit_ids]
        if not owers:
            continue
        schedule = facts.schedules[task.plan_id]
        for period in calendars[task.plan_id]:
            if period.start > as_of or (periods is not None and period.label not in periods):
                continue
            if completed_before(facts, task.id, period, tz):
                continue
            deadline = period.deadline(schedule.deadline_days)
            for unit_id, role, via in owers:
                key = (task.id, unit_id, period.label)
                met = sent_at(versions.get(key, []), at)
                base = Duty(task.plan_id, task.id, unit_id, role, via, period, deadline, DutyState.due)
                if met is not None:
                    head, since = met
                    state = DutyState.submitted if local_date(since, tz) <= deadline else DutyState.late
                    duty = replace(base, state=state, report_id=head.id, sent_at=since)
                elif key in excused:
                    duty = replace(base, state=DutyState.excused, excusal=excused[key])
                elif deadline < as_of:
                    duty = replace(base, state=DutyState.missing)
                else:
                    duty = base
                out.append((duty.sort_key(task.position), duty))
    out.sort(key=lambda pair: pair[0])
    return [duty for _, duty in out]


@dataclass
class Compliance:
    unit_id: int
    owed: int = 0
    on_time: int = 0
    late: int = 0
    missing: int = 0
    due: int = 0
    excused: int = 0

    def add(self, state: DutyState) -> None:
        self.owed += 1
        if state == DutyState.submitted:
            self.on_time += 1
        else:
            setattr(self, state.value, getattr(self, state.value) + 1)

    @property
    def judgeable(self) -> int:
        return self.owed - self.excused - self.due

    @property
    def rate(self) -> float | None:
        return round(self.on_time / self.judgeable, 4) if self.judgeable else None

    @property
    def reported_rate(self) -> float | None:
        return round((self.on_time + self.late) / self.judgeable, 4) if self.judgeable else None


def compliance(duties: list[Duty]) -> tuple[dict[int, Compliance], Compliance]:
    """Per unit, and plan-wide (unit_id 0)."""
    per_unit: dict[int, Compliance] = {}
    total = Compliance(unit_id=0)
    for duty in duties:
        per_unit.setdefault(duty.unit_id, Compliance(unit_id=duty.unit_id)).add(duty.state)
        total.add(duty.state)
    return per_unit, total


def latest_closed_period(facts: SupervisionFacts, plan_id: int, as_of: date) -> Period | None:
    """The most recent period of the plan's calendar whose deadline has passed before `as_of`."""
    deadline_days = facts.schedules[plan_id].deadline_days
    closed = [p for p in plan_calendar(facts, plan_id) if p.deadline(deadline_days) < as_of]
    return closed[-1] if closed else None


# --- Loading (the only part that queries) --------------------------------------------------------


def load_facts_for_today(
    *, session: Session, cutoff: datetime, plan_ids: set[int], task_ids: set[int] | None, as_of: date, tz: str
) -> SupervisionFacts:
    """The facts today's lights need, without reading each task's whole history (which a unit
    re-sending one period a thousand times would make long). Each report group loaded — a
    (task, unit, period) with all its versions — is loaded whole, so the rules see it as it is:
    - the latest closed period's groups (its duties: `duty_missing`);
    - every group holding a returned report (`returned_unresolved`);
    - for "completed before the period began", the reports up to then of the few tasks with a
      `completed` report by that moment (no other task can have been completed).
    Today's status and owner states come from the maintained columns, not from reports."""
    facts = load_facts(session=session, cutoff=cutoff, plan_ids=plan_ids, task_ids=task_ids, with_reports=False)
    ids = list(facts.tasks)
    loaded: dict[int, ReportFacts] = {}

    def add(found: dict[int, list[ReportFacts]]) -> None:
        loaded.update((r.id, r) for reports in found.values() for r in reports)

    closed = [p for plan_id in facts.plans if (p := latest_closed_period(facts, plan_id, as_of)) is not None]
    if ids and closed:
        add(load_reports(session, ids, cutoff=cutoff, where=col(ProgressReport.period).in_({p.label for p in closed})))
        began = max(end_of_day(p.start - timedelta(days=1), tz) for p in closed)
        completed = session.exec(
            select(ProgressReport.task_id)
            .where(
                col(ProgressReport.task_id).in_(ids),
                text(COMPLETED),
                col(ProgressReport.created_at) <= began,
            )
            .distinct()
        )
        if candidates := set(completed):
            add(load_reports(session, candidates, cutoff=began))
    if ids:
        # Spelled as the partial index's own predicate, so both engines answer from that index.
        returned = session.exec(
            select(ProgressReport.task_id, ProgressReport.unit_id, ProgressReport.period)
            .where(col(ProgressReport.task_id).in_(ids), text(RETURNED))
            .distinct()
        ).all()
        if returned:
            groups = [
                and_(col(ProgressReport.unit_id) == unit_id, col(ProgressReport.period) == period)
                for _, unit_id, period in returned
            ]
            add(load_reports(session, {task_id for task_id, _, _ in returned}, cutoff=cutoff, where=or_(*groups)))
    by_task: dict[int, list[ReportFacts]] = defaultdict(list)
    for report in sorted(loaded.values(), key=lambda r: r.id):
        by_task[report.task_id].append(report)
    facts.reports = dict(by_task)
    return facts


def plan_duties(
    *,
    session: Session,
    plan: Plan,
    as_of: date,
    settings: Settings,
    period: str | None = None,
    task_ids: set[int] | None = None,
    unit_ids: set[int] | None = None,
) -> tuple[SupervisionFacts, list[Duty]]:
    """A plan's duties as of `as_of`; `period` must be one of its calendar's periods (else 400)."""
    assert plan.id is not None
    facts = load_facts(
        session=session, cutoff=end_of_day(as_of, settings.timezone), plan_ids={plan.id}, task_ids=task_ids
    )
    if period is not None:
        check_period_param(facts, plan.id, period)
    found = compute_duties(
        facts,
        as_of=as_of,
        tz=settings.timezone,
        periods={period} if period is not None else None,
        unit_ids=unit_ids,
    )
    return facts, found


def check_period_param(facts: SupervisionFacts, plan_id: int, period: str) -> Period:
    try:
        parsed = parse_period(period)
    except PeriodError as exc:
        raise InvalidParameter("period", str(exc)) from None
    labels = {p.label for p in plan_calendar(facts, plan_id)}
    if parsed.label not in labels:
        schedule = facts.schedules[plan_id]
        plan = facts.plans[plan_id]
        if plan.period_start is None:
            raise InvalidParameter(
                "period", f"{period}:本方案实施期限未定,没有报告期 / the plan's term is open: it has no periods"
            )
        example = label_for(plan.period_start, 1, schedule.cadence)
        raise InvalidParameter(
            "period",
            f"{period} 不是本方案报送周期({CADENCE_ZH[schedule.cadence]})中的报告期;"
            f"应在 {plan.period_start}–{plan.period_end} 年内,形如 {example}"
            f" / not a period of this plan's {schedule.cadence.value} calendar",
        )
    return parsed


def unit_duties(
    *, session: Session, unit: Unit, as_of: date, settings: Settings, period: str | None, plan: Plan | None
) -> tuple[SupervisionFacts, list[Duty]]:
    """What one unit owes across plans (directly or through its groups), every state. A group owes
    nothing itself: for a group (各乡镇) this is what its members owe."""
    assert unit.id is not None
    if unit.kind == UnitKind.group:
        owers = set(session.exec(select(GroupMember.member_id).where(GroupMember.group_id == unit.id)))
    else:
        owers = {unit.id}
    groups = session.exec(select(GroupMember.group_id).where(col(GroupMember.member_id).in_(owers)))
    scope = [unit.id, *owers, *groups]
    linked = select(Responsibility.task_id).where(col(Responsibility.unit_id).in_(scope))
    query = select(Task.id, Task.plan_id).where(col(Task.id).in_(linked))
    if plan is not None:
        query = query.where(Task.plan_id == plan.id)
    rows = session.exec(query).all()
    if period is not None:
        try:
            parse_period(period)
        except PeriodError as exc:
            raise InvalidParameter("period", str(exc)) from None
    facts = load_facts(
        session=session,
        cutoff=end_of_day(as_of, settings.timezone),
        plan_ids={plan_id for _, plan_id in rows},
        task_ids={task_id for task_id, _ in rows if task_id is not None},
    )
    found = compute_duties(
        facts,
        as_of=as_of,
        tz=settings.timezone,
        periods={period} if period is not None else None,
        unit_ids=owers,
    )
    return facts, found
