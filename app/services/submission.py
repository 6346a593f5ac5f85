"""Submitting progress reports — one, or a batch of up to 500 — as one set-based unit of work.

A single report is a batch of one, so both paths obey the same rules in the same order:

1. the tasks are locked, in id order (two batches can never deadlock on them);
2. per report: an `idempotency_key` seen before replays the original answer; otherwise the
   precondition (If-Match), the permission rule and the period are checked — a report that fails
   gets its problem and writes nothing;
3. the accepted reports are written together: one INSERT of the reports, one upsert of the owner
   units' states, one status derivation per task (`progress.derive_task_state`), their events.

Flushes only; the caller commits (or rolls back an all-or-nothing batch).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from sqlmodel import Session, col, select

from app.db import dialect_insert
from app.errors import NotFound, ProblemError
from app.models import Plan, ProgressReport, ReportKind, Task, TaskStatus, TaskUnitState, Unit
from app.schemas.progress import ProgressCreate, ProgressOut
from app.services import idempotency
from app.services.feed import record_event
from app.services.keys import Principal
from app.services.permissions import Permission, load_facts
from app.services.progress import check_period, derive_task_state, report_out, slot_states


@dataclass
class Submission:
    index: int
    code: str
    data: ProgressCreate
    idempotency_key: str | None = None


@dataclass
class Outcome:
    index: int
    code: str
    report: ProgressOut | None = None
    replayed: bool = False
    problem: ProblemError | None = None


@dataclass
class _Accepted:
    submission: Submission
    task: Task
    granted: Permission
    claim: idempotency.Claim | None


def submit(
    *,
    session: Session,
    plan: Plan,
    principal: Principal,
    submissions: list[Submission],
    remote_addr: str | None,
    precondition: Callable[[Task], None] | None = None,
) -> list[Outcome]:
    outcomes = [Outcome(index=s.index, code=s.code) for s in submissions]
    tasks = _lock_tasks(session, plan, {s.code for s in submissions})
    facts = load_facts(session=session, tasks=list(tasks.values()), principal=principal)
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
                raise idempotency.IdempotencyKeyReused.for_key(claim.key)
            if claim is not None and claim.replay_response is not None:
                outcome.report, outcome.replayed = ProgressOut.model_validate_json(claim.replay_response), True
                continue
            if precondition is not None:
                precondition(task)
            granted = facts.decide(task)
            check_period(plan, submission.data)
            accepted.append((_Accepted(submission, task, granted, claim), outcome))
        except ProblemError as exc:
            outcome.problem = exc
            if claim is not None and claim.replay_response is None and not claim.reused:
                refused.append(claim)

    idempotency.release(session=session, claims=refused)
    if accepted:
        _write(session, plan, principal, accepted, remote_addr)
    for index, original in repeats.items():
        outcome, answer = by_index[index], by_index[original.index]
        if hashes[index] != hashes[original.index]:
            outcome.problem = idempotency.IdempotencyKeyReused.for_key(original.idempotency_key or "")
        elif answer.problem is not None:
            outcome.problem = answer.problem
        else:
            outcome.report, outcome.replayed = answer.report, True
    return outcomes


def _lock_tasks(session: Session, plan: Plan, codes: set[str]) -> dict[str, Task]:
    # Row locks on PostgreSQL, taken in id order; SQLite's writers are serialized already.
    rows = session.exec(
        select(Task).where(Task.plan_id == plan.id, col(Task.code).in_(codes)).order_by(col(Task.id)).with_for_update()
    )
    return {task.code: task for task in rows}


def _write(
    session: Session, plan: Plan, principal: Principal, accepted: list[tuple[_Accepted, Outcome]], remote: str | None
) -> None:
    unit_id = principal.unit.id if principal.unit is not None else None
    assert principal.key.id is not None
    reports = [
        ProgressReport(
            task_id=item.task.id or 0,
            unit_id=unit_id,
            via_unit_id=item.granted.via_unit_id,
            api_key_id=principal.key.id,
            kind=item.granted.kind,
            status=item.submission.data.status,
            percent=item.submission.data.percent,
            summary=item.submission.data.summary,
            period=item.submission.data.period,
            evidence=json.dumps(item.submission.data.evidence, ensure_ascii=False),
        )
        for item, _ in accepted
    ]
    session.add_all(reports)
    session.flush()  # one multi-row INSERT … RETURNING id

    tasks = {item.task.id: item.task for item, _ in accepted}
    before = {task_id: (task.status, task.progress) for task_id, task in tasks.items()}
    _record_unit_states(session, [(item, report) for (item, _), report in zip(accepted, reports, strict=True)])
    _settle_tasks(session, [(item, report) for (item, _), report in zip(accepted, reports, strict=True)])

    vias = {u.id: u for u in session.exec(select(Unit).where(col(Unit.id).in_({r.via_unit_id for r in reports})))}
    last_report: dict[int | None, ProgressReport] = {}
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
        if item.claim is not None:
            answers.append((item.claim, 201, outcome.report.model_dump_json()))
        record_event(
            session=session,
            principal=principal,
            remote_addr=remote,
            plan_id=plan.id,
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
            },
        )
    idempotency.complete(session=session, answers=answers)
    for task_id, task in tasks.items():
        if (task.status, task.progress) != before[task_id]:
            record_event(
                session=session,
                principal=principal,
                remote_addr=remote,
                plan_id=plan.id,
                type="task.status_changed",
                task_id=task_id,
                report_id=last_report[task_id].id,
                data={"task": task.code, "from": before[task_id][0], "to": task.status, "progress": task.progress},
            )


def _record_unit_states(session: Session, written: list[tuple[_Accepted, ProgressReport]]) -> None:
    """Each owner unit's latest state per task, as one multi-row upsert (the last report wins)."""
    latest: dict[tuple[int, int], dict[str, object]] = {}
    for item, report in written:
        if item.granted.kind == ReportKind.status:
            assert report.unit_id is not None
            latest[(report.task_id, report.unit_id)] = {
                "task_id": report.task_id,
                "unit_id": report.unit_id,
                "via_unit_id": report.via_unit_id,
                "status": report.status,
                "percent": report.percent,
                "period": report.period,
                "report_id": report.id,
                "updated_at": report.created_at,
            }
    if not latest:
        return
    upsert = dialect_insert(session)(TaskUnitState).values(list(latest.values()))
    changed = ("via_unit_id", "status", "percent", "period", "report_id", "updated_at")
    session.exec(
        upsert.on_conflict_do_update(
            index_elements=["task_id", "unit_id"], set_={name: upsert.excluded[name] for name in changed}
        )
    )


def _settle_tasks(session: Session, written: list[tuple[_Accepted, ProgressReport]]) -> None:
    """Each touched task takes the state its last status-moving report gives it: derived from the
    owners' states, or set by an admin correction."""
    last: dict[int, tuple[_Accepted, ProgressReport]] = {}
    for item, report in written:
        if item.granted.kind != ReportKind.contribution:
            last[report.task_id] = (item, report)
    states = slot_states(session, list(last))
    for task_id, (item, report) in last.items():
        task = item.task
        if item.granted.kind == ReportKind.correction:
            task.status, task.progress = TaskStatus(item.submission.data.status), item.submission.data.percent
        else:
            task.status, task.progress = derive_task_state(list(item.granted.owner_slots), states.get(task_id, {}))
        task.updated_at = report.created_at
        session.add(task)
