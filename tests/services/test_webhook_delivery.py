"""How a delivery meets the network: it connects to the address that was vetted (no second DNS
answer can redirect it), reads a bounded excerpt of the receiver's answer, and a receiver that hangs
holds up no other endpoint. Real receivers on localhost, both backends; the only stand-in is the
name resolver (a hosts file that answers differently from one lookup to the next, as a rebinding
DNS server does)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine

from app.db import make_engine, sqlite_writer
from app.migrate import upgrade_to_head
from app.services import webhook_delivery
from tests.conftest import fresh_database_url
from tests.webhook_support import WEBHOOKS, Receiver, World, build_world, webhook_settings

NAME = "hooks.example.test"


def rebinding_dns(monkeypatch: pytest.MonkeyPatch, answers: Callable[[int], str]) -> list[str]:
    """Makes NAME resolve to `answers(n)` at its n-th lookup (1 for the first); returns the log of answers."""
    real = socket.getaddrinfo
    log: list[str] = []

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != NAME:
            return real(host, port, *args, **kwargs)
        log.append(answers(len(log) + 1))
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (log[-1], int(port)))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return log


def test_the_delivery_connects_to_the_address_that_was_vetted(
    world: World, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Lookups 1 (registration) and 2 (the check before delivery) answer the receiver; any later one
    # answers an unroutable private address, where a request that resolved the name again would go.
    answers = rebinding_dns(monkeypatch, lambda n: "127.0.0.1" if n <= 2 else "10.255.255.1")
    hook = world.register(f"http://{NAME}:{receiver.port}/hook", event_types=["report.submitted"])
    world.report("2.1.3", "教育体育局")
    webhook_delivery.run_once(engine=world.engine, settings=world.settings)

    assert answers == ["127.0.0.1", "127.0.0.1"]  # resolved once per check, never by the HTTP client
    (delivered,) = receiver.delivered()
    assert delivered.headers["host"] == f"{NAME}:{receiver.port}"  # the name, though sent to the address
    log = world.call("GET", f"/{hook['id']}/deliveries").json()["items"]
    assert [(a["status_code"], a["message_state"]) for a in log] == [(200, "delivered")]


def test_a_name_that_resolves_to_a_private_address_at_delivery_is_refused(
    webhook_engine: Engine, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    strict = webhook_settings(webhook_allowed_hosts=[])
    answers = rebinding_dns(monkeypatch, lambda n: "93.184.216.34" if n == 1 else "127.0.0.1")
    for world in build_world(webhook_engine, strict):
        hook = world.register(f"http://{NAME}:{receiver.port}/hook", event_types=["report.submitted"])
        world.report("2.1.3", "教育体育局")
        webhook_delivery.run_once(engine=webhook_engine, settings=strict)

        assert answers[:2] == ["93.184.216.34", "127.0.0.1"] and receiver.received == []
        log = world.call("GET", f"/{hook['id']}/deliveries").json()["items"]
        assert [a["status_code"] for a in log] == [None]
        assert "非公网地址 127.0.0.1" in log[0]["error"] and log[0]["message_state"] == "pending"


def test_an_endless_answer_is_cut_to_an_excerpt(world: World, receiver: Receiver) -> None:
    receiver.endless = {"/hook"}
    receiver.behaviour = lambda path, n: (500 if n == 1 else 200, {}, 0.0)
    hook = world.register(receiver.url(), event_types=["report.submitted"])
    world.report("2.1.3", "教育体育局")
    world.deliver_until(lambda: len(receiver.delivered()) == 1 and not _pending(world, hook["id"]))

    failed, delivered = world.call("GET", f"/{hook['id']}/deliveries").json()["items"]
    assert failed["status_code"] == 500 and failed["error"].startswith("没完没了 endless")
    assert len(failed["error"]) <= webhook_delivery.REPLY_EXCERPT_CHARS
    assert (delivered["status_code"], delivered["message_state"], delivered["error"]) == (200, "delivered", None)


def test_a_hanging_receiver_holds_up_no_other_endpoint(webhook_engine: Engine, receiver: Receiver) -> None:
    hang = threading.Event()
    receiver.held["/slow"] = hang
    settings = webhook_settings(webhook_timeout_seconds=30.0)  # the slow receiver is still within its time
    for world in build_world(webhook_engine, settings):
        slow = world.register(receiver.url("/slow"), event_types=["report.submitted"])
        world.register(receiver.url("/fast"), event_types=["report.submitted"])
        for code in ("2.1.3", "2.1.4", "6.1.1"):
            world.report(code, "教育体育局")
        worker = threading.Thread(
            target=webhook_delivery.run_once, kwargs={"engine": webhook_engine, "settings": settings}
        )
        worker.start()
        try:
            deadline = time.monotonic() + 25
            while len(receiver.delivered("/fast")) < 3:
                assert time.monotonic() < deadline, "the healthy receiver waited on the hanging one"
                time.sleep(0.05)
            # All three reached the healthy receiver while the first request to the slow one hangs.
            assert [r.path for r in receiver.received if r.path == "/slow"] == ["/slow"]
            assert receiver.delivered("/slow") == []
        finally:
            hang.set()
            worker.join()
        slow_done = lambda w=world, hook=slow: len(receiver.delivered("/slow")) == 3 and not _pending(w, hook["id"])  # noqa: E731
        world.deliver_until(slow_done)
        ids = [r.headers["webhook-id"] for r in receiver.delivered("/slow")]
        assert ids == [r.headers["webhook-id"] for r in receiver.delivered("/fast")]  # same events, same order


def _pending(world: World, endpoint_id: int) -> list[Any]:
    return [m for m in world.messages(endpoint_id) if m.state == "pending"]


def test_the_delivery_log_filters_by_message_state(world: World, receiver: Receiver) -> None:
    receiver.behaviour = lambda path, n: (200 if n == 1 else 410, {}, 0.0)  # the second event: 410 Gone
    hook = world.register(receiver.url(), event_types=["report.submitted"])
    world.report("2.1.3", "教育体育局")
    world.report("2.1.4", "司法局")
    world.deliver_until(lambda: len(receiver.received) == 2 and not _pending(world, hook["id"]))

    def codes(state: str) -> list[int | None]:
        response = world.call("GET", f"/{hook['id']}/deliveries", params={"state": state})
        assert response.status_code == 200, response.text
        return [a["status_code"] for a in response.json()["items"] if a["message_state"] == state]

    assert (codes("delivered"), codes("failed"), codes("pending")) == ([200], [410], [])
    every = world.call("GET", f"/{hook['id']}/deliveries").json()["items"]
    assert [a["status_code"] for a in every] == [200, 410]
    bad = world.call("GET", f"/{hook['id']}/deliveries", params={"state": "lost"})
    assert bad.status_code in (400, 422) and "query.state" in [e["field"] for e in bad.json()["errors"]]


def test_an_endpoint_has_an_etag_and_revalidates(world: World, receiver: Receiver) -> None:
    hook = world.register(receiver.url())
    url = f"{WEBHOOKS}/{hook['id']}"
    first = world.call("GET", f"/{hook['id']}")
    assert first.status_code == 200 and first.headers["etag"]
    again = world.client.get(url, headers={"Authorization": world.admin, "If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    assert world.call("PATCH", f"/{hook['id']}", json={"description": "改名"}).status_code == 200
    changed = world.client.get(url, headers={"Authorization": world.admin, "If-None-Match": first.headers["etag"]})
    assert changed.status_code == 200 and changed.json()["description"] == "改名"
    assert changed.headers["etag"] != first.headers["etag"]


def test_the_worker_queues_behind_the_apis_writers_on_sqlite(tmp_path: Path) -> None:
    """In one process the worker's write transactions take the same writer lock as the API's group
    commit, so neither waits on SQLite's busy handler (sleeps of up to 100 ms: the API's tail latency
    while the worker polled). Held by someone else, the lock holds the worker's poll back until released."""
    # SQLite only: PostgreSQL has row locks, not one writer, so there is nothing to queue behind.
    [url] = list(fresh_database_url("sqlite", tmp_path))
    engine = make_engine(url)
    upgrade_to_head(engine)
    done = threading.Event()

    def poll() -> None:
        webhook_delivery.claim(engine=engine, settings=webhook_settings())
        done.set()

    sqlite_writer.acquire()
    try:
        thread = threading.Thread(target=poll)
        thread.start()
        assert not done.wait(0.5), "the worker wrote while another writer of this process held the lock"
    finally:
        sqlite_writer.release()
    thread.join(30)
    engine.dispose()
    assert done.is_set()


def test_an_idle_poll_builds_no_http_client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A client builds its TLS context (tens of ms of CPU under the GIL): the worker makes one only
    when it has something to send, or every idle poll (one a second) stalled the API's requests."""
    [url] = list(fresh_database_url("sqlite", tmp_path))
    engine = make_engine(url)
    upgrade_to_head(engine)
    made: list[object] = []

    class Counted(httpx.Client):
        def __init__(self, **kwargs: Any) -> None:
            made.append(self)
            super().__init__(**kwargs)

    monkeypatch.setattr(webhook_delivery.httpx, "Client", Counted)
    try:
        assert webhook_delivery.run_once(engine=engine, settings=webhook_settings(webhook_concurrency=4)) == 0
    finally:
        engine.dispose()
    assert made == []
