"""The ASGI application: `uvicorn app.main:app`, or `plan-api serve`."""

from __future__ import annotations

from fastapi import APIRouter, Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.gzip import GZipMiddleware
from fastapi_offline import FastAPIOffline

from app import __version__
from app.api.body_limit import BodyLimitMiddleware
from app.api.deps import require_reader
from app.api.openapi import ERROR_RESPONSES, install_openapi
from app.api.params import reject_unknown_query_params
from app.api.read_cache import ResponseCache
from app.core.config import Settings, get_settings
from app.errors import install_problem_handlers
from app.routers import admin, changes, health, jurisdictions, plans, progress, tasks, units

API_PREFIX = "/api/v1"

DESCRIPTION = """
县级实施方案数据服务 —— 把县政府的实施方案(章节、任务、责任单位、进展)作为数据提供给县里的其他系统。

The county's implementation plans as data: sections, tasks, the units responsible for them in their
roles (牵头 lead / 配合 cooperating / 责任 responsible), and how far each task has got.

* 所有错误均为 RFC 9457 `application/problem+json`,含稳定的 `code` 与中文 `detail`。
* 列表响应为 `{"items": [...], "next_cursor": ...}`;把 `next_cursor` 作为 `cursor` 参数取下一页。
"""

TAGS = [
    {"name": "plans 方案", "description": "方案及其元数据 / plans and their metadata"},
    {"name": "tasks 任务", "description": "任务查询与详情 / tasks: query language and detail"},
    {"name": "units 单位", "description": "单位、别名、组及其任务 / units, aliases, groups"},
    {"name": "progress 进展", "description": "各单位报送进展(需密钥)与进展历史 / progress reports (writes need a key)"},
    {"name": "changes 变更订阅", "description": "按序增量同步 / incremental sync feed"},
    {"name": "admin 管理(依法治县办)", "description": "密钥、单位、组成员、审计 / keys, units, groups, audit"},
    {"name": "health 健康检查", "description": "存活与就绪探针 / liveness and readiness"},
]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPIOffline(
        title="西吉县实施方案数据服务 Plan API",
        version=__version__,
        description=DESCRIPTION,
        openapi_tags=TAGS,
        responses=ERROR_RESPONSES,
    )
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
    install_problem_handlers(app)
    api = APIRouter(prefix=API_PREFIX, dependencies=[Depends(reject_unknown_query_params), Depends(require_reader)])
    api.include_router(jurisdictions.router)
    api.include_router(plans.router)
    api.include_router(tasks.router)
    api.include_router(units.router)
    api.include_router(progress.router)
    api.include_router(changes.router)
    api.include_router(admin.router)
    app.include_router(api)
    app.include_router(health.router)
    install_openapi(app)
    app.state.response_cache = ResponseCache()
    return app


app = create_app()
