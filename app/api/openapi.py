"""OpenAPI touches FastAPI does not do by itself: summaries from docstrings, problem+json errors."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from app.errors import PROBLEM_JSON, Problem
from app.schemas.common import DOCUMENTED_MODELS

PROBLEM_REF = "#/components/schemas/Problem"

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "参数错误(含 ambiguous-unit 同名单位分属多个区划)/ bad parameter"},
    404: {"model": Problem, "description": "不存在 / not found"},
    422: {"model": Problem, "description": "校验未通过 / validation failed"},
    429: {
        "model": Problem,
        "description": "请求过于频繁(rate-limited,按地址、按密钥、或该地址认证失败过多),见 Retry-After"
        " / rate limited; see Retry-After",
        "headers": {
            "Retry-After": {"description": "几秒后可重试 / seconds to wait", "schema": {"type": "integer"}},
        },
    },
}
WRITE_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "缺少、无效或已吊销的密钥 / missing, bad or revoked key"},
    403: {
        "model": Problem,
        "description": "无权操作:单位与任务无关联(not-linked-to-task)、越出密钥的行政区划(outside-jurisdiction)"
        "、需管理密钥(admin-only)/ not allowed",
    },
    413: {"model": Problem, "description": "请求体过大 / body too large"},
}


def operation_id(route: APIRoute) -> str:
    """The handler's name (`list_tasks`, `submit_progress`): what generated clients call the method.
    FastAPI's default (`list_tasks_api_v1_plans__plan__tasks_get`) is unreadable and changes with the path."""
    return route.name


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                summary=app.summary,
                version=app.version,
                description=app.description,
                routes=app.routes,
                tags=app.openapi_tags,
            )
            _documented_models(schema)
            _summaries_from_docstrings(schema)
            _errors_as_problem_json(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _errors_as_problem_json(schema: dict[str, Any]) -> None:
    # Errors are sent as application/problem+json; FastAPI documents every model as application/json.
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            for code, response in operation.get("responses", {}).items():
                content = response.get("content", {})
                if not code.startswith(("4", "5")):
                    continue
                if "application/json" in content:
                    content[PROBLEM_JSON] = {"schema": {"$ref": PROBLEM_REF}}
                    del content["application/json"]


def _summaries_from_docstrings(schema: dict[str, Any]) -> None:
    # A handler's first docstring line is its summary (FastAPI would title-case the function name).
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            first, _, rest = operation.get("description", "").strip().partition("\n")
            if first:
                operation["summary"] = first.strip()
                operation["description"] = rest.strip()


def _documented_models(schema: dict[str, Any]) -> None:
    # Batch items are read as plain objects (validated one by one) but documented as their model.
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in DOCUMENTED_MODELS:
        document = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, definition in document.pop("$defs", {}).items():
            components.setdefault(name, definition)
        components.setdefault(model.__name__, document)
