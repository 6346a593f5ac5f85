"""/api/v1/changes: the change feed other systems sync from, in order, without re-reading the plan."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from app.api.deps import AdminReadingDep, SessionDep
from app.api.params import COUNTER_PATTERN, JurisdictionParam, parse_counter
from app.api.responses import json_response
from app.schemas.progress import ChangesPage
from app.services import feed
from app.services import jurisdictions as jurisdiction_service
from app.services import plans as plan_service

router = APIRouter(tags=["changes"])

Since = Annotated[
    str,
    Query(
        description="上次响应的 next_cursor;首次用 0 / the previous next_cursor; 0 to start",
        examples=["0"],
        json_schema_extra={"pattern": COUNTER_PATTERN},
    ),
]
Limit = Annotated[int, Query(ge=1, le=1000, description="每次最多条数 / max events")]


def parse_since(since: str) -> int:
    return parse_counter(since, "since")


@router.get("/changes", response_model=ChangesPage)
def list_changes(
    request: Request,
    session: SessionDep,
    admin_reading: AdminReadingDep,
    since: Since = "0",
    limit: Limit = 100,
    plan: Annotated[str | None, Query(description="只看某方案 / one plan only")] = None,
    jurisdiction: JurisdictionParam = None,
) -> Response:
    """按顺序返回 since 之后的变更事件(报告、状态变化、单位与密钥管理)/ Events after `since`, in order.

    轮询方式:保存 `next_cursor`,下次以 `since=<next_cursor>` 请求;`has_more` 为 true 时立即继续。
    Poll with `since=<next_cursor>`; continue at once while `has_more` is true.
    不带管理密钥时不显示密钥前缀与管理密钥名称 / without an admin key, key prefixes and admin key names are left out.
    """
    after = parse_since(since)
    plan_id = plan_service.get_plan(session=session, slug=plan).id if plan else None
    within = jurisdiction_service.scope_ids(session=session, ref=jurisdiction)
    events = feed.list_events(
        session=session,
        since=after,
        limit=limit + 1,
        plan_id=plan_id,
        within=set(within) if within is not None else None,
    )
    page = events[:limit]
    body = ChangesPage(
        items=feed.present_events(session=session, events=page, public=not admin_reading),
        next_cursor=str(page[-1].seq if page else after),
        has_more=len(events) > limit,
    )
    return json_response(request, body)
