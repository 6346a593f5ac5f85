"""`app/api/deps.py`'s write dependency: the key is authenticated again inside the write's own work,
so a key revoked while the write waited for SQLite's writer is refused by that very write, even with
its facts cached from a moment before."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from app.api.deps import Writing
from app.api.writes import GroupCommit
from app.db import sqlite_writer
from app.errors import Unauthenticated
from app.models import Unit, UnitKind
from app.services.keys import Principal, authenticate, revoke_key
from tests.factories import make_key


# Group commit (a queue behind the writer's lock) is SQLite's write path; PostgreSQL has no queue to wait in.
@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_key_revoked_while_its_write_waited_is_refused_by_that_write(webhook_engine: Engine, backend: str) -> None:
    with Session(webhook_engine) as s:
        key = make_key(s, admin=True)
        authenticate(session=s, authorization=key)  # its facts cached at the current version
    writes = GroupCommit(webhook_engine)

    def work(session: Session, admin: Principal) -> str:
        session.add(Unit(name="县迟到局", kind=UnitKind.government_department, jurisdiction_id=1))
        session.flush()
        return admin.name

    outcome: list[object] = []
    sqlite_writer.acquire()  # the write waits behind another writer …
    try:
        thread = threading.Thread(
            target=lambda: outcome.append(_run(Writing(writes, key, admin_only=True), work)), daemon=True
        )
        thread.start()
        deadline = time.monotonic() + 10
        while not writes._queue:
            assert time.monotonic() < deadline, "the write never queued"
            time.sleep(0.01)
        with Session(webhook_engine) as s:  # … while the key is revoked elsewhere
            revoke_key(session=s, prefix=key.split("_")[1])
            s.commit()
    finally:
        sqlite_writer.release()
    thread.join(10)
    assert len(outcome) == 1 and isinstance(outcome[0], Unauthenticated), outcome
    with Session(webhook_engine) as s:
        assert s.exec(select(Unit).where(Unit.name == "县迟到局")).first() is None


def _run(writing: Writing, work: object) -> object:
    try:
        return writing.run(work)  # type: ignore[arg-type]
    except Exception as exc:
        return exc
