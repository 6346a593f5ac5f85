"""Units as the API sees them: lookup by id, name or alias; groups and members.

A name means a unit of some jurisdiction: when it matches units of several, the caller must say
which (a `jurisdiction` parameter, a `640422:县司法局` qualifier, or the id); it is never guessed.
All digits mean an id (`12`); a unit whose name is all digits is addressed as `name:12`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, col, select

from app.errors import AmbiguousUnit, Conflict, FieldError, InvalidParameter, NotFound, UnitNameRejected
from app.models import GroupMember, Jurisdiction, Plan, Unit, UnitAlias, UnitKind
from app.services import jurisdictions
from app.services.jurisdictions import LEVEL_PREFIXES, subtree_ids
from app.services.keys import Principal
from app.services.permissions import check_jurisdiction, key_scope
from app.services.unit_names import UnitResolver, candidate_keys, name_key


@dataclass
class ResolvedUnit:
    unit: Unit
    as_typed: str  # what the caller wrote: an id, the canonical name or an alias


NAME_QUALIFIER = "name:"  # `name:12`: the unit named 12, not unit id 12

ALL_PREFIXES = tuple(dict.fromkeys(p for prefixes in LEVEL_PREFIXES.values() for p in prefixes))


def split_qualifier(ref: str) -> tuple[str | None, str]:
    """`640422:县司法局` or `西吉县:县司法局` → (jurisdiction, name); a bare name has no qualifier."""
    head, sep, tail = ref.replace("：", ":").partition(":")
    return (head.strip(), tail.strip()) if sep else (None, ref.strip())


def find_units(*, session: Session, ref: str, within: set[int] | None = None, as_name: bool = False) -> list[Unit]:
    """Every unit `ref` may mean, at most one per jurisdiction (its best spelling there); `within`
    limits the search to those jurisdictions. An id is one unit (unless `as_name`)."""
    if ref.isascii() and ref.isdigit() and not as_name:
        # An id beyond the integer column's range names no unit (and must not overflow PostgreSQL).
        unit = session.get(Unit, int(ref)) if len(ref) <= 10 and int(ref) < 2**31 else None
        return [unit] if unit is not None and (within is None or unit.jurisdiction_id in within) else []
    # The importer's spellings (each level's prefix), as two indexed lookups instead of loading every unit.
    candidates = candidate_keys(ref, ALL_PREFIXES)
    by_name = select(Unit).where(col(Unit.name).in_(candidates))
    by_alias = (
        select(UnitAlias.alias, Unit)
        .join(Unit, col(Unit.id) == col(UnitAlias.unit_id))
        .where(col(UnitAlias.alias).in_(candidates))
    )
    if within is not None:
        by_name = by_name.where(col(Unit.jurisdiction_id).in_(within))
        by_alias = by_alias.where(col(Unit.jurisdiction_id).in_(within))
    rank = {key: i for i, key in enumerate(candidates)}
    best: dict[int, tuple[tuple[int, int], Unit]] = {}
    hits = [((rank[u.name], 0), u) for u in session.exec(by_name)]
    hits += [((rank[alias], 1), u) for alias, u in session.exec(by_alias).all()]
    for order, unit in hits:
        held = best.get(unit.jurisdiction_id)
        if held is None or order < held[0]:
            best[unit.jurisdiction_id] = (order, unit)
    return sorted((u for _, u in best.values()), key=lambda u: u.id or 0)


def _scope(session: Session, jurisdiction: Jurisdiction | None) -> set[int] | None:
    return None if jurisdiction is None else subtree_ids(session=session, root_id=jurisdiction.id or 0)


def find_unit(
    *, session: Session, ref: str, jurisdiction: Jurisdiction | None = None, within: set[int] | None = None
) -> Unit | None:
    """`ref` is an id (`12`), the canonical name (`县司法局`) or any alias (`司法局`), optionally
    qualified (`640422:司法局`); `jurisdiction` limits the search to its subtree (`within`: to those
    jurisdictions). A name that means units of several jurisdictions is AmbiguousUnit (400, listing
    them), never a guess. `name:12` is the unit named 12 (a bare `12` is id 12)."""
    as_name = ref.startswith(NAME_QUALIFIER)
    qualifier, name = split_qualifier(ref.removeprefix(NAME_QUALIFIER))
    if qualifier is not None:
        jurisdiction, within = jurisdictions.resolve(session=session, ref=qualifier), None
    scope = within if within is not None else _scope(session, jurisdiction)
    found = find_units(session=session, ref=name, within=scope, as_name=as_name)
    if len(found) > 1:
        listed = "、".join(f"{u.name}(id {u.id},{u.jurisdiction.name} {u.jurisdiction.code})" for u in found)
        raise AmbiguousUnit(
            f"“{ref}”对应多个行政区划的单位:{listed};请加 jurisdiction 参数、写成 区划代码:名称,或用 id"
            f" / {ref!r} matches units of several jurisdictions",
            candidates=[
                {"id": u.id, "name": u.name, "jurisdiction": {"code": u.jurisdiction.code, "name": u.jurisdiction.name}}
                for u in found
            ],
        )
    return found[0] if found else None


def get_unit(*, session: Session, ref: str, jurisdiction: Jurisdiction | None = None) -> Unit:
    unit = find_unit(session=session, ref=ref, jurisdiction=jurisdiction)
    if unit is None:
        where = f"在 {jurisdiction.name}({jurisdiction.code})" if jurisdiction is not None else ""
        raise NotFound(f"{where}单位“{ref}”不存在(可用 id、规范名称或别名)/ no unit {ref!r}")
    return unit


def get_unit_in(*, session: Session, ref: str, jurisdiction: str | None) -> Unit:
    """A unit named in a path, with the optional `jurisdiction` parameter (code or name) that picks
    among same-named units of several jurisdictions."""
    scope = jurisdictions.resolve(session=session, ref=jurisdiction, param="jurisdiction") if jurisdiction else None
    return get_unit(session=session, ref=ref, jurisdiction=scope)


def get_unit_for(*, session: Session, ref: str, principal: Principal) -> Unit:
    """A unit an admin key names: looked up within the key's jurisdictions first (so 县司法局 means
    the key's own), then anywhere, where the boundary check refuses it (403 outside-jurisdiction)."""
    scope = key_scope(session=session, principal=principal)
    unit = find_unit(session=session, ref=ref, within=scope) if scope is not None else None
    if unit is None:
        unit = get_unit(session=session, ref=ref)
    check_jurisdiction(session=session, principal=principal, jurisdiction_id=unit.jurisdiction_id, what="单位")
    return unit


def resolve_unit_param(*, session: Session, param: str, ref: str, within: frozenset[int] | None = None) -> ResolvedUnit:
    unit = find_unit(session=session, ref=ref.strip(), within=set(within) if within is not None else None)
    if unit is None:
        raise InvalidParameter(param, f"未知单位“{ref}”(可用 id、规范名称或别名,见 /api/v1/units)", kind="unknown_unit")
    return ResolvedUnit(unit=unit, as_typed=ref)


def plan_scope(*, session: Session, plan: Plan) -> frozenset[int]:
    """Where a unit named in a plan's context is looked for: the plan's jurisdiction and the levels
    above it (the units its tasks can link). Context, not a guess: 司法局 on 西吉县's plan is 西吉县's."""
    above = jurisdictions.ancestors(session=session, jurisdiction=plan.jurisdiction)
    return frozenset({plan.jurisdiction_id, *(j.id for j in above if j.id is not None)})


def list_units(
    *, session: Session, kind: UnitKind | None = None, jurisdiction_ids: set[int] | None = None
) -> list[Unit]:
    query = select(Unit).order_by(col(Unit.id))
    if kind is not None:
        query = query.where(Unit.kind == kind)
    if jurisdiction_ids is not None:
        query = query.where(col(Unit.jurisdiction_id).in_(jurisdiction_ids))
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


def _taken(session: Session, jurisdiction: Jurisdiction, name: str) -> Unit | None:
    return UnitResolver(session, jurisdiction, upward=False).resolve_exact(name)


def create_unit(*, session: Session, name: str, kind: UnitKind, aliases: list[str], jurisdiction: Jurisdiction) -> Unit:
    """Names and aliases are unique within the jurisdiction, and addressable (see `_check_addressable`)."""
    _check_addressable(name, "body.name")
    for index, alias in enumerate(aliases):
        _check_addressable(alias, f"body.aliases.{index}")
    for candidate in [name, *aliases]:
        if (owner := _taken(session, jurisdiction, candidate)) is not None:
            raise Conflict(f"名称“{candidate}”已属于单位 {owner.name}(id {owner.id})/ name already in use")
    assert jurisdiction.id is not None
    unit = Unit(name=name_key(name), kind=kind, jurisdiction_id=jurisdiction.id)
    session.add(unit)
    session.flush()
    assert unit.id is not None
    for alias in aliases:
        session.add(UnitAlias(unit_id=unit.id, jurisdiction_id=jurisdiction.id, alias=name_key(alias)))
    session.flush()
    return unit


def add_alias(*, session: Session, unit: Unit, alias: str) -> None:
    _check_addressable(alias, "body.alias")
    owner = _taken(session, unit.jurisdiction, alias)
    if owner is not None and owner.id != unit.id:
        raise Conflict(f"别名“{alias}”已属于单位 {owner.name}(id {owner.id})/ alias already in use")
    if owner is None:
        assert unit.id is not None
        session.add(UnitAlias(unit_id=unit.id, jurisdiction_id=unit.jurisdiction_id, alias=name_key(alias)))
        session.flush()


def _check_addressable(name: str, field: str) -> None:
    # A colon would read as a jurisdiction qualifier (`640422:县司法局`), so such a name could never be
    # looked up. All digits are fine: `name:12` addresses them (a bare `12` is an id).
    if ":" in name or "：" in name:
        raise UnitNameRejected(
            f"单位名称或别名“{name}”不能含冒号(冒号用于区划限定,如 640422:县司法局)"
            " / a unit name or alias must not contain a colon",
            errors=[FieldError(field=field, message="不能含冒号 / no colon", type="value_error")],
        )


def add_member(*, session: Session, group: Unit, member: Unit) -> bool:
    """Returns False when the member was already in the group."""
    if group.kind != UnitKind.group:
        raise InvalidParameter("group", f"{group.name} 不是组(kind=group),不能添加成员")
    # A group's members are units of its jurisdiction or below it (a county's 各乡镇: its townships' units).
    if member.jurisdiction_id not in subtree_ids(session=session, root_id=group.jurisdiction_id):
        raise InvalidParameter(
            "member", f"{member.name} 属于 {member.jurisdiction.name},不在组 {group.name} 所属区划及其下级之内"
        )
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
