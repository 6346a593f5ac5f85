"""Abuse limits: requests per client address and per API key, and failed authentications per address.

Counted with the `limits` library (fixed-window counters) in the store RATE_LIMIT_STORAGE_URL names:
`memory://` counts per process, so with several workers or servers a shared `redis://…` is what makes
a limit one limit. Everything here runs before any database work: a flood costs counter updates only.

- Every request but the probes counts against its address; a request with a bearer token also
  against that token (keyed on a hash of the whole token, so a caller who knows only a key's public
  prefix cannot use up its owner's allowance). Over a limit: 429 problem+json with `Retry-After`.
- A failed authentication is logged to the `plan_api.audit` logger (address, key prefix, reason;
  never the key) and counted per address; past RATE_LIMIT_FAILED_AUTH an address's requests that need
  a key get 429 until the window moves on, before the key is even looked up.
- The store being unreachable never takes the service down: the limit is skipped and a warning logged.

Fixed windows, because every request pays for the count: one increment and one expiry read per limit
(a sliding-window counter took three store calls, and was most of a cached read's cost). The price:
a window starts at its first request, so a client may spend one window's allowance at its end and the
next one's at once: up to twice a limit within one window's length, never more. A refused request
counts too, so a client that keeps hammering stays refused until the window ends.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse_many
from limits.aio.storage import Storage as AsyncStorage
from limits.aio.strategies import FixedWindowRateLimiter
from limits.storage import storage_from_string
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.config import Settings
from app.errors import ProblemError, problem_response

log = logging.getLogger(__name__)
audit_log = logging.getLogger("plan_api.audit")

EXEMPT_PATHS = frozenset({"/healthz", "/readyz"})  # probes: an orchestrator must always reach them


class RateLimited(ProblemError):
    status = 429
    code = "rate-limited"
    title = "Too Many Requests"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:  # type: ignore[override]
        return {"Retry-After": str(self.retry_after)}


@dataclass(frozen=True)
class Verdict:
    """The tightest limit a request was counted against: what the RateLimit headers report."""

    item: RateLimitItem
    remaining: int
    reset_after: int  # seconds
    exceeded: bool
    scope: str  # "address" or "key"

    def headers(self) -> list[tuple[bytes, bytes]]:
        # The IETF RateLimit header fields (draft-ietf-httpapi-ratelimit-headers), older triple form.
        return [
            (b"ratelimit-limit", str(self.item.amount).encode()),
            (b"ratelimit-remaining", str(max(self.remaining, 0)).encode()),
            (b"ratelimit-reset", str(self.reset_after).encode()),
        ]


def key_identity(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:32]


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def key_prefix(token: str | None) -> str | None:
    """The public part of a `pa_<prefix>_<secret>` token, for the audit log; None if it has no such shape."""
    if not token or not token.startswith("pa_") or token.count("_") < 2:
        return None
    prefix = token[3:].split("_", 1)[0]
    return prefix if prefix.isascii() and prefix.isalnum() and len(prefix) <= 16 else None


class AbuseLimits:
    """The service's limits and their counters; one per application (`app.state.abuse_limits`)."""

    def __init__(self, settings: Settings) -> None:
        self.enabled = settings.rate_limit_enabled
        url = settings.rate_limit_storage_url
        options: dict[str, str | float | bool] = {}
        if url.startswith(("redis", "rediss")):
            # redis-py (a dependency anyway), its asyncio client; the prefix keeps services apart in one Redis.
            options = {"implementation": "redispy", "key_prefix": settings.rate_limit_key_prefix}
        store = storage_from_string(url if url.startswith("async+") else f"async+{url}", **options)
        assert isinstance(store, AsyncStorage)  # the async+ scheme makes it one
        self.storage = store
        self.strategy = FixedWindowRateLimiter(self.storage)
        self.per_address = parse_many(settings.rate_limit_per_address)
        self.per_key = parse_many(settings.rate_limit_per_key)
        self.failed_auth = parse_many(settings.rate_limit_failed_auth)

    async def _count(self, items: list[RateLimitItem], identity: str, scope: str) -> Verdict | None:
        """Counts one hit against each item (stopping at the first exceeded); the tightest verdict.
        `FixedWindowRateLimiter.hit` then `get_window_stats` in two store calls instead of three: the
        increment answers the count."""
        tightest: Verdict | None = None
        for item in items:
            key = item.key_for(scope, identity)
            count = await self.storage.incr(key, item.get_expiry())
            verdict = Verdict(
                item=item,
                remaining=item.amount - count,
                reset_after=max(1, math.ceil(await self.storage.get_expiry(key) - time.time())),
                exceeded=count > item.amount,
                scope=scope,
            )
            if verdict.exceeded:
                return verdict
            if tightest is None or verdict.remaining < tightest.remaining:
                tightest = verdict
        return tightest

    async def admit(self, *, address: str | None, token: str | None) -> Verdict | None:
        """Counts the request; returns the exceeded limit, or else the tightest one (None: no limits)."""
        if not self.enabled:
            return None
        try:
            verdicts = [await self._count(self.per_address, address or "unknown", "address")]
            if token is not None:
                verdicts.append(await self._count(self.per_key, key_identity(token), "key"))
        except Exception as exc:  # the store is down: serve, unlimited, rather than refuse everyone
            log.warning("rate-limit store unavailable, request not counted: %s", exc)
            return None
        found = [v for v in verdicts if v is not None]
        exceeded = [v for v in found if v.exceeded]
        if exceeded:
            return exceeded[0]
        return min(found, key=lambda v: v.remaining, default=None)

    async def refuse_if_blocked(self, *, address: str | None) -> None:
        """429 when the address has failed authentication too often lately (checked, not counted)."""
        if not self.enabled:
            return
        try:
            for item in self.failed_auth:
                if not await self.strategy.test(item, "auth-failed", address or "unknown"):
                    stats = await self.strategy.get_window_stats(item, "auth-failed", address or "unknown")
                    retry_after = max(1, math.ceil(stats.reset_time - time.time()))
                    raise RateLimited(
                        f"该地址认证失败次数过多,请 {retry_after} 秒后再试 / too many failed authentications from "
                        f"this address; retry after {retry_after} s",
                        retry_after=retry_after,
                    )
        except RateLimited:
            raise
        except Exception as exc:
            log.warning("rate-limit store unavailable, failed-authentication throttle skipped: %s", exc)

    async def record_failure(self, *, address: str | None, authorization: str | None, reason: str) -> None:
        """Audits a failed authentication (never the key itself) and counts it against the address."""
        token = bearer_token(authorization)
        audit_log.warning(
            "authentication failed: address=%s key_prefix=%s reason=%s",
            address or "unknown",
            key_prefix(token) or "-",
            reason,
        )
        if not self.enabled:
            return
        try:
            for item in self.failed_auth:
                await self.strategy.hit(item, "auth-failed", address or "unknown")
        except Exception as exc:
            log.warning("rate-limit store unavailable, failed authentication not counted: %s", exc)


_UNITS_ZH = {"second": "秒", "minute": "分钟", "hour": "小时", "day": "天", "month": "月", "year": "年"}


def _per(item: RateLimitItem) -> str:
    unit = _UNITS_ZH.get(item.GRANULARITY.name, item.GRANULARITY.name)
    return f"{item.multiples} {unit}" if item.multiples > 1 else unit


class RateLimitMiddleware:
    """Counts every request (but the probes) before any route runs; 429 when over a limit."""

    def __init__(self, app: ASGIApp, limits: AbuseLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.limits.enabled or scope["path"] in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        # Read from the scope itself: a Request and its header mapping cost more than the count.
        client = scope.get("client")
        authorization = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"authorization"), None)
        verdict = await self.limits.admit(address=client[0] if client else None, token=bearer_token(authorization))
        if verdict is not None and verdict.exceeded:
            request = Request(scope)
            who = "该 API 密钥" if verdict.scope == "key" else "该地址"
            response = problem_response(
                request,
                status=429,
                code=RateLimited.code,
                title=RateLimited.title,
                detail=f"{who}请求过于频繁(上限 {verdict.item.amount} 次/{_per(verdict.item)}),"
                f"请 {verdict.reset_after} 秒后再试 / rate limit exceeded; retry after {verdict.reset_after} s",
                headers={"Retry-After": str(verdict.reset_after)},
            )
            response.raw_headers += verdict.headers()
            await response(scope, receive, send)
            return
        if verdict is None:
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *verdict.headers()]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
