"""What the supervision reads (duties, lights, a task as of a past date) need, loaded for a set of tasks
in a fixed number of queries as plain rows, then judged in Python by pure functions.

Everything is loaded "as of" a cutoff (`cycle.end_of_day(as_of, tz)`): reports and excusals created
after it do not exist yet for the picture being drawn; later reviews, withdrawals and revocations are
judged against the cutoff by the rules themselves (`cycle.counts`).

Group membership and the schedule have no history: a past date is judged with today's members of a
group and the plan's current schedule.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import NamedTuple

from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from app.models import (
    Cadence,
    DutyExcusal,
    GroupMember,
    Jurisdiction,
    Plan,
    ReportingSchedule,
    Responsibility,
    Role,
    Task,
    TaskStatus,
    Unit,
    UnitKind,
)
from app.services.cycle import ReportFacts
from app.services.derivation import load_reports


class UnitFacts(NamedTuple):
    name: str
    kind: UnitKind
    jurisdiction_code: str
    jurisdiction_name: str


UnitName = Callable[[int], UnitFacts]


@dataclass(frozen=True)
class ScheduleFacts:
    cadence: Cadence = Cadence.quarterly
    deadline_days: int = 10
    cooperating_units_report: bool = False
    review_required: bool = False


@dataclass(frozen=True)
class PlanTerm:
    id: int
    slug: str
    period_start: int | None  # None: the term was left open
    period_end: int | None

    @property
    def starts(self) -> date | None:
        return date(self.period_start, 1, 1) if self.period_start is not None else None


@dataclass(frozen=True)
class TaskFacts:
    id: int
    plan_id: int
    code: str
    position: int
    due: date
    status: TaskStatus  # the maintained column (today's state)
    progress: int


@dataclass(frozen=True)
class ExcusalFacts:
    id: int
    task_id: int
    unit_id: int
    period: str
    reason: str
    created_at: datetime
    revoked_at: datetime | None

    def active(self, at: datetime) -> bool:
        return self.created_at <= at and (self.revoked_at is None or self.revoked_at > at)


@dataclass
class SupervisionFacts:
    cutoff: datetime
    plans: dict[int, PlanTerm]
    schedules: dict[int, ScheduleFacts]
    tasks: dict[int, TaskFacts]
    links: dict[int, list[tuple[int, Role]]]  # task id → (linked unit id, role), source order
    members: dict[int, list[int]]  # group id → member ids
    units: dict[int, UnitFacts]  # linked units and group members
    reports: dict[int, list[ReportFacts]] = field(default_factory=dict)  # task id → its reports
    excusals: list[ExcusalFacts] = field(default_factory=list)

    def unit(self, unit_id: int) -> UnitFacts:
        return self.units.get(unit_id, UnitFacts(f"单位 {unit_id}", UnitKind.other, "", ""))

    def owner_slots(self, task_id: int) -> list[int]:
        """The task's lead/responsible links (what `cycle.task_state` combines)."""
        return sorted({u for u, role in self.links.get(task_id, []) if role != Role.cooperating})


def load_facts(
    *, session: Session, cutoff: datetime, plan_ids: set[int], task_ids: set[int] | None, with_reports: bool = True
) -> SupervisionFacts:
    """Facts of `task_ids` (None: every task of the plans) as they stood at `cutoff`. Seven queries.
    `with_reports=False` leaves the reports out, for a caller that loads only those it needs."""
    plans = {
        p.id: PlanTerm(p.id, p.slug, p.period_start, p.period_end)
        for p in session.exec(select(Plan).where(col(Plan.id).in_(plan_ids)))
        if p.id is not None
    }
    schedules = {plan_id: ScheduleFacts() for plan_id in plans}
    for s in session.exec(select(ReportingSchedule).where(col(ReportingSchedule.plan_id).in_(plan_ids))):
        schedules[s.plan_id] = ScheduleFacts(
            Cadence(s.cadence), s.deadline_days, s.cooperating_units_report, s.review_required
        )
    task_query = sa_select(
        col(Task.id),
        col(Task.plan_id),
        col(Task.code),
        col(Task.position),
        col(Task.due),
        col(Task.status),
        col(Task.progress),
    )
    task_query = (
        task_query.where(col(Task.id).in_(task_ids))
        if task_ids is not None
        else task_query.where(col(Task.plan_id).in_(plan_ids))
    )
    tasks = {
        row[0]: TaskFacts(row[0], row[1], row[2], row[3], row[4], TaskStatus(row[5]), row[6])
        for row in session.execute(task_query)
    }
    ids = list(tasks)
    links: dict[int, list[tuple[int, Role]]] = defaultdict(list)
    for task_id, unit_id, role in session.execute(
        sa_select(col(Responsibility.task_id), col(Responsibility.unit_id), col(Responsibility.role))
        .where(col(Responsibility.task_id).in_(ids))
        .order_by(col(Responsibility.task_id), col(Responsibility.position), col(Responsibility.id))
    ):
        links[task_id].append((unit_id, Role(role)))
    linked = {u for pairs in links.values() for u, _ in pairs}
    members: dict[int, list[int]] = defaultdict(list)
    for group_id, member_id in session.execute(
        sa_select(col(GroupMember.group_id), col(GroupMember.member_id))
        .where(col(GroupMember.group_id).in_(linked))
        .order_by(col(GroupMember.group_id), col(GroupMember.member_id))
    ):
        members[group_id].append(member_id)
    unit_ids = linked | {m for ms in members.values() for m in ms}
    units = {
        uid: UnitFacts(name, UnitKind(kind), code, place)
        for uid, name, kind, code, place in session.execute(
            sa_select(col(Unit.id), col(Unit.name), col(Unit.kind), col(Jurisdiction.code), col(Jurisdiction.name))
            .join(Jurisdiction, col(Jurisdiction.id) == col(Unit.jurisdiction_id))
            .where(col(Unit.id).in_(unit_ids))
        )
    }
    loaded = load_reports(session, ids, cutoff=cutoff) if with_reports else {}
    reports = {task_id: found for task_id, found in loaded.items() if found}
    excusals = [
        ExcusalFacts(e.id or 0, e.task_id, e.unit_id, e.period, e.reason, e.created_at, e.revoked_at)
        for e in session.exec(
            select(DutyExcusal)
            .where(col(DutyExcusal.task_id).in_(ids), col(DutyExcusal.created_at) <= cutoff)
            .order_by(col(DutyExcusal.id))
        )
    ]
    return SupervisionFacts(
        cutoff=cutoff,
        plans=plans,
        schedules=schedules,
        tasks=tasks,
        links=dict(links),
        members=dict(members),
        units=units,
        reports=dict(reports),
        excusals=excusals,
    )
