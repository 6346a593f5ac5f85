"""/api/v1/plans/{plan}/tasks: the task list with its query language, and one task."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from app.api.deps import SessionDep
from app.api.params import IsoDate
from app.api.paths import PlanSlug, TaskCode
from app.api.read_cache import ReadCacheDep
from app.api.responses import Rendered
from app.api.task_query import TaskQueryDep, plan_task_list, task_detail
from app.schemas.task import TaskListPage, TaskOut

router = APIRouter(prefix="/plans/{plan}/tasks", tags=["tasks"])

CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "JSON 或 CSV"}
}


@router.get("", response_model=TaskListPage, responses=CSV_RESPONSE)
async def list_tasks(
    request: Request, plan: PlanSlug, session: SessionDep, params: TaskQueryDep, cache: ReadCacheDep
) -> Response:
    """查询任务(可组合过滤、排序、分页、CSV 导出)/ Query tasks: combinable filters, sort, pages, CSV.

    例 Examples:

    * 县司法局牵头的任务 / what 县司法局 leads: `?unit=司法局&role=lead`
    * 某乡镇的全部任务(含 各乡镇 任务)/ a township's tasks: `?unit=<id>&include_groups=true`
    * 第四章已逾期的任务 / overdue in chapter 四: `?section=4&overdue=true`
    * 关键词 / keyword: `?q=民法典`
    """

    def build() -> Rendered:
        return plan_task_list(request=request, session=session, params=params, version=cache.version)

    return await cache.respond(build)


@router.get("/{code}", response_model=TaskOut)
async def get_task(
    request: Request,
    plan: PlanSlug,
    code: TaskCode,
    session: SessionDep,
    cache: ReadCacheDep,
    as_of: Annotated[
        IsoDate | None,
        Query(
            description="基准日,默认今天:状态、进度、亮灯为该日结束时的情况 / status, progress and light as of that day"
        ),
    ] = None,
) -> Response:
    """任务详情:全文、责任单位及角色、状态、亮灯、出处 / One task with its units in their roles."""

    def build() -> Rendered:
        return task_detail(request=request, session=session, slug=plan, code=code, as_of=as_of, version=cache.version)

    return await cache.respond(build)
