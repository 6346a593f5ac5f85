"""Queries about plans: metadata, the section tree, and statistics."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date

from sqlalchemy import and_, case, func
from sqlmodel import Session, col, select

from app.errors import NotFound
from app.models import Jurisdiction, Plan, Responsibility, Role, Section, Task, TaskStatus, Unit
from app.schemas.jurisdiction import JurisdictionRef
from app.schemas.plan import (
    ChapterStats,
    JurisdictionStats,
    PlanCounts,
    PlanStats,
    PlanStatusLine,
    SectionNode,
    StatusCounts,
    UnitLoad,
)
from app.schemas.unit import UnitRef
from app.services.jurisdictions import subtree_ids
from app.services.tasks import is_overdue


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


def plan_stats(*, session: Session, plan: Plan, as_of: date) -> PlanStats:
    tasks = list(session.exec(select(Task).where(Task.plan_id == plan.id).order_by(col(Task.position))))
    chapters = {s.code: s for s in session.exec(select(Section).where(Section.plan_id == plan.id, Section.level == 1))}
    overall: Counter[str] = Counter()
    by_chapter: dict[str, Counter[str]] = defaultdict(Counter)
    overdue_ids = set()
    for task in tasks:
        chapter = task.code.split(".")[0]
        overall[task.status] += 1
        by_chapter[chapter][task.status] += 1
        if is_overdue(task, as_of):
            overdue_ids.add(task.id)
            by_chapter[chapter]["__overdue"] += 1

    loads: dict[int, dict[str, int]] = defaultdict(Counter)
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

    def status_counts(counter: Counter[str]) -> StatusCounts:
        return StatusCounts(**{s.value: counter[s] for s in TaskStatus})

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
                )
                for uid, load in loads.items()
            ),
            key=lambda u: (-u.lead, -u.responsible, -u.cooperating, u.unit.id),
        ),
    )


def jurisdiction_stats(*, session: Session, jurisdiction: Jurisdiction, as_of: date) -> JurisdictionStats:
    """Tasks by status and overdue, over every plan of the jurisdiction and those below it: one
    grouped query, however many plans."""
    within = frozenset(subtree_ids(session=session, root_id=jurisdiction.id or 0))
    plans = {p.id: p for p in list_plans(session=session, jurisdiction_ids=within)}
    overdue = case((and_(col(Task.due) < as_of, col(Task.status) != TaskStatus.completed), 1), else_=0)
    rows = session.exec(
        select(Task.plan_id, Task.status, func.count(), func.sum(overdue))
        .where(col(Task.plan_id).in_(list(plans)))
        .group_by(col(Task.plan_id), col(Task.status))
    ).all()
    per_plan: dict[int, Counter[str]] = defaultdict(Counter)
    for plan_id, status, n, late in rows:
        per_plan[plan_id][status] += n
        per_plan[plan_id]["__overdue"] += int(late or 0)

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
