"""Keeps the derived state — `task_unit_state` and `task.status/progress` — equal to what the rule in
`app/services/cycle.py` gives from the reports, for the tasks a write touched. The one place every
write path (reports, withdrawals, reviews, re-imports) re-derives through; flushes only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import BindParameter, ColumnElement, Executable, bindparam, delete, func, insert, text, union, update
from sqlalchemy import select as sa_select
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key
from sqlmodel import Session, col, select

from app.models import ProgressReport, ReportKind, Responsibility, ReviewState, Task, TaskStatus, TaskUnitState
from app.models.progress import COUNTING, HEAD
from app.services import cycle
from app.services.feed import run_core
from app.services.permissions import OWNER_ROLES


class Derived(Protocol):
    """What re-derivation reads and sets on a task: a `Task` entity, or a plain row of its columns
    (the report path loads no entity)."""

    @property
    def id(self) -> int | None: ...
    @property
    def code(self) -> str: ...

    status: TaskStatus
    progress: int
    updated_at: datetime


@dataclass(frozen=True)
class Change:
    """A task whose status or progress moved."""

    task: Derived
    before: tuple[TaskStatus, int]


_REPORT_FACTS = (
    col(ProgressReport.id),
    col(ProgressReport.task_id),
    col(ProgressReport.unit_id),
    col(ProgressReport.via_unit_id),
    col(ProgressReport.kind),
    col(ProgressReport.period),
    col(ProgressReport.status),
    col(ProgressReport.percent),
    col(ProgressReport.created_at),
    col(ProgressReport.withdrawn_at),
    col(ProgressReport.review_state),
    col(ProgressReport.reviewed_at),
)


def load_reports(
    session: Session,
    task_ids: Iterable[int],
    *,
    cutoff: datetime | None = None,
    where: ColumnElement[bool] | None = None,
) -> dict[int, list[cycle.ReportFacts]]:
    """Every report of these tasks (sent by `cutoff`, and matching `where`, if given) as `ReportFacts`,
    in one query of plain columns (so a row another writer committed meanwhile is never hidden behind
    the identity map)."""
    ids = sorted(set(task_ids))
    if not ids:
        return {}
    query = sa_select(*_REPORT_FACTS).where(col(ProgressReport.task_id).in_(ids))
    if cutoff is not None:
        query = query.where(col(ProgressReport.created_at) <= cutoff)
    if where is not None:
        query = query.where(where)
    return _as_facts(ids, session.execute(query.order_by(col(ProgressReport.id))))


def _as_facts(ids: list[int], rows: Iterable[Any]) -> dict[int, list[cycle.ReportFacts]]:
    facts: dict[int, list[cycle.ReportFacts]] = {task_id: [] for task_id in ids}
    for (
        rid,
        task_id,
        unit_id,
        via,
        kind,
        period,
        status,
        percent,
        created,
        withdrawn,
        review,
        reviewed,
    ) in rows:
        facts[task_id].append(
            cycle.ReportFacts(
                id=rid,
                task_id=task_id,
                unit_id=unit_id,
                via_unit_id=via,
                kind=ReportKind(kind),
                period=period,
                status=TaskStatus(status),
                percent=percent,
                created_at=created,
                withdrawn_at=withdrawn,
                review_state=ReviewState(review),
                reviewed_at=reviewed,
            )
        )
    return facts


def owner_slots(session: Session, task_ids: Iterable[int]) -> dict[int, list[int]]:
    """Each task's lead/responsible units (its owner slots), in one query."""
    ids = sorted(set(task_ids))
    slots: dict[int, set[int]] = {task_id: set() for task_id in ids}
    rows = session.exec(
        select(Responsibility.task_id, Responsibility.unit_id).where(
            col(Responsibility.task_id).in_(ids), col(Responsibility.role).in_(OWNER_ROLES)
        )
    )
    for task_id, unit_id in rows:
        slots[task_id].add(unit_id)
    return {task_id: sorted(units) for task_id, units in slots.items()}


def _may_count_now() -> Executable:
    """The only versions the rule can pick now, per (task, unit, period): the newest (whose
    withdrawal empties the period) and the newest not withdrawn and not awaiting or refused review.
    Ids order a group's versions as time does: its task's row lock serializes them. The newest is a
    head (a version is only ever superseded by a newer one of its group), found in the heads' index;
    the newest counting one in the counting versions' index (`app/models/progress.py`): so a unit
    that re-sends one period a thousand times does not make every later write read a thousand rows."""
    ids: BindParameter[list[int]] = bindparam("task_ids", expanding=True)
    group = (col(ProgressReport.task_id), col(ProgressReport.period), col(ProgressReport.unit_id))  # index order
    newest = (
        select(func.max(ProgressReport.id)).where(col(ProgressReport.task_id).in_(ids), text(HEAD)).group_by(*group)
    )
    counting = (
        select(func.max(ProgressReport.id)).where(col(ProgressReport.task_id).in_(ids), text(COUNTING)).group_by(*group)
    )
    # One IN over the UNION, each id then a primary-key lookup: PostgreSQL turns `IN (a) OR IN (b)`
    # into a scan of the whole table (180 ms at 10^6 reports, against 3).
    return (
        sa_select(*_REPORT_FACTS)
        .where(col(ProgressReport.id).in_(union(newest, counting)))
        .order_by(col(ProgressReport.id))
    )


# Built once, run on every write: building and keying a statement of this size costs more than
# SQLite takes to answer it.
_COUNTING_NOW = _may_count_now()
_STATES = TaskUnitState.__table__  # type: ignore[attr-defined]
_CLEAR_STATES = delete(_STATES).where(_STATES.c.task_id.in_(bindparam("task_ids", expanding=True)))
_ADD_STATE = insert(_STATES)
_TASKS = Task.__table__  # type: ignore[attr-defined]
_TASK_ID = _TASKS.c.id == bindparam("task_id")
_SET_STATE = update(_TASKS).where(_TASK_ID).values(status=bindparam("status"), progress=bindparam("progress"))
_SET_STATE_DATED = _SET_STATE.values(updated_at=bindparam("updated_at"))
_SET_DATE = update(_TASKS).where(_TASK_ID).values(updated_at=bindparam("updated_at"))


def rederive(
    session: Session,
    tasks: Iterable[Derived],
    *,
    slots: dict[int, list[int]] | None = None,
    skip_unreported: bool = False,
    updated_at: dict[int, datetime] | None = None,
) -> tuple[list[Change], dict[int, list[cycle.ReportFacts]]]:
    """Re-derive these tasks (already locked by the caller) now; returns the tasks whose status or
    progress changed, and the reports loaded. `slots`: each task's owner units when the caller has
    them (the permission facts), else loaded. `updated_at`: tasks whose date moves with this write,
    set by the same UPDATE. A task with no counting report goes back to `not_started`, unless
    `skip_unreported` and it has no reports at all (a re-import leaves it)."""
    dated = updated_at or {}
    by_id = {task.id: task for task in tasks if task.id is not None}
    if not by_id:
        return [], {}
    ids = sorted(by_id)
    reports = _as_facts(ids, run_core(session, _COUNTING_NOW, {"task_ids": ids}))
    if slots is None or not set(by_id) <= set(slots):
        slots = owner_slots(session, by_id)
    # Core statements, not entities: a state loaded earlier in this session must not linger in the
    # identity map beside the row that replaces it.
    run_core(session, _CLEAR_STATES, {"task_ids": ids})
    rows: list[dict[str, object]] = []
    changes: list[Change] = []
    moved: dict[int, tuple[TaskStatus, int]] = {}  # the new (status, progress) of those that changed
    for task_id, task in by_id.items():
        if skip_unreported and not reports[task_id]:
            continue
        state = cycle.task_state(owner_slots=slots[task_id], reports=reports[task_id], at=None)
        status, progress, states = state if state is not None else (TaskStatus.not_started, 0, [])
        for head in states:
            assert head.unit_id is not None and head.via_unit_id is not None
            rows.append(
                {
                    "task_id": task_id,
                    "unit_id": head.unit_id,
                    "via_unit_id": head.via_unit_id,
                    "status": str(head.status),
                    "percent": head.percent,
                    "period": head.period,
                    "report_id": head.id,
                    "updated_at": head.counting_since(),
                }
            )
        before = (TaskStatus(task.status), task.progress)
        if before != (status, progress):
            moved[task_id] = (status, progress)
            changes.append(Change(task=task, before=before))
    if rows:
        run_core(session, _ADD_STATE, rows)  # executemany of one cached statement
    _write_tasks(session, by_id, moved, dated)
    return changes, reports


def _write_tasks(
    session: Session,
    tasks: dict[int, Derived],
    moved: dict[int, tuple[TaskStatus, int]],
    dated: dict[int, datetime],
) -> None:
    """One executemany per shape: the moved tasks' state (with their date, if it moves too), and the
    date alone of a dated task whose state stayed. Then each task, and any entity of it this session
    holds, learns the values."""
    with_date = [
        {"task_id": i, "status": str(s), "progress": p, "updated_at": dated[i]}
        for i, (s, p) in moved.items()
        if i in dated
    ]
    without_date = [{"task_id": i, "status": str(s), "progress": p} for i, (s, p) in moved.items() if i not in dated]
    date_only = [{"task_id": i, "updated_at": when} for i, when in dated.items() if i not in moved]
    for statement, params in ((_SET_STATE_DATED, with_date), (_SET_STATE, without_date), (_SET_DATE, date_only)):
        if params:
            run_core(session, statement, params)
    for task_id in moved.keys() | dated.keys():
        values: dict[str, object] = {}
        if task_id in moved:
            values["status"], values["progress"] = moved[task_id]
        if task_id in dated:
            values["updated_at"] = dated[task_id]
        _learn(session, tasks[task_id], values)


def _learn(session: Session, task: Derived, values: dict[str, object]) -> None:
    """Written values on the task, and as committed ones on any entity of it this session holds (the
    caller's, a precondition's, or an earlier write's in the same group commit, which expires nothing
    between writes): a stale entity would make a later write re-derive from the old status, and a
    dirty one would be flushed again as a second UPDATE."""
    held = task if isinstance(task, Task) else session.identity_map.get(identity_key(Task, task.id))
    for name, value in values.items():
        if task is not held:
            setattr(task, name, value)
        if held is not None:
            set_committed_value(held, name, value)


def rederive_plan(session: Session, plan_id: int) -> list[Change]:
    """Every task of a plan, derived anew (`plan-api rederive`): for a database whose derived state
    predates the rule, or was changed behind the service's back."""
    tasks = list(session.exec(select(Task).where(Task.plan_id == plan_id).order_by(col(Task.id)).with_for_update()))
    changes, _ = rederive(session, tasks, skip_unreported=True)
    return changes
