"""/api/v1/units: canonical units, their aliases and groups, and their tasks across plans."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from app.api.deps import SessionDep
from app.api.lists import ListParamsDep, page_in_memory, render_slice
from app.api.params import JurisdictionParam, UnitJurisdictionParam
from app.api.paths import UnitRefPath
from app.api.read_cache import ReadCacheDep
from app.api.responses import Rendered, render_json
from app.api.task_query import TaskQueryDep, unit_task_list
from app.models import UnitKind
from app.schemas.common import Page
from app.schemas.task import TaskListPage
from app.schemas.unit import UnitDetail, UnitRef
from app.services import jurisdictions as jurisdiction_service
from app.services import units as unit_service

router = APIRouter(prefix="/units", tags=["units"])


def unit_detail(session: SessionDep, unit_ref: str, jurisdiction: str | None = None) -> UnitDetail:
    """`jurisdiction` (code or name) picks among same-named units of several jurisdictions."""
    unit = unit_service.get_unit_in(session=session, ref=unit_ref, jurisdiction=jurisdiction)
    assert unit.id is not None
    members = unit_service.members_of(session=session, group_id=unit.id) if unit.kind == UnitKind.group else None
    return UnitDetail(
        **UnitRef.from_unit(unit).model_dump(),
        aliases=unit_service.aliases_of(session=session, unit_ids=[unit.id])[unit.id],
        groups=[UnitRef.from_unit(g) for g in unit_service.groups_of(session=session, unit_id=unit.id)],
        members=[UnitRef.from_unit(m) for m in members] if members is not None else None,
    )


@router.get("", response_model=Page[UnitDetail])
async def list_units(
    request: Request,
    session: SessionDep,
    cache: ReadCacheDep,
    page: ListParamsDep,
    kind: Annotated[UnitKind | None, Query(description="按类别过滤 / filter by kind", examples=["group"])] = None,
    jurisdiction: JurisdictionParam = None,
) -> Response:
    """列出单位(含别名、所属组、组成员;可按行政区划过滤)/ List units with aliases, groups and members."""

    def build() -> Rendered:
        within = jurisdiction_service.scope_ids(session=session, ref=jurisdiction)
        units = unit_service.list_units(
            session=session, kind=kind, jurisdiction_ids=set(within) if within is not None else None
        )
        items = [unit_detail(session, str(u.id)) for u in units]
        return render_slice(UnitDetail, page_in_memory(items, page))

    return await cache.respond(build)


@router.get("/{unit_id}", response_model=UnitDetail)
async def get_unit(
    request: Request,
    unit_id: UnitRefPath,
    session: SessionDep,
    cache: ReadCacheDep,
    jurisdiction: UnitJurisdictionParam = None,
) -> Response:
    """单位详情 / One unit: aliases, kind, the groups it belongs to, members if a group."""

    def build() -> Rendered:
        return render_json(unit_detail(session, unit_id, jurisdiction))

    return await cache.respond(build)


@router.get("/{unit_id}/tasks", response_model=TaskListPage)
async def list_unit_tasks(
    request: Request, unit_id: UnitRefPath, session: SessionDep, params: TaskQueryDep, cache: ReadCacheDep
) -> Response:
    """该单位在所有方案中的任务(参数同任务列表)/ The unit's tasks across plans; same filters as the task list."""

    def build() -> Rendered:
        return unit_task_list(request=request, session=session, params=params, version=cache.version)

    return await cache.respond(build)
