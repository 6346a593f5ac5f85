"""The supervision watch beside the writers: it computes on a read session (SQLite's writer stays free
meanwhile). Real app and databases (the committed world of tests/webhook_support.py); what the watch's own
behaviour is (which events, their data, the first look) is held in tests/routers/test_webhooks.py.
The only hooks are SQLAlchemy events on the engine, to see its queries."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
from sqlalchemy import event

from app.db import sqlite_writer
from app.services import supervision_watch
from tests.webhook_support import World


@pytest.mark.parametrize("backend", ["sqlite"])  # PostgreSQL has no single writer to hold
def test_the_watch_computes_without_holding_the_writer(world: World) -> None:
    """A write transaction on SQLite holds this process's writer lock and the database's write lock
    (BEGIN IMMEDIATE) for its life; at 10^6 reports a round computes for long, and every report of
    every process would wait that long. While the watch reads its facts, both are free."""
    database = world.engine.url.database
    assert database is not None
    during: list[tuple[bool, str | None]] = []

    def facts_query(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if during or "progress_report" not in statement or not statement.lstrip().upper().startswith("SELECT"):
            return
        other = sqlite3.connect(database, timeout=0, isolation_level=None)  # another process's writer
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
            refused = None
        except sqlite3.OperationalError as exc:
            refused = str(exc)
        finally:
            other.close()
        during.append((sqlite_writer.locked(), refused))

    event.listen(world.engine, "before_cursor_execute", facts_query)
    try:
        assert supervision_watch.watch(engine=world.engine, settings=world.settings) > 0
    finally:
        event.remove(world.engine, "before_cursor_execute", facts_query)
    assert during == [(False, None)]  # (this process's writer lock held, another writer refused)
