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
Its state and its events commit together, and one watch runs at a time (PostgreSQL: an advisory
lock, skipped when another worker holds it; SQLite: the single writer).
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from app.core.config import Settings
from app.db import writing
from app.models import DutyMissingSeen, Plan, TaskLightSeen, utcnow
from app.services.cycle import end_of_day
from app.services.duties import DutyState, compute_duties, latest_closed_period, load_facts_for_today
from app.services.feed import record_event
from app.services.supervision import current_owner_states, pictures, unit_name

WATCH_LOCK_ID = 7_012_202_611  # any constant, distinct from the startup lock


def county_today(settings: Settings) -> date:
    return datetime.now(ZoneInfo(settings.timezone)).date()


def watch(*, engine: Engine, settings: Settings) -> int:
    """One look at every plan as of today; returns the number of events recorded."""
    today = county_today(settings)
    with writing(engine) as session:
        if session.get_bind().dialect.name == "postgresql":
            got = session.execute(text("SELECT pg_try_advisory_xact_lock(:id)"), {"id": WATCH_LOCK_ID}).scalar_one()
            if not got:
                return 0
        recorded = sum(
            _watch_plan(session=session, plan=plan, today=today, settings=settings)
            for plan in session.exec(select(Plan).order_by(col(Plan.id)))
        )
        session.commit()
        return recorded


def _watch_plan(*, session: Session, plan: Plan, today: date, settings: Settings) -> int:
    assert plan.id is not None
    # Today's facts only (the report groups the lights and the latest closed period's duties judge),
    # as a list for today reads them: the whole history would be every report of the plan, every
    # WEBHOOK_WATCH_SECONDS, in every worker (434 MiB at 10^6 reports).
    facts = load_facts_for_today(
        session=session,
        cutoff=end_of_day(today, settings.timezone),
        plan_ids={plan.id},
        task_ids=None,
        as_of=today,
        tz=settings.timezone,
    )
    current = current_owner_states(session=session, task_ids=list(facts.tasks))
    pics = pictures(facts, as_of=today, settings=settings, current=current)
    seen = {row.task_id: row for row in session.exec(select(TaskLightSeen).where(col(TaskLightSeen.task_id).in_(pics)))}
    recorded = 0
    now = utcnow()
    for task_id, picture in pics.items():
        light = str(picture.light)
        before = seen.get(task_id)
        if before is not None and before.light == light:
            continue
        if before is not None:
            record_event(
                session=session,
                type="task.light_changed",
                principal=None,
                actor="supervision-watch",
                remote_addr=None,
                plan_id=plan.id,
                task_id=task_id,
                data={
                    "task": facts.tasks[task_id].code,
                    "from": before.light,
                    "to": light,
                    "reasons": [r.rule for r in picture.reasons],
                    "as_of": today.isoformat(),
                },
            )
            recorded += 1
        row = before or TaskLightSeen(task_id=task_id, light=light)
        row.light, row.seen_at = light, now
        session.add(row)
    closed = latest_closed_period(facts, plan.id, today)
    if closed is None:
        return recorded
    noted = {
        (r.task_id, r.unit_id)
        for r in session.exec(
            select(DutyMissingSeen).where(
                DutyMissingSeen.period == closed.label, col(DutyMissingSeen.task_id).in_(list(facts.tasks))
            )
        )
    }
    for duty in compute_duties(facts, as_of=today, tz=settings.timezone, periods={closed.label}):
        if duty.state != DutyState.missing or (duty.task_id, duty.unit_id) in noted:
            continue
        session.add(DutyMissingSeen(task_id=duty.task_id, unit_id=duty.unit_id, period=closed.label, seen_at=now))
        record_event(
            session=session,
            type="duty.missing",
            principal=None,
            actor="supervision-watch",
            remote_addr=None,
            plan_id=plan.id,
            task_id=duty.task_id,
            unit_id=duty.unit_id,
            data={
                "task": facts.tasks[duty.task_id].code,
                "unit": unit_name(facts, duty.unit_id),
                "period": closed.label,
                "deadline": duty.deadline.isoformat(),
            },
        )
        recorded += 1
    return recorded
