"""A plan's reporting schedule, its calendar of periods, and the period rule a report must meet.

The rules themselves are stated in `app/services/cycle.py` (schedule) and `app/services/periods.py`
(period forms, calendar, deadline); this module reads and changes the schedule row and applies them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlmodel import Session

from app.errors import FieldError, PeriodRejected
from app.models import Plan, ReportingSchedule, utcnow
from app.models.base import detached_copy
from app.models.cycle import Cadence
from app.services import periods, structure_memo
from app.services.feed import record_event
from app.services.keys import Principal

CADENCE_ZH = {
    Cadence.monthly: "按月",
    Cadence.quarterly: "按季度",
    Cadence.half_yearly: "按半年",
    Cadence.yearly: "按年",
}
_EXAMPLES = {
    Cadence.monthly: "2023-07、2023-Q3、2023-H2、2023",
    Cadence.quarterly: "2023-Q4、2023-H2、2023",
    Cadence.half_yearly: "2023-H2、2023",
    Cadence.yearly: "2023",
}
SCHEDULE_FIELDS = ("cadence", "deadline_days", "cooperating_units_report", "review_required")


def get_schedule(*, session: Session, plan: Plan) -> ReportingSchedule:
    """The plan's schedule, to read (a copy bound to no session, remembered at the structure version;
    `set_schedule` changes the row itself); a plan imported before schedules existed reads as the defaults."""

    def load() -> ReportingSchedule:
        found = session.get(ReportingSchedule, plan.id)
        return detached_copy(found) if found is not None else ReportingSchedule(plan_id=plan.id or 0)

    return structure_memo.memo.recall(session, "schedule", plan.id, load)


def ensure_schedule(*, session: Session, plan: Plan) -> ReportingSchedule:
    """The plan's schedule row, created with the defaults (quarterly, 10 days, cooperating units owe
    nothing, no review) when it has none. The importer calls this for every plan it writes."""
    found = session.get(ReportingSchedule, plan.id)
    if found is None:
        assert plan.id is not None
        found = ReportingSchedule(plan_id=plan.id)
        session.add(found)
        session.flush()
    return found


def schedule_values(schedule: ReportingSchedule) -> dict[str, Any]:
    return {name: getattr(schedule, name) for name in SCHEDULE_FIELDS}


def set_schedule(
    *,
    session: Session,
    plan: Plan,
    values: dict[str, Any],
    principal: Principal | None,
    remote_addr: str | None,
    actor: str | None = None,
) -> ReportingSchedule:
    """Changes the given fields (already validated); records `schedule.changed` with from/to when
    anything changed. The API and the CLI both come through here."""
    ensure_schedule(session=session, plan=plan)
    # Locked and read afresh: two changes at once each record the true "from".
    schedule = session.get(ReportingSchedule, plan.id, with_for_update=True, populate_existing=True)
    assert schedule is not None
    before = schedule_values(schedule)
    after = {**before, **{k: v for k, v in values.items() if k in SCHEDULE_FIELDS}}
    if after == before:
        return schedule
    schedule.sqlmodel_update(after)
    schedule.updated_at = utcnow()
    session.add(schedule)
    changed = [name for name in SCHEDULE_FIELDS if before[name] != after[name]]
    record_event(
        session=session,
        type="schedule.changed",
        principal=principal,
        actor=actor,
        remote_addr=remote_addr,
        plan_id=plan.id,
        data={
            "changed": changed,
            "from": {name: before[name] for name in changed},
            "to": {name: after[name] for name in changed},
        },
    )
    session.flush()
    return schedule


@dataclass(frozen=True)
class PeriodRow:
    period: periods.Period
    deadline: date
    current: bool


def calendar(*, plan: Plan, schedule: ReportingSchedule, as_of: date) -> list[PeriodRow]:
    """The plan's periods at the schedule's cadence, within its term, marking the one holding `as_of`."""
    rows = periods.calendar(first_year=plan.period_start, last_year=plan.period_end, cadence=schedule.cadence)
    return [PeriodRow(p, p.deadline(schedule.deadline_days), p.contains(as_of)) for p in rows]


def check_report_period(*, plan: Plan, schedule: ReportingSchedule, period: str, field: str) -> None:
    """A report's period: canonical, at the plan's cadence or coarser, within the term (or the year
    after, for the final evaluation). 422 naming `field` otherwise."""
    try:
        parsed = periods.parse_period(period)
    except periods.PeriodError as exc:
        raise PeriodRejected(
            str(exc), errors=[FieldError(field=field, message=str(exc), type="period_format")]
        ) from None
    cadence = Cadence(schedule.cadence)
    if not periods.fits_cadence(parsed, cadence):
        message = (
            f"报告期 {period} 比方案的报送周期({CADENCE_ZH[cadence]})更细;应报送如 {_EXAMPLES[cadence]} 的报告期"
            f" / period {period} is finer than the plan's {cadence.value} cadence"
        )
        raise PeriodRejected(message, errors=[FieldError(field=field, message=message, type="period_cadence")])
    if plan.period_start is None or plan.period_end is None:
        return  # an open-term plan: any period at its cadence
    if not plan.period_start <= parsed.start.year <= plan.period_end + 1:
        raise PeriodRejected(
            f"报告期 {period} 不在方案实施期 {plan.period_start}–{plan.period_end}(及次年终期评估)内 / "
            "period outside the plan",
            errors=[
                FieldError(
                    field=field,
                    message=f"应在 {plan.period_start} 至 {plan.period_end + 1} 年之间",
                    type="period_out_of_range",
                )
            ],
        )
