"""Query-parameter handling shared by every route: unknown parameters are an error, not ignored,
and no parameter may carry control characters.

A typo in a department's script (`staus=completed`) must not quietly return the whole plan; a NUL
byte must not reach the database (PostgreSQL refuses it with an error, SQLite stores it).
"""

from __future__ import annotations

import re
from copy import copy
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any

from fastapi import Query, Request
from fastapi._compat.shared import field_annotation_is_sequence
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel, BeforeValidator, ValidationError, create_model
from starlette.datastructures import QueryParams

from app.errors import ControlCharacter, FieldError, ProblemError, UnknownParameter
from app.schemas.common import MAX_ID

JurisdictionParam = Annotated[
    str | None,
    Query(
        description="按行政区划过滤(代码或名称),含其下级区划 / only this jurisdiction and those below it",
        examples=["640422"],
    ),
]

UnitJurisdictionParam = Annotated[
    str | None,
    Query(
        description="单位所属行政区划(代码或名称),当同名单位分属多个区划时必须给出 / the unit's jurisdiction, "
        "needed when the name matches units of several",
        examples=["640422"],
    ),
]


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _iso_date(value: Any) -> Any:
    # pydantic also reads `0` or `1700000000` as a Unix time and `２０２３-01-01` as a date; the
    # document says YYYY-MM-DD, so that is the only spelling accepted.
    if isinstance(value, str) and not _ISO_DATE.fullmatch(value):
        raise ValueError("应为日期 YYYY-MM-DD / expected a date YYYY-MM-DD")
    return value


IsoDate = Annotated[date, BeforeValidator(_iso_date)]
"""A date query parameter: exactly YYYY-MM-DD in ASCII digits."""

# Counter cursors (`since=`, history `cursor=`) as the document states them: ASCII digits only.
COUNTER_PATTERN = r"^[0-9]{1,10}$"

# C0 controls (NUL included) and DEL; tab, newline and carriage return have no business in a parameter either.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Ids and feed sequence numbers are 32-bit integer columns on PostgreSQL: no cursor is ever larger,
# and a larger one must be a 400 here, not an "integer out of range" from the database.
MAX_CURSOR = MAX_ID


def parse_counter(value: str, param: str) -> int:
    """A non-negative integer cursor (`since=`, a history cursor): ASCII digits, in range, or a 400.
    (`str.isdigit` alone accepts `²` and `٣`, which `int()` then rejects or misreads.)"""
    if not (value.isascii() and value.isdigit()) or len(value) > 10 or int(value) > MAX_CURSOR:
        raise ProblemError(
            f"参数 {param} 无效:应为上一页响应中的游标原值(非负整数) / invalid parameter {param}",
            errors=[FieldError(field=f"query.{param}", message="应为非负整数游标", type="value_error")],
        )
    return int(value)


def _reject_control_characters(request: Request) -> None:
    bad = [("query", k) for k, v in request.query_params.multi_items() if _CONTROL.search(k) or _CONTROL.search(v)]
    bad += [("path", k) for k, v in request.path_params.items() if isinstance(v, str) and _CONTROL.search(v)]
    if bad:
        raise ControlCharacter(
            "参数中含有控制字符(如 NUL),已拒绝 / parameters must not contain control characters",
            errors=[
                FieldError(field=f"{where}.{name}", message="不能含控制字符", type="control_character")
                for where, name in bad
            ],
        )


_allowed_cache: dict[int, frozenset[str]] = {}


def _allowed(route: APIRoute) -> frozenset[str]:
    key = id(route)
    if key not in _allowed_cache:
        _allowed_cache[key] = frozenset(_query_names(route.dependant))
    return _allowed_cache[key]


def _query_names(dependant: Dependant) -> set[str]:
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


def query_values(route: APIRoute, call: Any, request: Request) -> dict[str, Any] | None:
    """The query parameters of `call`, one of `route`'s dependencies, validated as the route validates
    them, or None where the route would answer 422. For the response cache's fast path, which answers
    a route's miss without solving its dependencies."""
    key = (id(route), call)
    parse = _parsers.get(key)
    if parse is None:
        found = _dependency(route.dependant, call)
        assert found is not None, f"{call!r} is not a dependency of {route.path}"
        parse = _parsers[key] = _QueryParser.of(found)
    return parse(request.query_params)


@dataclass(frozen=True)
class _QueryParser:
    """A dependency's query parameters as one pydantic model made from FastAPI's own fields for them
    (type, default, alias, constraints, validators): the same rules, checked in a few µs where FastAPI's
    per-field path re-inspects every annotation on every request (~130 µs for a task list's 18).
    Values are taken as FastAPI takes them: every value of a list parameter, the last of another."""

    model: type[BaseModel]
    fields: tuple[tuple[str, str, bool], ...]  # name, alias, is a list

    @classmethod
    def of(cls, dependant: Dependant) -> _QueryParser:
        fields = dependant.query_params
        model = create_model(  # type: ignore[call-overload]
            f"{dependant.call.__name__ if dependant.call else 'query'}_values",
            **{field.name: (field.field_info.annotation, copy(field.field_info)) for field in fields},
        )
        many = [field_annotation_is_sequence(field.field_info.annotation) for field in fields]
        return cls(model, tuple((f.name, f.alias, m) for f, m in zip(fields, many, strict=True)))

    def __call__(self, query: QueryParams) -> dict[str, Any] | None:
        data = {
            alias: query.getlist(alias) if many else query[alias] for _, alias, many in self.fields if alias in query
        }
        try:
            parsed = self.model.model_validate(data)
        except ValidationError:
            return None
        return {name: getattr(parsed, name) for name, _, _ in self.fields}


_parsers: dict[tuple[int, Any], _QueryParser] = {}


def _dependency(dependant: Dependant, call: Any) -> Dependant | None:
    for sub in dependant.dependencies:
        if sub.call is call:
            return sub
        found = _dependency(sub, call)
        if found is not None:
            return found
    return None


async def reject_unknown_query_params(request: Request) -> None:
    # async: pure parsing, so it runs on the event loop instead of costing a threadpool hop
    check_query_params(request)


def check_query_params(request: Request) -> None:
    """Control characters and unknown parameters are refused (`reject_unknown_query_params`, every
    route's; also the response cache's fast path, before it parses a query)."""
    _reject_control_characters(request)
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    unknown = sorted(set(request.query_params) - _allowed(route))
    if unknown:
        allowed = "、".join(sorted(_allowed(route))) or "(无)"
        raise UnknownParameter(
            f"不支持的查询参数:{'、'.join(unknown)};本接口支持:{allowed} / unknown query parameter(s)",
            errors=[
                FieldError(field=f"query.{name}", message="不支持的参数 / unknown parameter", type="unknown_parameter")
                for name in unknown
            ],
        )
