"""Who may report on what: the one rule, used by every write path and tested over every unit × task.

- A unit linked to the task as lead (牵头) or responsible (责任) — directly, or through a group it is a
  member of — submits status reports: they move the task's status.
- A unit linked as cooperating (配合), directly or through a group, submits contribution reports:
  kept in the history and shown on the task, but they do not move its status.
- An admin key (the rule-of-law office) may report on any task; its reports are corrections.
- Anyone else is refused with 403, saying why.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, col, select

from app.errors import ProblemError
from app.models import GroupMember, ReportKind, Responsibility, Role, Task, Unit
from app.services.keys import Principal

OWNER_ROLES = (Role.lead, Role.responsible)


class NotLinkedToTask(ProblemError):
    status = 403
    code = "not-linked-to-task"
    title = "Forbidden"


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


@dataclass
class PermissionFacts:
    """What the rule needs, loaded once for a set of tasks: their links and the caller's groups."""

    session: Session
    principal: Principal
    links: dict[int, list[tuple[int, Role]]]  # task id → (unit id, role)
    groups: set[int]

    def decide(self, task: Task) -> Permission:
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

    def _refusal(self, task: Task) -> NotLinkedToTask:
        unit_ids = [u for u, _ in self.links.get(task.id or 0, [])]
        linked = "、".join(
            self.session.exec(select(Unit.name).where(col(Unit.id).in_(unit_ids)).order_by(col(Unit.id)))
        )
        name = self.principal.name
        return NotLinkedToTask(
            f"{name}与任务 {task.code} 无关联(该任务的责任单位:{linked}),不能报送进展;"
            f"如单位属于某个组(如 各乡镇),请联系依法治县办维护组成员 / {name} is not linked to task {task.code}"
        )


def load_facts(*, session: Session, tasks: list[Task], principal: Principal) -> PermissionFacts:
    links: dict[int, list[tuple[int, Role]]] = {}
    rows = session.exec(
        select(Responsibility.task_id, Responsibility.unit_id, Responsibility.role).where(
            col(Responsibility.task_id).in_([t.id for t in tasks])
        )
    )
    for task_id, linked_id, role in rows:
        links.setdefault(task_id, []).append((linked_id, Role(role)))
    unit_id = principal.unit.id if principal.unit is not None else None
    groups = (
        set(session.exec(select(GroupMember.group_id).where(GroupMember.member_id == unit_id))) if unit_id else set()
    )
    return PermissionFacts(session=session, principal=principal, links=links, groups=groups)


def check_permission(*, session: Session, task: Task, principal: Principal) -> Permission:
    """The rule for one task: its grant, or NotLinkedToTask (403) saying why."""
    return load_facts(session=session, tasks=[task], principal=principal).decide(task)


class AdminRequired(ProblemError):
    status = 403
    code = "admin-only"
    title = "Forbidden"


def authorize_admin(*, principal: Principal, plan_id: int | None) -> None:
    """The one check before a key administers a plan's supervision cycle (its schedule, reviews,
    excusals, withdrawing another unit's report). Every admin key administers every plan today; a
    jurisdiction boundary for admin keys belongs here, so all those endpoints get it at once."""
    if not principal.is_admin:
        raise AdminRequired(f"此操作仅限依法治县办的管理密钥;{principal.name}的密钥无权执行 / admin key required")
