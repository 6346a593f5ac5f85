"""The supervision watch: turns what time alone changes into change-feed events, so webhooks (and
feed readers) hear of it.

Lights and missing duties are derived, as of a day, from the reports and the calendar
(`app/services/supervision.py`, `app/services/duties.py`); no write happens when a deadline passes.
The watch, run by the webhook worker every WEBHOOK_WATCH_SECONDS, looks at every plan as of the
county's today and records:
- `task.light_changed` when a task's light differs from the one the watch last saw (`data`: from, to,
  reasons). The first look at a task only notes its light: a change is against something seen;
- `duty.missing` once for each duty of a plan's latest closed period that is missing after its
  deadline (`data`: task, unit, period, deadline).
Each plan is looked at on a read session (the facts, owner states, lights and duties: every query
that reads many rows), then its state and its events commit together in a short write transaction
that writes only what differs from the seen rows it re-reads: the writer (SQLite's single writer
and this process's writer lock) is never held while the watch computes. One watch runs at a time on
PostgreSQL: a session-level advisory lock, taken on the read connection before anything is computed
and held to the last write, so a worker that does not get it skips the round without computing;
on SQLite, watchers in several processes may compute side by side, and their writes queue.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, col, select

from app.core.config import Settings
from app.db import writing
from app.models import DutyMissingSeen, Plan, Task, TaskLightSeen, utcnow
from app.services.cycle import end_of_day
from app.services.duties import DutyState, compute_duties, latest_closed_period, load_facts_for_today
from app.services.feed import record_event
from app.services.supervision import current_owner_states, pictures, unit_name

WATCH_LOCK_ID = 7_012_202_611  # any constant, distinct from the startup lock


def county_today(settings: Settings) -> date:
    return datetime.now(ZoneInfo(settings.timezone)).date()


@dataclass(frozen=True)
class Light:
    code: str
    light: str
    reasons: list[str]


@dataclass(frozen=True)
class Missing:
    task_id: int
    unit_id: int
    data: dict[str, str]  # the event's: task, unit, period, deadline


@dataclass(frozen=True)
class Look:
    """One plan as the watch saw it: what the write compares with the seen rows (a few values per
    task, not the facts they came from)."""

    plan_id: int
    looked_at: datetime  # before its first read: a seen row stamped later was noted from later data
    lights: dict[int, Light]  # task id → its light today
    closed: str | None  # the latest closed period
    missing: list[Missing]  # its duties missing after their deadline


def watch(*, engine: Engine, settings: Settings) -> int:
    """One look at every plan as of today; returns the number of events recorded."""
    today = county_today(settings)
    with _one_watcher(engine) as connection:
        if connection is None:
            return 0  # another worker is watching (PostgreSQL)
        with Session(connection) as reading:
            plan_ids = list(reading.exec(select(Plan.id).order_by(col(Plan.id))))
        recorded = 0
        for plan_id in plan_ids:
            assert plan_id is not None
            with Session(connection) as reading:  # one plan's facts in memory at a time, as before
                look = _look(session=reading, plan_id=plan_id, today=today, settings=settings)
            with writing(engine) as session:
                recorded += _note(session=session, look=look, today=today)
                session.commit()
        return recorded


@contextmanager
def _one_watcher(engine: Engine) -> Iterator[Connection | None]:
    """The round's read connection, or None when another watcher holds the lock (PostgreSQL).

    The lock is session-level, not `pg_try_advisory_xact_lock` in the write transaction: taken before
    the first read, a worker that loses the race skips the whole computation instead of wasting it."""
    with engine.connect() as connection:
        if connection.dialect.name != "postgresql":
            yield connection
            return
        got = connection.execute(text("SELECT pg_try_advisory_lock(:id)"), {"id": WATCH_LOCK_ID}).scalar_one()
        connection.commit()  # the lock outlives the transaction; no snapshot is kept open meanwhile
        if not got:
            yield None
            return
        try:
            yield connection
        finally:
            try:
                connection.rollback()
                connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": WATCH_LOCK_ID})
                connection.commit()
            except BaseException:
                # Never back to the pool holding the lock: closed, the server releases it.
                connection.invalidate()
                raise


def _look(*, session: Session, plan_id: int, today: date, settings: Settings) -> Look:
    looked_at = utcnow()
    # Today's facts only (the report groups the lights and the latest closed period's duties judge),
    # as a list for today reads them: the whole history would be every report of the plan, every
    # WEBHOOK_WATCH_SECONDS, in every worker (434 MiB at 10^6 reports).
    facts = load_facts_for_today(
        session=session,
        cutoff=end_of_day(today, settings.timezone),
        plan_ids={plan_id},
        task_ids=None,
        as_of=today,
        tz=settings.timezone,
    )
    current = current_owner_states(session=session, task_ids=list(facts.tasks))
    lights = {
        task_id: Light(facts.tasks[task_id].code, str(picture.light), [r.rule for r in picture.reasons])
        for task_id, picture in pictures(facts, as_of=today, settings=settings, current=current).items()
    }
    closed = latest_closed_period(facts, plan_id, today)
    if closed is None:
        return Look(plan_id, looked_at, lights, None, [])
    missing = [
        Missing(
            duty.task_id,
            duty.unit_id,
            {
                "task": facts.tasks[duty.task_id].code,
                "unit": unit_name(facts, duty.unit_id),
                "period": closed.label,
                "deadline": duty.deadline.isoformat(),
            },
        )
        for duty in compute_duties(facts, as_of=today, tz=settings.timezone, periods={closed.label})
        if duty.state == DutyState.missing
    ]
    return Look(plan_id, looked_at, lights, closed.label, missing)


def _note(*, session: Session, look: Look, today: date) -> int:
    """Writes what `look` saw that the seen rows do not hold yet, with its events.

    The seen rows are read here, in the write transaction, not with the facts: two watchers may have
    computed side by side (two processes on SQLite), and only what is read under the writer includes
    what the other one has just committed. So a duty is recorded missing once, a light change the
    other one already recorded is not recorded again, and an older look never undoes a newer one
    (a `from` the newer one's light, a `to` the light it had replaced)."""
    # A task the look saw may have been dropped since by a re-import (its seen rows cascade with it).
    alive = set(session.exec(select(Task.id).where(col(Task.id).in_(list(look.lights)))))
    seen = {
        row.task_id: row
        for row in session.exec(select(TaskLightSeen).where(col(TaskLightSeen.task_id).in_(list(look.lights))))
    }
    recorded = 0
    for task_id, now in look.lights.items():
        before = seen.get(task_id)
        if task_id not in alive:
            continue
        if before is not None and (before.light == now.light or before.seen_at > look.looked_at):
            continue  # unchanged, or already noted by a look newer than this one
        if before is not None:
            record_event(
                session=session,
                type="task.light_changed",
                principal=None,
                actor="supervision-watch",
                remote_addr=None,
                plan_id=look.plan_id,
                task_id=task_id,
                data={
                    "task": now.code,
                    "from": before.light,
                    "to": now.light,
                    "reasons": now.reasons,
                    "as_of": today.isoformat(),
                },
            )
            recorded += 1
        row = before or TaskLightSeen(task_id=task_id, light=now.light)
        row.light, row.seen_at = now.light, look.looked_at
        session.add(row)
    if look.closed is None:
        return recorded
    noted = {
        (r.task_id, r.unit_id)
        for r in session.exec(
            select(DutyMissingSeen).where(
                DutyMissingSeen.period == look.closed, col(DutyMissingSeen.task_id).in_(list(look.lights))
            )
        )
    }
    now_utc = utcnow()
    for duty in look.missing:
        if (duty.task_id, duty.unit_id) in noted or duty.task_id not in alive:
            continue
        session.add(DutyMissingSeen(task_id=duty.task_id, unit_id=duty.unit_id, period=look.closed, seen_at=now_utc))
        record_event(
            session=session,
            type="duty.missing",
            principal=None,
            actor="supervision-watch",
            remote_addr=None,
            plan_id=look.plan_id,
            task_id=duty.task_id,
            unit_id=duty.unit_id,
            data=duty.data,
        )
        recorded += 1
    return recorded
