"""The task query language: every filter of `GET …/tasks` is one clause here, on both engines."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from functools import partial
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, and_, func, or_, tuple_
from sqlalchemy import select as sa_select  # more than four columns, which sqlmodel's select does not type
from sqlmodel import Session, col, select

from app.core.clock import county_today
from app.core.config import Settings, get_settings
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
from app.services.cycle import end_of_day
from app.services.duties import load_facts_for_today
from app.services.lights import Light, LightReason
from app.services.supervision import pictures
from app.services.supervision_facts import load_facts
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
    roles: tuple[Role, ...] = ()  # any of these roles
    section: str | None = None
    statuses: tuple[TaskStatus, ...] = ()
    due_before: date | None = None
    due_after: date | None = None
    overdue: bool | None = None
    q: str | None = None
    lights: tuple[Light, ...] = ()
    today: date | None = None  # None: county_today(); `as_of` before it reads the past

    def reads_past(self) -> bool:
        return self.as_of < (self.today or county_today())

    def computed(self) -> bool:
        """Filters judged in Python after computing each candidate's picture (not in SQL)."""
        return bool(self.lights) or (self.reads_past() and (bool(self.statuses) or self.overdue is not None))

    def matches(self, view: TaskView) -> bool:
        if self.lights and view.light not in self.lights:
            return False
        if self.reads_past():
            if self.statuses and view.status not in self.statuses:
                return False
            if self.overdue is not None and view.overdue != self.overdue:
                return False
        return True


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
    period: str
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
    # As of the requested date: today's maintained columns, or reconstructed from the reports then.
    status: TaskStatus = TaskStatus.not_started
    progress: int = 0
    light: Light = Light.green
    light_reasons: list[LightReason] = field(default_factory=list)


@dataclass
class TaskPage:
    items: list[TaskView]
    next_cursor: str | None
    total: int | None = None


def is_overdue(task: Task, as_of: date) -> bool:
    """Past due and not completed. `ongoing` counts as not completed: the plan set a date for it too."""
    return overdue_on(task.due, TaskStatus(task.status), as_of)


def overdue_on(due: date | None, status: TaskStatus, as_of: date) -> bool:
    """A task without a due date (an open-term plan's) is never overdue."""
    return due is not None and due < as_of and status != TaskStatus.completed


def _overdue_clause(as_of: date) -> ColumnElement[bool]:
    # `overdue_on` in SQL. The IS NOT NULL keeps the negation two-valued: an open-term task is "not
    # overdue" for `overdue=false` too, not NULL (which would leave it out of both answers).
    return and_(col(Task.due).is_not(None), col(Task.due) < as_of, col(Task.status) != TaskStatus.completed)


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
    if flt.unit is not None or flt.roles:
        linked = select(Responsibility.task_id)
        if flt.unit is not None:
            scope = unit_scope(session, flt.unit.unit, flt.include_groups)
            linked = linked.where(col(Responsibility.unit_id).in_(scope))
        if flt.roles:
            linked = linked.where(col(Responsibility.role).in_(flt.roles))
        clauses.append(col(Task.id).in_(linked))
    if flt.section:
        clauses.append(col(Task.code).startswith(flt.section + "."))
    past = flt.reads_past()  # then status and overdue are the past date's, judged in Python
    if flt.statuses and not past:
        clauses.append(col(Task.status).in_(flt.statuses))
    if flt.due_before is not None:
        clauses.append(col(Task.due) <= flt.due_before)
    if flt.due_after is not None:
        clauses.append(col(Task.due) >= flt.due_after)
    if flt.overdue is True and not past:
        clauses.append(_overdue_clause(flt.as_of))
    elif flt.overdue is False and not past:
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
        # Tasks without a due date sort last (first with -due) on both engines, and the keyset cursor
        # compares the same expression, so none is skipped between pages.
        return [func.coalesce(col(Task.due), OPEN_DUE).label("due"), col(Task.plan_id), col(Task.position)]
    return [col(Task.updated_at), col(Task.id)]


def encode_cursor(sort: TaskSort, task: Task) -> str:
    values = [_or_open(getattr(task, c.key)) if c.key == "due" else getattr(task, c.key) for c in _sort_columns(sort)]
    raw = json.dumps({"s": sort.value, "k": [v.isoformat() if isinstance(v, date) else v for v in values]})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


OPEN_DUE = date(9999, 12, 31)  # the sort key of a task without a due date


def _or_open(due: date | None) -> date:
    return due if due is not None else OPEN_DUE


def decode_cursor(sort: TaskSort, cursor: str) -> list[Any]:
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
    if flt.computed():
        return _query_computed(session=session, flt=flt, sort=sort, limit=limit, cursor=cursor, count=count)
    where = _where(session, flt)
    columns = _sort_columns(sort)
    descending = sort.value.startswith("-")
    stmt = select(Task).where(*where)
    if cursor:
        key = tuple_(*columns)
        after = tuple_(*decode_cursor(sort, cursor))
        stmt = stmt.where(key < after if descending else key > after)
    stmt = stmt.order_by(*[c.desc() if descending else c.asc() for c in columns]).limit(limit + 1)
    tasks = list(session.exec(stmt))
    next_cursor = encode_cursor(sort, tasks[limit - 1]) if len(tasks) > limit else None
    total = None
    if count:
        total = session.exec(select(func.count()).select_from(Task).where(*where)).one()
    views = hydrate(session=session, tasks=tasks[:limit], as_of=flt.as_of, today=flt.today)
    if flt.unit is not None:
        attach_matches(views, flt, scope_units(session, flt.unit.unit, flt.include_groups))
    return TaskPage(items=views, next_cursor=next_cursor, total=total)


COMPUTED_CHUNK = 200


def _query_computed(
    *, session: Session, flt: TaskFilter, sort: TaskSort, limit: int, cursor: str | None, count: bool
) -> TaskPage:
    """Light (and, for a past `as_of`, status and overdue) are computed: candidates are read in the
    page's order, in chunks, their pictures computed, and kept while they match. The cursor is the
    sort key of the last task returned, so the next page resumes right after it."""
    where = _where(session, flt)
    columns = _sort_columns(sort)
    descending = sort.value.startswith("-")
    order = [c.desc() if descending else c.asc() for c in columns]
    after = decode_cursor(sort, cursor) if cursor else None
    matched: list[TaskView] = []
    while len(matched) <= limit:
        stmt = select(Task).where(*where)
        if after is not None:
            key, bound = tuple_(*columns), tuple_(*after)
            stmt = stmt.where(key < bound if descending else key > bound)
        batch = list(session.exec(stmt.order_by(*order).limit(COMPUTED_CHUNK)))
        views = hydrate(session=session, tasks=batch, as_of=flt.as_of, today=flt.today)
        matched += [v for v in views if flt.matches(v)]
        if len(batch) < COMPUTED_CHUNK:
            break
        # The cursor's key, as `encode_cursor` writes it: an undated task sorts under OPEN_DUE.
        after = [_or_open(batch[-1].due) if c.key == "due" else getattr(batch[-1], c.key) for c in columns]
    next_cursor = encode_cursor(sort, matched[limit - 1].task) if len(matched) > limit else None
    total = None
    if count:
        every = list(session.exec(select(Task).where(*where)))
        total = sum(flt.matches(v) for v in hydrate(session=session, tasks=every, as_of=flt.as_of, today=flt.today))
    views = matched[:limit]
    if flt.unit is not None:
        attach_matches(views, flt, scope_units(session, flt.unit.unit, flt.include_groups))
    return TaskPage(items=views, next_cursor=next_cursor, total=total)


def hydrate(
    *,
    session: Session,
    tasks: Sequence[Task],
    as_of: date,
    today: date | None = None,
    settings: Settings | None = None,
) -> list[TaskView]:
    """Views of `tasks` as of the end of the local day `as_of`: for today (or later) status, progress
    and owner states are the maintained columns; for a past date they are reconstructed from the
    reports that existed then (`app/services/supervision.py`). Lights are evaluated for `as_of`."""
    if not tasks:
        return []
    settings = settings or get_settings()
    past = as_of < (today or county_today())
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

    states: dict[int, list[StateRow]] = {tid: [] for tid in links}
    # Today: status and owner states are the maintained columns, and the lights read only the few
    # reports they judge; a past day is rebuilt from every report that existed then.
    load = load_facts if past else partial(load_facts_for_today, as_of=as_of, tz=settings.timezone)
    facts = load(
        session=session,
        cutoff=end_of_day(as_of, settings.timezone),
        plan_ids=plan_ids,
        task_ids={tid for tid in task_ids if tid is not None},
    )
    if not past:
        state_rows = session.execute(
            sa_select(
                col(TaskUnitState.task_id),
                col(TaskUnitState.via_unit_id),
                col(TaskUnitState.status),
                col(TaskUnitState.percent),
                col(TaskUnitState.period),
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
        for task_id, via_id, status, percent, period, report_id, updated_at, *unit_row in state_rows:
            states[task_id].append(
                StateRow(
                    TaskStatus(status),
                    percent,
                    period,
                    report_id,
                    updated_at,
                    label(*unit_row),
                    units[via_id],
                )
            )
        current = {tid: [(row.unit.id, row.status) for row in rows] for tid, rows in states.items()}
        pics = pictures(facts, as_of=as_of, settings=settings, current=current)
    else:
        pics = pictures(facts, as_of=as_of, settings=settings)
        wanted = {u for p in pics.values() for s in p.states or [] for u in (s.unit_id, s.via_unit_id)}
        for unit in session.exec(select(Unit).where(col(Unit.id).in_(wanted - set(units)))):
            label(unit.id or 0, unit.name, unit.kind, unit.jurisdiction.code, unit.jurisdiction.name)
        for task_id, pic in pics.items():
            states[task_id] = [
                StateRow(
                    s.status, s.percent, s.period, s.report_id, s.updated_at, units[s.unit_id], units[s.via_unit_id]
                )
                for s in pic.states or []
            ]

    role_order = {Role.lead: 0, Role.responsible: 1, Role.cooperating: 2}
    views = []
    for task in tasks:
        assert task.id is not None
        section = sections_by_id[task.section_id]
        pic = pics[task.id]
        views.append(
            TaskView(
                task=task,
                plan_slug=slugs[task.plan_id],
                chapter=chapters[(task.plan_id, section.code.split(".")[0])],
                section=section,
                links=sorted(links[task.id], key=lambda link: (role_order[link.role], link.position)),
                overdue=overdue_on(task.due, pic.status, as_of),
                unit_states=states[task.id],
                status=pic.status,
                progress=pic.progress,
                light=pic.light,
                light_reasons=pic.reasons,
            )
        )
    return views


def scope_units(session: Session, unit: Unit, include_groups: bool) -> dict[int, Unit]:
    """`unit_scope` as units by id: what a `matched_via` names."""
    ids = unit_scope(session, unit, include_groups)
    return {u.id or 0: u for u in session.exec(select(Unit).where(col(Unit.id).in_(ids)))}


def attach_matches(views: list[TaskView], flt: TaskFilter, groups: dict[int, Unit]) -> None:
    """How each task matched `flt.unit`: directly, or through one of its groups (`scope_units`)."""
    assert flt.unit is not None
    unit_id = flt.unit.unit.id
    for view in views:
        view.matched_unit = flt.unit
        view.matched = [
            (link.role, None if link.unit.id == unit_id else groups[link.unit.id])
            for link in view.links
            if link.unit.id in groups and (not flt.roles or link.role in flt.roles)
        ]


_CLAUSE_END = re.compile(r"[,。;:,;:!?!?]")
TITLE_MAX = 40


def readable_title(task: Task) -> str:
    """The plan's title, or — where the plan gives none — the text's first clause, cut to 40 characters.
    Derived when read (not stored), so a re-import or a better rule changes every title at once."""
    if task.title:
        return task.title
    first = _CLAUSE_END.split(task.text.strip(), maxsplit=1)[0].strip()
    return first[:TITLE_MAX] + ("…" if len(first) > TITLE_MAX else "")


def find_task(*, session: Session, plan: Plan, code: str) -> Task:
    task = session.exec(select(Task).where(Task.plan_id == plan.id, Task.code == code)).first()
    if task is None:
        raise NotFound(f"方案 {plan.slug} 中没有编号为 {code} 的任务 / no task {code!r} in plan {plan.slug!r}")
    return task


def get_task(*, session: Session, plan: Plan, code: str, as_of: date) -> TaskView:
    """One task as of the end of the local day `as_of`."""
    return hydrate(session=session, tasks=[find_task(session=session, plan=plan, code=code)], as_of=as_of)[0]


def section_codes(*, session: Session, plan: Plan) -> frozenset[str]:
    return frozenset(session.exec(select(Section.code).where(Section.plan_id == plan.id)))


def check_section(*, codes: frozenset[str], section: str) -> None:
    """`codes`: the plan's (`section_codes`)."""
    if section not in codes:
        raise InvalidParameter("section", f"方案中没有章节 {section}(格式如 2 或 2.1,见 …/sections)")
