"""OpenAPI touches FastAPI does not do by itself: summaries from docstrings, problem+json errors."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from app.api.deps import require_admin_reader, verified_principal
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
    409: {
        "model": Problem,
        "description": "冲突:名称、别名或区划代码已存在,不可吊销或降级最后一把管理密钥,或与并发写入冲突(未写入,可重试)"
        " / conflict: already exists, the last admin key, or a concurrent write (nothing written; retry)",
    },
    413: {"model": Problem, "description": "请求体过大 / body too large"},
}
# What any operation may answer, whatever it does: a busy or unreachable database (503, nothing
# written), too many requests (429, with Retry-After), and — for reads, when REQUIRE_KEY_FOR_READS is
# set — a missing or bad key (401). Added to every /api/v1 operation by `_common_responses`.
COMMON_RESPONSES: dict[str, str] = {
    "401": "缺少、无效或已吊销的密钥(读取需密钥时)/ missing, bad or revoked key (when reads need one)",
    "414": "查询字符串过长(超过 8 KiB)/ query string too long (over 8 KiB)",
    "431": "请求头过大(合计超过 16 KiB)/ request headers too large (over 16 KiB)",
    "429": "请求过多,请按 Retry-After 稍后再试 / too many requests; retry after Retry-After",
    "503": "数据库暂时繁忙或不可用,未写入任何数据,可重试 / database busy or unavailable; nothing written, retry",
}
# Text parameters refuse control characters (app/api/params.py); the document says so, so generated
# clients and fuzzers know the rule before the server tells them.
NO_CONTROL_CHARACTERS = "^[^\\u0000-\\u001f\\u007f]*$"


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
            _common_responses(schema)
            _errors_as_problem_json(schema)
            _key_optional_on_reads(schema, _keyless_operations(app))
            _text_parameters_without_control_characters(schema)
            _links(schema)
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
                    # The documented model is Problem or a subclass with extension members (BatchProblem).
                    content[PROBLEM_JSON] = content.pop("application/json")


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


# The dependencies that refuse a request without a valid key; every write depends on
# `verified_principal` through `writer_writes` / `admin_writes`. (Reads with an optional key call
# `verified_principal` as a function, not as a dependency, so they stay keyless here.)
KEY_REQUIRED = (require_admin_reader, verified_principal)


def _needs_key(dependant: Dependant) -> bool:
    return dependant.call in KEY_REQUIRED or any(_needs_key(d) for d in dependant.dependencies)


def _keyless_operations(app: FastAPI) -> set[str]:
    # FastAPI >= 0.16x keeps included routers as branches; iter_route_contexts walks them.
    from fastapi.routing import iter_route_contexts

    names: set[str] = set()
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute) and not _needs_key(route.dependant):
            names.add(route.name)
    return names


def _key_optional_on_reads(schema: dict[str, Any], keyless: set[str]) -> None:
    # Reads are open unless REQUIRE_KEY_FOR_READS is set: the key is optional there (`{}` = anonymous).
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            if operation.get("operationId") in keyless and operation.get("security"):
                operation["security"] = [{}, *operation["security"]]


def _common_responses(schema: dict[str, Any]) -> None:
    for name, path in schema.get("paths", {}).items():
        if not name.startswith("/api/"):
            continue
        for operation in path.values():
            responses = operation.setdefault("responses", {})
            for code, description in COMMON_RESPONSES.items():
                responses.setdefault(
                    code, {"description": description, "content": {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}}}
                )


def _text_parameters_without_control_characters(schema: dict[str, Any]) -> None:
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            for param in operation.get("parameters", []):
                if param.get("in") not in ("path", "query"):
                    continue
                for variant in _string_schemas(param.get("schema", {})):
                    variant.setdefault("pattern", NO_CONTROL_CHARACTERS)


def _string_schemas(schema: dict[str, Any]) -> list[dict[str, Any]]:
    if schema.get("type") == "string" and "format" not in schema and "enum" not in schema:
        return [schema]
    if schema.get("type") == "array":
        return _string_schemas(schema.get("items", {}))
    return [s for variant in schema.get("anyOf", []) for s in _string_schemas(variant)]


# OpenAPI links: what a created resource's answer lets a client (or a stateful fuzzer) call next.
# (operation, status) → {link name: (target operation, {parameter: runtime expression})}
LINKS: dict[tuple[str, str], dict[str, tuple[str, dict[str, str]]]] = {
    ("submit_progress", "201"): {
        "GetReport": ("get_report", {"report_id": "$response.body#/id"}),
        "WithdrawReport": ("withdraw_report", {"report_id": "$response.body#/id"}),
        "ReviewReport": ("review_report", {"report_id": "$response.body#/id"}),
        "TaskHistory": ("task_history", {"plan": "$request.path.plan", "code": "$request.path.code"}),
    },
    ("create_unit", "201"): {
        "GetUnit": ("get_unit", {"unit_id": "$response.body#/id"}),
        "AddAlias": ("add_alias", {"unit_id": "$response.body#/id"}),
        "UnitTasks": ("list_unit_tasks", {"unit_id": "$response.body#/id"}),
    },
    ("add_alias", "201"): {"GetUnit": ("get_unit", {"unit_id": "$response.body#/id"})},
    ("add_member", "201"): {
        "GetGroup": ("get_unit", {"unit_id": "$response.body#/id"}),
        "RemoveMember": ("remove_member", {"group_id": "$response.body#/id", "member_id": "$request.body#/member"}),
    },
    ("create_key", "201"): {"RevokeKey": ("revoke_key", {"prefix": "$response.body#/prefix"})},
    ("create_excusal", "201"): {
        "RevokeExcusal": ("revoke_excusal", {"plan": "$request.path.plan", "excusal_id": "$response.body#/id"})
    },
    ("create_jurisdiction", "201"): {"GetJurisdiction": ("get_jurisdiction", {"code": "$response.body#/code"})},
}


def _links(schema: dict[str, Any]) -> None:
    operations = {op.get("operationId"): op for path in schema.get("paths", {}).values() for op in path.values()}
    for (source, status), links in LINKS.items():
        response = operations[source]["responses"][status]
        for name, (target, parameters) in links.items():
            assert target in operations, target  # a renamed handler must not leave a dangling link
            response.setdefault("links", {})[name] = {"operationId": target, "parameters": parameters}
