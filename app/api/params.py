"""Query-parameter handling shared by every route: unknown parameters are an error, not ignored.

A typo in a department's script (`staus=completed`) must not quietly return the whole plan.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from app.errors import FieldError, ProblemError

JurisdictionParam = Annotated[
    str | None,
    Query(
        description="按行政区划过滤(代码或名称),含其下级区划 / only this jurisdiction and those below it",
        examples=["640422"],
    ),
]


class UnknownParameter(ProblemError):
    status = 400
    code = "unknown-parameter"
    title = "Unknown Query Parameter"


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


async def reject_unknown_query_params(request: Request) -> None:
    # async: pure parsing, so it runs on the event loop instead of costing a threadpool hop
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
