"""What an admin key may administer: keys, units and jurisdictions of its own subtree only.

A jurisdiction's admin key (its rule-of-law office) issues and revokes keys of its jurisdiction and
those below, adds units and townships there, and reads their audit log; a platform admin key (no
jurisdiction) does all of it everywhere. Every crossing is refused by `permissions.check_jurisdiction`.
"""

from __future__ import annotations

from sqlmodel import Session

from app.errors import InvalidParameter
from app.models import ApiKey, Jurisdiction, JurisdictionLevel, Unit, UnitKind
from app.services import jurisdictions, keys
from app.services import units as unit_service
from app.services.keys import Principal
from app.services.permissions import check_jurisdiction, key_scope


def _own(session: Session, admin: Principal) -> Jurisdiction | None:
    return (
        jurisdictions.get_by_id(session=session, jurisdiction_id=admin.jurisdiction_id)
        if admin.jurisdiction_id
        else None
    )


def target_jurisdiction(*, session: Session, admin: Principal, ref: str | None, field: str) -> Jurisdiction | None:
    """The jurisdiction an admin's request names (`ref`), else the admin's own; checked against its scope."""
    if ref is None:
        return _own(session, admin)
    target = jurisdictions.resolve(session=session, ref=ref, param=field, store=True)
    check_jurisdiction(session=session, principal=admin, jurisdiction_id=target.id, what="区划")
    return target


def issue_key(
    *,
    session: Session,
    admin: Principal,
    unit_ref: str | None,
    is_admin: bool,
    name: str | None,
    jurisdiction: str | None,
) -> tuple[ApiKey, str, Unit | None]:
    unit = unit_service.get_unit_for(session=session, ref=unit_ref, principal=admin) if unit_ref else None
    scope = (
        target_jurisdiction(session=session, admin=admin, ref=jurisdiction, field="jurisdiction") if is_admin else None
    )
    key_name = name or (unit.name if unit else "")
    key, secret = keys.create_key(session=session, name=key_name, unit=unit, is_admin=is_admin, jurisdiction=scope)
    return key, secret, unit


def list_keys(*, session: Session, admin: Principal) -> list[tuple[ApiKey, Unit | None]]:
    return keys.list_keys(session=session, within=key_scope(session=session, principal=admin))


def revoke_key(*, session: Session, admin: Principal, prefix: str) -> ApiKey:
    key = keys.find_key(session=session, prefix=prefix)
    check_jurisdiction(session=session, principal=admin, jurisdiction_id=key.jurisdiction_id, what="密钥")
    return keys.revoke_key(session=session, prefix=prefix, keep_last_admin=True)


def add_unit(
    *, session: Session, admin: Principal, name: str, kind: UnitKind, aliases: list[str], jurisdiction: str | None
) -> Unit:
    home = target_jurisdiction(session=session, admin=admin, ref=jurisdiction, field="jurisdiction")
    if home is None:
        raise InvalidParameter("jurisdiction", "全平台管理密钥新增单位时须指定 jurisdiction / say whose unit it is")
    return unit_service.create_unit(session=session, name=name, kind=kind, aliases=aliases, jurisdiction=home)


def add_jurisdiction(
    *, session: Session, admin: Principal, code: str, name: str, level: JurisdictionLevel, parent: str
) -> Jurisdiction:
    above = jurisdictions.resolve(session=session, ref=parent, param="parent", store=True)
    check_jurisdiction(session=session, principal=admin, jurisdiction_id=above.id, what="区划")
    return jurisdictions.create_local(session=session, code=code, name=name, level=level, parent=above)


def audit_scope(*, session: Session, admin: Principal, jurisdiction: str | None) -> set[int] | None:
    """The jurisdictions whose events an admin reads: its scope, narrowed by a `jurisdiction` filter."""
    scope = key_scope(session=session, principal=admin)
    if jurisdiction is None:
        return scope
    target = jurisdictions.resolve(session=session, ref=jurisdiction, param="jurisdiction")
    check_jurisdiction(session=session, principal=admin, jurisdiction_id=target.id, what="审计日志")
    return jurisdictions.subtree_ids(session=session, root_id=target.id or 0)
