"""/api/v1/admin/webhooks: signed webhooks (Standard Webhooks) that push change-feed events to other
systems; registered by an admin key within its jurisdiction (`app/services/webhooks.py`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from sqlmodel import Session

from app.api.deps import AdminReaderDep, AdminWritesDep, SessionDep, SettingsDep, client_address
from app.api.lists import ListParamsDep, page_in_memory, render_slice
from app.api.openapi import WRITE_RESPONSES
from app.api.params import parse_counter
from app.api.responses import json_response, send
from app.errors import Problem
from app.models import MessageState
from app.routers.changes import Since
from app.schemas.common import MAX_ID, Page
from app.schemas.webhook import (
    DeliveryAttemptOut,
    WebhookCreate,
    WebhookCreated,
    WebhookOut,
    WebhookReplay,
    WebhookSecret,
    WebhookUpdate,
)
from app.services import feed
from app.services import webhooks as webhook_service
from app.services.keys import Principal

router = APIRouter(responses=WRITE_RESPONSES, prefix="/admin/webhooks", tags=["webhooks"])

EndpointId = Annotated[int, Path(ge=1, le=MAX_ID, description="推送端点 id / endpoint id", examples=[1])]
NO_STORE = {"Cache-Control": "no-store"}
URL_RESPONSES: dict[int | str, dict[str, Any]] = {
    422: {
        "model": Problem,
        "description": "校验未通过(字段路径见 errors),或推送地址解析到非公网地址(unsafe-webhook-url)"
        " / validation failed, or the URL resolves to a non-public address",
    },
}


def _audit(request: Request, session: Session, admin: Principal, type: str, endpoint_id: int, **data: object) -> None:
    feed.record_event(
        session=session,
        type=type,
        principal=admin,
        remote_addr=client_address(request),
        data={"endpoint": endpoint_id, **data},
    )


@router.post("", status_code=201, response_model=WebhookCreated, responses=URL_RESPONSES)
def create_webhook(
    request: Request, body: WebhookCreate, writes: AdminWritesDep, settings: SettingsDep
) -> JSONResponse:
    """登记推送端点;签名密钥只在此响应中出现一次 / Register an endpoint; its secret is shown once."""

    def work(session: Session, admin: Principal) -> WebhookCreated:
        endpoint, secret = webhook_service.create_endpoint(session=session, admin=admin, data=body, settings=settings)
        assert endpoint.id is not None
        _audit(request, session, admin, "webhook.created", endpoint.id, url=endpoint.url)
        return WebhookCreated(**webhook_service.present(session=session, endpoint=endpoint).model_dump(), secret=secret)

    out = writes.run(work)
    return JSONResponse(out.model_dump(mode="json"), status_code=201, headers=NO_STORE)


@router.get("", response_model=Page[WebhookOut])
def list_webhooks(request: Request, admin: AdminReaderDep, session: SessionDep, page: ListParamsDep) -> Response:
    """列出本区划的推送端点(不含密钥)/ List the endpoints of the key's jurisdiction (never the secrets)."""
    items = [
        webhook_service.present(session=session, endpoint=e)
        for e in webhook_service.list_endpoints(session=session, admin=admin)
    ]
    return send(request, render_slice(WebhookOut, page_in_memory(items, page)))


@router.get("/{endpoint_id}", response_model=WebhookOut)
def get_webhook(request: Request, endpoint_id: EndpointId, admin: AdminReaderDep, session: SessionDep) -> Response:
    """推送端点详情(带 ETag,可用 If-None-Match 重新验证)/ One endpoint, with an ETag."""
    endpoint = webhook_service.get_endpoint(session=session, admin=admin, endpoint_id=endpoint_id)
    return json_response(request, webhook_service.present(session=session, endpoint=endpoint))


@router.patch("/{endpoint_id}", response_model=WebhookOut, responses=URL_RESPONSES)
def update_webhook(
    request: Request,
    endpoint_id: EndpointId,
    body: WebhookUpdate,
    writes: AdminWritesDep,
    settings: SettingsDep,
) -> WebhookOut:
    """修改地址、事件类型、过滤条件;停用或重新启用(重新启用后未送达的消息重新投递)/ Update, disable or re-enable."""

    def work(session: Session, admin: Principal) -> WebhookOut:
        endpoint = webhook_service.get_endpoint(session=session, admin=admin, endpoint_id=endpoint_id)
        webhook_service.update_endpoint(session=session, admin=admin, endpoint=endpoint, data=body, settings=settings)
        changed = body.model_dump(mode="json", exclude_unset=True)
        _audit(request, session, admin, "webhook.updated", endpoint_id, **changed)
        return webhook_service.present(session=session, endpoint=endpoint)

    return writes.run(work)


@router.delete("/{endpoint_id}", status_code=204)
def delete_webhook(request: Request, endpoint_id: EndpointId, writes: AdminWritesDep) -> Response:
    """删除推送端点及其投递记录 / Delete an endpoint and its delivery log."""

    def work(session: Session, admin: Principal) -> None:
        endpoint = webhook_service.get_endpoint(session=session, admin=admin, endpoint_id=endpoint_id)
        webhook_service.delete_endpoint(session=session, endpoint=endpoint)
        _audit(request, session, admin, "webhook.deleted", endpoint_id)

    writes.run(work)
    return Response(status_code=204)


@router.post("/{endpoint_id}/rotate", response_model=WebhookSecret)
def rotate_webhook_secret(
    request: Request, endpoint_id: EndpointId, writes: AdminWritesDep, settings: SettingsDep
) -> JSONResponse:
    """轮换签名密钥:过渡期内新旧密钥同时签名,接收方可无停机切换 / Rotate the secret; both sign during the overlap."""

    def work(session: Session, admin: Principal) -> WebhookSecret:
        endpoint = webhook_service.get_endpoint(session=session, admin=admin, endpoint_id=endpoint_id)
        secret = webhook_service.rotate_secret(endpoint=endpoint, settings=settings)
        session.add(endpoint)
        _audit(request, session, admin, "webhook.secret_rotated", endpoint_id)
        session.flush()
        return WebhookSecret(secret=secret, previous_secret_expires_at=endpoint.previous_secret_expires_at)

    out = writes.run(work)
    return JSONResponse(out.model_dump(mode="json"), headers=NO_STORE)


@router.post("/{endpoint_id}/replay", status_code=202, response_model=WebhookOut)
def replay_webhook(
    request: Request, endpoint_id: EndpointId, body: WebhookReplay, writes: AdminWritesDep
) -> WebhookOut:
    """从某个变更游标起重新投递(事件的 webhook-id 不变)/ Redeliver from a feed cursor (same webhook-ids)."""
    since = int(body.since)

    def work(session: Session, admin: Principal) -> WebhookOut:
        endpoint = webhook_service.get_endpoint(session=session, admin=admin, endpoint_id=endpoint_id)
        webhook_service.replay(session=session, endpoint=endpoint, since=since)
        _audit(request, session, admin, "webhook.replayed", endpoint_id, since=since)
        return webhook_service.present(session=session, endpoint=endpoint)

    return writes.run(work)


@router.get("/{endpoint_id}/deliveries", response_model=Page[DeliveryAttemptOut])
def list_webhook_deliveries(
    request: Request,
    endpoint_id: EndpointId,
    admin: AdminReaderDep,
    session: SessionDep,
    since: Since = "0",
    limit: Annotated[int, Query(ge=1, le=1000, description="每页条数 / page size")] = 100,
    state: Annotated[
        MessageState | None,
        Query(description="按消息当前状态过滤:pending 待投递 / delivered 已送达 / failed 已放弃"),
    ] = None,
) -> Response:
    """投递记录:每次尝试的状态码、耗时、错误与下次重试时间 / The delivery log: every attempt, oldest first."""
    endpoint = webhook_service.get_endpoint(session=session, admin=admin, endpoint_id=endpoint_id)
    rows = webhook_service.list_attempts(
        session=session, endpoint=endpoint, since=parse_counter(since, "since"), limit=limit + 1, state=state
    )
    page = rows[:limit]
    next_cursor = str(page[-1].id) if len(rows) > limit else None
    return json_response(request, Page[DeliveryAttemptOut](items=page, next_cursor=next_cursor), exclude={"total"})
