"""Units as the API sees them: lookup by id, name or alias; groups and members."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, col, select

from app.errors import InvalidParameter, NotFound
from app.importer.units import UnitResolver
from app.models import GroupMember, Unit, UnitAlias, UnitKind


@dataclass
class ResolvedUnit:
    unit: Unit
    as_typed: str  # what the caller wrote: an id, the canonical name or an alias


def find_unit(*, session: Session, ref: str) -> Unit | None:
    """`ref` is an id (`12`), the canonical name (`县司法局`) or any alias (`司法局`)."""
    if ref.isdigit():
        return session.get(Unit, int(ref))
    return UnitResolver(session).resolve(ref)


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
