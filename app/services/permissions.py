"""Who may report on what: the one rule, used by every write path and tested over every unit × task.

- A unit linked to the task as lead (牵头) or responsible (责任) — directly, or through a group it is a
  member of — submits status reports: they move the task's status.
- A unit linked as cooperating (配合), directly or through a group, submits contribution reports:
  kept in the history and shown on the task, but they do not move its status.
- An admin key (the rule-of-law office) may report on any task; its reports are corrections.
- Anyone else is refused with 403, saying why.

And before any of that, the jurisdiction boundary (`check_jurisdiction`, the one place it is
decided, for every service that acts on a jurisdiction's data): a unit key acts only within its
unit's jurisdiction and the levels above it (a township's unit reports on its county's plan through
各乡镇; a county's unit on its prefecture's plan, where linked), never in a sibling or below; an admin
key within its jurisdiction and everything below it; a platform admin key (no jurisdiction)
everywhere. Crossing it is 403 `outside-jurisdiction`, naming both sides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import bindparam
from sqlmodel import Session, col, select

from app.errors import AdminRequired, NotLinkedToTask, OutsideJurisdiction
from app.models import GroupMember, Plan, ReportKind, Responsibility, Role, Task, Unit
from app.services import jurisdictions, structure_memo
from app.services.feed import run_core
from app.services.keys import Principal

OWNER_ROLES = (Role.lead, Role.responsible)


def key_scope(*, session: Session, principal: Principal) -> set[int] | None:
    """The jurisdictions a key may act in; None for a platform-wide admin key. Remembered at the
    structure version (a report moves none of it), handed out as a copy the caller may change."""
    own = principal.jurisdiction_id
    if own is None:
        return None if principal.is_admin else set()
    key = (own, principal.is_admin)
    return set(structure_memo.memo.recall(session, "scope", key, lambda: _scope(session, own, principal.is_admin)))


def _scope(session: Session, own: int, is_admin: bool) -> frozenset[int]:
    if not is_admin:
        unit_place = jurisdictions.get_by_id(session=session, jurisdiction_id=own)
        above = jurisdictions.ancestors(session=session, jurisdiction=unit_place)
        return frozenset({own} | {j.id for j in above if j.id})
    return frozenset(jurisdictions.subtree_ids(session=session, root_id=own))


def check_jurisdiction(
    *, session: Session, principal: Principal, jurisdiction_id: int | None, what: str = "数据"
) -> None:
    """The boundary: raises OutsideJurisdiction (403) unless the key may act in `jurisdiction_id`
    (None: platform-wide objects, such as a platform admin key, which only a platform admin may touch).
    `what` names the object in the message (任务, 单位, 密钥 …)."""
    scope = key_scope(session=session, principal=principal)
    if scope is None or jurisdiction_id in scope:
        return
    own_name = (
        jurisdictions.get_by_id(session=session, jurisdiction_id=principal.jurisdiction_id).name
        if principal.jurisdiction_id is not None
        else "?"
    )
    if jurisdiction_id is None:
        raise OutsideJurisdiction(
            f"{own_name}的密钥不能操作全平台的{what} / key of {own_name} cannot act platform-wide",
            boundary={"key_jurisdiction": own_name, "target_jurisdiction": None, "target_code": None},
        )
    target = jurisdictions.get_by_id(session=session, jurisdiction_id=jurisdiction_id)
    own = (
        jurisdictions.get_by_id(session=session, jurisdiction_id=principal.jurisdiction_id).name
        if principal.jurisdiction_id is not None
        else "?"
    )
    holder = f"{own}{principal.unit.name}" if principal.unit is not None else f"{own}管理"
    raise OutsideJurisdiction(
        f"{holder}的密钥不能操作 {target.name}({target.code})的{what}(超出本密钥的行政区划 {own})"
        f" / key of {own} cannot act on {target.name}",
        boundary={"key_jurisdiction": own, "target_jurisdiction": target.name, "target_code": target.code},
    )


@dataclass(frozen=True)
class Permission:
    kind: ReportKind
    via_unit_id: int | None  # the linked unit the grant came through (the unit itself or a group)
    role: Role | None
    owner_slots: tuple[int, ...] = ()  # the task's lead/responsible units, for deriving its status


def permission(
    *, links: list[tuple[int, Role]], unit_id: int | None, groups: set[int], is_admin: bool
) -> Permission | None:
    """The rule itself, on plain data. `links` are the task's (unit id, role) pairs."""
    if is_admin:
        return Permission(kind=ReportKind.correction, via_unit_id=None, role=None, owner_slots=_owners(links))
    if unit_id is None:
        return None
    scope = {unit_id} | groups
    # Prefer a direct link over a group one, and an owner role over cooperating.
    ranked = sorted(
        ((u, r) for u, r in links if u in scope),
        key=lambda link: (link[1] not in OWNER_ROLES, link[0] != unit_id),
    )
    if not ranked:
        return None
    via, role = ranked[0]
    kind = ReportKind.status if role in OWNER_ROLES else ReportKind.contribution
    return Permission(kind=kind, via_unit_id=via, role=role, owner_slots=_owners(links))


def _owners(links: list[tuple[int, Role]]) -> tuple[int, ...]:
    return tuple(sorted({u for u, r in links if r in OWNER_ROLES}))


class TaskRef(Protocol):
    """What the rule reads of a task: a `Task` entity, or the report path's plain row."""

    @property
    def id(self) -> int | None: ...
    @property
    def plan_id(self) -> int: ...
    @property
    def code(self) -> str: ...


@dataclass
class PermissionFacts:
    """What the rule needs, loaded once for a set of tasks: their links and the caller's groups."""

    session: Session
    principal: Principal
    links: dict[int, list[tuple[int, Role]]]  # task id → (unit id, role)
    groups: set[int]
    within: set[int | None] = field(default_factory=set)  # jurisdictions already checked: a batch asks once
    plans: dict[int, Plan] = field(default_factory=dict)  # the tasks' plans, if the caller has them

    def decide(self, task: TaskRef) -> Permission:
        plan = self.plans.get(task.plan_id) or self.session.get(Plan, task.plan_id)
        assert plan is not None
        if plan.jurisdiction_id not in self.within:
            check_jurisdiction(
                session=self.session, principal=self.principal, jurisdiction_id=plan.jurisdiction_id, what="任务"
            )
            self.within.add(plan.jurisdiction_id)
        unit = self.principal.unit
        granted = permission(
            links=self.links.get(task.id or 0, []),
            unit_id=unit.id if unit is not None else None,
            groups=self.groups,
            is_admin=self.principal.is_admin,
        )
        if granted is None:
            raise self._refusal(task)
        return granted

    def _refusal(self, task: TaskRef) -> NotLinkedToTask:
        unit_ids = [u for u, _ in self.links.get(task.id or 0, [])]
        linked = "、".join(
            self.session.exec(select(Unit.name).where(col(Unit.id).in_(unit_ids)).order_by(col(Unit.id)))
        )
        name = self.principal.name
        return NotLinkedToTask(
            f"{name}与任务 {task.code} 无关联(该任务的责任单位:{linked}),不能报送进展;"
            f"如单位属于某个组(如 各乡镇),请联系依法治县办维护组成员 / {name} is not linked to task {task.code}"
        )


# Built once: every write asks them (building and keying a statement costs more than its answer).
_LINKS = select(Responsibility.task_id, Responsibility.unit_id, Responsibility.role).where(
    col(Responsibility.task_id).in_(bindparam("task_ids", expanding=True))
)
_GROUPS = select(GroupMember.group_id).where(col(GroupMember.member_id) == bindparam("unit_id"))


def load_facts(
    *, session: Session, tasks: list[TaskRef], principal: Principal, plan: Plan | None = None
) -> PermissionFacts:
    """`plan`: the tasks' plan, when the caller holds it (a copy bound to no session is fine)."""
    links = _links_of(session, tuple(sorted(t.id for t in tasks if t.id is not None)))
    unit_id = principal.unit.id if principal.unit is not None else None
    groups = set(_groups_of(session, unit_id)) if unit_id else set()
    plans = {plan.id: plan} if plan is not None and plan.id is not None else {}
    return PermissionFacts(session=session, principal=principal, links=links, groups=groups, plans=plans)


def _links_of(session: Session, task_ids: tuple[int, ...]) -> dict[int, list[tuple[int, Role]]]:
    """Each task's (unit id, role) links, remembered at the structure version: an import or a unit
    merge moves it, a report does not."""

    def load() -> dict[int, list[tuple[int, Role]]]:
        links: dict[int, list[tuple[int, Role]]] = {}
        for task_id, linked_id, role in run_core(session, _LINKS, {"task_ids": list(task_ids)}):
            links.setdefault(task_id, []).append((linked_id, Role(role)))
        return links

    return structure_memo.memo.recall(session, "links", task_ids, load)


def _groups_of(session: Session, unit_id: int) -> frozenset[int]:
    """The groups a unit is a member of, remembered at the structure version."""
    return structure_memo.memo.recall(
        session, "groups", unit_id, lambda: frozenset(run_core(session, _GROUPS, {"unit_id": unit_id}).scalars())
    )


def check_permission(*, session: Session, task: Task, principal: Principal) -> Permission:
    """The rule for one task: its grant, or NotLinkedToTask (403) saying why."""
    return load_facts(session=session, tasks=[task], principal=principal).decide(task)


def authorize_admin(*, session: Session, principal: Principal, plan_id: int | None) -> None:
    """The one check before a key administers a plan's supervision cycle (its schedule, reviews,
    excusals, withdrawing another unit's report): an admin key whose jurisdiction holds the plan."""
    if not principal.is_admin:
        raise AdminRequired(f"此操作仅限依法治县办的管理密钥;{principal.name}的密钥无权执行 / admin key required")
    if plan_id is not None:
        plan = session.get(Plan, plan_id)
        if plan is not None:
            check_jurisdiction(session=session, principal=principal, jurisdiction_id=plan.jurisdiction_id, what="方案")
