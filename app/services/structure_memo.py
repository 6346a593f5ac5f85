"""What a request needs to know before it writes, remembered per process at the structure version.

Who a key is (its row, its unit, the unit's jurisdiction), a plan by its slug, the plan's reporting
schedule, the jurisdictions a key may act in, the units a task is linked to and the groups a unit
belongs to: a report reads all of them and changes none, and loading
them through the ORM cost about a third of a report's server time. Every committed transaction that
writes any table off the report path moves `feed_counter.structure_version` (`app/services/feed.py`,
the one hook no write can bypass), so a value remembered at version v is right for any session that
reads v: a key revoked through one worker is refused by the very next request in every other, and a
plan re-imported or a schedule changed is seen at once.

Only what a session read without uncommitted structure changes of its own is remembered or served (a
group commit's earlier work may add a unit or revoke a key, and could still be rolled back). Values
are copies bound to no session, shared between threads: callers only read them.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.orm import SessionTransaction
from sqlmodel import Session

from app.models.base import moves_structure_version, pending_tables
from app.models.progress import STRUCTURE_CHANGED, STRUCTURE_VERSION_SQL

T = TypeVar("T")
_POINT = "structure_point"  # session.info: (database, structure version) read in this transaction


class StructureMemo:
    """A bounded LRU of values, each valid at the structure version it was loaded at."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._entries: OrderedDict[tuple[str, str, Hashable], tuple[int, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0

    def recall(self, session: Session, kind: str, key: Hashable, load: Callable[[], T]) -> T:
        """The value remembered for (kind, key) at this session's structure version, else `load()`
        (which returns rows bound to no session), remembered. A `load()` that raises is not kept:
        a refusal is decided afresh every time, so a key created a moment ago is never refused from here."""
        point = _point(session)
        if point is None:
            return load()
        where, version = point
        found: T | None = self.remembered(where, version, kind, key)
        if found is not None:
            return found
        value = load()
        with self._lock:
            self._entries[(where, kind, key)] = (version, value)
            self._entries.move_to_end((where, kind, key))
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return value

    def remembered(self, where: str, version: int, kind: str, key: Hashable) -> Any | None:
        """What `recall` would answer without loading, at a version read elsewhere; None if nothing."""
        with self._lock:
            found = self._entries.get((where, kind, key))
            if found is None or found[0] != version:
                return None
            self._entries.move_to_end((where, kind, key))
            self.hits += 1
            return found[1]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


memo = StructureMemo()


def _point(session: Session) -> tuple[str, int] | None:
    """(database, structure version) this session may use the memo at; None if it has uncommitted
    structure changes. Read once per transaction."""
    if session.info.get(STRUCTURE_CHANGED) or any(map(moves_structure_version, pending_tables(session))):
        return None
    point: tuple[str, int] | None = session.info.get(_POINT)
    if point is None:
        connection = session.connection()
        version = connection.exec_driver_sql(STRUCTURE_VERSION_SQL).scalar_one()
        point = session.info[_POINT] = (str(connection.engine.url), int(version))
    return point


@event.listens_for(Session, "after_transaction_end")
def _forget_point(session: Session, transaction: SessionTransaction) -> None:
    # The next transaction reads the version afresh: another worker may have moved it meanwhile. A
    # savepoint's end keeps it, or each write of a group commit would read it again: a group holds
    # SQLite's writer, so only its own writes can move it, and those turn the memo off (`_point`).
    if transaction.parent is None:
        session.info.pop(_POINT, None)
