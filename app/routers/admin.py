"""/api/v1/admin: what a rule-of-law office (依法治县办) administers — keys, units, groups, townships,
audit — each admin key within its own jurisdiction's subtree (`app/services/administration.py`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.orm import object_session
from sqlmodel import Session

from app.api.deps import AdminReaderDep, AdminWritesDep, SessionDep, client_address
from app.api.lists import ListParamsDep, page_in_memory, render_slice
from app.api.openapi import WRITE_RESPONSES
from app.api.params import JurisdictionParam
from app.api.paths import GroupRefPath, KeyPrefix, UnitRefPath
from app.api.responses import json_response, send
from app.models import ApiKey, Jurisdiction, Unit
from app.routers.changes import Since, parse_since
from app.routers.units import unit_detail
from app.schemas.common import Page
from app.schemas.jurisdiction import JurisdictionCreate, JurisdictionNode, JurisdictionRef
from app.schemas.progress import AliasCreate, AuditOut, KeyCreate, KeyCreated, KeyOut, MemberAdd, UnitCreate
from app.schemas.unit import UnitDetail, UnitRef
from app.services import administration, feed
from app.services import jurisdictions as jurisdiction_service
from app.services import units as unit_service
from app.services.keys import Principal

router = APIRouter(responses=WRITE_RESPONSES, prefix="/admin", tags=["admin"])


def _key_out(key: ApiKey, unit: Unit | None) -> KeyOut:
    return KeyOut(
        prefix=key.prefix,
        name=key.name,
        unit=UnitRef.from_unit(unit) if unit else None,
        admin=key.is_admin,
        jurisdiction=JurisdictionRef.of(key_jurisdiction) if (key_jurisdiction := _jurisdiction(key)) else None,
        created_at=key.created_at,
        revoked_at=key.revoked_at,
    )


def _jurisdiction(key: ApiKey) -> Jurisdiction | None:
    session = object_session(key)
    return session.get(Jurisdiction, key.jurisdiction_id) if session and key.jurisdiction_id else None


def _audit(
    request: Request,
    session: Session,
    by: Principal,
    type: str,
    unit: Unit | None,
    jurisdiction_id: int | None = None,
    **data: object,
) -> None:
    feed.record_event(
        session=session,
        type=type,
        principal=by,
        remote_addr=client_address(request),
        unit_id=unit.id if unit else None,
        jurisdiction_id=jurisdiction_id,
        data=dict(data),
    )


@router.post("/keys", status_code=201, response_model=KeyCreated)
def create_key(request: Request, body: KeyCreate, writes: AdminWritesDep) -> JSONResponse:
    """签发密钥(单位密钥或管理密钥);密钥明文只在此响应中出现一次 / Issue a key; the secret is shown once."""
    out = writes.run(lambda session, admin: _issue_key(request, body, session, admin))
    return JSONResponse(out.model_dump(mode="json"), status_code=201, headers={"Cache-Control": "no-store"})


def _issue_key(request: Request, body: KeyCreate, session: Session, admin: Principal) -> KeyCreated:
    key, secret, unit = administration.issue_key(
        session=session,
        admin=admin,
        unit_ref=body.unit,
        is_admin=body.admin,
        name=body.name,
        jurisdiction=body.jurisdiction,
    )
    _audit(
        request,
        session,
        admin,
        "key.created",
        unit,
        prefix=key.prefix,
        is_admin=key.is_admin,
        name=key.name,
        jurisdiction_id=key.jurisdiction_id,
    )
    return KeyCreated(**_key_out(key, unit).model_dump(), key=secret)


@router.get("/keys", response_model=Page[KeyOut])
def list_keys(request: Request, admin: AdminReaderDep, session: SessionDep, page: ListParamsDep) -> Response:
    """列出密钥(不含明文)/ List keys (never the secrets)."""
    items = [_key_out(k, u) for k, u in administration.list_keys(session=session, admin=admin)]
    return send(request, render_slice(KeyOut, page_in_memory(items, page)))


@router.delete("/keys/{prefix}", response_model=KeyOut)
def revoke_key(request: Request, prefix: KeyPrefix, writes: AdminWritesDep) -> KeyOut:
    """吊销密钥,立即生效 / Revoke a key, effective at once."""

    def work(session: Session, admin: Principal) -> KeyOut:
        key = administration.revoke_key(session=session, admin=admin, prefix=prefix)
        unit = session.get(Unit, key.unit_id) if key.unit_id else None
        _audit(request, session, admin, "key.revoked", unit, prefix=prefix, jurisdiction_id=key.jurisdiction_id)
        return _key_out(key, unit)

    return writes.run(work)


@router.post("/units", status_code=201, response_model=UnitDetail)
def create_unit(request: Request, body: UnitCreate, writes: AdminWritesDep) -> UnitDetail:
    """新增单位(如乡镇)/ Add a unit, e.g. a township."""

    def work(session: Session, admin: Principal) -> UnitDetail:
        unit = administration.add_unit(
            session=session,
            admin=admin,
            name=body.name,
            kind=body.kind,
            aliases=body.aliases,
            jurisdiction=body.jurisdiction,
        )
        _audit(request, session, admin, "unit.created", unit, name=unit.name, kind=unit.kind, aliases=body.aliases)
        return unit_detail(session, str(unit.id))

    return writes.run(work)


@router.post("/units/{unit_id}/aliases", status_code=201, response_model=UnitDetail)
def add_alias(request: Request, unit_id: UnitRefPath, body: AliasCreate, writes: AdminWritesDep) -> UnitDetail:
    """为单位添加别名 / Add an alias."""

    def work(session: Session, admin: Principal) -> UnitDetail:
        unit = unit_service.get_unit_for(session=session, ref=unit_id, principal=admin)
        unit_service.add_alias(session=session, unit=unit, alias=body.alias)
        _audit(request, session, admin, "unit.alias_added", unit, alias=body.alias)
        return unit_detail(session, str(unit.id))

    return writes.run(work)


@router.post("/units/{group_id}/members", status_code=201, response_model=UnitDetail)
def add_member(request: Request, group_id: GroupRefPath, body: MemberAdd, writes: AdminWritesDep) -> UnitDetail:
    """向组(各乡镇、各部门(单位)…)添加成员 / Add a member to a group."""

    def work(session: Session, admin: Principal) -> UnitDetail:
        group = unit_service.get_unit_for(session=session, ref=group_id, principal=admin)
        member = unit_service.get_unit_for(session=session, ref=body.member, principal=admin)
        if unit_service.add_member(session=session, group=group, member=member):
            _audit(request, session, admin, "group.member_added", member, group=group.name, member=member.name)
        return unit_detail(session, str(group.id))

    return writes.run(work)


@router.delete("/units/{group_id}/members/{member_id}", response_model=UnitDetail)
def remove_member(
    request: Request, group_id: GroupRefPath, member_id: UnitRefPath, writes: AdminWritesDep
) -> UnitDetail:
    """从组中移除成员 / Remove a member from a group."""

    def work(session: Session, admin: Principal) -> UnitDetail:
        group = unit_service.get_unit_for(session=session, ref=group_id, principal=admin)
        member = unit_service.get_unit_for(session=session, ref=member_id, principal=admin)
        unit_service.remove_member(session=session, group=group, member=member)
        _audit(request, session, admin, "group.member_removed", member, group=group.name, member=member.name)
        return unit_detail(session, str(group.id))

    return writes.run(work)


@router.post("/jurisdictions", status_code=201, response_model=JurisdictionNode)
def create_jurisdiction(request: Request, body: JurisdictionCreate, writes: AdminWritesDep) -> JurisdictionNode:
    """新增本地区划(乡镇等),须在本密钥管辖范围内 / Add a local jurisdiction (a township) under one you administer."""

    def work(session: Session, admin: Principal) -> JurisdictionNode:
        row = administration.add_jurisdiction(
            session=session, admin=admin, code=body.code, name=body.name, level=body.level, parent=body.parent
        )
        _audit(
            request,
            session,
            admin,
            "jurisdiction.created",
            None,
            jurisdiction_id=row.id,
            code=row.code,
            name=row.name,
            level=row.level,
            parent=body.parent,
        )
        return jurisdiction_service.node(session=session, jurisdiction=row)

    return writes.run(work)


@router.get("/audit", response_model=Page[AuditOut])
def audit_log(
    request: Request,
    admin: AdminReaderDep,
    session: SessionDep,
    since: Since = "0",
    limit: Annotated[int, Query(ge=1, le=1000, description="每页条数 / page size")] = 100,
    jurisdiction: JurisdictionParam = None,
) -> Response:
    """审计日志:谁、用哪把密钥、何时、从哪个地址做了什么;只含本密钥管辖区划的事件 / Who did what, within the key's jurisdiction."""
    within = administration.audit_scope(session=session, admin=admin, jurisdiction=jurisdiction)
    events = feed.list_events(session=session, since=parse_since(since), limit=limit + 1, within=within)
    page = events[:limit]
    items = feed.present_events(session=session, events=page, audit=True)
    next_cursor = str(page[-1].seq) if len(events) > limit else None
    return json_response(request, Page[AuditOut](items=items, next_cursor=next_cursor), exclude={"total"})
