"""/api/v1/jurisdictions: the divisions this deployment serves, as a tree with what each holds."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from app.api.deps import SessionDep
from app.api.lists import ListParamsDep, page_in_memory, render_slice
from app.api.params import IsoDate
from app.api.read_cache import ReadCacheDep
from app.api.responses import Rendered, render_json
from app.core.clock import county_today
from app.schemas.common import Page
from app.schemas.jurisdiction import JurisdictionNode
from app.schemas.plan import JurisdictionStats
from app.services import jurisdictions as jurisdiction_service
from app.services import plans as plan_service

router = APIRouter(prefix="/jurisdictions", tags=["jurisdictions"])

JurisdictionRefPath = Annotated[str, Path(description="区划代码或名称 / division code or name", examples=["640422"])]


@router.get("", response_model=Page[JurisdictionNode])
async def list_jurisdictions(
    request: Request, session: SessionDep, cache: ReadCacheDep, page: ListParamsDep
) -> Response:
    """行政区划树,每个节点含本级及下级的方案、单位、任务数 / The tree, with plans, units and tasks per node (incl. below)."""

    def build() -> Rendered:
        items = jurisdiction_service.tree(session=session)
        return render_slice(JurisdictionNode, page_in_memory(items, page))

    return await cache.respond(build)


@router.get("/{code}/stats", response_model=JurisdictionStats)
async def get_jurisdiction_stats(
    request: Request,
    code: JurisdictionRefPath,
    session: SessionDep,
    cache: ReadCacheDep,
    as_of: Annotated[IsoDate | None, Query(description="计算逾期的基准日,默认今天 / reference date")] = None,
) -> Response:
    """统计:该区划及其下级全部方案的任务状态与逾期数,并按方案列出 / Task status and overdue counts over its plans."""

    def build() -> Rendered:
        row = jurisdiction_service.resolve(session=session, ref=code)
        return render_json(
            plan_service.jurisdiction_stats(session=session, jurisdiction=row, as_of=as_of or county_today())
        )

    return await cache.respond(build)


@router.get("/{code}", response_model=JurisdictionNode)
async def get_jurisdiction(
    request: Request, code: JurisdictionRefPath, session: SessionDep, cache: ReadCacheDep
) -> Response:
    """一个行政区划及其下级 / One jurisdiction and those below it."""

    def build() -> Rendered:
        row = jurisdiction_service.resolve(session=session, ref=code)
        return render_json(jurisdiction_service.node(session=session, jurisdiction=row))

    return await cache.respond(build)
