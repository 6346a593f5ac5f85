"""The task query language: every filter of `GET …/tasks` is one clause here, on both engines."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, and_, func, or_, tuple_
from sqlalchemy import select as sa_select  # more than four columns, which sqlmodel's select does not type
from sqlmodel import Session, col, select

from app.errors import InvalidParameter, NotFound
from app.models import (
    GroupMember,
    Jurisdiction,
    Plan,
    Responsibility,
    Role,
    Section,
    Task,
    TaskStatus,
    TaskUnitState,
    Unit,
    UnitKind,
)
from app.services.units import ResolvedUnit


class TaskSort(StrEnum):
    code = "code"
    code_desc = "-code"
    due = "due"
    due_desc = "-due"
    updated_at = "updated_at"
    updated_at_desc = "-updated_at"


@dataclass(frozen=True)
class TaskFilter:
    as_of: date
    plan_id: int | None = None
    jurisdiction_ids: frozenset[int] | None = None  # plans of these jurisdictions only (a subtree)
    unit: ResolvedUnit | None = None
    include_groups: bool = False
    role: Role | None = None
    section: str | None = None
    statuses: tuple[TaskStatus, ...] = ()
    due_before: date | None = None
    due_after: date | None = None
    overdue: bool | None = None
    q: str | None = None


class JurisdictionLabel(NamedTuple):
    code: str
    name: str


class UnitLabel(NamedTuple):
    id: int
    name: str
    kind: UnitKind
    jurisdiction: JurisdictionLabel


class SectionLabel(NamedTuple):
    code: str
    title: str


class LinkRow(NamedTuple):
    role: Role
    as_written: str
    position: int
    unit: UnitLabel


class StateRow(NamedTuple):
    status: TaskStatus
    percent: int
    report_id: int
    updated_at: datetime
    unit: UnitLabel
    via: UnitLabel


@dataclass
class TaskView:
    """A task with everything its representation needs, loaded in a fixed number of queries, as
    plain rows: rendering a list must not pay for ORM objects it only reads."""

    task: Task
    plan_slug: str
    chapter: SectionLabel
    section: SectionLabel
    links: list[LinkRow]
    matched: list[tuple[Role, Unit | None]] | None = None  # (role, through group) when filtered by unit
    matched_unit: ResolvedUnit | None = None
    unit_states: list[StateRow] = field(default_factory=list)
    overdue: bool = False


@dataclass
class TaskPage:
    items: list[TaskView]
    next_cursor: str | None
    total: int | None = None


def is_overdue(task: Task, as_of: date) -> bool:
    """Past due and not completed. `ongoing` counts as not completed: the plan set a date for it too."""
    return task.due < as_of and task.status != TaskStatus.completed


def _overdue_clause(as_of: date) -> ColumnElement[bool]:
    return and_(col(Task.due) < as_of, col(Task.status) != TaskStatus.completed)


def unit_scope(session: Session, unit: Unit, include_groups: bool) -> list[int]:
    """The unit itself, plus the groups it is a member of when asked to include them."""
    assert unit.id is not None
    ids = [unit.id]
    if include_groups:
        ids += list(session.exec(select(GroupMember.group_id).where(GroupMember.member_id == unit.id)))
    return ids


def _where(session: Session, flt: TaskFilter) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = []
    if flt.plan_id is not None:
        clauses.append(col(Task.plan_id) == flt.plan_id)
    if flt.jurisdiction_ids is not None:
        clauses.append(
            col(Task.plan_id).in_(select(Plan.id).where(col(Plan.jurisdiction_id).in_(flt.jurisdiction_ids)))
        )
    if flt.unit is not None or flt.role is not None:
        linked = select(Responsibility.task_id)
        if flt.unit is not None:
            scope = unit_scope(session, flt.unit.unit, flt.include_groups)
            linked = linked.where(col(Responsibility.unit_id).in_(scope))
        if flt.role is not None:
            linked = linked.where(Responsibility.role == flt.role)
        clauses.append(col(Task.id).in_(linked))
    if flt.section:
        clauses.append(col(Task.code).startswith(flt.section + "."))
    if flt.statuses:
        clauses.append(col(Task.status).in_(flt.statuses))
    if flt.due_before is not None:
        clauses.append(col(Task.due) <= flt.due_before)
    if flt.due_after is not None:
        clauses.append(col(Task.due) >= flt.due_after)
    if flt.overdue is True:
        clauses.append(_overdue_clause(flt.as_of))
    elif flt.overdue is False:
        clauses.append(~_overdue_clause(flt.as_of))
    if flt.q:
        # LIKE is a plain substring match for Chinese on both engines (no tokenizer needed).
        clauses.append(
            or_(
                col(Task.title).contains(flt.q, autoescape=True),
                col(Task.text).contains(flt.q, autoescape=True),
            )
        )
    return clauses


def _sort_columns(sort: TaskSort) -> list[Any]:
    base = sort.value.lstrip("-")
    if base == "code":
        return [col(Task.plan_id), col(Task.position)]
    if base == "due":
        return [col(Task.due), col(Task.plan_id), col(Task.position)]
    return [col(Task.updated_at), col(Task.id)]


def _encode_cursor(sort: TaskSort, task: Task) -> str:
    values = [getattr(task, c.key) for c in _sort_columns(sort)]
    raw = json.dumps({"s": sort.value, "k": [v.isoformat() if isinstance(v, date) else v for v in values]})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(sort: TaskSort, cursor: str) -> list[Any]:
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if raw["s"] != sort.value:
            raise InvalidParameter("cursor", "游标属于另一种排序,请用相同的 sort 参数翻页")
        columns = _sort_columns(sort)
        values = raw["k"]
        if len(values) != len(columns):
            raise ValueError("length")
        out: list[Any] = []
        for column, value in zip(columns, values, strict=True):
            if column.key == "due":
                out.append(date.fromisoformat(value))
            elif column.key == "updated_at":
                out.append(datetime.fromisoformat(value))
            else:
                out.append(int(value))
        return out
    except InvalidParameter:
        raise
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidParameter("cursor", "游标无效;请使用上一页响应中的 next_cursor 原值") from exc


def query_tasks(
    *,
    session: Session,
    flt: TaskFilter,
    sort: TaskSort = TaskSort.code,
    limit: int = 50,
    cursor: str | None = None,
    count: bool = False,
) -> TaskPage:
    where = _where(session, flt)
    columns = _sort_columns(sort)
    descending = sort.value.startswith("-")
    stmt = select(Task).where(*where)
    if cursor:
        key = tuple_(*columns)
        after = tuple_(*_decode_cursor(sort, cursor))
        stmt = stmt.where(key < after if descending else key > after)
    stmt = stmt.order_by(*[c.desc() if descending else c.asc() for c in columns]).limit(limit + 1)
    tasks = list(session.exec(stmt))
    next_cursor = _encode_cursor(sort, tasks[limit - 1]) if len(tasks) > limit else None
    total = None
    if count:
        total = session.exec(select(func.count()).select_from(Task).where(*where)).one()
    views = hydrate(session=session, tasks=tasks[:limit], as_of=flt.as_of)
    if flt.unit is not None:
        _attach_matches(session, views, flt)
    return TaskPage(items=views, next_cursor=next_cursor, total=total)


def hydrate(*, session: Session, tasks: Sequence[Task], as_of: date) -> list[TaskView]:
    if not tasks:
        return []
    task_ids = [t.id for t in tasks]
    plan_ids = {t.plan_id for t in tasks}
    slugs = dict(session.exec(select(Plan.id, Plan.slug).where(col(Plan.id).in_(plan_ids))).all())
    # The tasks' own subsections, and every chapter of their plans (a handful of rows).
    section_rows = session.exec(
        select(Section.id, Section.plan_id, Section.code, Section.title).where(
            or_(
                col(Section.id).in_({t.section_id for t in tasks}),
                and_(col(Section.plan_id).in_(plan_ids), col(Section.level) == 1),
            )
        )
    ).all()
    sections_by_id = {sid: SectionLabel(code, title) for sid, _, code, title in section_rows}
    chapters = {(plan_id, code): SectionLabel(code, title) for _, plan_id, code, title in section_rows}

    units: dict[int, UnitLabel] = {}

    def label(unit_id: int, name: str, kind: str, j_code: str, j_name: str) -> UnitLabel:
        found = units.get(unit_id)
        if found is None:
            found = units[unit_id] = UnitLabel(unit_id, name, UnitKind(kind), JurisdictionLabel(j_code, j_name))
        return found

    links: dict[int, list[LinkRow]] = {tid: [] for tid in task_ids if tid is not None}
    link_rows = session.execute(
        sa_select(
            col(Responsibility.task_id),
            col(Responsibility.role),
            col(Responsibility.as_written),
            col(Responsibility.position),
            col(Unit.id),
            col(Unit.name),
            col(Unit.kind),
            col(Jurisdiction.code),
            col(Jurisdiction.name),
        )
        .join(Unit, col(Unit.id) == col(Responsibility.unit_id))
        .join(Jurisdiction, col(Jurisdiction.id) == col(Unit.jurisdiction_id))
        .where(col(Responsibility.task_id).in_(task_ids))
    )
    for task_id, role, as_written, position, *unit_row in link_rows:
        links[task_id].append(LinkRow(Role(role), as_written, position, label(*unit_row)))

    state_rows = session.execute(
        sa_select(
            col(TaskUnitState.task_id),
            col(TaskUnitState.via_unit_id),
            col(TaskUnitState.status),
            col(TaskUnitState.percent),
            col(TaskUnitState.report_id),
            col(TaskUnitState.updated_at),
            col(Unit.id),
            col(Unit.name),
            col(Unit.kind),
            col(Jurisdiction.code),
            col(Jurisdiction.name),
        )
        .join(Unit, col(Unit.id) == col(TaskUnitState.unit_id))
        .join(Jurisdiction, col(Jurisdiction.id) == col(Unit.jurisdiction_id))
        .where(col(TaskUnitState.task_id).in_(task_ids))
        .order_by(col(TaskUnitState.task_id), col(TaskUnitState.unit_id))
    ).all()
    # A state's link may have gone in a corrected re-import; its unit is still shown.
    missing = {row[1] for row in state_rows} - set(units)
    for unit in session.exec(select(Unit).where(col(Unit.id).in_(missing))):
        label(unit.id or 0, unit.name, unit.kind, unit.jurisdiction.code, unit.jurisdiction.name)
    states: dict[int, list[StateRow]] = {tid: [] for tid in links}
    for task_id, via_id, status, percent, report_id, updated_at, *unit_row in state_rows:
        states[task_id].append(
            StateRow(TaskStatus(status), percent, report_id, updated_at, label(*unit_row), units[via_id])
        )

    role_order = {Role.lead: 0, Role.responsible: 1, Role.cooperating: 2}
    views = []
    for task in tasks:
        assert task.id is not None
        section = sections_by_id[task.section_id]
        views.append(
            TaskView(
                task=task,
                plan_slug=slugs[task.plan_id],
                chapter=chapters[(task.plan_id, section.code.split(".")[0])],
                section=section,
                links=sorted(links[task.id], key=lambda link: (role_order[link.role], link.position)),
                overdue=is_overdue(task, as_of),
                unit_states=states[task.id],
            )
        )
    return views


def _attach_matches(session: Session, views: list[TaskView], flt: TaskFilter) -> None:
    assert flt.unit is not None
    unit_id = flt.unit.unit.id
    groups = {
        u.id: u
        for u in session.exec(
            select(Unit).where(col(Unit.id).in_(unit_scope(session, flt.unit.unit, flt.include_groups)))
        )
    }
    for view in views:
        view.matched_unit = flt.unit
        view.matched = [
            (link.role, None if link.unit.id == unit_id else groups[link.unit.id])
            for link in view.links
            if link.unit.id in groups and (flt.role is None or link.role == flt.role)
        ]


def find_task(*, session: Session, plan: Plan, code: str) -> Task:
    task = session.exec(select(Task).where(Task.plan_id == plan.id, Task.code == code)).first()
    if task is None:
        raise NotFound(f"方案 {plan.slug} 中没有编号为 {code} 的任务 / no task {code!r} in plan {plan.slug!r}")
    return task


def get_task(*, session: Session, plan: Plan, code: str, as_of: date) -> TaskView:
    return hydrate(session=session, tasks=[find_task(session=session, plan=plan, code=code)], as_of=as_of)[0]


def check_section(*, session: Session, plan: Plan, section: str) -> None:
    exists = session.exec(select(Section.id).where(Section.plan_id == plan.id, Section.code == section)).first()
    if exists is None:
        raise InvalidParameter("section", f"方案中没有章节 {section}(格式如 2 或 2.1,见 …/sections)")
