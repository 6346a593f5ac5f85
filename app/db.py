"""Engine construction and the per-request session.

SQLite is the embedded default, so it gets the settings that make it a real concurrent database:
WAL, foreign keys, a busy timeout, and explicit BEGIN so SAVEPOINTs and rollbacks behave (pysqlite's
own transaction handling otherwise commits behind SQLAlchemy's back).
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager, nullcontext
from functools import lru_cache
from pathlib import Path
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine, make_url
from sqlmodel import Session, create_engine
from starlette.concurrency import run_in_threadpool

from app.core.config import Settings, get_settings


def make_engine(url: str, *, echo: bool = False, settings: Settings | None = None) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        settings = settings or get_settings()
        # Every wait is bounded, so a database that is down or saturated answers 503 in seconds instead
        # of hanging the request: connect_timeout for a new connection, pool_timeout for a free one.
        # pool_pre_ping replaces connections that died with a restart, so service resumes by itself.
        # hide_parameters: a database error is logged without its bound values (a key's hash, a summary).
        return create_engine(
            url,
            echo=echo,
            pool_pre_ping=True,
            hide_parameters=True,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_timeout=settings.db_pool_timeout,
            connect_args={"connect_timeout": settings.db_connect_timeout},
        )

    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url, echo=echo, hide_parameters=True, connect_args={"check_same_thread": False, "timeout": 30}
    )

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves, below
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=FULL")  # an acknowledged write survives a crash
        cursor.close()

    @event.listens_for(engine, "begin")
    def _sqlite_begin(conn: Any) -> None:
        # Write requests take the write lock up front (IMMEDIATE): concurrent writers then queue on
        # busy_timeout instead of failing with "database is locked" when a read lock cannot upgrade.
        immediate = conn.get_execution_options().get("sqlite_immediate")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


@lru_cache
def get_engine() -> Engine:
    settings = get_settings()
    return make_engine(settings.database_url, echo=settings.sql_echo, settings=settings)


class _SqliteCounter:
    """A one-row counter (`feed_counter`'s versions) read on SQLite through one connection of its own,
    outside the pool, on the event loop (a few tens of microseconds; a WAL read never waits for the
    writer). Outside the pool because a checkout on the event loop would block the loop while the pool
    is lent out to requests the loop must finish."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # a TestClient per test runs its own loop thread
        self._connections: WeakKeyDictionary[Engine, Any] = WeakKeyDictionary()

    def __call__(self, engine: Engine, sql: str) -> int:
        with self._lock:
            connection = self._connections.get(engine)
            if connection is None:
                # The engine's "connect" hooks set WAL, foreign keys and autocommit (no lingering snapshot).
                connection = engine.raw_connection()
                connection.detach()  # ours for good: never returned to, nor counted in, the pool
                self._connections[engine] = connection
            return read_counter(connection, sql)


def read_counter(connection: Any, sql: str) -> int:
    """One integer through a DBAPI connection."""
    cursor = connection.cursor()
    try:
        cursor.execute(sql)
        row = cursor.fetchone()
    finally:
        cursor.close()
    assert row is not None, "feed_counter has its one row from the first migration on"
    return int(row[0])


sqlite_counter = _SqliteCounter()


def own_sqlite_engine(app: Any) -> Engine | None:
    """The app's own engine when it is SQLite, where `sqlite_counter` reads on the loop at no hop;
    None on PostgreSQL, or when a test substitutes the session (its transaction holds versions this
    connection cannot see)."""
    if get_session in app.dependency_overrides:
        return None
    engine = get_engine()
    return engine if engine.dialect.name == "sqlite" else None


async def get_session() -> AsyncIterator[Session]:
    """One session per read request. Creating a session does no I/O (it connects on first use), so
    this runs on the event loop; closing one with a transaction open may talk to the database, so that
    goes to the threadpool."""
    session = Session(get_engine())
    try:
        yield session
    finally:
        if session.in_transaction():
            await run_in_threadpool(session.close)  # ends the transaction: may wait on the database
        else:
            session.close()  # never used, or its work already ended (a key check commits): no I/O


class Rollback(Exception):
    """Raised by work in a write transaction (`app/api/writes.py`) to undo its own writes and still
    answer: the transaction's runner returns `answer`. Here, beneath the services, so that a service
    whose answer must not be kept (a dry run) says so itself."""

    def __init__(self, answer: Any) -> None:
        super().__init__("rolled back")
        self.answer = answer


# SQLite has one writer at a time. Queueing this process's writers on a lock, rather than on
# SQLite's busy handler (which sleeps and retries), keeps write latency even under load.
_sqlite_writer = threading.Lock()
sqlite_writer = _sqlite_writer  # also taken by the group commit (`app/api/writes.py`)


def get_write_session() -> Iterator[Session]:
    """One session per write request; the route commits once when the request ends well."""
    with writing(get_engine()) as session:
        yield session


@contextmanager
def writing(engine: Engine) -> Iterator[Session]:
    """A write session that, on SQLite, holds this process's writer lock for its life: writers in one
    process queue on that lock, in order, instead of on SQLite's busy handler, whose sleeps (up to
    100 ms each) became the API's tail latency while the webhook worker polled beside it.
    expire_on_commit=False: answers are built from objects that stay valid after the commit."""
    turn = _sqlite_writer if engine.dialect.name == "sqlite" else nullcontext()
    with turn, Session(engine.execution_options(sqlite_immediate=True), expire_on_commit=False) as session:
        yield session


STARTUP_LOCK_ID = 7_012_202_501  # any constant; shared by every worker of this service


def lock_for_startup(connection: Connection) -> None:
    """Serialize migrate and seed across workers starting together on PostgreSQL; released at commit.
    SQLite needs nothing: the database file lock already serializes its writers."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": STARTUP_LOCK_ID})


def dialect_insert(session: Session) -> Callable[..., Any]:
    """`INSERT … ON CONFLICT` in the session's dialect (SQLite ≥ 3.35 and PostgreSQL both have it)."""
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
