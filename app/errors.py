"""Typed domain errors and the one place that renders every error as RFC 9457 problem+json.

A problem's `type` is a stable URI under /problems/ and `code` its short form, so integrators can
branch on it; `title` is English, `detail` says in Chinese (then English) what exactly was wrong.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import DataError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
_STORAGE_FULL = re.compile(
    r"disk is full|readonly database|read-only file system|disk I/O error|no space left on device", re.IGNORECASE
)
PROBLEM_BASE = "/problems/"


# Every problem `code` the service sends, with what it means: the contract integrators branch on.
# (tests/api/test_documented.py checks that each ProblemError and each handler's code is listed.)
PROBLEM_CODES: dict[str, str] = {
    "bad-request": "400 请求有误(如批量条目缺少 task)/ malformed request",
    "invalid-parameter": "400 参数取值无效(含控制字符、未知单位或区划、矛盾的过滤条件)/ invalid parameter",
    "unknown-parameter": "400 不支持的查询参数 / unknown query parameter",
    "ambiguous-unit": "400 单位名称对应多个行政区划的单位,须限定 / unit name matches units of several jurisdictions",
    "ambiguous-jurisdiction": "400 区划名称不唯一,请用代码 / jurisdiction name is ambiguous",
    "value-out-of-range": "400 数值超出存储范围 / a value out of range",
    "unauthenticated": "401 缺少、无效或已吊销的密钥 / missing, bad or revoked key",
    "admin-only": "403 需管理密钥 / admin key required",
    "outside-jurisdiction": "403 越出密钥的行政区划 / outside the key's jurisdiction",
    "not-linked-to-task": "403 单位与任务无关联 / unit not linked to the task",
    "not-your-report": "403 只能撤回本单位的报告 / not your report",
    "not-found": "404 不存在 / not found",
    "webhook-not-found": "404 推送端点不存在 / no such webhook endpoint",
    "method-not-allowed": "405 该地址不支持此方法(Allow 头列出支持的方法)/ method not allowed",
    "conflict": "409 已存在,或与并发写入冲突(未写入,可重试)/ exists already, or a concurrent write",
    "last-admin-key": "409 不能吊销最后一把有效的管理密钥 / the last active admin key",
    "precondition-failed": "412 If-Match 与当前 ETag 不一致 / stale ETag",
    "body-too-large": "413 请求体过大 / body too large",
    "uri-too-long": "414 查询字符串过长 / query string too long",
    "validation-error": "422 请求体或参数校验未通过,errors 列出字段 / validation failed, see errors",
    "idempotency-key-reused": "422 幂等键已用于不同的请求体 / idempotency key reused with another body",
    "unsafe-webhook-url": "422 推送地址解析到非公网地址 / webhook URL resolves to a non-public address",
    "batch-rejected": "422 原子批量中有条目未通过,整批未写入 / atomic batch refused, nothing written",
    "headers-too-large": "431 请求头过大 / request headers too large",
    "rate-limited": "429 请求过于频繁(或认证失败过多),按 Retry-After 稍后再试 / rate limited; retry after Retry-After",
    "database-busy": "503 数据库繁忙或不可用,未写入,可重试 / database busy, nothing written; retry",
    "storage-unavailable": "503 存储已满或只读,未写入 / storage full or read-only, nothing written",
    "internal-error": "500 服务器内部错误(已记录)/ internal error, logged",
    "http-error": "其他 HTTP 错误 / another HTTP error",
}
_CODES_DOC = "; ".join(f"`{code}` {meaning}" for code, meaning in PROBLEM_CODES.items())


class FieldError(BaseModel):
    field: str = Field(description="出错字段的路径,如 `query.limit`、`body.percent` / field path")
    message: str = Field(description="说明 / what is wrong")
    type: str = Field(description="机器可读的错误类别 / error category, e.g. `int_parsing`")


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = Field(description="问题类型 URI / problem type URI", examples=["/problems/not-found"])
    code: str = Field(description=f"稳定的问题代码 / stable problem code: {_CODES_DOC}", examples=["not-found"])
    title: str = Field(description="英文简述 / short English summary", examples=["Not Found"])
    status: int = Field(examples=[404])
    detail: str = Field(description="中文说明(附英文)/ human-readable explanation")
    instance: str | None = Field(default=None, description="出错的请求路径 / request path")
    errors: list[FieldError] | None = Field(default=None, description="逐字段错误 / per-field errors")


class ProblemError(Exception):
    status = 400
    code = "bad-request"
    title = "Bad Request"
    headers: ClassVar[dict[str, str] | None] = None

    def __init__(self, detail: str, *, errors: list[FieldError] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        self.extra = extra


class NotFound(ProblemError):
    status = 404
    code = "not-found"
    title = "Not Found"


class Conflict(ProblemError):
    status = 409
    code = "conflict"
    title = "Conflict"


class LastAdminKey(ProblemError):
    """Revoking it would leave a jurisdiction (or the platform) with no admin key: nobody could then
    issue or revoke its keys over the API. Issue the successor first, then revoke."""

    status = 409
    code = "last-admin-key"
    title = "Conflict"


class KeyWithoutRight(ProblemError):
    """A key that is neither a unit's nor an admin's could do nothing but read."""

    status = 422
    code = "validation-error"
    title = "Validation Error"


class UnitNameRejected(ProblemError):
    status = 422
    code = "validation-error"
    title = "Validation Error"


# raised in app/services/batches.py
class BatchRejected(ProblemError):
    """An atomic batch with a failing item: nothing written; the per-item results ride along as
    extension members (`atomic`, `created`, `replayed`, `failed`, `results`)."""

    status = 422
    code = "batch-rejected"
    title = "Batch Rejected"


class InvalidParameter(ProblemError):
    status = 400
    code = "invalid-parameter"
    title = "Invalid Parameter"

    def __init__(self, param: str, message: str, *, kind: str = "value_error") -> None:
        super().__init__(
            f"参数 {param} 无效:{message} / invalid parameter {param}",
            errors=[FieldError(field=f"query.{param}", message=message, type=kind)],
        )


# --- Problems raised by the services and the API helpers (each module imports its own from here) ---


# raised in app/services/keys.py
class Unauthenticated(ProblemError):
    status = 401
    code = "unauthenticated"
    title = "Unauthorized"
    headers: ClassVar[dict[str, str]] = {"WWW-Authenticate": "Bearer"}

    @property
    def reason(self) -> str:
        """The English part of the detail ("invalid API key"), for the audit log."""
        return self.detail.rsplit(" / ", 1)[-1]


# raised in app/api/deps.py
class AdminOnly(ProblemError):
    status = 403
    code = "admin-only"
    title = "Forbidden"


# raised in app/services/permissions.py
class OutsideJurisdiction(ProblemError):
    status = 403
    code = "outside-jurisdiction"
    title = "Forbidden"


# raised in app/services/permissions.py
class NotLinkedToTask(ProblemError):
    status = 403
    code = "not-linked-to-task"
    title = "Forbidden"


# raised in app/services/permissions.py
class AdminRequired(ProblemError):
    status = 403
    code = "admin-only"
    title = "Forbidden"


# raised in app/services/units.py
class AmbiguousUnit(ProblemError):
    status = 400
    code = "ambiguous-unit"
    title = "Ambiguous Unit"


# raised in app/services/jurisdictions.py
class AmbiguousJurisdiction(ProblemError):
    status = 400
    code = "ambiguous-jurisdiction"
    title = "Ambiguous Jurisdiction"


# raised in app/api/params.py
class UnknownParameter(ProblemError):
    status = 400
    code = "unknown-parameter"
    title = "Unknown Query Parameter"


# raised in app/api/params.py
class ControlCharacter(ProblemError):
    status = 400
    code = "invalid-parameter"
    title = "Invalid Parameter"


# raised in app/services/review.py
class NotYourReport(ProblemError):
    status = 403
    code = "not-your-report"
    title = "Forbidden"


# raised in app/services/progress.py
class ReportRejected(ProblemError):
    status = 422
    code = "validation-error"
    title = "Validation Error"


# raised in app/services/schedule.py
class PeriodRejected(ProblemError):
    status = 422
    code = "validation-error"
    title = "Validation Error"


# raised in app/services/excusals.py
class ExcusalRejected(ProblemError):
    status = 422
    code = "validation-error"
    title = "Validation Error"


# raised in app/services/idempotency.py
class IdempotencyKeyReused(ProblemError):
    status = 422
    code = "idempotency-key-reused"
    title = "Idempotency Key Reused"

    @classmethod
    def for_key(cls, key: str) -> IdempotencyKeyReused:
        return cls(
            f"Idempotency-Key“{key}”已用于另一内容不同的请求;重试请保持请求体不变,新报告请换新键 / "
            "the key was used with a different request"
        )


# raised in app/services/preconditions.py
class StaleETag(ProblemError):
    status = 412
    code = "precondition-failed"
    title = "Precondition Failed"


def problem_response(
    request: Request,
    *,
    status: int,
    code: str,
    title: str,
    detail: str,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = Problem(
        type=PROBLEM_BASE + code,
        code=code,
        title=title,
        status=status,
        detail=detail,
        instance=request.url.path,
        errors=errors,
    ).model_dump(exclude_none=True)
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _field_path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc)


_MESSAGES_ZH = {
    "missing": "缺少必填项",
    "extra_forbidden": "不允许的字段",
    "int_parsing": "应为整数",
    "bool_parsing": "应为 true 或 false",
    "date_from_datetime_parsing": "应为日期 YYYY-MM-DD",
    "date_parsing": "应为日期 YYYY-MM-DD",
    "enum": "取值不在允许范围内",
    "literal_error": "取值不在允许范围内",
    "greater_than_equal": "数值过小",
    "less_than_equal": "数值过大",
    "string_too_short": "内容过短",
    "string_too_long": "内容过长",
    "json_invalid": "请求体不是合法的 JSON",
    "string_pattern_mismatch": "格式不正确",
    "too_long": "条目过多",
    "too_short": "条目过少",
    "value_error": "取值无效",
    "list_type": "应为列表",
    "string_type": "应为字符串",
    "int_type": "应为整数",
}


def field_errors(errors: Sequence[Any], prefix: tuple[Any, ...] = ()) -> list[FieldError]:
    """pydantic's error list as field errors with paths (`body.items.3.percent`) and Chinese first."""
    out = []
    for err in errors:
        zh = _MESSAGES_ZH.get(err["type"])
        message = f"{zh}({err['msg']})" if zh else err["msg"]
        out.append(FieldError(field=_field_path(prefix + tuple(err["loc"])), message=message, type=err["type"]))
    return out


def problem_body(exc: ProblemError, instance: str | None = None) -> dict[str, Any]:
    """The problem+json object of a domain error, for embedding (batch results)."""
    return Problem(
        type=PROBLEM_BASE + exc.code,
        code=exc.code,
        title=exc.title,
        status=exc.status,
        detail=exc.detail,
        instance=instance,
        errors=exc.errors,
    ).model_dump(exclude_none=True)


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(ProblemError)
    async def _domain(request: Request, exc: ProblemError) -> JSONResponse:
        return problem_response(
            request,
            status=exc.status,
            code=exc.code,
            title=exc.title,
            detail=exc.detail,
            errors=exc.errors,
            headers=exc.headers,
            **exc.extra,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = field_errors(exc.errors())
        fields = "、".join(e.field for e in errors)
        return problem_response(
            request,
            status=422,
            code="validation-error",
            title="Validation Error",
            detail=f"请求内容校验未通过:{fields} / request validation failed",
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        messages = {
            404: ("not-found", "Not Found", "请求的地址不存在 / no such resource"),
            405: ("method-not-allowed", "Method Not Allowed", "该地址不支持此请求方法 / method not allowed"),
        }
        code, title, detail = messages.get(exc.status_code, ("http-error", "HTTP Error", f"{exc.detail}"))
        return problem_response(
            request,
            status=exc.status_code,
            code=code,
            title=title,
            detail=detail,
            headers=getattr(exc, "headers", None),
        )

    async def _database_busy(request: Request, exc: Exception) -> JSONResponse:
        # Deadlock victims, lock timeouts, a database restarting or unreachable, no pooled connection
        # free in time: nothing was written (the transaction rolled back), and the same request may
        # simply be sent again.
        reason = getattr(exc, "orig", None) or exc
        log.warning("database unavailable on %s %s: %s", request.method, request.url.path, reason)
        if _STORAGE_FULL.search(str(reason)):
            # The database's disk is full (SQLite, or PostgreSQL's ENOSPC) or SQLite's file read-only:
            # retrying will not help until an operator acts.
            return problem_response(
                request,
                status=503,
                code="storage-unavailable",
                title="Service Unavailable",
                detail="数据库存储空间已满或为只读,本次请求未写入任何数据;读取不受影响,请联系运维 / database "
                "storage full or read-only; nothing written, reads still served",
                headers={"Retry-After": "60"},
            )
        return problem_response(
            request,
            status=503,
            code="database-busy",
            title="Service Unavailable",
            detail="数据库暂时繁忙或不可用,本次请求未写入任何数据,请稍后重试 / database busy, nothing written; retry",
            headers={"Retry-After": "1"},
        )

    for unavailable in (OperationalError, InterfaceError, PoolTimeout):
        app.add_exception_handler(unavailable, _database_busy)

    @app.exception_handler(DataError)
    async def _out_of_range(request: Request, exc: DataError) -> JSONResponse:
        # A value the column cannot hold (a number past its range, a string past its length) that
        # slipped past the request's validation: the request's fault, so a 400, and logged to be fixed.
        log.warning("database refused a value on %s %s: %s", request.method, request.url.path, exc.orig)
        return problem_response(
            request,
            status=400,
            code="value-out-of-range",
            title="Bad Request",
            detail="请求中的某个值超出允许范围,未写入任何数据 / a value is out of range; nothing written",
        )

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, exc: IntegrityError) -> JSONResponse:
        log.warning("integrity conflict on %s %s: %s", request.method, request.url.path, exc.orig)
        return problem_response(
            request,
            status=409,
            code="conflict",
            title="Conflict",
            detail="与同时进行的另一请求冲突,本次请求未写入任何数据,请重试 / conflicting concurrent write; retry",
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(
            request,
            status=500,
            code="internal-error",
            title="Internal Server Error",
            detail="服务器内部错误,已记录日志 / internal error, logged",
        )
