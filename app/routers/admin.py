"""/api/v1/admin: what the rule-of-law office (依法治县办) administers — keys, units, groups, audit."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from app.api.deps import AdminDep, WriteSessionDep, client_address
from app.api.openapi import WRITE_RESPONSES
from app.api.paths import GroupRefPath, KeyPrefix, UnitRefPath
from app.api.responses import json_response
from app.models import ApiKey, Unit
from app.routers.changes import Since, parse_since
from app.routers.units import unit_detail
from app.schemas.common import Page
from app.schemas.progress import AliasCreate, AuditOut, KeyCreate, KeyCreated, KeyOut, MemberAdd, UnitCreate
from app.schemas.unit import UnitDetail, UnitRef
from app.services import feed, keys
from app.services import units as unit_service
from app.services.keys import Principal

router = APIRouter(responses=WRITE_RESPONSES, prefix="/admin", tags=["admin"])


def _key_out(key: ApiKey, unit: Unit | None) -> KeyOut:
    return KeyOut(
        prefix=key.prefix,
        name=key.name,
        unit=UnitRef.from_unit(unit) if unit else None,
        admin=key.is_admin,
        created_at=key.created_at,
        revoked_at=key.revoked_at,
    )


def _audit(
    request: Request, session: WriteSessionDep, by: Principal, type: str, unit: Unit | None, **data: object
) -> None:
    feed.record_event(
        session=session,
        type=type,
        principal=by,
        remote_addr=client_address(request),
        unit_id=unit.id if unit else None,
        data=dict(data),
    )


@router.post("/keys", status_code=201, response_model=KeyCreated)
def create_key(request: Request, body: KeyCreate, admin: AdminDep, session: WriteSessionDep) -> JSONResponse:
    """签发密钥(单位密钥或管理密钥);密钥明文只在此响应中出现一次 / Issue a key; the secret is shown once."""
    unit = unit_service.get_unit(session=session, ref=body.unit) if body.unit else None
    name = body.name or (unit.name if unit else "")
    key, secret = keys.create_key(session=session, name=name, unit=unit, is_admin=body.admin)
    _audit(request, session, admin, "key.created", unit, prefix=key.prefix, is_admin=key.is_admin, name=name)
    session.commit()
    out = KeyCreated(**_key_out(key, unit).model_dump(), key=secret)
    return JSONResponse(out.model_dump(mode="json"), status_code=201, headers={"Cache-Control": "no-store"})


@router.get("/keys", response_model=Page[KeyOut])
def list_keys(request: Request, admin: AdminDep, session: WriteSessionDep) -> Response:
    """列出密钥(不含明文)/ List keys (never the secrets)."""
    items = [_key_out(k, u) for k, u in keys.list_keys(session=session)]
    return json_response(request, Page[KeyOut](items=items, next_cursor=None), exclude={"total"})


@router.delete("/keys/{prefix}", response_model=KeyOut)
def revoke_key(request: Request, prefix: KeyPrefix, admin: AdminDep, session: WriteSessionDep) -> KeyOut:
    """吊销密钥,立即生效 / Revoke a key, effective at once."""
    key = keys.revoke_key(session=session, prefix=prefix)
    unit = session.get(Unit, key.unit_id) if key.unit_id else None
    _audit(request, session, admin, "key.revoked", unit, prefix=prefix)
    session.commit()
    return _key_out(key, unit)


@router.post("/units", status_code=201, response_model=UnitDetail)
def create_unit(request: Request, body: UnitCreate, admin: AdminDep, session: WriteSessionDep) -> UnitDetail:
    """新增单位(如乡镇)/ Add a unit, e.g. a township."""
    unit = unit_service.create_unit(session=session, name=body.name, kind=body.kind, aliases=body.aliases)
    _audit(request, session, admin, "unit.created", unit, name=unit.name, kind=unit.kind, aliases=body.aliases)
    session.commit()
    return unit_detail(session, str(unit.id))


@router.post("/units/{unit_id}/aliases", status_code=201, response_model=UnitDetail)
def add_alias(
    request: Request, unit_id: UnitRefPath, body: AliasCreate, admin: AdminDep, session: WriteSessionDep
) -> UnitDetail:
    """为单位添加别名 / Add an alias."""
    unit = unit_service.get_unit(session=session, ref=unit_id)
    unit_service.add_alias(session=session, unit=unit, alias=body.alias)
    _audit(request, session, admin, "unit.alias_added", unit, alias=body.alias)
    session.commit()
    return unit_detail(session, str(unit.id))


@router.post("/units/{group_id}/members", status_code=201, response_model=UnitDetail)
def add_member(
    request: Request, group_id: GroupRefPath, body: MemberAdd, admin: AdminDep, session: WriteSessionDep
) -> UnitDetail:
    """向组(各乡镇、各部门(单位)…)添加成员 / Add a member to a group."""
    group = unit_service.get_unit(session=session, ref=group_id)
    member = unit_service.get_unit(session=session, ref=body.member)
    if unit_service.add_member(session=session, group=group, member=member):
        _audit(request, session, admin, "group.member_added", member, group=group.name, member=member.name)
    session.commit()
    return unit_detail(session, str(group.id))


@router.delete("/units/{group_id}/members/{member_id}", response_model=UnitDetail)
def remove_member(
    request: Request, group_id: GroupRefPath, member_id: UnitRefPath, admin: AdminDep, session: WriteSessionDep
) -> UnitDetail:
    """从组中移除成员 / Remove a member from a group."""
    group = unit_service.get_unit(session=session, ref=group_id)
    member = unit_service.get_unit(session=session, ref=member_id)
    unit_service.remove_member(session=session, group=group, member=member)
    _audit(request, session, admin, "group.member_removed", member, group=group.name, member=member.name)
    session.commit()
    return unit_detail(session, str(group.id))


@router.get("/audit", response_model=Page[AuditOut])
def audit_log(
    request: Request,
    admin: AdminDep,
    session: WriteSessionDep,
    since: Since = "0",
    limit: Annotated[int, Query(ge=1, le=1000, description="每页条数 / page size")] = 100,
) -> Response:
    """审计日志:谁、用哪把密钥、何时、从哪个地址做了什么 / Who did what, with which key, when, from where."""
    events = feed.list_events(session=session, since=parse_since(since), limit=limit + 1)
    page = events[:limit]
    items = feed.present_events(session=session, events=page, audit=True)
    next_cursor = str(page[-1].seq) if len(events) > limit else None
    return json_response(request, Page[AuditOut](items=items, next_cursor=next_cursor), exclude={"total"})
