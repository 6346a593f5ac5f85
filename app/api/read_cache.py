"""Rendered GET responses, reused until the data changes.

Every change to the data — a report, an import, an admin edit — appends to the change feed, whose
counter is therefore the data's version. A rendered body is kept under (request, version, today) and
served again while that version holds; one single-row query per request checks it, so the several
stateless workers in production never serve each other's stale data. Edits made to the database
behind the service's back (raw SQL) are not seen until the next change: make them through the API.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from sqlmodel import Session

from app.api.deps import SessionDep
from app.api.responses import Rendered, send
from app.core.clock import county_today

MAX_ENTRIES = 512


class ResponseCache:
    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._entries: OrderedDict[tuple[object, ...], Rendered] = OrderedDict()
        self._lock = threading.Lock()
        self.max_entries = max_entries

    def get(self, key: tuple[object, ...]) -> Rendered | None:
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
            return found

    def put(self, key: tuple[object, ...], rendered: Rendered) -> None:
        with self._lock:
            self._entries[key] = rendered
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)


def data_version(session: Session) -> int:
    # Plain SQL: this runs on every read, and the ORM's statement compilation would dominate it.
    return int(session.connection().exec_driver_sql("SELECT seq FROM feed_counter WHERE id = 1").scalar_one())


@dataclass
class ReadCache:
    """Per request: the cached rendering if the data has not changed, and how to store a new one."""

    request: Request
    key: tuple[object, ...]
    store: ResponseCache
    hit: Rendered | None

    async def respond(self, build: Callable[[], Rendered]) -> Response:
        """The cached rendering, or `build()` run in the threadpool (it queries) and kept."""
        if self.hit is None:
            self.hit = await run_in_threadpool(build)
            self.store.put(self.key, self.hit)
        return send(self.request, self.hit)


def read_cache(request: Request, session: SessionDep) -> ReadCache:
    store: ResponseCache = request.app.state.response_cache
    key = (
        request.url.path,
        request.url.query,
        request.headers.get("accept", ""),
        data_version(session),
        county_today(),  # `overdue` and the default `as_of` move with the calendar
    )
    return ReadCache(request=request, key=key, store=store, hit=store.get(key))


ReadCacheDep = Annotated[ReadCache, Depends(read_cache)]
