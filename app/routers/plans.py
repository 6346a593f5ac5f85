"""/api/v1/plans: plans, their section tree and statistics."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from app.api.deps import SessionDep
from app.api.lists import ListParamsDep, page_in_memory, render_slice
from app.api.params import IsoDate, JurisdictionParam
from app.api.paths import PlanSlug
from app.api.read_cache import ReadCacheDep
from app.api.responses import Rendered, render_json
from app.core.clock import county_today
from app.schemas.common import Page
from app.schemas.plan import PlanDetail, PlanSource, PlanStats, PlanSummary, SectionNode
from app.services import jurisdictions as jurisdiction_service
from app.services import plans as plan_service

router = APIRouter(prefix="/plans", tags=["plans"])


@router.get("", response_model=Page[PlanSummary])
async def list_plans(
    request: Request,
    session: SessionDep,
    cache: ReadCacheDep,
    page: ListParamsDep,
    jurisdiction: JurisdictionParam = None,
) -> Response:
    """列出方案(可按行政区划过滤)/ List plans, optionally of one jurisdiction and those below it."""

    def build() -> Rendered:
        within = jurisdiction_service.scope_ids(session=session, ref=jurisdiction)
        items = [PlanSummary.from_plan(p) for p in plan_service.list_plans(session=session, jurisdiction_ids=within)]
        return render_slice(PlanSummary, page_in_memory(items, page))

    return await cache.respond(build)


@router.get("/{plan}", response_model=PlanDetail)
async def get_plan(request: Request, plan: PlanSlug, session: SessionDep, cache: ReadCacheDep) -> Response:
    """方案详情:元数据、总体目标、任务/单位/关联数 / Plan metadata, goals and counts."""

    def build() -> Rendered:
        row = plan_service.get_plan(session=session, slug=plan)
        detail = PlanDetail(
            **PlanSummary.from_plan(row).model_dump(),
            goals=row.goals,
            counts=plan_service.plan_counts(session=session, plan=row),
            source=PlanSource(name=row.source_name, checksum=row.source_checksum, encoding=row.source_encoding),
        )
        return render_json(detail)

    return await cache.respond(build)


@router.get("/{plan}/sections", response_model=Page[SectionNode])
async def list_sections(
    request: Request, plan: PlanSlug, session: SessionDep, cache: ReadCacheDep, page: ListParamsDep
) -> Response:
    """章节树:章、节及其标题和正文 / The chapter → subsection tree with titles and body text."""

    def build() -> Rendered:
        row = plan_service.get_plan(session=session, slug=plan)
        tree = plan_service.section_tree(session=session, plan=row)
        return render_slice(SectionNode, page_in_memory(tree, page))

    return await cache.respond(build)


@router.get("/{plan}/stats", response_model=PlanStats)
async def get_stats(
    request: Request,
    plan: PlanSlug,
    session: SessionDep,
    cache: ReadCacheDep,
    as_of: Annotated[
        IsoDate | None,
        Query(description="基准日,默认今天:状态、进度、亮灯均为该日结束时的情况 / reference date (default today)"),
    ] = None,
    period: Annotated[
        str | None,
        Query(
            description="合规统计的报告期,默认 as_of 时最近一个已过报送期限的报告期"
            " / compliance period, default the latest whose deadline has passed",
            examples=["2023"],
        ),
    ] = None,
) -> Response:
    """统计:按状态、亮灯、按章(含平均进度)、按单位(牵头负担、合规)/ Counts by status, light, chapter and unit."""

    def build() -> Rendered:
        row = plan_service.get_plan(session=session, slug=plan)
        stats = plan_service.plan_stats(session=session, plan=row, as_of=as_of or county_today(), period=period)
        return render_json(stats)

    return await cache.respond(build)
