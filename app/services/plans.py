"""Queries about plans: metadata, the section tree, and statistics."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date

from sqlalchemy import and_, case, func
from sqlmodel import Session, col, select

from app.core.clock import county_today
from app.core.config import get_settings
from app.errors import InvalidParameter, NotFound
from app.models import Jurisdiction, Plan, Responsibility, Role, Section, Task, TaskStatus, Unit
from app.models.base import detached_copy
from app.schemas.duty import compliance_out
from app.schemas.jurisdiction import JurisdictionRef
from app.schemas.plan import (
    ChapterStats,
    JurisdictionStats,
    LightCounts,
    PlanCounts,
    PlanStats,
    PlanStatusLine,
    SectionNode,
    StatusCounts,
    UnitLoad,
)
from app.schemas.unit import UnitRef
from app.services import structure_memo
from app.services.cycle import end_of_day
from app.services.duties import check_period_param, compliance, compute_duties, latest_closed_period
from app.services.jurisdictions import subtree_ids
from app.services.lights import LIGHT_RULES_VERSION, Light
from app.services.supervision import current_owner_states, pictures
from app.services.supervision_facts import load_facts
from app.services.tasks import overdue_on


def list_plans(*, session: Session, jurisdiction_ids: frozenset[int] | None = None) -> list[Plan]:
    query = select(Plan).order_by(col(Plan.slug))
    if jurisdiction_ids is not None:
        query = query.where(col(Plan.jurisdiction_id).in_(jurisdiction_ids))
    return list(session.exec(query))


def get_plan(*, session: Session, slug: str) -> Plan:
    plan = session.exec(select(Plan).where(Plan.slug == slug)).first()
    if plan is None:
        raise NotFound(f"方案 {slug} 不存在 / no plan with slug {slug!r}")
    return plan


def plan_to_read(*, session: Session, slug: str) -> Plan:
    """`get_plan` for a caller that only reads the plan (the report path): a copy bound to no session,
    remembered at the structure version (`app/services/structure_memo.py`)."""
    return structure_memo.memo.recall(
        session, "plan", slug, lambda: detached_copy(get_plan(session=session, slug=slug))
    )


def plan_param(*, session: Session, slug: str | None) -> Plan | None:
    """The plan a `plan=` query parameter names (None when absent); an unknown slug is a 400 on it."""
    if not slug:
        return None
    try:
        return get_plan(session=session, slug=slug)
    except NotFound:
        raise InvalidParameter("plan", f"方案 {slug} 不存在(见 /api/v1/plans)") from None


def plan_counts(*, session: Session, plan: Plan) -> PlanCounts:
    links = (
        select(Responsibility.unit_id)
        .join(Task, col(Task.id) == col(Responsibility.task_id))
        .where(Task.plan_id == plan.id)
    ).subquery()
    return PlanCounts(
        sections=session.exec(select(func.count()).select_from(Section).where(Section.plan_id == plan.id)).one(),
        tasks=session.exec(select(func.count()).select_from(Task).where(Task.plan_id == plan.id)).one(),
        units=session.exec(select(func.count(func.distinct(links.c.unit_id)))).one(),
        links=session.exec(select(func.count()).select_from(links)).one(),
    )


def section_tree(*, session: Session, plan: Plan) -> list[SectionNode]:
    sections = list(session.exec(select(Section).where(Section.plan_id == plan.id).order_by(col(Section.position))))
    per_section = Counter(session.exec(select(Task.section_id).where(Task.plan_id == plan.id)).all())
    nodes: dict[int, SectionNode] = {}
    roots: list[SectionNode] = []
    for s in sections:
        assert s.id is not None
        node = SectionNode(
            code=s.code,
            level=s.level,
            number=s.number,
            title=s.title,
            body=s.body,
            task_count=per_section[s.id],
            source_line=s.source_line,
            marker_inferred=s.marker_inferred,
        )
        nodes[s.id] = node
        parent = nodes.get(s.parent_id) if s.parent_id is not None else None
        if parent is None:
            roots.append(node)
        else:
            parent.children.append(node)
            parent.task_count += node.task_count
    return roots


def plan_stats(*, session: Session, plan: Plan, as_of: date, period: str | None = None) -> PlanStats:
    """Counts as of the end of the local day `as_of`: status, progress and light are that day's
    (`app/services/supervision.py`); compliance is for `period`, by default the most recent period
    whose deadline had passed by `as_of`."""
    assert plan.id is not None
    settings = get_settings()
    facts = load_facts(session=session, cutoff=end_of_day(as_of, settings.timezone), plan_ids={plan.id}, task_ids=None)
    if period is not None:
        check_period_param(facts, plan.id, period)
    else:
        closed = latest_closed_period(facts, plan.id, as_of)
        period = closed.label if closed is not None else None
    current = None
    if as_of >= county_today():
        current = current_owner_states(session=session, task_ids=list(facts.tasks))
    pics = pictures(facts, as_of=as_of, settings=settings, current=current)
    tasks = sorted(facts.tasks.values(), key=lambda t: t.position)
    chapters = {s.code: s for s in session.exec(select(Section).where(Section.plan_id == plan.id, Section.level == 1))}
    overall: Counter[str] = Counter()
    lights: Counter[str] = Counter()
    by_chapter: dict[str, Counter[str]] = defaultdict(Counter)
    chapter_lights: dict[str, Counter[str]] = defaultdict(Counter)
    chapter_progress: dict[str, list[int]] = defaultdict(list)
    overdue_ids = set()
    delayed_by_unit: Counter[int] = Counter()
    for task in tasks:
        pic = pics[task.id]
        chapter = task.code.split(".")[0]
        overall[pic.status] += 1
        lights[pic.light] += 1
        by_chapter[chapter][pic.status] += 1
        chapter_lights[chapter][pic.light] += 1
        chapter_progress[chapter].append(pic.progress)
        if overdue_on(task.due, pic.status, as_of):
            overdue_ids.add(task.id)
            by_chapter[chapter]["__overdue"] += 1
        owners = (
            [(s.unit_id, s.status) for s in pic.states] if pic.states is not None else (current or {}).get(task.id, [])
        )
        for unit_id, status in owners:
            if status == TaskStatus.delayed:
                delayed_by_unit[unit_id] += 1

    loads: dict[int, dict[str, int]] = defaultdict(Counter)
    lead_status: dict[int, Counter[str]] = defaultdict(Counter)
    lead_light: dict[int, Counter[str]] = defaultdict(Counter)
    units: dict[int, Unit] = {}
    rows = session.exec(
        select(Responsibility.task_id, Responsibility.role, Unit)
        .join(Unit, col(Unit.id) == col(Responsibility.unit_id))
        .join(Task, col(Task.id) == col(Responsibility.task_id))
        .where(Task.plan_id == plan.id)
    )
    for task_id, role, unit in rows:
        assert unit.id is not None
        units[unit.id] = unit
        loads[unit.id][role] += 1
        if role != Role.cooperating and task_id in overdue_ids:
            loads[unit.id]["overdue"] += 1
        if role == Role.lead:
            lead_status[unit.id][pics[task_id].status] += 1
            lead_light[unit.id][pics[task_id].light] += 1

    per_unit, total = (
        ({}, None)
        if period is None
        else compliance(compute_duties(facts, as_of=as_of, tz=settings.timezone, periods={period}))
    )

    def status_counts(counter: Counter[str]) -> StatusCounts:
        return StatusCounts(**{s.value: counter[s] for s in TaskStatus})

    def light_counts(counter: Counter[str]) -> LightCounts:
        return LightCounts(**{light.value: counter[light] for light in Light})

    return PlanStats(
        plan=plan.slug,
        as_of=as_of,
        tasks=len(tasks),
        overdue=len(overdue_ids),
        by_status=status_counts(overall),
        by_chapter=[
            ChapterStats(
                code=code,
                title=chapters[code].title,
                tasks=sum(v for k, v in counter.items() if k != "__overdue"),
                overdue=counter["__overdue"],
                by_status=status_counts(counter),
                mean_progress=round(sum(chapter_progress[code]) / len(chapter_progress[code]), 1),
                by_light=light_counts(chapter_lights[code]),
            )
            for code, counter in by_chapter.items()
        ],
        by_unit=sorted(
            (
                UnitLoad(
                    unit=UnitRef.from_unit(units[uid]),
                    lead=load[Role.lead],
                    responsible=load[Role.responsible],
                    cooperating=load[Role.cooperating],
                    overdue=load["overdue"],
                    lead_by_status=status_counts(lead_status[uid]),
                    lead_by_light=light_counts(lead_light[uid]),
                    delayed=delayed_by_unit[uid],
                    compliance=compliance_out(facts, per_unit[uid]) if uid in per_unit else None,
                )
                for uid, load in loads.items()
            ),
            key=lambda u: (-u.lead, -u.responsible, -u.cooperating, u.unit.id),
        ),
        by_light=light_counts(lights),
        light_rules_version=LIGHT_RULES_VERSION,
        compliance_period=period,
        compliance=compliance_out(facts, total) if total is not None else None,
    )


def jurisdiction_stats(*, session: Session, jurisdiction: Jurisdiction, as_of: date) -> JurisdictionStats:
    """Tasks by status and overdue, over every plan of the jurisdiction and those below it, as of the
    end of the local day `as_of` (the same picture each plan's own stats give)."""
    within = frozenset(subtree_ids(session=session, root_id=jurisdiction.id or 0))
    plans = {p.id: p for p in list_plans(session=session, jurisdiction_ids=within)}
    per_plan: dict[int, Counter[str]] = defaultdict(Counter)
    if as_of >= county_today():
        # Today: the maintained status columns, one grouped query however many plans.
        overdue = case((and_(col(Task.due) < as_of, col(Task.status) != TaskStatus.completed), 1), else_=0)
        rows = session.exec(
            select(Task.plan_id, Task.status, func.count(), func.sum(overdue))
            .where(col(Task.plan_id).in_(list(plans)))
            .group_by(col(Task.plan_id), col(Task.status))
        ).all()
        for plan_id, status, n, late in rows:
            per_plan[plan_id][status] += n
            per_plan[plan_id]["__overdue"] += int(late or 0)
    elif plans:
        # A past date: each task as it stood then, by the same reconstruction as a plan's stats.
        settings = get_settings()
        facts = load_facts(
            session=session,
            cutoff=end_of_day(as_of, settings.timezone),
            plan_ids={pid for pid in plans if pid is not None},
            task_ids=None,
        )
        for task_id, pic in pictures(facts, as_of=as_of, settings=settings).items():
            task = facts.tasks[task_id]
            per_plan[task.plan_id][pic.status] += 1
            per_plan[task.plan_id]["__overdue"] += int(overdue_on(task.due, pic.status, as_of))

    def status_counts(counter: Counter[str]) -> StatusCounts:
        return StatusCounts(**{s.value: counter[s] for s in TaskStatus})

    def tasks(counter: Counter[str]) -> int:
        return sum(v for k, v in counter.items() if k != "__overdue")

    total: Counter[str] = sum(per_plan.values(), Counter())
    return JurisdictionStats(
        jurisdiction=JurisdictionRef.of(jurisdiction),
        as_of=as_of,
        plans=len(plans),
        tasks=tasks(total),
        overdue=total["__overdue"],
        by_status=status_counts(total),
        by_plan=[
            PlanStatusLine(
                plan=plan.slug,
                jurisdiction=JurisdictionRef.of(plan.jurisdiction),
                tasks=tasks(per_plan[pid or 0]),
                overdue=per_plan[pid or 0]["__overdue"],
                by_status=status_counts(per_plan[pid or 0]),
            )
            for pid, plan in sorted(plans.items(), key=lambda item: item[1].slug)
        ],
    )
