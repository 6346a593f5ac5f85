"""Writes a parsed plan into the tables: idempotent, one transaction, codes and ids stable.

The caller owns the transaction: `import_plan` only flushes, so a dry run is the same code
followed by a rollback, and what it reports is exactly what a real run would write.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, col, delete, select

from app.importer.parsed import ParsedPlan, ParsedTask
from app.models import Jurisdiction, Plan, PlanImport, ProgressReport, Responsibility, Role, Section, Task, utcnow
from app.services import derivation
from app.services.feed import record_event
from app.services.permissions import OWNER_ROLES
from app.services.schedule import ensure_schedule
from app.services.unit_names import UnitResolver


class PlanMovedError(ValueError):
    pass


class UnknownUnitsError(ValueError):
    def __init__(self, names: list[str]) -> None:
        self.names = names
        super().__init__(
            "以下单位名称无法识别(--strict 模式拒绝导入)/ unknown unit names (refused by --strict): " + "、".join(names)
        )


@dataclass
class ImportSummary:
    slug: str
    plan_created: bool
    sections: int
    tasks: int
    links: int
    units: int
    jurisdiction: str = ""  # code of the plan's jurisdiction
    jurisdiction_name: str = ""
    jurisdiction_source: str = ""  # how it was decided: "索引号 … → 640422", "--jurisdiction 渠县" …
    tasks_added: list[str] = field(default_factory=list)
    tasks_changed: list[str] = field(default_factory=list)
    tasks_removed: list[str] = field(default_factory=list)
    links_added: int = 0
    links_removed: int = 0
    units_created: list[str] = field(default_factory=list)
    tasks_rederived: list[str] = field(default_factory=list)  # owners changed, status derived anew
    warnings: list[str] = field(default_factory=list)


def checksum(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def import_plan(
    *,
    session: Session,
    parsed: ParsedPlan,
    slug: str,
    source_name: str,
    source_checksum: str,
    jurisdiction: Jurisdiction,
    jurisdiction_source: str = "",
    strict: bool = False,
) -> ImportSummary:
    """Unit names resolve in the plan's jurisdiction (then up its ancestors); unknown names become
    units of kind `other` there, with a warning."""
    existing = session.exec(select(Plan).where(Plan.slug == slug)).first()
    if existing is not None and existing.jurisdiction_id != jurisdiction.id:
        raise PlanMovedError(
            f"方案 {slug} 已属于另一行政区划,不能改为 {jurisdiction.name}({jurisdiction.code})导入"
            f" / plan {slug} belongs to another jurisdiction"
        )
    resolver = UnitResolver(session, jurisdiction)
    mentioned = {m.as_written for t in parsed.tasks for m in t.units}
    unknown = sorted(name for name in mentioned if resolver.resolve(name) is None)
    if unknown and strict:
        raise UnknownUnitsError(unknown)

    warnings = list(parsed.warnings)
    units_created = []
    for name in unknown:
        resolver.create(name)
        units_created.append(name)
        warnings.append(f"未知单位“{name}”已新建为 other 类单位,请在单位文件中归类 / unknown unit created")

    plan, plan_created = _upsert_plan(session, parsed, slug, source_name, source_checksum, jurisdiction)
    assert plan.id is not None
    ensure_schedule(session=session, plan=plan)  # a new plan gets the default reporting schedule
    section_ids = _sync_sections(session, plan.id, parsed)
    summary = ImportSummary(
        slug=slug,
        plan_created=plan_created,
        sections=len(parsed.sections),
        tasks=len(parsed.tasks),
        links=0,
        units=0,
        jurisdiction=jurisdiction.code,
        jurisdiction_name=jurisdiction.name,
        jurisdiction_source=jurisdiction_source,
        units_created=units_created,
        warnings=warnings,
    )
    _sync_tasks(session, plan.id, parsed.tasks, section_ids, resolver, summary)
    _drop_orphan_sections(session, plan.id, set(section_ids.values()))

    linked_units = session.exec(
        select(Responsibility.unit_id).join(Task).where(Task.plan_id == plan.id).distinct()
    ).all()
    summary.links = sum(len(_desired_links(t, resolver)) for t in parsed.tasks)
    summary.units = len(linked_units)
    session.add(
        PlanImport(
            plan_id=plan.id,
            source_name=source_name,
            source_checksum=source_checksum,
            tasks=summary.tasks,
            links=summary.links,
            warnings="\n".join(warnings),
        )
    )
    # Other systems sync from the change feed, and read caches key on it: an import is a change.
    record_event(
        session=session,
        type="plan.imported",
        principal=None,
        actor="import",
        remote_addr=None,
        plan_id=plan.id,
        data={
            "checksum": source_checksum,
            "jurisdiction": jurisdiction.code,
            "tasks": summary.tasks,
            "tasks_added": summary.tasks_added,
            "tasks_changed": summary.tasks_changed,
            "tasks_removed": summary.tasks_removed,
            "links_added": summary.links_added,
            "links_removed": summary.links_removed,
            "units_created": summary.units_created,
            "tasks_rederived": summary.tasks_rederived,
        },
    )
    return summary


def _upsert_plan(
    session: Session, parsed: ParsedPlan, slug: str, source_name: str, source_checksum: str, jurisdiction: Jurisdiction
) -> tuple[Plan, bool]:
    plan = session.exec(select(Plan).where(Plan.slug == slug)).first()
    created = plan is None
    values: dict[str, Any] = {
        "title": parsed.title,
        "issuer": parsed.issuer,
        "doc_index": parsed.doc_index,
        "issued_on": parsed.issued_on,
        "period_start": parsed.period_start,
        "period_end": parsed.period_end,
        "goals": parsed.goals,
        "source_name": source_name,
        "source_checksum": source_checksum,
        "source_encoding": parsed.encoding,
        "imported_at": utcnow(),
    }
    if plan is None:
        assert jurisdiction.id is not None
        plan = Plan(slug=slug, jurisdiction_id=jurisdiction.id, **values)
    else:
        plan.sqlmodel_update(values)
    session.add(plan)
    session.flush()
    return plan, created


def _sync_sections(session: Session, plan_id: int, parsed: ParsedPlan) -> dict[str, int]:
    existing = {s.code: s for s in session.exec(select(Section).where(Section.plan_id == plan_id))}
    ids: dict[str, int] = {}
    for position, ps in enumerate(parsed.sections):
        parent_code = ps.code.rsplit(".", 1)[0] if "." in ps.code else None
        values: dict[str, Any] = {
            "parent_id": ids.get(parent_code) if parent_code else None,
            "level": ps.level,
            "number": ps.number,
            "title": ps.title,
            "body": ps.body,
            "position": position,
            "source_line": ps.line,
            "marker_inferred": ps.marker_inferred,
        }
        section = existing.get(ps.code)
        if section is None:
            section = Section(plan_id=plan_id, code=ps.code, **values)
        else:
            section.sqlmodel_update(values)
        session.add(section)
        session.flush()
        assert section.id is not None
        ids[ps.code] = section.id
    return ids


def _drop_orphan_sections(session: Session, plan_id: int, keep: set[int]) -> None:
    # A task kept for its progress history keeps its section (and that section's chapter).
    used = set(session.exec(select(Task.section_id).where(Task.plan_id == plan_id)))
    parents = set(session.exec(select(Section.parent_id).where(col(Section.id).in_(used))))
    keep = keep | used | {p for p in parents if p is not None}
    # One statement per level, subsections before their chapters: the unit of work would order
    # self-referencing rows arbitrarily, and the database's cascade then deletes rows it expects.
    for level in (2, 1):
        session.exec(
            delete(Section).where(
                col(Section.plan_id) == plan_id, col(Section.level) == level, col(Section.id).not_in(keep)
            )
        )
    session.flush()


def _desired_links(task: ParsedTask, resolver: UnitResolver) -> dict[tuple[int, Role], dict[str, Any]]:
    links: dict[tuple[int, Role], dict[str, Any]] = {}
    for position, mention in enumerate(task.units):
        unit = resolver.resolve(mention.as_written)
        assert unit is not None and unit.id is not None  # unknown names were created above
        # The same unit twice in one role (两种写法) is one link; the first spelling is kept.
        links.setdefault(
            (unit.id, mention.role),
            {"as_written": mention.as_written, "position": position, "source_line": mention.line},
        )
    return links


def _sync_tasks(
    session: Session,
    plan_id: int,
    tasks: list[ParsedTask],
    section_ids: dict[str, int],
    resolver: UnitResolver,
    summary: ImportSummary,
) -> None:
    existing = {t.code: t for t in session.exec(select(Task).where(Task.plan_id == plan_id))}
    now = utcnow()
    owners_changed: list[Task] = []
    for position, pt in enumerate(tasks):
        content: dict[str, Any] = {
            "section_id": section_ids[pt.section_code],
            "title": pt.title,
            "text": pt.text,
            "due": pt.due,
        }
        layout: dict[str, Any] = {
            "position": position,
            "source_line": pt.line,
            "number_inferred": pt.number_inferred,
        }
        task = existing.pop(pt.code, None)
        if task is None:
            task = Task(plan_id=plan_id, code=pt.code, **content, **layout)
            summary.tasks_added.append(pt.code)
        else:
            if any(getattr(task, k) != v for k, v in content.items()):
                summary.tasks_changed.append(pt.code)
                content["updated_at"] = now
            task.sqlmodel_update({**content, **layout})
        session.add(task)
        session.flush()
        if _sync_links(session, task, _desired_links(pt, resolver), summary):
            owners_changed.append(task)

    for code, task in existing.items():
        if session.exec(select(ProgressReport.id).where(ProgressReport.task_id == task.id)).first() is not None:
            # Progress history is never thrown away by an import; the county decides what to do with it.
            summary.warnings.append(f"任务 {code} 已不在新文本中,但已有进展报告,予以保留 / kept: has progress history")
            continue
        summary.tasks_removed.append(code)
        session.delete(task)
    session.flush()
    _rederive(session, owners_changed, summary)


def _sync_links(
    session: Session, task: Task, desired: dict[tuple[int, Role], dict[str, Any]], summary: ImportSummary
) -> bool:
    """Returns whether the task's owners (its lead/responsible units) changed."""
    rows = session.exec(select(Responsibility).where(Responsibility.task_id == task.id))
    current = {(r.unit_id, Role(r.role)): r for r in rows}
    owners_before = {key for key in current if key[1] in OWNER_ROLES}
    for key, values in desired.items():
        link = current.pop(key, None)
        if link is None:
            assert task.id is not None
            session.add(Responsibility(task_id=task.id, unit_id=key[0], role=key[1], **values))
            summary.links_added += 1
        else:
            link.sqlmodel_update(values)
            session.add(link)
    if current:
        summary.links_removed += len(current)
        stale_ids = [r.id for r in current.values()]
        session.exec(delete(Responsibility).where(col(Responsibility.id).in_(stale_ids)))
    return owners_before != {key for key in desired if key[1] in OWNER_ROLES}


def _rederive(session: Session, tasks: list[Task], summary: ImportSummary) -> None:
    """A task whose owners changed takes the state its (new) owners' reports give it, by the one rule
    (`app/services/cycle.py`). A task nobody has reported on stays as it is."""
    _, reports = derivation.rederive(session, tasks, skip_unreported=True)
    summary.tasks_rederived.extend(task.code for task in tasks if reports.get(task.id or 0))
