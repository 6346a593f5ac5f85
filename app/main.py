"""The ASGI application: `uvicorn app.main:app`, or `plan-api serve`."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from fastapi import APIRouter, Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline

from app import __version__
from app.api.body_limit import BodyLimitMiddleware
from app.api.deps import require_reader
from app.api.openapi import ERROR_RESPONSES, install_openapi, operation_id
from app.api.params import reject_unknown_query_params
from app.api.protocol import ProtocolMiddleware
from app.api.rate_limit import AbuseLimits, RateLimitMiddleware
from app.api.read_cache import CachedReads, ColdRoute, ResponseCache
from app.api.task_query import cold_task_list, plan_task_list, unit_task_list
from app.core.config import Settings, get_settings
from app.dashboard import STATIC_DIR, STATIC_URL
from app.errors import install_problem_handlers
from app.routers import (
    admin,
    briefing,
    changes,
    dashboard,
    duties,
    exports,
    health,
    jurisdictions,
    plans,
    progress,
    review,
    schedule,
    tasks,
    templates,
    units,
    webhooks,
)
from app.services.read_model import ReadModel
from app.services.webhook_delivery import worker_lifespan

API_PREFIX = "/api/v1"

DESCRIPTION = """
县级实施方案数据服务 —— 把县政府的实施方案(章节、任务、责任单位、进展)作为数据提供给县里的其他系统。

The county's implementation plans as data: sections, tasks, the units responsible for them in their
roles (牵头 lead / 配合 cooperating / 责任 responsible), and how far each task has got.

* 所有错误均为 RFC 9457 `application/problem+json`,含稳定的 `code` 与中文 `detail`。
* 列表响应为 `{"items": [...], "next_cursor": ...}`;把 `next_cursor` 作为 `cursor` 参数取下一页。
"""

# Tag names are ASCII (client generators turn them into module names); the Chinese is in the description.
TAGS = [
    {"name": "plans", "description": "方案及其元数据 / plans and their metadata"},
    {"name": "tasks", "description": "任务查询与详情 / tasks: query language and detail"},
    {"name": "units", "description": "单位、别名、组及其任务 / units, aliases, groups"},
    {"name": "progress", "description": "进展:各单位报送(需密钥)与进展历史 / progress reports (writes need a key)"},
    {"name": "changes", "description": "变更订阅:按序增量同步 / incremental sync feed"},
    {"name": "admin", "description": "管理(依法治县办):密钥、单位、组成员、审计 / keys, units, groups, audit"},
    {"name": "schedule", "description": "报送周期:报告期日历、免报 / reporting schedule, periods, excused duties"},
    {"name": "review", "description": "审核与撤回报告 / review and withdrawal of reports"},
    {"name": "supervision", "description": "督查:报送义务、合规率、单位待办 / duties, compliance, a unit's to-do list"},
    {"name": "jurisdictions", "description": "行政区划:区划树及其方案、单位、任务数 / jurisdictions and their counts"},
    {
        "name": "toolkit",
        "description": "部门报送工具:填报模板与导出(XLSX/CSV)/ departments' toolkit: fill-in templates, exports",
    },
    {
        "name": "webhooks",
        "description": "推送(Standard Webhooks 签名):端点、密钥轮换、投递记录、重放 / signed webhooks",
    },
    {"name": "health", "description": "健康检查:存活与就绪探针 / liveness and readiness"},
    {
        "name": "briefing",
        "description": "通报:按报告期从数据起草(Markdown / Word)/ the periodic 通报, drafted from the data",
    },
]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPIOffline(
        title="Plan API",  # ASCII: generated client packages are named after it
        summary="西吉县实施方案数据服务 / the county's implementation plans as data",
        generate_unique_id_function=operation_id,
        version=__version__,
        description=DESCRIPTION,
        openapi_tags=TAGS,
        responses=ERROR_RESPONSES,
        lifespan=worker_lifespan(settings) if settings.webhook_worker else None,
    )
    app.add_middleware(CachedReads)  # innermost: a cached answer passes the same layers as the route's
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "If-None-Match", "If-Match", "Idempotency-Key"],
            expose_headers=["ETag"],
        )
    app.add_middleware(GZipMiddleware, minimum_size=1024)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.state.abuse_limits = AbuseLimits(settings)
    app.add_middleware(RateLimitMiddleware, limits=app.state.abuse_limits)  # before any route or database work
    app.add_middleware(ProtocolMiddleware)  # outermost: HEAD and security headers on every answer
    install_problem_handlers(app)
    api = APIRouter(prefix=API_PREFIX, dependencies=[Depends(reject_unknown_query_params), Depends(require_reader)])
    api.include_router(jurisdictions.router)
    api.include_router(plans.router)
    api.include_router(tasks.router)
    api.include_router(units.router)
    api.include_router(templates.router)
    api.include_router(exports.router)
    api.include_router(progress.router)
    api.include_router(changes.router)
    api.include_router(admin.router)
    api.include_router(schedule.router)
    api.include_router(review.router)
    api.include_router(duties.router)
    api.include_router(briefing.router)
    api.include_router(webhooks.router)
    app.include_router(api)
    app.include_router(health.router)
    app.include_router(dashboard.router)
    app.mount(STATIC_URL, StaticFiles(directory=STATIC_DIR), name="dashboard-static")
    install_openapi(app)
    app.state.response_cache = ResponseCache(settings.response_cache_max_bytes)
    app.state.read_model = ReadModel(settings.read_model_max_bytes)
    # Task lists the fast path builds itself on a miss, with the route's own parsing and build.
    app.state.cold_reads = [
        ColdRoute(API_PREFIX + route.path, route, partial(cold_task_list, build=build))
        for route, build in (
            (_route(tasks.router, tasks.list_tasks), plan_task_list),
            (_route(units.router, units.list_unit_tasks), unit_task_list),
        )
    ]
    return app


def _route(router: APIRouter, endpoint: Callable[..., Any]) -> APIRoute:
    return next(r for r in router.routes if isinstance(r, APIRoute) and r.endpoint is endpoint)


app = create_app()
