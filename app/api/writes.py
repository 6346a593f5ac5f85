"""Group commit: on SQLite, writers that wait together share one transaction and one fsync.

SQLite has one writer at a time and, with synchronous=FULL, an fsync per commit. A request that
finds the writer's lock taken leaves its work (a function of a session) in a queue; whoever holds
the lock next runs every queued piece of work in one transaction, each in its own SAVEPOINT — so
each is validated and authorized on its own and fails alone, rolled back to its savepoint — then
commits once and only then hands each request its answer. Nobody is answered before the commit
that holds their write; if that commit fails, every request in it gets the error and nothing of
theirs is written.

On PostgreSQL (many writers at once, row locks) and when a test substitutes the write session,
each request runs its work in its own session and commits it: `SessionWrites`.

Work that checked everything and wants none of it kept (a dry run) raises `Rollback(answer)`: its
writes are undone — its savepoint, or its session's transaction — and `run` returns the answer.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Annotated, Any, Protocol, TypeVar

from fastapi import Depends, Request
from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.db import Rollback, get_engine, get_write_session, sqlite_writer

T = TypeVar("T")
Work = Callable[[Session], T]
MAX_GROUP = 64  # pieces of work per transaction: bounds how long the first writer of a group waits


class Writes(Protocol):
    def run(self, work: Work[T]) -> T:
        """Run `work(session)` in a write transaction; return its result once that is committed."""


@dataclass
class _Pending:
    work: Work[Any]
    result: Any = None
    error: BaseException | None = None
    done: bool = False


@dataclass
class GroupCommit:
    engine: Engine
    _queue: list[_Pending] = field(default_factory=list)
    _queue_lock: threading.Lock = field(default_factory=threading.Lock)
    groups: int = 0  # transactions committed (a statistic: reports per transaction = writes / groups)
    writes: int = 0

    def run(self, work: Work[T]) -> T:
        mine = _Pending(work)
        with self._queue_lock:
            self._queue.append(mine)
        while not mine.done:
            with sqlite_writer:
                if mine.done:  # a writer before us ran and committed it while we waited for the lock
                    break
                with self._queue_lock:
                    group, self._queue = self._queue[:MAX_GROUP], self._queue[MAX_GROUP:]
                self._commit_group(group)
        if mine.error is not None:
            raise mine.error
        result: T = mine.result
        return result

    def _commit_group(self, group: list[_Pending]) -> None:
        try:
            with Session(self.engine.execution_options(sqlite_immediate=True), expire_on_commit=False) as session:
                for pending in group:
                    savepoint = session.begin_nested()
                    try:
                        pending.result = pending.work(session)
                        savepoint.commit()
                    except Rollback as undo:  # asked for: nothing of it kept, its answer given
                        savepoint.rollback()
                        pending.result = undo.answer
                    except BaseException as exc:  # this request's failure, and only its own
                        savepoint.rollback()  # also after a failed flush, which leaves it inactive
                        pending.error, pending.result = exc, None
                session.commit()
        except BaseException as exc:  # the commit (or the session) failed: nobody's write is there
            for pending in group:
                if pending.error is None:
                    pending.error, pending.result = exc, None
        finally:
            self.groups += 1
            self.writes += len(group)
            for pending in group:
                pending.done = True


@dataclass
class SessionWrites:
    """One request, one session, one commit."""

    open_session: Callable[[], Any]

    def run(self, work: Work[T]) -> T:
        with self._session() as session:
            try:
                result = work(session)
            except Rollback as undo:
                session.rollback()
                answer: T = undo.answer
                return answer
            except BaseException:
                # A substituted session (a test's) outlives this request: leave nothing of it behind.
                session.rollback()
                raise
            session.commit()
            return result

    @contextmanager
    def _session(self) -> Iterator[Session]:
        made = self.open_session()
        if isinstance(made, Session):
            yield made
            return
        session = next(made)
        try:
            yield session
        except BaseException:
            made.close()
            raise
        else:
            with suppress(StopIteration):
                next(made)


_groups: dict[int, GroupCommit] = {}
_groups_lock = threading.Lock()


def group_commit(engine: Engine) -> GroupCommit:
    with _groups_lock:
        found = _groups.get(id(engine))
        if found is None or found.engine is not engine:
            found = _groups[id(engine)] = GroupCommit(engine)
        return found


def get_writes(request: Request) -> Writes:
    # A test that substitutes the write session (one rolled-back transaction) keeps it for these writes too.
    substitute = request.app.dependency_overrides.get(get_write_session)
    if substitute is not None:
        return SessionWrites(substitute)
    engine = get_engine()
    if engine.dialect.name == "sqlite":
        return group_commit(engine)
    return SessionWrites(get_write_session)


WritesDep = Annotated[Writes, Depends(get_writes)]
