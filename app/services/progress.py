"""Progress reports: combining the owner slots' states into a task's state, and reading the history.
Writing them is `app/services/submission.py`.

Which report counts and which period gives an owner its state (versions, withdrawal, review, latest
period rather than latest arrival, admin corrections) is stated in `app/services/cycle.py`; the
derived state (`task_unit_state`, `task.status/progress`) is kept by `app/services/derivation.py`,
so reads never scan the history.

How the slots combine (`derive_task_state`): each lead/responsible link of the task is an owner
*slot*. No slot reported → `not_started`. Any slot `delayed` → `delayed`. Every slot reported and
all `completed` → `completed`; all `completed` or `ongoing` (常态化) → `ongoing`. Otherwise, once any
slot has moved past `not_started` → `in_progress`. `progress` is the mean of the slots' percents, a
slot that has not reported counting 0.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from app.models import (
    ApiKey,
    Plan,
    ProgressReport,
    ReportKind,
    ReviewState,
    Task,
    TaskStatus,
    Unit,
    UnitKind,
)
from app.schemas.progress import ProgressOut, ReviewOut
from app.schemas.unit import UnitRef
from app.services import units as unit_service
from app.services.feed import PUBLIC_ADMIN_ACTOR

if TYPE_CHECKING:  # the write path's new reports; it imports this module
    from app.services.submission import NewReport


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


@dataclass(frozen=True)
class ReportFilter:
    """Which reports a history reads: every field set narrows it. `until`/`after`: sent by / after
    then; `unit_ids`: only these units' reports (a group's members)."""

    task_id: int | None = None
    unit_id: int | None = None
    period: str | None = None
    kind: ReportKind | None = None
    review: ReviewState | None = None
    plan_id: int | None = None
    until: datetime | None = None
    after: datetime | None = None
    unit_ids: Collection[int] | None = None

    def apply(self, query: Any) -> Any:
        if self.until is not None:
            query = query.where(col(ProgressReport.created_at) <= self.until)
        if self.after is not None:
            query = query.where(col(ProgressReport.created_at) > self.after)
        if self.unit_ids is not None:
            query = query.where(col(ProgressReport.unit_id).in_(self.unit_ids))
        if self.plan_id is not None:
            query = query.join(Task, col(Task.id) == col(ProgressReport.task_id)).where(Task.plan_id == self.plan_id)
        if self.review is not None:
            query = query.where(ProgressReport.review_state == self.review)
        if self.task_id is not None:
            query = query.where(ProgressReport.task_id == self.task_id)
        if self.unit_id is not None:
            query = query.where(ProgressReport.unit_id == self.unit_id)
        if self.period is not None:
            query = query.where(ProgressReport.period == self.period)
        if self.kind is not None:
            query = query.where(ProgressReport.kind == self.kind)
        return query


def list_reports(
    *, session: Session, flt: ReportFilter, before_id: int | None = None, limit: int = 50
) -> list[ProgressReport]:
    """Newest first; `before_id` is the keyset cursor."""
    query = flt.apply(select(ProgressReport))
    if before_id is not None:
        query = query.where(col(ProgressReport.id) < before_id)
    return list(session.exec(query.order_by(col(ProgressReport.id).desc()).limit(limit)))


def count_reports(*, session: Session, flt: ReportFilter) -> int:
    """How many reports `list_reports` pages through with the same filter (`count=true`)."""
    return int(session.exec(flt.apply(select(func.count(col(ProgressReport.id))))).one())


def present_reports(
    *, session: Session, reports: list[ProgressReport], public: bool = False, own_key_id: int | None = None
) -> list[ProgressOut]:
    """Reports with their plan, task, units and key, loaded in a fixed number of queries. `public`:
    as anyone may read them, `submitted_by` without the key's prefix or an admin key's name — except
    the reports sent with `own_key_id` (the reader's own key)."""
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
        shown = report_out(r, plan_slug=slug, task_code=task.code, unit=unit, via=via, key=keys[r.api_key_id])
        if public and r.api_key_id != own_key_id:
            shown.submitted_by = unit.name if unit else PUBLIC_ADMIN_ACTOR
        out.append(shown)
    return out


def report_out(
    report: ProgressReport | NewReport,
    *,
    plan_slug: str,
    task_code: str,
    unit: Unit | None,
    via: Unit | None,
    key: ApiKey,
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
        supersedes=report.supersedes_id,
        superseded_by=report.superseded_by_id,
        current=report.superseded_by_id is None and report.withdrawn_at is None,
        withdrawn_at=report.withdrawn_at,
        withdrawn_reason=report.withdrawn_reason,
        review=ReviewOut(state=report.review_state, reviewed_at=report.reviewed_at, reason=report.review_reason),
    )


def reporting_units(*, session: Session, unit: Unit) -> set[int]:
    """A unit, or a group's members: whose reports a `unit=` filter on a plan's reports reads (as the
    duties list reads a group)."""
    assert unit.id is not None
    if unit.kind == UnitKind.group:
        return {m.id for m in unit_service.members_of(session=session, group_id=unit.id) if m.id is not None}
    return {unit.id}
