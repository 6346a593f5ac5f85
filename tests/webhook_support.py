"""Shared set-up of the webhook tests (tests/**/test_webhook*.py), loaded as a pytest plugin: a real HTTP
receiver on a loopback port, a fresh committed database (the delivery worker reads it from its own
connections, so the per-test rollback of `db` cannot serve), an app on it, and the worker's passes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from standardwebhooks import Webhook

from app.api.deps import current_settings
from app.core.config import Settings, get_settings
from app.db import get_session, get_write_session, make_engine
from app.importer.service import seed_if_empty
from app.main import create_app
from app.migrate import upgrade_to_head
from app.models import WebhookEndpoint, WebhookMessage
from app.services import webhook_delivery
from tests.conftest import fresh_database_url
from tests.factories import SEED_SLUG, make_key

WEBHOOKS = "/api/v1/admin/webhooks"
TASKS = f"/api/v1/plans/{SEED_SLUG}/tasks"
REPORT = {"status": "in_progress", "percent": 60, "summary": "开展宪法进校园活动 42 场", "period": "2022-H2"}
ALL_TYPES = ["report.submitted", "report.corrected", "task.status_changed"]


# --- a receiver: a real HTTP server on a loopback port ---------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int  # what the receiver answered (0: it hung up without answering)


@dataclass
class Receiver:
    """Answers each request with `behaviour(path, n)` → (status, headers, seconds to wait first), where
    n counts the requests this path has had (1 for the first)."""

    behaviour: Callable[[str, int], tuple[int, dict[str, str], float]]
    received: list[Received] = field(default_factory=list)
    port: int = 0
    endless: set[str] = field(default_factory=set)  # paths answered with a body that never ends
    held: dict[str, threading.Event] = field(default_factory=dict)  # paths that answer once the event is set
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def delivered(self, path: str = "/hook") -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.path == path and 200 <= r.status < 300]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    box = Receiver(behaviour=lambda path, n: (200, {}, 0.0))

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            with box.lock:
                n = 1 + sum(1 for r in box.received if r.path == self.path)
                status, headers, wait = box.behaviour(self.path, n)
                entry = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body, 0)
                box.received.append(entry)
            time.sleep(wait)
            if self.path in box.held:
                box.held[self.path].wait(60)
            try:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                if self.path in box.endless:  # HTTP/1.0 without a length: the body runs until we stop
                    self.end_headers()
                    entry.status = status
                    while True:
                        self.wfile.write("没完没了 endless ".encode() * 1024)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
                entry.status = status
            except OSError:  # the worker gave up waiting and closed the connection
                pass

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    box.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield box
    server.shutdown()
    server.server_close()


# --- a committed database, an app on it, and the worker -------------------------------------------


def webhook_settings(**changes: Any) -> Settings:
    values: dict[str, Any] = {
        "webhook_worker": False,
        "webhook_allowed_hosts": ["127.0.0.1"],
        "webhook_retry_schedule": [0.2, 0.4, 0.8],
        "webhook_timeout_seconds": 1.0,
        **changes,
    }
    return get_settings().model_copy(update=values)


@pytest.fixture
def webhook_engine(backend: str, tmp_path: Path) -> Iterator[Engine]:
    for url in fresh_database_url(backend, tmp_path):
        engine = make_engine(url)
        upgrade_to_head(engine)
        with Session(engine) as session:
            seed_if_empty(session=session, settings=get_settings())
        yield engine
        engine.dispose()


@dataclass
class World:
    engine: Engine
    client: TestClient
    settings: Settings
    admin: str

    def key(self, unit: str) -> str:
        with Session(self.engine) as session:
            return make_key(session, unit=unit)

    def report(self, code: str, unit: str, **changes: Any) -> dict[str, Any]:
        response = self.client.post(
            f"{TASKS}/{code}/progress", json={**REPORT, **changes}, headers={"Authorization": self.key(unit)}
        )
        assert response.status_code == 201, response.text
        return dict(response.json())

    def register(self, url: str, **body: Any) -> dict[str, Any]:
        response = self.client.post(
            WEBHOOKS, json={"url": url, "event_types": ALL_TYPES, **body}, headers={"Authorization": self.admin}
        )
        assert response.status_code == 201, response.text
        return dict(response.json())

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.client.request(method, f"{WEBHOOKS}{path}", headers={"Authorization": self.admin}, **kwargs)

    def deliver_until(self, done: Callable[[], bool], *, within: float = 60.0) -> None:
        """Runs worker passes until `done()` (the retry schedule's waits are real, if short)."""
        deadline = time.monotonic() + within
        while not done():
            assert time.monotonic() < deadline, "deliveries did not settle"
            if not webhook_delivery.run_once(engine=self.engine, settings=self.settings):
                time.sleep(0.05)

    def messages(self, endpoint_id: int) -> list[WebhookMessage]:
        with Session(self.engine) as session:
            return list(session.exec(select(WebhookMessage).where(WebhookMessage.endpoint_id == endpoint_id)))

    def endpoint(self, endpoint_id: int) -> WebhookEndpoint:
        with Session(self.engine) as session:
            found = session.get(WebhookEndpoint, endpoint_id)
            assert found is not None
            return found


def app_on(engine: Engine, settings: Settings) -> FastAPI:
    """The app as a worker process runs it, on this committed database: its own sessions, real commits
    (not one rolled-back test transaction), so other apps and threads see what it writes."""
    app = create_app(settings)

    def session() -> Iterator[Session]:
        with Session(engine) as s:
            yield s

    def write_session() -> Iterator[Session]:
        with Session(engine.execution_options(sqlite_immediate=True), expire_on_commit=False) as s:
            yield s

    app.dependency_overrides[get_session] = session
    app.dependency_overrides[get_write_session] = write_session
    app.dependency_overrides[current_settings] = lambda: settings
    return app


def build_world(engine: Engine, settings: Settings) -> Iterator[World]:
    app = app_on(engine, settings)
    with Session(engine) as s:
        admin = make_key(s, admin=True)
    with TestClient(app) as client:
        yield World(engine=engine, client=client, settings=settings, admin=admin)


@pytest.fixture
def world(webhook_engine: Engine) -> Iterator[World]:
    yield from build_world(webhook_engine, webhook_settings())


def verified(received: Received, secret: str) -> dict[str, Any]:
    """The payload, once the `standardwebhooks` library has checked its signature with `secret`."""
    return dict(Webhook(secret).verify(received.body, received.headers))
