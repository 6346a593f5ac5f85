"""Today's picture of a plan's tasks, built once per data version: the read model of cold task lists.

A task list nobody asked before used to cost an ORM hydration of its page (plans, sections, units,
states, light facts). Every task of a plan, as `hydrate()` sees it today, is now built once per
(plan, data version, county today) and kept; a list for today is its filter, sort and page evaluated
in memory over those rows. `hydrate()` stays the one definition of what a task looks like, so the
read model can only differ from the slow path in how rows are chosen, and that choice mirrors
`tasks._where` clause by clause (SQL's three-valued logic and SQLite's ASCII-caseless LIKE included);
`tests/services/test_read_model.py` holds the two answers equal over a battery of queries.

Invalidation is the data version only (`app/services/feed.py` bumps it on every commit that changes
data); the county's today is in the key because `overdue` and the lights move with the calendar. A
past `as_of` is not served here: it is rebuilt from the reports of that day by the slow path.

The store is bounded in bytes (READ_MODEL_MAX_BYTES), least recently used out first, and a plan's
picture of an older version is dropped as soon as a newer one is built.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from sqlmodel import Session, col, select

from app.models import Plan, Responsibility, Role, Task, TaskStatus, Unit
from app.models.base import detached_copy
from app.services import plans as plan_service
from app.services.tasks import (
    OPEN_DUE,
    TaskFilter,
    TaskPage,
    TaskSort,
    TaskView,
    attach_matches,
    decode_cursor,
    encode_cursor,
    hydrate,
    overdue_on,
    scope_units,
    section_codes,
)
from app.services.units import ResolvedUnit, plan_scope, resolve_unit_param

# Per row, beyond its rendered fragments and its text: the view, its ORM task, labels and filter facts.
# Measured with tracemalloc on the seed plan: ~10 kB held per task, of which 2.3 kB fragments; the
# count below (~11 kB) errs high.
ROW_OVERHEAD = 8192

Render = Callable[[TaskView], dict[str, bytes]]


@dataclass(frozen=True)
class Row:
    view: TaskView
    fragments: dict[str, bytes]  # per field of the JSON, its rendered `"name":value`
    links: tuple[tuple[int, Role], ...]  # (unit id, role) of every responsibility
    sort_keys: dict[str, tuple[Any, ...]]


@dataclass(frozen=True)
class Picture:
    plan_id: int
    jurisdiction_id: int
    rows: tuple[Row, ...]  # in the plan's order
    size: int
    by_unit: dict[int, tuple[int, ...]]  # unit id → positions in `rows` of the tasks it is linked to

    def row(self, code: str) -> Row | None:
        return next((row for row in self.rows if row.view.task.code == code), None)

    def candidates(self, units: set[int] | None) -> list[Row]:
        """The rows linked to any of `units` (None: every row), in the plan's order."""
        if units is None:
            return list(self.rows)
        return [self.rows[i] for i in sorted({i for u in units for i in self.by_unit.get(u, ())})]


Key = tuple[int, int, date]  # plan id, data version, county today


class ReadModel:
    """Pictures by (plan, version, today), at most `max_bytes` of them; 0 keeps none."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self.builds = 0  # a statistic, and how the tests see a build
        self._pictures: OrderedDict[Key, Picture] = OrderedDict()
        self._lock = threading.Lock()
        self._building = threading.Lock()
        self._memo_version = -1
        self._memo: dict[tuple[Any, ...], Any] = {}

    def __len__(self) -> int:
        return len(self._pictures)

    def picture(self, *, session: Session, plan: Plan, version: int, today: date, render: Render) -> Picture:
        assert plan.id is not None
        key = (plan.id, version, today)
        with self._lock:
            found = self._pictures.get(key)
            if found is not None:
                self._pictures.move_to_end(key)
                return found
        with self._building:  # after a write, concurrent lists wait for one build instead of each making one
            with self._lock:
                found = self._pictures.get(key)
            if found is not None:
                return found
            return self._keep(key, _build(session=session, plan=plan, today=today, render=render))

    def _keep(self, key: Key, built: Picture) -> Picture:
        with self._lock:
            self.builds += 1
            newer = any(k[0] == key[0] and k[1:] > key[1:] for k in self._pictures)
            if built.size > self.max_bytes or newer:
                return built  # served, never kept (a request that read the version before the last write)
            for old in [k for k in self._pictures if k[0] == key[0] and k != key]:
                self._drop(old)  # an older version (or day) of this plan is never asked again
            if key in self._pictures:
                self._drop(key)
            self._pictures[key] = built
            self.bytes += built.size
            while self.bytes > self.max_bytes:
                self._drop(next(iter(self._pictures)))
        return built

    def _drop(self, key: Key) -> None:
        self.bytes -= self._pictures.pop(key).size

    def lookups(self, *, session: Session, version: int | None) -> Lookups:
        """The lookups of a request that read `version`: remembered while it is the newest seen."""
        with self._lock:
            if version is not None and version > self._memo_version:
                self._memo_version, self._memo = version, {}
            memo = self._memo if version == self._memo_version and self.max_bytes else None
        return Lookups(session=session, memo=memo)


MEMO_MAX = 4096  # names remembered per version (a few hundred bytes each)


class Lookups:
    """What a list names — its plan, the plan's sections and scope, a unit, the unit's groups — through
    the one service function for each, remembered for the data version (`memo`, None: not remembered).
    Remembered rows are detached copies, so no session's identity map or expiry touches them."""

    def __init__(self, *, session: Session, memo: dict[tuple[Any, ...], Any] | None) -> None:
        self.session = session
        self.memo = memo

    def _remember(self, key: tuple[Any, ...], compute: Callable[[], Any]) -> Any:
        if self.memo is None:
            return compute()
        found = self.memo.get(key, _MISSING)
        if found is _MISSING:
            found = compute()
            if len(self.memo) < MEMO_MAX:
                self.memo[key] = found
        return found

    def plan(self, slug: str) -> Plan:
        def load() -> Plan:
            row = plan_service.get_plan(session=self.session, slug=slug)
            return row if self.memo is None else _copy_plan(row)

        found: Plan = self._remember(("plan", slug), load)
        return found

    def plan_scope(self, plan: Plan) -> frozenset[int]:
        found: frozenset[int] = self._remember(("scope", plan.id), lambda: plan_scope(session=self.session, plan=plan))
        return found

    def sections(self, plan: Plan) -> frozenset[str]:
        found: frozenset[str] = self._remember(
            ("sections", plan.id), lambda: section_codes(session=self.session, plan=plan)
        )
        return found

    def unit(self, *, param: str, ref: str, within: frozenset[int] | None) -> ResolvedUnit:
        def load() -> Unit:
            unit = resolve_unit_param(session=self.session, param=param, ref=ref, within=within).unit
            return unit if self.memo is None else _copy_unit(unit)

        unit: Unit = self._remember(("unit", ref, within), load)
        return ResolvedUnit(unit=unit, as_typed=ref)

    def plans_linking(self, unit_ids: frozenset[int]) -> list[Plan]:
        """The plans with a task linked to any of these units: those a unit's list reads."""

        def load() -> list[Plan]:
            linked = select(Task.plan_id).join(Responsibility, col(Responsibility.task_id) == col(Task.id))
            ids = select(Plan).where(col(Plan.id).in_(linked.where(col(Responsibility.unit_id).in_(unit_ids))))
            found = list(self.session.exec(ids.order_by(col(Plan.id))))
            return found if self.memo is None else [_copy_plan(p) for p in found]

        plans: list[Plan] = self._remember(("plans", unit_ids), load)
        return plans

    def scope_units(self, unit: Unit, include_groups: bool) -> dict[int, Unit]:
        def load() -> dict[int, Unit]:
            found = scope_units(self.session, unit, include_groups)
            return found if self.memo is None else {k: _copy_unit(u) for k, u in found.items()}

        units: dict[int, Unit] = self._remember(("groups", unit.id, include_groups), load)
        return units


_MISSING = object()


def _copy_unit(unit: Unit) -> Unit:
    copy = detached_copy(unit)
    copy.jurisdiction = detached_copy(unit.jurisdiction)
    return copy


def _copy_plan(plan: Plan) -> Plan:
    copy = detached_copy(plan)
    copy.jurisdiction = detached_copy(plan.jurisdiction)
    return copy


def _build(*, session: Session, plan: Plan, today: date, render: Render) -> Picture:
    assert plan.id is not None
    tasks = list(session.exec(select(Task).where(Task.plan_id == plan.id).order_by(col(Task.position))))
    views = hydrate(session=session, tasks=tasks, as_of=today, today=today)
    rows = []
    size = 0
    for view in views:
        task = view.task
        fragments = render(view)
        size += ROW_OVERHEAD + sum(len(f) for f in fragments.values()) + len(task.text) * 3
        due_key = task.due if task.due is not None else OPEN_DUE
        rows.append(
            Row(
                view=view,
                fragments=fragments,
                links=tuple((link.unit.id, link.role) for link in view.links),
                sort_keys={
                    "code": (task.plan_id, task.position),
                    "due": (due_key, task.plan_id, task.position),
                    "updated_at": (task.updated_at, task.id),
                },
            )
        )
    by_unit: dict[int, list[int]] = {}
    for i, row in enumerate(rows):
        for unit_id in dict.fromkeys(unit_id for unit_id, _ in row.links):
            by_unit.setdefault(unit_id, []).append(i)
    return Picture(
        plan_id=plan.id,
        jurisdiction_id=plan.jurisdiction_id,
        rows=tuple(rows),
        size=size,
        by_unit={u: tuple(positions) for u, positions in by_unit.items()},
    )


def serves(flt: TaskFilter, today: date) -> bool:
    """Lists as of today are answered from pictures; a past or future `as_of` by the query path."""
    return flt.as_of == today


def _ascii_lower(text: str) -> str:
    return text.translate(_ASCII_LOWER)


_ASCII_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}


def _matcher(session: Session, flt: TaskFilter, groups: dict[int, Unit] | None) -> Callable[[Row], bool]:
    """The filter as a predicate on rows: `tasks._where` and `TaskFilter.matches`, clause by clause."""
    scope = set(groups) if groups is not None else None
    roles = set(flt.roles)
    section = flt.section + "." if flt.section else None
    statuses = set(flt.statuses)
    lights = set(flt.lights)
    as_of = flt.as_of
    # LIKE: SQLite's ignores ASCII case, PostgreSQL's does not.
    caseless = session.get_bind().dialect.name == "sqlite"
    needle = (_ascii_lower(flt.q) if caseless else flt.q) if flt.q else None

    def matches(row: Row) -> bool:
        task = row.view.task
        if (scope is not None or roles) and not any(
            (scope is None or unit_id in scope) and (not roles or role in roles) for unit_id, role in row.links
        ):
            return False
        if section is not None and not task.code.startswith(section):
            return False
        status = TaskStatus(task.status)  # the maintained column, as the SQL filter reads it
        if statuses and status not in statuses:
            return False
        if flt.due_before is not None and (task.due is None or task.due > flt.due_before):
            return False
        if flt.due_after is not None and (task.due is None or task.due < flt.due_after):
            return False
        if flt.overdue is not None and flt.overdue != overdue_on(task.due, status, as_of):
            return False
        if needle is not None:
            title, text = task.title or "", task.text
            if caseless:
                title, text = _ascii_lower(title), _ascii_lower(text)
            if needle not in text and not (task.title is not None and needle in title):
                return False
        return not lights or row.view.light in lights

    return matches


@dataclass
class RowPage:
    rows: list[Row]
    page: TaskPage  # the same page as views (with `matched` attached when filtered by unit)


def answer(
    *,
    session: Session,
    lookups: Lookups,
    pictures: Sequence[Picture],
    flt: TaskFilter,
    sort: TaskSort,
    limit: int,
    cursor: str | None,
    count: bool,
) -> RowPage:
    """One page of the list, as `tasks.query_tasks` would give it."""
    after = decode_cursor(sort, cursor) if cursor else None
    groups = lookups.scope_units(flt.unit.unit, flt.include_groups) if flt.unit is not None else None
    matches = _matcher(session, flt, groups)
    matched = [
        row
        for picture in pictures
        if flt.jurisdiction_ids is None or picture.jurisdiction_id in flt.jurisdiction_ids
        for row in picture.candidates(set(groups) if groups is not None else None)
        if matches(row)
    ]
    base = sort.value.lstrip("-")
    descending = sort.value.startswith("-")
    ordered = sorted(matched, key=lambda row: row.sort_keys[base], reverse=descending)
    if after is not None:
        bound = tuple(after)
        ordered = [r for r in ordered if (r.sort_keys[base] < bound if descending else r.sort_keys[base] > bound)]
    rows = ordered[:limit]
    next_cursor = encode_cursor(sort, rows[-1].view.task) if len(ordered) > limit else None
    views = [replace(row.view) for row in rows]  # a copy: `matched` is this request's
    if groups is not None:
        attach_matches(views, flt, groups)
    return RowPage(
        rows=rows, page=TaskPage(items=views, next_cursor=next_cursor, total=len(matched) if count else None)
    )
