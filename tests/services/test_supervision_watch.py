"""The supervision watch beside the writers and beside another watcher: it computes on a read session
(SQLite's writer stays free meanwhile), and two watchers looking side by side record each event once.
Real app and databases (the committed world of tests/webhook_support.py); what the watch's own
behaviour is (which events, their data, the first look) is held in tests/routers/test_webhooks.py.
The only hooks are SQLAlchemy events on the engine, to see or pause a watcher between its queries."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event
from sqlmodel import Session, col, select

from app.db import sqlite_writer
from app.models import ChangeEvent, DutyMissingSeen, Task, TaskLightSeen
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


@contextmanager
def paused_watcher(world: World) -> Iterator[list[int]]:
    """A watcher in a thread, paused once it has computed (after its last read, before its write)
    until the block ends; then it finishes, and what it recorded is in the yielded list."""
    computed, resume = threading.Event(), threading.Event()
    result: list[int] = []
    failed: list[BaseException] = []

    def pause(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        # current_owner_states, the last read of a plan's look (the seed database has one plan).
        if threading.current_thread() is thread and "FROM task_unit_state" in statement:
            computed.set()
            resume.wait(30)

    def run() -> None:
        try:
            result.append(supervision_watch.watch(engine=world.engine, settings=world.settings))
        except BaseException as exc:
            failed.append(exc)

    thread = threading.Thread(target=run)
    event.listen(world.engine, "after_cursor_execute", pause)
    try:
        thread.start()
        assert computed.wait(30), "the watcher did not compute"
        yield result
    finally:
        resume.set()
        thread.join(60)
        event.remove(world.engine, "after_cursor_execute", pause)
    assert not failed, failed
    assert result, "the watcher did not finish"


def test_two_watchers_side_by_side_record_each_event_once(world: World) -> None:
    """Watcher A computes, then waits; B looks and writes meanwhile; A writes last, with a look
    older than B's. On SQLite (watchers in two processes compute side by side; threads here) A
    re-reads the seen rows under the writer: it records no duty.missing twice, and does not turn
    back a light B has seen change. On PostgreSQL B finds A's advisory lock and computes nothing;
    the next round records what A did not see. Either way: each event once."""
    sqlite = world.engine.dialect.name == "sqlite"
    statements: list[tuple[threading.Thread, str]] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append((threading.current_thread(), statement))

    def b_computed() -> bool:
        return any(t is threading.current_thread() and "progress_report" in s for t, s in statements)

    watch = supervision_watch.watch
    event.listen(world.engine, "before_cursor_execute", note)
    try:
        # The first look: every missing duty of the latest closed period.
        with paused_watcher(world) as a:
            b = watch(engine=world.engine, settings=world.settings)
            assert b_computed() == sqlite
        first = b + a[0]
        assert (b > 0, a[0] > 0) == ((True, False) if sqlite else (False, True))

        # A looks before 2.1.3 is completed, B after.
        statements.clear()
        with paused_watcher(world) as a:
            world.report("2.1.3", "教育体育局", status="completed", percent=100)
            b = watch(engine=world.engine, settings=world.settings)
            assert b_computed() == sqlite
        then = watch(engine=world.engine, settings=world.settings)
        assert (b, a[0], then) == ((1, 0, 0) if sqlite else (0, 0, 1))
        assert watch(engine=world.engine, settings=world.settings) == 0
    finally:
        event.remove(world.engine, "before_cursor_execute", note)

    with Session(world.engine) as session:
        events = list(session.exec(select(ChangeEvent).where(col(ChangeEvent.actor) == "supervision-watch")))
        missing = [(e.task_id, e.unit_id, json.loads(e.data)["period"]) for e in events if e.type == "duty.missing"]
        noted = session.exec(select(DutyMissingSeen.task_id, DutyMissingSeen.unit_id, DutyMissingSeen.period)).all()
        changes = [json.loads(e.data) for e in events if e.type == "task.light_changed"]
        light = session.exec(select(TaskLightSeen.light).join(Task).where(Task.code == "2.1.3")).one()
    assert len(missing) == len(set(missing)) == first and set(missing) == set(noted)
    assert [(c["task"], c["from"], c["to"]) for c in changes] == [("2.1.3", "red", light)] and light != "red"
