"""Submitting progress reports — one, or a batch of up to 500 — as one set-based unit of work.

A single report is a batch of one, so both paths obey the same rules in the same order:

1. the tasks are locked, in id order (two batches can never deadlock on them);
2. per report: an `idempotency_key` seen before replays the original answer (and creates no
   version); otherwise the precondition (If-Match), the permission rule and the period
   (`schedule.check_report_period`) are checked — a report that fails gets its problem and writes
   nothing;
3. the accepted reports are written together: one INSERT of the reports (`pending` when the
   schedule asks for review, except admin corrections) carrying their links to the versions they
   supersede (`_insert_versions`), one re-derivation of the touched tasks by the rule in
   `app/services/cycle.py` (`derivation.rederive`), their events.

Set-based Core statements, most built once at import (tests/services/test_submission.py bounds
their number); SQLModel stays the schema. Flushes only; the caller's `Writes.run` commits (or rolls
back an all-or-nothing batch).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import bindparam, insert, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from app.errors import IdempotencyKeyReused, NotFound, ProblemError
from app.models import Plan, ProgressReport, ReportKind, ReviewState, Task, TaskStatus, Unit, utcnow
from app.schemas.progress import ProgressCreate, ProgressOut
from app.services import derivation, idempotency
from app.services.feed import record_event, run_core
from app.services.keys import Principal
from app.services.permissions import Permission, load_facts
from app.services.progress import report_out
from app.services.schedule import check_report_period, get_schedule


@dataclass
class Submission:
    index: int
    code: str
    data: ProgressCreate
    idempotency_key: str | None = None
    path: str = "body"  # where the report sits in the request body, for field paths (`body.items.3`)


@dataclass
class Outcome:
    index: int
    code: str
    report: ProgressOut | None = None
    body: str | None = None  # the report as JSON: the response, and (a new report's) what a replay answers
    replayed: bool = False
    problem: ProblemError | None = None


@dataclass
class LockedTask:
    """A task's row as the report path reads it, locked: no entity (loading one through the ORM cost
    more than the rest of the lookup); `derivation.rederive` sets its state and date."""

    id: int
    plan_id: int
    code: str
    status: TaskStatus
    progress: int
    updated_at: datetime


@dataclass
class NewReport:
    """A report as the write path builds it: the columns of `progress_report`, never an ORM entity
    (building one cost more than inserting it). `_insert_versions` sets its id and version links."""

    task_id: int
    unit_id: int | None
    via_unit_id: int | None
    api_key_id: int
    kind: ReportKind
    status: str
    percent: int
    summary: str
    period: str
    evidence: str
    review_state: ReviewState
    created_at: datetime = field(default_factory=utcnow)
    id: int | None = None
    supersedes_id: int | None = None
    superseded_by_id: int | None = None
    withdrawn_at: datetime | None = None
    withdrawn_reason: str | None = None
    reviewed_at: datetime | None = None
    review_reason: str | None = None
    reviewed_by_key_id: int | None = None

    def row(self) -> dict[str, object]:
        """The INSERT's parameters: every column but the id."""
        return {name: getattr(self, name) for name in _INSERTED}


@dataclass
class _Accepted:
    submission: Submission
    task: LockedTask
    granted: Permission
    claim: idempotency.Claim | None


def submit(
    *,
    session: Session,
    plan: Plan,
    principal: Principal,
    submissions: list[Submission],
    remote_addr: str | None,
    precondition: Callable[[LockedTask], None] | None = None,
) -> list[Outcome]:
    outcomes = [Outcome(index=s.index, code=s.code) for s in submissions]
    schedule = get_schedule(session=session, plan=plan)
    tasks = _lock_tasks(session, plan, {s.code for s in submissions})
    facts = load_facts(session=session, tasks=list(tasks.values()), principal=principal, plan=plan)
    assert principal.key.id is not None

    # A key used twice in one batch: the second is a retry of the first, answered after the write.
    hashes = {
        s.index: idempotency.fingerprint(f"{plan.slug}/{s.code}", s.data.model_dump(mode="json"))
        for s in submissions
        if s.idempotency_key is not None
    }
    first: dict[str, Submission] = {}
    repeats: dict[int, Submission] = {}
    for s in submissions:
        key = s.idempotency_key
        if key is not None and key in first:
            repeats[s.index] = first[key]
        elif key is not None:
            first[key] = s
    claims = idempotency.claim(
        session=session, api_key_id=principal.key.id, requests={k: hashes[s.index] for k, s in first.items()}
    )

    accepted: list[tuple[_Accepted, Outcome]] = []
    refused: list[idempotency.Claim] = []
    by_index = {o.index: o for o in outcomes}
    for submission, outcome in zip(submissions, outcomes, strict=True):
        if submission.index in repeats:
            continue
        claim = claims.get(submission.idempotency_key) if submission.idempotency_key is not None else None
        try:
            task = tasks.get(submission.code)
            if task is None:
                raise NotFound(f"方案 {plan.slug} 中没有编号为 {submission.code} 的任务 / no task {submission.code!r}")
            if claim is not None and claim.reused:
                raise IdempotencyKeyReused.for_key(claim.key)
            if claim is not None and claim.replay_response is not None:
                # Read back through the model, so an answer stored by an older release has today's shape.
                outcome.report = ProgressOut.model_validate_json(claim.replay_response)
                outcome.body, outcome.replayed = outcome.report.model_dump_json(), True
                continue
            if precondition is not None:
                precondition(task)
            granted = facts.decide(task)
            check_report_period(
                plan=plan, schedule=schedule, period=submission.data.period, field=f"{submission.path}.period"
            )
            accepted.append((_Accepted(submission, task, granted, claim), outcome))
        except ProblemError as exc:
            outcome.problem = exc
            if claim is not None and claim.replay_response is None and not claim.reused:
                refused.append(claim)

    idempotency.release(session=session, claims=refused)
    if accepted:
        _write(session, plan, principal, accepted, remote_addr, reviewed=schedule.review_required)
    for index, original in repeats.items():
        outcome, answer = by_index[index], by_index[original.index]
        if hashes[index] != hashes[original.index]:
            outcome.problem = IdempotencyKeyReused.for_key(original.idempotency_key or "")
        elif answer.problem is not None:
            outcome.problem = answer.problem
        else:
            outcome.report, outcome.body, outcome.replayed = answer.report, answer.body, True
    return outcomes


def _lock_tasks(session: Session, plan: Plan, codes: set[str]) -> dict[str, LockedTask]:
    # Row locks on PostgreSQL, taken in id order; SQLite's writers are serialized already.
    rows = run_core(session, _LOCK_TASKS, {"plan_id": plan.id, "codes": sorted(codes)})
    return {
        code: LockedTask(id, plan_id, code, TaskStatus(status), progress, updated_at)
        for id, plan_id, code, status, progress, updated_at in rows
    }


def _write(
    session: Session,
    plan: Plan,
    principal: Principal,
    accepted: list[tuple[_Accepted, Outcome]],
    remote: str | None,
    *,
    reviewed: bool,
) -> None:
    unit_id = principal.unit.id if principal.unit is not None else None
    assert principal.key.id is not None
    reports = [
        NewReport(
            task_id=item.task.id,
            unit_id=unit_id,
            via_unit_id=item.granted.via_unit_id,
            api_key_id=principal.key.id,
            kind=item.granted.kind,
            status=item.submission.data.status,
            percent=item.submission.data.percent,
            summary=item.submission.data.summary,
            period=item.submission.data.period,
            evidence=json.dumps(item.submission.data.evidence, ensure_ascii=False),
            review_state=(
                ReviewState.pending
                if reviewed and item.granted.kind != ReportKind.correction
                else ReviewState.not_required
            ),
        )
        for item, _ in accepted
    ]
    _insert_versions(session, reports)

    moving = {item.task.id: item for item, _ in accepted if item.granted.kind != ReportKind.contribution}
    changes, _ = derivation.rederive(
        session,
        [item.task for item in moving.values()],
        slots={task_id: list(item.granted.owner_slots) for task_id, item in moving.items()},
        updated_at={r.task_id: r.created_at for r in reports if r.kind != ReportKind.contribution},
    )

    vias: dict[int | None, Unit | None] = {unit_id: principal.unit}
    others = {r.via_unit_id for r in reports} - set(vias)  # a group the unit reports through
    if others:
        vias.update((u.id, u) for u in session.exec(select(Unit).where(col(Unit.id).in_(others))))
    last_report: dict[int | None, NewReport] = {}
    answers: list[tuple[idempotency.Claim, int, str]] = []
    for (item, outcome), report in zip(accepted, reports, strict=True):
        last_report[report.task_id] = report
        outcome.report = report_out(
            report,
            plan_slug=plan.slug,
            task_code=item.task.code,
            unit=principal.unit,
            via=vias.get(report.via_unit_id),
            key=principal.key,
        )
        outcome.body = outcome.report.model_dump_json()
        if item.claim is not None:
            answers.append((item.claim, 201, outcome.body))
    # The answers before the events: this UPDATE would flush them, and an event flushed before the
    # commit is written twice (inserted, then numbered); added last, the commit inserts it numbered.
    idempotency.complete(session=session, answers=answers)
    for (item, _), report in zip(accepted, reports, strict=True):
        record_event(
            session=session,
            principal=principal,
            remote_addr=remote,
            plan_id=plan.id,
            jurisdiction_id=plan.jurisdiction_id,  # the plan is a remembered copy, not in this session
            type="report.created",
            task_id=report.task_id,
            unit_id=report.unit_id,
            report_id=report.id,
            data={
                "task": item.task.code,
                "kind": report.kind,
                "status": report.status,
                "percent": report.percent,
                "period": report.period,
                "supersedes": report.supersedes_id,
                "review": report.review_state,
            },
        )
    record_status_changes(
        session=session,
        plan=plan,
        principal=principal,
        remote_addr=remote,
        changes=changes,
        report_ids={task_id: r.id for task_id, r in last_report.items()},
    )


def record_status_changes(
    *,
    session: Session,
    plan: Plan,
    principal: Principal | None,
    remote_addr: str | None,
    changes: list[derivation.Change],
    report_ids: dict[int | None, int | None],
) -> None:
    """A `task.status_changed` event for each task whose status or progress moved."""
    for change in changes:
        task = change.task
        record_event(
            session=session,
            principal=principal,
            remote_addr=remote_addr,
            plan_id=plan.id,
            jurisdiction_id=plan.jurisdiction_id,
            type="task.status_changed",
            task_id=task.id,
            report_id=report_ids.get(task.id),
            data={"task": task.code, "from": change.before[0], "to": task.status, "progress": task.progress},
        )


def _insert_versions(session: Session, reports: list[NewReport]) -> None:
    """Inserts the new reports, each superseding the head of its (task, unit, period) — the unit's
    earlier report, or for admin corrections the earlier correction — whether stored before or
    earlier in this batch. Core statements on the table (the reports never enter the unit of work):
    one query for the stored heads, one INSERT … RETURNING (the link to a stored head already in
    it), one executemany marking the superseded heads; a key repeated within a batch adds one more."""
    keys = {(r.task_id, r.unit_id, r.period) for r in reports}
    stored = run_core(
        session, _HEADS, {"task_ids": sorted({k[0] for k in keys}), "periods": sorted({k[2] for k in keys})}
    )
    heads: dict[tuple[int, int | None, str], int] = {}
    for report_id, task_id, unit_id, period in stored:
        key = (task_id, unit_id, period)
        if key in keys and report_id > heads.get(key, 0):
            heads[key] = report_id
    first: dict[tuple[int, int | None, str], NewReport] = {}
    for report in reports:
        first.setdefault((report.task_id, report.unit_id, report.period), report)
    for key, report in first.items():
        report.supersedes_id = heads.get(key)
    rows = [report.row() for report in reports]
    if session.get_bind().dialect.name == "sqlite":
        # Batched into multi-row INSERTs (asked to keep RETURNING in order, SQLAlchemy would send SQLite
        # one per row). Under the writer's lock SQLite gives the rows increasing rowids in the order
        # sent, so the sorted ids pair up with the rows.
        ids = sorted(run_core(session, _ADD_REPORTS_UNORDERED, rows).scalars())
    else:
        ids = list(run_core(session, _ADD_REPORTS, rows).scalars())
    for report, report_id in zip(reports, ids, strict=True):
        report.id = report_id

    superseded: list[dict[str, object]] = []  # (old, new): stored heads and earlier reports of this batch
    later: list[dict[str, object]] = []  # a report superseding one of this batch: its link, known only now
    new: dict[int | None, NewReport] = {r.id: r for r in reports}
    for report in reports:  # in arrival order: a later one in the batch supersedes an earlier one
        key = (report.task_id, report.unit_id, report.period)
        previous = heads.get(key)
        heads[key] = report.id or 0
        if previous is None:
            continue
        superseded.append({"old_id": previous, "new_id": report.id})
        if previous in new:
            new[previous].superseded_by_id = report.id
            report.supersedes_id = previous
            later.append({"new_id": report.id, "old_id": previous})
    if superseded:
        run_core(session, _MARK_SUPERSEDED, superseded)
    if later:
        run_core(session, _LINK_LATER, later)


# The write path's statements, built once (building and keying one costs more than SQLite's answer).
_REPORTS = ProgressReport.__table__  # type: ignore[attr-defined]
_INSERTED = tuple(c.name for c in _REPORTS.columns if c.name != "id")
_HEADS = sa_select(_REPORTS.c.id, _REPORTS.c.task_id, _REPORTS.c.unit_id, _REPORTS.c.period).where(
    _REPORTS.c.task_id.in_(bindparam("task_ids", expanding=True)),
    _REPORTS.c.period.in_(bindparam("periods", expanding=True)),
    _REPORTS.c.superseded_by_id.is_(None),
)
_TASKS = Task.__table__  # type: ignore[attr-defined]
_LOCK_TASKS = (
    sa_select(_TASKS.c.id, _TASKS.c.plan_id, _TASKS.c.code, _TASKS.c.status, _TASKS.c.progress, _TASKS.c.updated_at)
    .where(_TASKS.c.plan_id == bindparam("plan_id"), _TASKS.c.code.in_(bindparam("codes", expanding=True)))
    .order_by(_TASKS.c.id)
    .with_for_update()
)
_ADD_REPORTS = insert(_REPORTS).returning(_REPORTS.c.id, sort_by_parameter_order=True)
_ADD_REPORTS_UNORDERED = insert(_REPORTS).returning(_REPORTS.c.id)
_MARK_SUPERSEDED = (
    update(_REPORTS).where(_REPORTS.c.id == bindparam("old_id")).values(superseded_by_id=bindparam("new_id"))
)
_LINK_LATER = update(_REPORTS).where(_REPORTS.c.id == bindparam("new_id")).values(supersedes_id=bindparam("old_id"))
