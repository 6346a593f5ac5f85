"""Webhook endpoints: registration, filters, secrets, the Standard Webhooks signature, and the
fan-out of change-feed events into per-endpoint messages.

The rules this module owns:
- Which feed events an endpoint gets (`public_type`, `_matches`): the public event type it chose, its
  jurisdiction's subtree (an admin key's endpoint sees what that key may administer), and its
  optional plan, unit (events about the unit, or about a task it is linked to) and chapter filters.
- Which URLs may be called (`check_url`): none that resolves to a private, loopback, link-local or
  otherwise non-public address, unless WEBHOOK_ALLOW_PRIVATE or WEBHOOK_ALLOWED_HOSTS allows it;
  checked at registration and again before every delivery (the name may resolve elsewhere later).
- The signature (`signature_header`): Standard Webhooks v1, HMAC-SHA256 over `id.timestamp.body`
  with the base64 key of a `whsec_` secret; during a rotation's overlap both secrets sign.
- Fan-out (`fan_out`): each endpoint's cursor moves through the committed feed; an event becomes one
  message row per endpoint (unique), whose id is the event's, so retries and replays keep it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import secrets
import socket
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, func, update
from sqlmodel import Session, col, select

from app.core.config import Settings
from app.errors import FieldError, NotFound, ProblemError
from app.models import (
    ChangeEvent,
    FeedCounter,
    Jurisdiction,
    MessageState,
    Plan,
    Responsibility,
    Task,
    Unit,
    WebhookAttempt,
    WebhookEndpoint,
    WebhookMessage,
    utcnow,
)
from app.schemas.jurisdiction import JurisdictionRef
from app.schemas.unit import UnitRef
from app.schemas.webhook import (
    DeliveryAttemptOut,
    WebhookCreate,
    WebhookEventType,
    WebhookOut,
    WebhookUpdate,
)
from app.services import feed
from app.services import plans as plan_service
from app.services import units as unit_service
from app.services.jurisdictions import subtree_ids
from app.services.keys import Principal
from app.services.permissions import authorize_admin, check_jurisdiction, key_scope

SECRET_PREFIX = "whsec_"
FAN_OUT_PAGE = 500


class WebhookNotFound(NotFound):
    code = "webhook-not-found"


class UnsafeWebhookUrl(ProblemError):
    status = 422
    code = "unsafe-webhook-url"
    title = "Unprocessable Content"


# --- secrets and signatures -------------------------------------------------------------------


def new_secret() -> str:
    """A `whsec_` secret: 24 random bytes, base64 (the Standard Webhooks format)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def sign(*, secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signing_secrets(endpoint: WebhookEndpoint, now: datetime) -> list[str]:
    """The current secret, and the previous one while the rotation's overlap lasts."""
    keys = [endpoint.secret]
    if endpoint.previous_secret and endpoint.previous_secret_expires_at and endpoint.previous_secret_expires_at > now:
        keys.append(endpoint.previous_secret)
    return keys


def signature_header(*, endpoint: WebhookEndpoint, msg_id: str, timestamp: int, body: bytes, now: datetime) -> str:
    return " ".join(
        sign(secret=key, msg_id=msg_id, timestamp=timestamp, body=body) for key in signing_secrets(endpoint, now)
    )


def message_id(event_seq: int) -> str:
    """The `webhook-id` of an event: fixed by its feed number, so every retry and replay carries it."""
    return f"msg_{event_seq}"


# --- which URLs may be called -------------------------------------------------------------------


def _allowed_by_list(host: str, address: ipaddress.IPv4Address | ipaddress.IPv6Address, allowed: list[str]) -> bool:
    for entry in allowed:
        if entry.lower() == host.lower():
            return True
        try:
            if address in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue  # a host name entry
    return False


def check_url(url: str, *, settings: Settings, field: str = "body.url") -> None:
    """Raises UnsafeWebhookUrl unless every address the URL's host resolves to is public (or allowed)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host:
        raise _unsafe(url, "仅支持 http/https 地址 / only http(s) URLs", field)
    if settings.webhook_allow_private:
        return
    vetted_addresses(url, settings=settings, field=field)


def vetted_addresses(url: str, *, settings: Settings, field: str = "url") -> list[str]:
    """Resolves the URL's host once and returns its addresses, each checked as `check_url` does
    (unless WEBHOOK_ALLOW_PRIVATE). The delivery connects to one of these very addresses, so a name
    that resolves elsewhere a moment later (DNS rebinding) cannot redirect it."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host:
        raise _unsafe(url, "仅支持 http/https 地址 / only http(s) URLs", field)
    try:
        infos = socket.getaddrinfo(
            host, parts.port or (443 if parts.scheme == "https" else 80), type=socket.SOCK_STREAM
        )
    except (OSError, UnicodeError) as exc:
        raise _unsafe(url, f"无法解析主机名 {host} / cannot resolve host", field) from exc
    found: list[str] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if (
            settings.webhook_allow_private
            or address.is_global
            or _allowed_by_list(host, address, settings.webhook_allowed_hosts)
        ):
            found.append(str(address))
            continue
        raise _unsafe(
            url,
            f"{host} 解析到非公网地址 {address}(内网、回环或链路本地),不允许推送;"
            f"如确需推送,请配置 WEBHOOK_ALLOWED_HOSTS / {host} resolves to non-public address {address}",
            field,
        )
    if not found:
        raise _unsafe(url, f"无法解析主机名 {host} / cannot resolve host", field)
    return list(dict.fromkeys(found))


def _unsafe(url: str, message: str, field: str) -> UnsafeWebhookUrl:
    return UnsafeWebhookUrl(
        f"推送地址不可用:{message}", errors=[FieldError(field=field, message=message, type="unsafe_url")], url=url
    )


# --- registration -----------------------------------------------------------------------------


def _filters(
    *, session: Session, admin: Principal, plan: str | None, unit: str | None
) -> tuple[int | None, int | None]:
    plan_id = None
    if plan is not None:
        found = plan_service.get_plan(session=session, slug=plan)
        authorize_admin(session=session, principal=admin, plan_id=found.id)
        plan_id = found.id
    unit_id = unit_service.get_unit_for(session=session, ref=unit, principal=admin).id if unit is not None else None
    return plan_id, unit_id


def create_endpoint(
    *, session: Session, admin: Principal, data: WebhookCreate, settings: Settings
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint of the admin's jurisdiction, starting at the feed's head; returns it and its secret."""
    authorize_admin(session=session, principal=admin, plan_id=None)
    check_url(str(data.url), settings=settings)
    plan_id, unit_id = _filters(session=session, admin=admin, plan=data.plan, unit=data.unit)
    secret = new_secret()
    endpoint = WebhookEndpoint(
        jurisdiction_id=admin.jurisdiction_id,
        url=str(data.url),
        description=data.description,
        event_types=json.dumps(sorted({t.value for t in data.event_types})),
        plan_id=plan_id,
        unit_id=unit_id,
        chapter=data.chapter,
        secret=secret,
        cursor=feed_head(session=session),
        created_by_key_id=admin.key.id,
    )
    session.add(endpoint)
    session.flush()
    return endpoint, secret


def feed_head(*, session: Session) -> int:
    """The number of the last committed feed event."""
    return int(session.exec(select(FeedCounter.seq).where(FeedCounter.id == 1)).one_or_none() or 0)


def list_endpoints(*, session: Session, admin: Principal) -> list[WebhookEndpoint]:
    authorize_admin(session=session, principal=admin, plan_id=None)
    query = select(WebhookEndpoint).order_by(col(WebhookEndpoint.id))
    scope = key_scope(session=session, principal=admin)
    if scope is not None:
        query = query.where(col(WebhookEndpoint.jurisdiction_id).in_(scope))
    return list(session.exec(query))


def get_endpoint(*, session: Session, admin: Principal, endpoint_id: int) -> WebhookEndpoint:
    authorize_admin(session=session, principal=admin, plan_id=None)
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None:
        raise WebhookNotFound(f"推送端点 {endpoint_id} 不存在 / no webhook endpoint {endpoint_id}")
    check_jurisdiction(session=session, principal=admin, jurisdiction_id=endpoint.jurisdiction_id, what="推送端点")
    return endpoint


def update_endpoint(
    *, session: Session, admin: Principal, endpoint: WebhookEndpoint, data: WebhookUpdate, settings: Settings
) -> WebhookEndpoint:
    sent = data.model_fields_set
    if "url" in sent and data.url is not None:
        check_url(str(data.url), settings=settings)
        endpoint.url = str(data.url)
    if "event_types" in sent and data.event_types is not None:
        endpoint.event_types = json.dumps(sorted({t.value for t in data.event_types}))
    if "plan" in sent or "unit" in sent:
        plan_id, unit_id = _filters(session=session, admin=admin, plan=data.plan, unit=data.unit)
        if "plan" in sent:
            endpoint.plan_id = plan_id
        if "unit" in sent:
            endpoint.unit_id = unit_id
    if "chapter" in sent:
        endpoint.chapter = data.chapter
    if "description" in sent and data.description is not None:
        endpoint.description = data.description
    if data.enabled is True and not endpoint.enabled:
        enable(session=session, endpoint=endpoint)
    elif data.enabled is False and endpoint.enabled:
        disable(endpoint=endpoint, reason="管理员停用 / disabled by an admin")
    endpoint.updated_at = utcnow()
    session.add(endpoint)
    session.flush()
    return endpoint


def disable(*, endpoint: WebhookEndpoint, reason: str) -> None:
    endpoint.enabled = False
    endpoint.disabled_reason = reason
    endpoint.updated_at = utcnow()


def enable(*, session: Session, endpoint: WebhookEndpoint) -> None:
    """Enabled again: every message not yet delivered starts a fresh retry schedule, now."""
    lock(session=session, endpoint=endpoint)
    endpoint.enabled = True
    endpoint.disabled_reason = None
    session.execute(
        update(WebhookMessage)
        .where(col(WebhookMessage.endpoint_id) == endpoint.id, col(WebhookMessage.state) != MessageState.delivered)
        .values(state=MessageState.pending, attempts=0, next_attempt_at=utcnow(), lease_until=None)
    )


def rotate_secret(*, endpoint: WebhookEndpoint, settings: Settings) -> str:
    """A new secret; the old one keeps signing alongside for WEBHOOK_ROTATION_OVERLAP_SECONDS."""
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = utcnow() + timedelta(seconds=settings.webhook_rotation_overlap_seconds)
    endpoint.secret = new_secret()
    endpoint.updated_at = utcnow()
    return endpoint.secret


def replay(*, session: Session, endpoint: WebhookEndpoint, since: int) -> None:
    """Deliver again every matching event after `since`: the cursor moves back, and the fan-out
    resets the messages it meets to pending (their ids do not change)."""
    endpoint.cursor = min(since, feed_head(session=session))
    endpoint.updated_at = utcnow()
    session.add(endpoint)


def lock(*, session: Session, endpoint: WebhookEndpoint) -> None:
    """Takes the endpoint's row lock before touching its messages: every writer locks the endpoint
    first, then messages (`app/services/webhook_delivery.py`), so none deadlocks another."""
    session.exec(select(WebhookEndpoint.id).where(WebhookEndpoint.id == endpoint.id).with_for_update())


def delete_endpoint(*, session: Session, endpoint: WebhookEndpoint) -> None:
    lock(session=session, endpoint=endpoint)
    session.execute(delete(WebhookAttempt).where(col(WebhookAttempt.endpoint_id) == endpoint.id))
    session.execute(delete(WebhookMessage).where(col(WebhookMessage.endpoint_id) == endpoint.id))
    session.delete(endpoint)
    session.flush()


def present(*, session: Session, endpoint: WebhookEndpoint) -> WebhookOut:
    plan = session.get(Plan, endpoint.plan_id) if endpoint.plan_id else None
    unit = session.get(Unit, endpoint.unit_id) if endpoint.unit_id else None
    place = session.get(Jurisdiction, endpoint.jurisdiction_id) if endpoint.jurisdiction_id else None
    assert endpoint.id is not None
    return WebhookOut(
        id=endpoint.id,
        url=endpoint.url,
        description=endpoint.description,
        event_types=[WebhookEventType(t) for t in json.loads(endpoint.event_types)],
        plan=plan.slug if plan else None,
        unit=UnitRef.from_unit(unit) if unit else None,
        chapter=endpoint.chapter,
        jurisdiction=JurisdictionRef.of(place) if place else None,
        enabled=endpoint.enabled,
        disabled_reason=endpoint.disabled_reason,
        cursor=str(endpoint.cursor),
        previous_secret_expires_at=endpoint.previous_secret_expires_at,
        created_at=endpoint.created_at,
        updated_at=endpoint.updated_at,
    )


def list_attempts(
    *, session: Session, endpoint: WebhookEndpoint, since: int, limit: int, state: MessageState | None = None
) -> list[DeliveryAttemptOut]:
    """The delivery log, oldest first, after attempt id `since`; `state`: only attempts of messages
    now in that state (e.g. what failed for good)."""
    query = (
        select(WebhookAttempt, WebhookMessage)
        .join(WebhookMessage, col(WebhookMessage.id) == col(WebhookAttempt.message_id))
        .where(WebhookAttempt.endpoint_id == endpoint.id, col(WebhookAttempt.id) > since)
    )
    if state is not None:
        query = query.where(WebhookMessage.state == state)
    rows = session.exec(query.order_by(col(WebhookAttempt.id)).limit(limit))
    return [
        DeliveryAttemptOut(
            id=attempt.id or 0,
            webhook_id=message_id(message.event_seq),
            event_seq=message.event_seq,
            event_type=WebhookEventType(message.event_type),
            message_state=message.state,
            attempted_at=attempt.attempted_at,
            status_code=attempt.status_code,
            duration_ms=attempt.duration_ms,
            error=attempt.error,
            next_attempt_at=attempt.next_attempt_at,
        )
        for attempt, message in rows
    ]


def pending_count(*, session: Session, endpoint_id: int) -> int:
    return int(
        session.exec(
            select(func.count())
            .select_from(WebhookMessage)
            .where(WebhookMessage.endpoint_id == endpoint_id, WebhookMessage.state == MessageState.pending)
        ).one()
    )


# --- which events an endpoint gets, and the fan-out ----------------------------------------------


def public_type(event: ChangeEvent) -> WebhookEventType | None:
    """The public name of a feed event, or None for events no webhook carries (keys, units, …)."""
    if event.type == "report.created":
        data = json.loads(event.data)
        corrected = data.get("kind") == "correction" or data.get("supersedes") is not None
        return WebhookEventType.report_corrected if corrected else WebhookEventType.report_submitted
    return {
        "report.withdrawn": WebhookEventType.report_withdrawn,
        "task.status_changed": WebhookEventType.task_status_changed,
        "task.light_changed": WebhookEventType.task_light_changed,
        "duty.missing": WebhookEventType.duty_missing,
        "report.accepted": WebhookEventType.review_decided,
        "report.returned": WebhookEventType.review_decided,
        "plan.imported": WebhookEventType.plan_imported,
    }.get(event.type)


def _matches(
    endpoint: WebhookEndpoint,
    event: ChangeEvent,
    kind: WebhookEventType | None,
    task_codes: dict[int, str],
    unit_tasks: set[int],
) -> bool:
    if kind is None or kind.value not in json.loads(endpoint.event_types):
        return False
    if endpoint.plan_id is not None and event.plan_id != endpoint.plan_id:
        return False
    if endpoint.unit_id is not None:
        # An event about a unit (its report, its missing duty) passes for that unit only; one about a
        # task alone (its status, its light) passes for every unit linked to the task.
        if event.unit_id is not None and event.unit_id != endpoint.unit_id:
            return False
        if event.unit_id is None and event.task_id not in unit_tasks:
            return False
    if endpoint.chapter is not None:
        code = task_codes.get(event.task_id) if event.task_id is not None else None
        if code is None or code.split(".", 1)[0] != endpoint.chapter:
            return False
    return True


def fan_out(*, session: Session, endpoint: WebhookEndpoint) -> int:
    """Turns the committed feed events after the endpoint's cursor into its messages and moves the
    cursor; returns how many messages were made (or reset, after a replay). The caller holds the
    endpoint's row lock and commits."""
    from app.db import dialect_insert

    head = feed_head(session=session)
    if endpoint.cursor >= head:
        return 0
    within = (
        subtree_ids(session=session, root_id=endpoint.jurisdiction_id) if endpoint.jurisdiction_id is not None else None
    )
    query = select(ChangeEvent).where(col(ChangeEvent.seq) > endpoint.cursor, col(ChangeEvent.seq) <= head)
    if within is not None:
        query = query.where(col(ChangeEvent.jurisdiction_id).in_(within))
    events = list(session.exec(query.order_by(col(ChangeEvent.seq)).limit(FAN_OUT_PAGE)))
    task_ids = {e.task_id for e in events if e.task_id is not None}
    task_codes = {
        task_id: code
        for task_id, code in session.exec(select(Task.id, Task.code).where(col(Task.id).in_(task_ids)))
        if task_id is not None
    }
    unit_tasks: set[int] = set()
    if endpoint.unit_id is not None:
        unit_tasks = set(
            session.exec(
                select(Responsibility.task_id).where(
                    Responsibility.unit_id == endpoint.unit_id, col(Responsibility.task_id).in_(task_ids)
                )
            )
        )
    now = utcnow()
    rows: list[dict[str, Any]] = []
    for event in events:
        kind = public_type(event)
        if _matches(endpoint, event, kind, task_codes, unit_tasks):
            assert kind is not None and event.seq is not None
            rows.append(
                {
                    "endpoint_id": endpoint.id,
                    "event_seq": event.seq,
                    "event_type": kind.value,
                    "state": MessageState.pending.value,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
            )
    if rows:
        insert = dialect_insert(session)(WebhookMessage)
        # A conflict only happens after a replay: the message is sent again, under the same id.
        session.execute(
            insert.values(rows).on_conflict_do_update(
                index_elements=["endpoint_id", "event_seq"],
                set_={"state": MessageState.pending.value, "attempts": 0, "next_attempt_at": now, "lease_until": None},
            )
        )
    full_page = len(events) == FAN_OUT_PAGE
    endpoint.cursor = int(events[-1].seq or 0) if full_page else head
    session.add(endpoint)
    return len(rows)


def payload(*, session: Session, message: WebhookMessage) -> bytes:
    """The request body: `{"type", "timestamp", "data"}` as Standard Webhooks recommends; `data` is
    the change-feed item (as `/api/v1/changes` returns it)."""
    event = session.exec(select(ChangeEvent).where(ChangeEvent.seq == message.event_seq)).one()
    item = feed.present_events(session=session, events=[event])[0]
    body = {
        "type": message.event_type,
        "timestamp": event.occurred_at.isoformat(),
        "data": item.model_dump(mode="json"),
    }
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
