"""Abuse limits (app/api/rate_limit.py) and authentication order (app/api/deps.py), through the real app.

Per-address and per-key limits answer 429 problem+json with Retry-After and RateLimit headers; failed
authentications are audited without the key and throttled per address; a bad key is refused before
any write session exists (so it never takes SQLite's writer lock); keys are stored only as hashes.
The counters are tested on the in-process memory store and on the real Redis at 127.0.0.1:6379,
where two applications (two workers) share one count.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import Request
from fastapi.testclient import TestClient
from sqlalchemy import inspect, text
from sqlmodel import Session

from app.core.config import Settings, get_settings
from app.db import get_session, get_write_session
from app.main import create_app
from tests.conftest import POSTGRES_REQUIRED
from tests.factories import SEED_SLUG, make_key, start_server

REDIS_URL = "redis://127.0.0.1:6379/0"
REPORT_URL = f"/api/v1/plans/{SEED_SLUG}/tasks/4.4.1/progress"  # 县司法局 leads 4.4.1
BODY = {"status": "in_progress", "percent": 10, "summary": "限流测试", "period": "2023-Q1"}

AppFactory = Callable[..., TestClient]


@pytest.fixture
def limited(db: Session) -> Iterator[AppFactory]:
    """Builds apps with the given rate-limit settings on the test's rolled-back session."""
    clients: list[TestClient] = []

    def build(**overrides: Any) -> TestClient:
        settings = get_settings().model_copy(update={"rate_limit_enabled": True, **overrides})
        app = create_app(settings)
        app.dependency_overrides[get_session] = lambda: db
        app.dependency_overrides[get_write_session] = lambda: db
        client = TestClient(app)
        client.__enter__()
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.__exit__(None, None, None)


def assert_rate_limited(response: httpx.Response) -> int:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == "rate-limited" and body["status"] == 429
    assert "请" in body["detail"] and "retry" in body["detail"], body
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= 3600
    return retry_after


def test_per_address_limit_answers_429_with_retry_after(limited: AppFactory) -> None:
    client = limited(rate_limit_per_address="5/minute", rate_limit_per_key="100/minute")
    remaining = []
    for _ in range(5):
        response = client.get("/api/v1/plans")
        assert response.status_code == 200, response.text
        assert response.headers["ratelimit-limit"] == "5"
        remaining.append(int(response.headers["ratelimit-remaining"]))
    assert remaining == [4, 3, 2, 1, 0]
    refused = client.get("/api/v1/plans")
    assert_rate_limited(refused)
    assert "该地址请求过于频繁(上限 5 次/分钟)" in refused.json()["detail"]
    assert refused.headers["ratelimit-remaining"] == "0"
    assert refused.headers["x-content-type-options"] == "nosniff"  # the security headers still apply
    # A write is refused too, before anything else is looked at.
    assert_rate_limited(client.post(REPORT_URL, json=BODY))
    # Probes are never limited: an orchestrator must always reach them.
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200


def test_per_key_limit_counts_each_key_apart(limited: AppFactory, db: Session) -> None:
    client = limited(rate_limit_per_address="1000/minute", rate_limit_per_key="3/minute")
    first, second = make_key(db, unit="县司法局"), make_key(db, unit="县司法局")
    for n in range(3):
        response = client.post(REPORT_URL, json={**BODY, "summary": f"第 {n} 次"}, headers={"Authorization": first})
        assert response.status_code == 201, response.text
    retry_after = assert_rate_limited(client.post(REPORT_URL, json=BODY, headers={"Authorization": first}))
    assert retry_after <= 60
    assert_rate_limited(client.get("/api/v1/plans", headers={"Authorization": first}))
    # Another key, and requests without a key, are not affected.
    assert client.post(REPORT_URL, json=BODY, headers={"Authorization": second}).status_code == 201
    assert client.get("/api/v1/plans").status_code == 200


def test_failed_authentications_are_audited_and_throttled(
    limited: AppFactory, db: Session, caplog: pytest.LogCaptureFixture
) -> None:
    client = limited(rate_limit_failed_auth="3/minute")
    good = make_key(db, unit="县司法局")
    prefix = good.removeprefix("Bearer pa_").split("_", 1)[0]
    forged = f"Bearer pa_{prefix}_{'x' * 43}"  # the right prefix, a wrong secret
    with caplog.at_level(logging.WARNING, logger="plan_api.audit"):
        for _ in range(3):
            response = client.post(REPORT_URL, json=BODY, headers={"Authorization": forged})
            assert response.status_code == 401, response.text
    audits = [r.getMessage() for r in caplog.records if r.name == "plan_api.audit"]
    assert len(audits) == 3
    for message in audits:
        assert "address=testclient" in message and f"key_prefix={prefix}" in message and "invalid API key" in message
        assert "x" * 10 not in message  # never the secret
    assert good.split()[1] not in caplog.text

    # The address is now throttled: even its good key waits, and the key is not looked up at all.
    throttled = client.post(REPORT_URL, json=BODY, headers={"Authorization": good})
    assert_rate_limited(throttled)
    assert "认证失败次数过多" in throttled.json()["detail"]
    assert_rate_limited(client.get("/api/v1/admin/keys", headers={"Authorization": forged}))
    # Open reads from that address go on.
    assert client.get("/api/v1/plans").status_code == 200


def test_missing_and_malformed_keys_count_as_failures(limited: AppFactory, caplog: pytest.LogCaptureFixture) -> None:
    client = limited(rate_limit_failed_auth="2/minute")
    with caplog.at_level(logging.WARNING, logger="plan_api.audit"):
        assert client.post(REPORT_URL, json=BODY).status_code == 401
        assert client.post(REPORT_URL, json=BODY, headers={"Authorization": "Basic abc"}).status_code == 401
    audits = [r.getMessage() for r in caplog.records if r.name == "plan_api.audit"]
    assert ["missing API key" in audits[0], "malformed Authorization header" in audits[1]] == [True, True]
    assert "key_prefix=-" in audits[0]
    assert_rate_limited(client.post(REPORT_URL, json=BODY))


def test_limits_can_be_switched_off(limited: AppFactory) -> None:
    client = limited(rate_limit_enabled=False, rate_limit_per_address="2/minute")
    for _ in range(5):
        response = client.get("/api/v1/plans")
        assert response.status_code == 200 and "ratelimit-limit" not in response.headers


def test_limit_settings_are_checked() -> None:
    defaults = Settings()
    assert defaults.rate_limit_enabled and defaults.rate_limit_storage_url == "memory://"
    with pytest.raises(ValueError, match="rate limit"):
        Settings(rate_limit_per_key="lots")


def test_an_unreachable_store_does_not_take_the_service_down(
    limited: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    client = limited(rate_limit_storage_url="redis://127.0.0.1:1/0", rate_limit_per_address="1/minute")
    with caplog.at_level(logging.WARNING, logger="app.api.rate_limit"):
        for _ in range(3):
            assert client.get("/api/v1/plans").status_code == 200
    assert "rate-limit store unavailable" in caplog.text


# --- Redis: the shared store of several workers ------------------------------------------------


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        if POSTGRES_REQUIRED:  # CI: its services are mandatory, a skip would hide the shared-store half
            pytest.fail(f"Redis is required in CI: {REDIS_URL} ({exc})")
        pytest.skip(f"no Redis at {REDIS_URL} ({exc}); the shared-store tests need one (CI has it)")
    prefix = f"plan-api-test-{uuid.uuid4().hex[:12]}"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)


def test_two_workers_share_one_count_in_redis(limited: AppFactory, db: Session, redis_prefix: str) -> None:
    settings = {
        "rate_limit_storage_url": REDIS_URL,
        "rate_limit_key_prefix": redis_prefix,
        "rate_limit_per_address": "1000/minute",
        "rate_limit_per_key": "4/minute",
        "rate_limit_failed_auth": "2/minute",
    }
    worker_a, worker_b = limited(**settings), limited(**settings)
    key = make_key(db, unit="县司法局")
    for n, worker in enumerate([worker_a, worker_b, worker_a, worker_b]):
        response = worker.post(REPORT_URL, json={**BODY, "summary": f"第 {n} 次"}, headers={"Authorization": key})
        assert response.status_code == 201, response.text
    assert_rate_limited(worker_a.post(REPORT_URL, json=BODY, headers={"Authorization": key}))
    assert_rate_limited(worker_b.post(REPORT_URL, json=BODY, headers={"Authorization": key}))
    # Failed authentications through one worker throttle the address on the other.
    for worker in (worker_a, worker_b):
        assert worker.post(REPORT_URL, json=BODY, headers={"Authorization": "Bearer pa_0000_bad"}).status_code == 401
    other = make_key(db, unit="县司法局")
    assert_rate_limited(worker_b.post(REPORT_URL, json=BODY, headers={"Authorization": other}))


# --- Authentication before the writer lock ------------------------------------------------------


def _example_path(path: str) -> str:
    values = {"plan": SEED_SLUG, "code": "4.4.1", "unit": "县司法局", "prefix": "deadbeef"}
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), "1"), path)


def test_no_operation_opens_a_write_session_for_a_bad_key(db: Session) -> None:
    """Every operation of the OpenAPI document, called with a bad key: none may reach a write session
    (SQLite's writer lock); every write and admin operation answers 401."""
    app = create_app(get_settings().model_copy(update={"rate_limit_failed_auth": "1000/minute"}))
    opened: list[str] = []

    def write_session_forbidden(request: Request) -> Iterator[Session]:
        opened.append(f"{request.method} {request.url.path}")
        yield db

    app.dependency_overrides[get_session] = lambda: db
    app.dependency_overrides[get_write_session] = write_session_forbidden
    bad = {"Authorization": "Bearer pa_00000000_not-a-key"}
    writes = 0
    with TestClient(app) as client:
        for path, operations in app.openapi()["paths"].items():
            for method in operations:
                response = client.request(method.upper(), _example_path(path), headers=bad, json={})
                if method != "get" or path.startswith("/api/v1/admin"):
                    assert response.status_code == 401, (method, path, response.text)
                    writes += 1
    assert not opened, f"write sessions opened before the key was checked: {opened}"
    assert writes >= 15


def test_a_bad_key_does_not_wait_for_the_sqlite_writer(tmp_path: Path) -> None:
    """Another process holds SQLite's write lock; a request with a bad key is refused at once anyway
    (before the fix it queued behind the lock for the 30 s busy timeout)."""
    path = tmp_path / "locked.sqlite3"
    server = start_server(f"sqlite:///{path}", tmp_path / "work")
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # the write lock, held for the whole request below
        with httpx.Client(base_url=server.base_url, trust_env=False, timeout=10) as client:
            response = client.post(REPORT_URL, json=BODY, headers={"Authorization": "Bearer pa_00000000_nope"})
            assert response.status_code == 401, response.text
            assert response.json()["code"] == "unauthenticated"
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        server.stop()


def test_keys_are_stored_only_as_hashes(client: TestClient, db: Session) -> None:
    admin = make_key(db, admin=True)
    created = client.post("/api/v1/admin/keys", json={"unit": "县司法局"}, headers={"Authorization": admin})
    assert created.status_code == 201, created.text
    secret = created.json()["key"]
    assert client.post(REPORT_URL, json=BODY, headers={"Authorization": f"Bearer {secret}"}).status_code == 201
    client.post(REPORT_URL, json=BODY, headers={"Authorization": f"Bearer {secret}x"})  # a failed attempt
    random_part = secret.rsplit("_", 1)[1]
    found = []
    for table in inspect(db.connection()).get_table_names():
        for row in db.connection().execute(text(f'SELECT * FROM "{table}"')).all():
            found += [(table, value) for value in row if isinstance(value, str) and random_part in value]
    assert not found, f"the secret is stored in clear: {found}"
