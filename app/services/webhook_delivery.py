"""The webhook delivery worker: fan out the change feed, claim a due message, POST it, record the attempt.

Every step is a short transaction, so any number of workers (app processes or `plan-api webhooks run`)
may run at once, and a worker killed at any point loses nothing:
- fan-out locks the endpoint's row (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite's single writer
  serializes it), so two workers never fan out the same events twice;
- a due message is claimed with a lease (`lease_until`) under `FOR UPDATE SKIP LOCKED`; a worker that
  dies mid-delivery leaves the lease to run out, and the message is sent again under the same id;
- the answer decides the rest: 2xx delivered; 410 Gone disables the endpoint at once; anything else
  (no answer within WEBHOOK_TIMEOUT_SECONDS included) is retried after the next step of
  WEBHOOK_RETRY_SCHEDULE, or later when the receiver's `Retry-After` asks for it; past the last step
  the message fails and the endpoint is disabled (re-enabling it retries what was not delivered).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import exists
from sqlalchemy.engine import Engine
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, or_, select

from app.core.config import Settings
from app.db import writing
from app.models import MessageState, WebhookAttempt, WebhookEndpoint, WebhookMessage, utcnow
from app.services import supervision_watch, webhooks

log = logging.getLogger(__name__)

LEASE_MARGIN_SECONDS = 5.0
REPLY_EXCERPT_BYTES = 4096  # of a receiver's answer, read at most
REPLY_EXCERPT_CHARS = 500  # of it, kept in the delivery log


def fan_out_all(*, engine: Engine) -> int:
    """Fans out the feed to every enabled endpoint; returns the number of messages made."""
    with Session(engine) as session:
        ids = list(session.exec(select(WebhookEndpoint.id).where(col(WebhookEndpoint.enabled).is_(True))))
    made = 0
    for endpoint_id in ids:
        with writing(engine) as session:
            endpoint = session.exec(
                select(WebhookEndpoint)
                .where(WebhookEndpoint.id == endpoint_id, col(WebhookEndpoint.enabled).is_(True))
                .with_for_update(skip_locked=True)
            ).one_or_none()
            if endpoint is None:  # another worker holds it, or it was disabled meanwhile
                continue
            made += webhooks.fan_out(session=session, endpoint=endpoint)
            session.commit()
    return made


@dataclass
class Claimed:
    message_id: int
    endpoint_id: int
    url: str
    webhook_id: str
    body: bytes
    signature: str
    timestamp: int


def claim(*, engine: Engine, settings: Settings) -> Claimed | None:
    """Takes the next due message of an enabled endpoint that has no request under way, leased for
    one request's time. One request per endpoint at a time keeps each endpoint's events in order and
    keeps a slow receiver from holding up the others. Locks are taken endpoint first, then message
    (as fan-out and `record` do), so workers racing for the same endpoint queue instead of deadlocking."""
    now = utcnow()
    with writing(engine) as session:
        candidates = session.exec(
            _due(now, select(WebhookMessage.endpoint_id))
            .order_by(col(WebhookMessage.next_attempt_at), col(WebhookMessage.id))
            .limit(4 * settings.webhook_concurrency)
        ).all()
        for endpoint_id in dict.fromkeys(candidates):
            endpoint = session.exec(
                select(WebhookEndpoint)
                .where(WebhookEndpoint.id == endpoint_id, col(WebhookEndpoint.enabled).is_(True))
                .with_for_update(skip_locked=True)
            ).one_or_none()
            if endpoint is None:  # another worker is claiming from it, or it was disabled meanwhile
                continue
            message = session.exec(  # again, now that the endpoint's claims are ours to make
                _due(now, select(WebhookMessage))
                .where(WebhookMessage.endpoint_id == endpoint_id)
                .order_by(col(WebhookMessage.next_attempt_at), col(WebhookMessage.id))
                .limit(1)
                .with_for_update()
            ).one_or_none()
            if message is None:
                session.rollback()  # let go of the endpoint before looking at the next one
                continue
            assert message.id is not None and endpoint.id is not None
            message.lease_until = now + timedelta(seconds=settings.webhook_timeout_seconds + LEASE_MARGIN_SECONDS)
            session.add(message)
            body = webhooks.payload(session=session, message=message)
            webhook_id = webhooks.message_id(message.event_seq)
            timestamp = int(time.time())  # signed per attempt: receivers reject stale timestamps
            signature = webhooks.signature_header(
                endpoint=endpoint, msg_id=webhook_id, timestamp=timestamp, body=body, now=now
            )
            claimed = Claimed(message.id, endpoint.id, endpoint.url, webhook_id, body, signature, timestamp)
            session.commit()
            return claimed
        return None


def _due(now: datetime, query: Any) -> Any:
    """Pending, due, not leased, of an enabled endpoint with no request under way."""
    in_flight = aliased(WebhookMessage)
    busy = exists().where(
        col(in_flight.endpoint_id) == col(WebhookMessage.endpoint_id),
        col(in_flight.state) == MessageState.pending,
        col(in_flight.lease_until) >= now,
    )
    return (
        query.join(WebhookEndpoint, col(WebhookEndpoint.id) == col(WebhookMessage.endpoint_id))
        .where(
            WebhookMessage.state == MessageState.pending,
            col(WebhookMessage.next_attempt_at) <= now,
            or_(col(WebhookMessage.lease_until).is_(None), col(WebhookMessage.lease_until) < now),
            col(WebhookEndpoint.enabled).is_(True),
        )
        .where(~busy)
    )


@dataclass
class Outcome:
    status_code: int | None
    duration_ms: int
    error: str | None
    retry_after: float | None


def send(*, claimed: Claimed, settings: Settings, client: httpx.Client) -> Outcome:
    """POSTs the message to the very address that was just vetted (the Host header, TLS SNI and the
    certificate check keep the URL's name), and reads at most REPLY_EXCERPT_BYTES of the answer within
    the request's time bound: a receiver answering an endless body holds the lane no longer."""
    started = time.monotonic()
    try:
        address = webhooks.vetted_addresses(claimed.url, settings=settings)[0]  # again: DNS may answer differently now
        url = httpx.URL(claimed.url)
        extensions = {"sni_hostname": url.host} if url.scheme == "https" else {}
        with client.stream(
            "POST",
            url.copy_with(host=address),
            content=claimed.body,
            headers={
                "host": url.netloc.decode("ascii"),
                "content-type": "application/json",
                "accept-encoding": "identity",  # the excerpt's bound is on what is read, not inflated
                "webhook-id": claimed.webhook_id,
                "webhook-timestamp": str(claimed.timestamp),
                "webhook-signature": claimed.signature,
                "user-agent": "plan-api-webhooks",
            },
            extensions=extensions,
        ) as response:
            excerpt = _reply_excerpt(response, until=started + settings.webhook_timeout_seconds)
    except webhooks.UnsafeWebhookUrl as exc:
        return Outcome(None, _ms(started), exc.detail, None)
    except httpx.HTTPError as exc:
        return Outcome(None, _ms(started), f"{type(exc).__name__}: {exc}"[:500], None)
    error = None if response.is_success else excerpt.decode("utf-8", "replace")[:REPLY_EXCERPT_CHARS]
    return Outcome(response.status_code, _ms(started), error, _retry_after(response))


def _reply_excerpt(response: httpx.Response, *, until: float) -> bytes:
    """The start of the receiver's body: reading stops at REPLY_EXCERPT_BYTES or at the deadline; the
    rest is never read (the connection is closed, not reused)."""
    excerpt = b""
    for chunk in response.iter_raw():
        excerpt += chunk
        if len(excerpt) >= REPLY_EXCERPT_BYTES or time.monotonic() >= until:
            break
    return excerpt[:REPLY_EXCERPT_BYTES]


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    if value.strip().isdigit():
        return float(value)
    try:
        return max(0.0, (parsedate_to_datetime(value) - utcnow()).total_seconds())
    except (TypeError, ValueError):
        return None


def record(*, engine: Engine, settings: Settings, claimed: Claimed, outcome: Outcome) -> None:
    now = utcnow()
    with writing(engine) as session:
        endpoint = session.exec(  # endpoint first, then message: the lock order of every writer here
            select(WebhookEndpoint).where(WebhookEndpoint.id == claimed.endpoint_id).with_for_update()
        ).one_or_none()
        message = session.get(WebhookMessage, claimed.message_id, with_for_update=True)
        if message is None or endpoint is None:  # deleted while the request was under way
            return
        message.lease_until = None
        message.last_status = outcome.status_code
        message.attempts += 1
        next_at: datetime | None = None
        code = outcome.status_code
        if code is not None and 200 <= code < 300:
            message.state, message.delivered_at = MessageState.delivered, now
        elif code == 410:
            message.state = MessageState.failed
            webhooks.disable(endpoint=endpoint, reason="接收方返回 410 Gone,已停用 / the receiver answered 410 Gone")
        elif message.attempts > len(settings.webhook_retry_schedule):
            message.state = MessageState.failed
            webhooks.disable(
                endpoint=endpoint,
                reason=f"消息 {claimed.webhook_id} 重试 {message.attempts} 次仍失败,已停用 / "
                "failed for the whole retry schedule",
            )
        else:
            delay = settings.webhook_retry_schedule[message.attempts - 1]
            if outcome.retry_after is not None:  # honoured, within the schedule's longest wait
                delay = max(delay, min(outcome.retry_after, max(settings.webhook_retry_schedule)))
            next_at = message.next_attempt_at = now + timedelta(seconds=delay)
        session.add(
            WebhookAttempt(
                endpoint_id=endpoint.id or 0,
                message_id=message.id or 0,
                attempted_at=now,
                status_code=code,
                duration_ms=outcome.duration_ms,
                error=outcome.error,
                next_attempt_at=next_at,
            )
        )
        session.add_all([message, endpoint])
        session.commit()


def run_once(*, engine: Engine, settings: Settings, limit: int = 100) -> int:
    """One pass: fan out, then deliver due messages in WEBHOOK_CONCURRENCY lanes, up to `limit`
    attempts per lane; returns the attempts made."""
    fan_out_all(engine=engine)

    def lane(_: int) -> int:
        done = 0
        client: httpx.Client | None = None
        try:
            while done < limit and (claimed := claim(engine=engine, settings=settings)) is not None:
                # Made only for work: a client builds its TLS context (tens of ms of CPU, holding the
                # GIL), which every idle poll once paid per lane, stalling the API's requests meanwhile.
                client = client or _client(settings)
                outcome = send(claimed=claimed, settings=settings, client=client)
                record(engine=engine, settings=settings, claimed=claimed, outcome=outcome)
                done += 1
        finally:
            if client is not None:
                client.close()
        return done

    if settings.webhook_concurrency == 1:
        return lane(0)
    with ThreadPoolExecutor(settings.webhook_concurrency, thread_name_prefix="webhook-lane") as pool:
        return sum(pool.map(lane, range(settings.webhook_concurrency)))


def _client(settings: Settings) -> httpx.Client:
    # No redirects: a receiver must not send the request on to an address that was never checked.
    # No kept-alive connections: one made for a name (its TLS checked for that name) must not
    # serve another name that resolves to the same address.
    return httpx.Client(
        timeout=settings.webhook_timeout_seconds,
        follow_redirects=False,
        trust_env=False,
        limits=httpx.Limits(max_keepalive_connections=0),
    )


def run_forever(*, engine: Engine, settings: Settings, stop: threading.Event) -> None:
    """The worker loop (`plan-api webhooks run`, or the app's background thread) until `stop` is set."""
    watched = float("-inf")
    while not stop.is_set():
        try:
            if time.monotonic() - watched >= settings.webhook_watch_seconds:
                supervision_watch.watch(engine=engine, settings=settings)  # lights and deadlines: time's events
                watched = time.monotonic()
            done = run_once(engine=engine, settings=settings)
        except Exception:  # a database restart or the like: log, wait, try again
            log.exception("webhook delivery pass failed")
            done = 0
        if not done:
            stop.wait(settings.webhook_poll_seconds)


def worker_lifespan(settings: Settings) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """The app's lifespan when WEBHOOK_WORKER is on: the delivery worker runs in a thread beside it."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from app.db import get_engine

        stop = threading.Event()
        thread = threading.Thread(
            target=run_forever,
            kwargs={"engine": get_engine(), "settings": settings, "stop": stop},
            name="webhook-delivery",
            daemon=True,  # a request under way must not hold the process at exit: its lease runs out
        )
        thread.start()
        try:
            yield
        finally:
            stop.set()
            await asyncio.to_thread(thread.join, settings.webhook_timeout_seconds + 1)

    return lifespan
