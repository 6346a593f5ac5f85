"""Units as the API sees them: lookup by id, name or alias; groups and members."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, col, select

from app.errors import Conflict, InvalidParameter, NotFound
from app.importer.units import UnitResolver, candidate_keys, name_key
from app.models import GroupMember, Unit, UnitAlias, UnitKind


@dataclass
class ResolvedUnit:
    unit: Unit
    as_typed: str  # what the caller wrote: an id, the canonical name or an alias


def find_unit(*, session: Session, ref: str) -> Unit | None:
    """`ref` is an id (`12`), the canonical name (`县司法局`) or any alias (`司法局`)."""
    if ref.isascii() and ref.isdigit():
        # An id beyond the integer column's range names no unit (and must not overflow PostgreSQL).
        return session.get(Unit, int(ref)) if len(ref) <= 10 and int(ref) < 2**31 else None
    # The importer's resolution order, as two indexed lookups instead of loading every unit.
    candidates = candidate_keys(ref)
    by_name = {u.name: u for u in session.exec(select(Unit).where(col(Unit.name).in_(candidates)))}
    by_alias = dict(
        session.exec(
            select(UnitAlias.alias, Unit)
            .join(Unit, col(Unit.id) == col(UnitAlias.unit_id))
            .where(col(UnitAlias.alias).in_(candidates))
        ).all()
    )
    for key in candidates:
        if key in by_name:
            return by_name[key]
        if key in by_alias:
            return by_alias[key]
    return None


def get_unit(*, session: Session, ref: str) -> Unit:
    unit = find_unit(session=session, ref=ref)
    if unit is None:
        raise NotFound(f"单位“{ref}”不存在(可用 id、规范名称或别名)/ no unit {ref!r}")
    return unit


def resolve_unit_param(*, session: Session, param: str, ref: str) -> ResolvedUnit:
    unit = find_unit(session=session, ref=ref.strip())
    if unit is None:
        raise InvalidParameter(param, f"未知单位“{ref}”(可用 id、规范名称或别名,见 /api/v1/units)", kind="unknown_unit")
    return ResolvedUnit(unit=unit, as_typed=ref)


def list_units(*, session: Session, kind: UnitKind | None = None) -> list[Unit]:
    query = select(Unit).order_by(col(Unit.id))
    if kind is not None:
        query = query.where(Unit.kind == kind)
    return list(session.exec(query))


def aliases_of(*, session: Session, unit_ids: list[int]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {uid: [] for uid in unit_ids}
    rows = session.exec(
        select(UnitAlias.unit_id, UnitAlias.alias)
        .where(col(UnitAlias.unit_id).in_(unit_ids))
        .order_by(col(UnitAlias.id))
    )
    for unit_id, alias in rows:
        out[unit_id].append(alias)
    return out


def groups_of(*, session: Session, unit_id: int) -> list[Unit]:
    return list(
        session.exec(
            select(Unit)
            .join(GroupMember, col(GroupMember.group_id) == col(Unit.id))
            .where(GroupMember.member_id == unit_id)
            .order_by(col(Unit.id))
        )
    )


def members_of(*, session: Session, group_id: int) -> list[Unit]:
    return list(
        session.exec(
            select(Unit)
            .join(GroupMember, col(GroupMember.member_id) == col(Unit.id))
            .where(GroupMember.group_id == group_id)
            .order_by(col(Unit.id))
        )
    )


def _taken(session: Session, name: str) -> Unit | None:
    return UnitResolver(session).resolve_exact(name)


def create_unit(*, session: Session, name: str, kind: UnitKind, aliases: list[str]) -> Unit:
    for candidate in [name, *aliases]:
        if (owner := _taken(session, candidate)) is not None:
            raise Conflict(f"名称“{candidate}”已属于单位 {owner.name}(id {owner.id})/ name already in use")
    unit = Unit(name=name_key(name), kind=kind)
    session.add(unit)
    session.flush()
    assert unit.id is not None
    for alias in aliases:
        session.add(UnitAlias(unit_id=unit.id, alias=name_key(alias)))
    session.flush()
    return unit


def add_alias(*, session: Session, unit: Unit, alias: str) -> None:
    owner = _taken(session, alias)
    if owner is not None and owner.id != unit.id:
        raise Conflict(f"别名“{alias}”已属于单位 {owner.name}(id {owner.id})/ alias already in use")
    if owner is None:
        assert unit.id is not None
        session.add(UnitAlias(unit_id=unit.id, alias=name_key(alias)))
        session.flush()


def add_member(*, session: Session, group: Unit, member: Unit) -> bool:
    """Returns False when the member was already in the group."""
    if group.kind != UnitKind.group:
        raise InvalidParameter("group", f"{group.name} 不是组(kind=group),不能添加成员")
    if member.id == group.id or member.kind == UnitKind.group:
        raise InvalidParameter("member", f"{member.name} 是组,组不能嵌套")
    assert group.id is not None and member.id is not None
    if session.get(GroupMember, (group.id, member.id)) is not None:
        return False
    session.add(GroupMember(group_id=group.id, member_id=member.id))
    session.flush()
    return True


def remove_member(*, session: Session, group: Unit, member: Unit) -> None:
    link = session.get(GroupMember, (group.id, member.id))
    if link is None:
        raise NotFound(f"{member.name} 不是 {group.name} 的成员 / not a member")
    session.delete(link)
    session.flush()
