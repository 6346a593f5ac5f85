"""Excused duties: the office waives one unit's report on one task for one period, with a reason.

Only stored here; what an excusal does to a duty's state is stated in `app/services/cycle.py` and
computed in `app/services/duties.py`. A revoked excusal is kept (`revoked_at`), so a past date's
picture can be reproduced. Flushes only.
"""

from __future__ import annotations

from sqlmodel import Session, col, select

from app.errors import Conflict, ExcusalRejected, FieldError, NotFound
from app.models import ApiKey, DutyExcusal, GroupMember, Plan, Responsibility, Role, Task, Unit, utcnow
from app.schemas.cycle import ExcusalIn, ExcusalOut
from app.schemas.unit import UnitRef
from app.services import periods
from app.services.feed import PUBLIC_ADMIN_ACTOR, record_event
from app.services.keys import Principal
from app.services.permissions import authorize_admin, permission
from app.services.schedule import CADENCE_ZH, get_schedule
from app.services.units import find_unit, plan_scope


def _rejected(field: str, message: str, kind: str) -> ExcusalRejected:
    return ExcusalRejected(f"{message}", errors=[FieldError(field=f"body.{field}", message=message, type=kind)])


def create(
    *, session: Session, plan: Plan, data: ExcusalIn, principal: Principal, remote_addr: str | None
) -> DutyExcusal:
    """Waives a duty: the task must be in the plan, the unit linked to it (directly or through a group),
    the period one of the plan's calendar at its cadence; one active excusal per duty (409)."""
    authorize_admin(session=session, principal=principal, plan_id=plan.id)
    # The task row is the lock: two requests excusing the same duty at once cannot both pass the check.
    task = session.exec(select(Task).where(Task.plan_id == plan.id, Task.code == data.task).with_for_update()).first()
    if task is None or task.id is None:
        raise _rejected(
            "task", f"方案 {plan.slug} 中没有编号为 {data.task} 的任务 / no task {data.task!r}", "unknown_task"
        )
    unit = find_unit(session=session, ref=data.unit.strip(), within=set(plan_scope(session=session, plan=plan)))
    if unit is None or unit.id is None:
        raise _rejected("unit", f"未知单位“{data.unit}”(可用 id、规范名称或别名) / unknown unit", "unknown_unit")
    links = [
        (u, Role(r))
        for u, r in session.exec(
            select(Responsibility.unit_id, Responsibility.role).where(Responsibility.task_id == task.id)
        )
    ]
    groups = set(session.exec(select(GroupMember.group_id).where(GroupMember.member_id == unit.id)))
    if permission(links=links, unit_id=unit.id, groups=groups, is_admin=False) is None:
        raise _rejected(
            "unit", f"{unit.name}与任务 {task.code} 无关联,没有报送义务可免 / unit not linked to the task", "not_linked"
        )
    schedule = get_schedule(session=session, plan=plan)
    calendar = {
        p.label
        for p in periods.calendar(first_year=plan.period_start, last_year=plan.period_end, cadence=schedule.cadence)
    }
    if data.period not in calendar:
        raise _rejected(
            "period",
            f"报告期“{data.period}”不是本方案报送日历中的报告期(报送周期:{CADENCE_ZH[schedule.cadence]},"
            f"{plan.period_start}–{plan.period_end} 年,如 {sorted(calendar)[-1]}) / not a period of the plan's calendar",
            "period_not_in_calendar",
        )
    active = session.exec(
        select(DutyExcusal.id).where(
            DutyExcusal.task_id == task.id,
            DutyExcusal.unit_id == unit.id,
            DutyExcusal.period == data.period,
            col(DutyExcusal.revoked_at).is_(None),
        )
    ).first()
    if active is not None:
        raise Conflict(
            f"{unit.name}在任务 {task.code} 上 {data.period} 的报送义务已免除(第 {active} 号),无需重复"
            f" / already excused by excusal {active}"
        )
    assert principal.key.id is not None and plan.id is not None
    excusal = DutyExcusal(
        plan_id=plan.id,
        task_id=task.id,
        unit_id=unit.id,
        period=data.period,
        reason=data.reason,
        api_key_id=principal.key.id,
    )
    session.add(excusal)
    session.flush()
    record_event(
        session=session,
        type="duty.excused",
        principal=principal,
        remote_addr=remote_addr,
        plan_id=plan.id,
        task_id=task.id,
        unit_id=unit.id,
        data={"excusal": excusal.id, "task": task.code, "period": data.period, "reason": data.reason},
    )
    return excusal


def revoke(
    *, session: Session, plan: Plan, excusal_id: int, principal: Principal, remote_addr: str | None
) -> DutyExcusal:
    authorize_admin(session=session, principal=principal, plan_id=plan.id)
    excusal = session.get(DutyExcusal, excusal_id, with_for_update=True)
    if excusal is None or excusal.plan_id != plan.id:
        raise NotFound(f"方案 {plan.slug} 中没有编号为 {excusal_id} 的免报记录 / no excusal {excusal_id}")
    if excusal.revoked_at is not None:
        raise Conflict(
            f"免报记录 {excusal_id} 已于 {excusal.revoked_at:%Y-%m-%d %H:%M} (UTC) 撤销 / excusal already revoked"
        )
    excusal.revoked_at = utcnow()
    session.add(excusal)
    session.flush()
    code = session.exec(select(Task.code).where(Task.id == excusal.task_id)).one()
    record_event(
        session=session,
        type="duty.excuse_revoked",
        principal=principal,
        remote_addr=remote_addr,
        plan_id=plan.id,
        task_id=excusal.task_id,
        unit_id=excusal.unit_id,
        data={"excusal": excusal.id, "task": code, "period": excusal.period},
    )
    return excusal


def list_excusals(*, session: Session, plan: Plan, period: str | None = None) -> list[DutyExcusal]:
    """The plan's excusals, revoked ones too, newest first."""
    query = select(DutyExcusal).where(DutyExcusal.plan_id == plan.id)
    if period is not None:
        query = query.where(DutyExcusal.period == period)
    return list(session.exec(query.order_by(col(DutyExcusal.id).desc())))


def present(*, session: Session, plan: Plan, excusals: list[DutyExcusal], public: bool = False) -> list[ExcusalOut]:
    """Excusals with their task codes, units and keys, in a fixed number of queries."""
    codes = dict(session.exec(select(Task.id, Task.code).where(col(Task.id).in_({e.task_id for e in excusals}))).all())
    units = {u.id: u for u in session.exec(select(Unit).where(col(Unit.id).in_({e.unit_id for e in excusals})))}
    keys = {k.id: k for k in session.exec(select(ApiKey).where(col(ApiKey.id).in_({e.api_key_id for e in excusals})))}
    return [
        ExcusalOut(
            id=e.id or 0,
            plan=plan.slug,
            task=codes[e.task_id],
            unit=UnitRef.from_unit(units[e.unit_id]),
            period=e.period,
            reason=e.reason,
            excused_by=PUBLIC_ADMIN_ACTOR if public else f"{keys[e.api_key_id].name} ({keys[e.api_key_id].prefix})",
            created_at=e.created_at,
            revoked_at=e.revoked_at,
        )
        for e in excusals
    ]
