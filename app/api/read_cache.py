"""Rendered GET responses, reused until the data changes, and answered before the framework runs.

Every transaction that changes the data — a report, an import, an admin edit, a revoked key — bumps
the data version at commit (one hook, `app/services/feed.py`, that no write can bypass). A rendered body is kept under (path, canonical query, Accept,
version, county today) and served again while that version holds; one single-row query per request
checks it, so the several stateless workers in production never serve each other's stale data. Edits
made to the database behind the service's back (raw SQL) are not seen until the next change: make
them through the API.

Two ways in, one store:
- `CachedReads`, an ASGI layer in front of the router, answers a repeated GET from the store without
  FastAPI's routing, dependency solving or parameter validation. It can only hit a key that a route
  stored, i.e. a URL that passed validation (unknown parameters, control characters, types) once;
  anything else goes on to the router, which validates it and answers 400 as before.
  On a miss of a task list (`app.state.cold_reads`), it builds the list itself: the query parsed by
  the route's own parameter definitions and checks, the route's own build run on a session of the
  app's provider in one thread-pool hop, kept under the route's key and sent by the same `respond()`.
  Anything the route would answer otherwise (a 400 or 422, a 404, a key to check, a past `as_of`)
  goes on to the route untouched.
- `ReadCacheDep`, in the routes, looks the key up again inside the request's session (its version read
  is in the same snapshot as the data it renders) and stores what it builds.

When reads need a key (REQUIRE_KEY_FOR_READS), an entry also remembers which Authorization headers the
route accepted at that version; only those are answered from the fast path. A revoked key changes the
data version, so it is refused at once.

The store is bounded by bytes (RESPONSE_CACHE_MAX_BYTES), least recently used out first.
"""

from __future__ import annotations

import hashlib
import inspect
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from functools import lru_cache, partial
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.routing import APIRoute
from sqlalchemy.engine import Engine
from sqlmodel import Session
from starlette.datastructures import Headers
from starlette.routing import compile_path
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.deps import SessionDep, SettingsDep, current_settings
from app.api.responses import Rendered, respond, send
from app.core import clock
from app.core.config import Settings
from app.db import get_engine, get_session, own_sqlite_engine, read_counter, sqlite_counter
from app.models.progress import DATA_VERSION_SQL

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
# What an entry costs beyond its body, in bytes: the key tuple and its strings, the entry, the LRU
# links (about 1 kB measured with tracemalloc for a list URL), and room for the gzip form, made on
# first use (JSON compresses about 5×; half the body is a generous bound).
ENTRY_OVERHEAD = 1024

Key = tuple[Any, ...]


def make_key(*, path: str, query: tuple[tuple[str, str], ...], accept: str, version: int, today: date) -> Key:
    # `today`: `overdue`, the lights and the default `as_of` move with the county's calendar.
    return (path, query, accept, version, today)


@lru_cache(maxsize=4096)  # the same few URLs are asked again and again; parsing is a sixth of a hit's cost
def canonical_query(raw: bytes) -> tuple[tuple[str, str], ...]:
    """The query as parsed pairs ordered by name; values of one name keep their order (a repeated
    single-valued parameter means its last value). Same parsing as Starlette's `request.query_params`."""
    if not raw:
        return ()
    return tuple(sorted(parse_qsl(raw.decode("latin-1"), keep_blank_values=True), key=lambda pair: pair[0]))


def authorization_digest(header: str | None) -> bytes:
    return hashlib.blake2b((header or "").encode(), digest_size=16).digest()


@dataclass
class Entry:
    rendered: Rendered
    size: int
    # None: reads are open. Otherwise the Authorization headers (digests) accepted at this version.
    authorized: frozenset[bytes] | None


class ResponseCache:
    """Rendered responses by key, at most `max_bytes` of them (bodies plus a fixed overhead each)."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self._entries: OrderedDict[Key, Entry] = OrderedDict()
        self._paths: Counter[str] = Counter()  # entries per path: most GETs of uncached paths skip the lookup
        self._lock = threading.Lock()
        self.max_bytes = max_bytes
        self.bytes = 0
        self.fast_hits = 0  # answered by `CachedReads` (a statistic; bumped on the event loop only)
        self.fast_builds = 0  # misses built and answered by `CachedReads` (likewise)

    def __len__(self) -> int:
        return len(self._entries)

    def holds_path(self, path: str) -> bool:
        return path in self._paths

    def get(self, key: Key) -> Entry | None:
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
            return found

    def put(self, key: Key, rendered: Rendered, authorized: bytes | None = None) -> None:
        size = len(rendered.body) + len(rendered.body) // 2 + ENTRY_OVERHEAD
        if size > self.max_bytes:
            return  # larger than the whole cache: served, never kept
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._forget(key, old)
            allowed = None
            if authorized is not None:
                earlier = old.authorized if old is not None and old.authorized is not None else frozenset()
                allowed = earlier | {authorized}
            self._entries[key] = Entry(rendered, size, allowed)
            self._paths[key[0]] += 1
            self.bytes += size
            while self.bytes > self.max_bytes:
                oldest, entry = self._entries.popitem(last=False)
                self._forget(oldest, entry)

    def _forget(self, key: Key, entry: Entry) -> None:
        self.bytes -= entry.size
        self._paths[key[0]] -= 1
        if not self._paths[key[0]]:
            del self._paths[key[0]]


def data_version(session: Session) -> int:
    # Plain SQL: this runs on every read, and the ORM's statement compilation would dominate it.
    return int(session.connection().exec_driver_sql(DATA_VERSION_SQL).scalar_one())


def engine_data_version(engine: Engine) -> int:
    """The version through a pooled DBAPI connection (PostgreSQL; run in the thread pool)."""
    connection = engine.raw_connection()
    try:
        return read_counter(connection, DATA_VERSION_SQL)
    finally:
        connection.close()


sqlite_data_version = partial(sqlite_counter, sql=DATA_VERSION_SQL)


ColdBuild = Callable[[Session, int], Rendered]
ColdRead = Callable[[Request], ColdBuild | None]


@dataclass
class ColdRoute:
    """A GET route whose miss the fast path builds itself (`app.state.cold_reads`): `read`, given the
    request as the route sees it, returns the route's own build of it, or None to leave it to the route."""

    path: str  # the route's full path, as the router matches it: `/api/v1/plans/{plan}/tasks`
    route: APIRoute
    read: ColdRead

    def __post_init__(self) -> None:
        self.regex, _, self._convertors = compile_path(self.path)

    def request(self, scope: Scope, matched: dict[str, str]) -> Request:
        """The request as the route sees it: its path parameters (as the router converts them) and
        the route in the scope."""
        params = {name: self._convertors[name].convert(value) for name, value in matched.items()}
        return Request({**scope, "endpoint": self.route.endpoint, "path_params": params, "route": self.route})


class CachedReads:
    """Answers a GET whose rendering is in the response cache before FastAPI solves any dependency,
    and a miss of the routes in `app.state.cold_reads` (task lists) by their own build, kept as the
    route would keep it.

    Sits innermost among the middlewares, so its answers pass HEAD, security headers, gzip and CORS
    handling exactly as the route's answer does. Costs one single-row query, run on the event loop
    for SQLite (a WAL read never waits for the writer) and in the thread pool otherwise, and a build
    in the thread pool: at most one hop."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        application = scope["app"]
        store: ResponseCache = application.state.response_cache
        path: str = scope["path"]
        cold = _cold_route(application, path)
        if cold is None and not store.holds_path(path):
            await self.app(scope, receive, send)
            return
        accept = ""
        authorization: str | None = None
        for name, value in scope["headers"]:
            if name == b"accept":
                accept = value.decode("latin-1")
            elif name == b"authorization":
                authorization = value.decode("latin-1")

        def key(version: int) -> Key:
            query = canonical_query(scope["query_string"])
            return make_key(path=path, query=query, accept=accept, version=version, today=clock.county_today())

        try:
            version = _version_on_loop(application)
        except Exception:  # the database failing: the route's to answer (a 503, through its handlers)
            await self.app(scope, receive, send)
            return
        if version is not None:
            entry = store.get(key(version))
            if entry is not None and _accepts(entry, authorization):
                store.fast_hits += 1
                await respond(entry.rendered, Headers(scope=scope))(scope, receive, send)
                return
        if (
            cold is not None
            and authorization is None
            and not inspect.isasyncgenfunction(application.dependency_overrides.get(get_session))
            and not (await _settings(application)).require_key_for_reads
        ):
            route, params = cold
            request = route.request(scope, params)
            rendered = await _cold_answer(application, store, key, partial(route.read, request), version)
            if rendered is not None:
                await respond(rendered, request.headers)(scope, receive, send)
            else:
                await self.app(scope, receive, send)  # a miss (looked up already) that is the route's
            return
        # Only a key a route stored can hit, so anything unusual reaches the route.
        if version is None and store.holds_path(path):
            try:
                version = await _version(application)
            except Exception:  # as above
                await self.app(scope, receive, send)
                return
            entry = store.get(key(version))
            if entry is not None and _accepts(entry, authorization):
                store.fast_hits += 1
                await respond(entry.rendered, Headers(scope=scope))(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _cold_route(application: Any, path: str) -> tuple[ColdRoute, dict[str, str]] | None:
    """The route of `app.state.cold_reads` this path names, with its path parameters as matched."""
    cold: list[ColdRoute] = getattr(application.state, "cold_reads", [])
    for route in cold:
        found = route.regex.match(path)
        if found is not None:
            return route, found.groupdict()
    return None


def _accepts(entry: Entry, authorization: str | None) -> bool:
    return entry.authorized is None or authorization_digest(authorization) in entry.authorized


def _version_on_loop(application: Any) -> int | None:
    """The version where reading it costs no hop (the app's own SQLite engine), else None."""
    engine = own_sqlite_engine(application)
    return sqlite_data_version(engine) if engine is not None else None


async def _cold_answer(
    application: Any,
    store: ResponseCache,
    key: Callable[[int], Key],
    read: Callable[[], ColdBuild | None],
    version: int | None,
) -> Rendered | None:
    """A task list's rendering, in one thread-pool hop: kept after all (the version not read yet:
    PostgreSQL reads it as a hit does, a test's session in itself), or parsed and built by the
    route's own definitions on a session of the app's provider, as the route's, and kept under the
    key the route would keep it under. None when the route is to answer: the query is not one the
    fast path builds, or the build failed (the route, building the same, answers its 404 or 400, or
    its 503 if the database is failing)."""
    provider = application.dependency_overrides.get(get_session)

    def guarded(version: int | None) -> tuple[Rendered, bool] | None:
        try:
            return answer(version)
        except Exception:  # a failed build, or the database failing: the route's to answer, through its handlers
            return None

    def answer(version: int | None) -> tuple[Rendered, bool] | None:
        made: Any = None if provider is None else provider()
        session: Any = None
        try:
            if version is None:
                if made is None:
                    version = engine_data_version(get_engine())  # as for a hit
                else:
                    session = _opened(made)
                    version = data_version(session)  # a test's rolled-back session, as its route reads it
                entry = store.get(key(version))
                if entry is not None and entry.authorized is None:
                    return entry.rendered, False
            build = read()
            if build is None:
                return None
            if session is None:
                session = Session(get_engine()) if made is None else _opened(made)
            rendered = build(session, version)
            store.put(key(version), rendered)
            return rendered, True
        finally:
            if made is None and session is not None:
                session.close()
            elif inspect.isgenerator(made):
                made.close()

    answered = await run_in_threadpool(guarded, version)
    if answered is None:
        return None
    rendered, new = answered
    if new:
        store.fast_builds += 1
    else:
        store.fast_hits += 1
    return rendered


def _opened(made: object) -> Session:
    """The session a (test's) `get_session` override provides: a session, or a generator of one."""
    session = next(made) if inspect.isgenerator(made) else made
    assert isinstance(session, Session), f"unexpected session provider result {made!r}"
    return session


async def _settings(application: Any) -> Settings:
    """The settings as the routes see them (`current_settings`, which a test may override)."""
    made = application.dependency_overrides.get(current_settings, current_settings)()
    found: Settings = await made if inspect.isawaitable(made) else made
    return found


async def _version(application: Any) -> int:
    """The data version as the routes would see it: through the session provider the app uses, so a
    test's `dependency_overrides[get_session]` (one rolled-back transaction) is honoured too."""
    local = _version_on_loop(application)
    if local is not None:
        return local
    provider = application.dependency_overrides.get(get_session)
    if provider is None:
        return await run_in_threadpool(engine_data_version, get_engine())
    made = provider()
    if inspect.isasyncgen(made):
        session: Any = await made.__anext__()
        try:
            return await run_in_threadpool(data_version, session)
        finally:
            await made.aclose()
    return await run_in_threadpool(_provided_version, made)


def _provided_version(made: object) -> int:
    try:
        return data_version(_opened(made))
    finally:
        if inspect.isgenerator(made):
            made.close()


@dataclass
class ReadCache:
    """Per request: the cached rendering if the data has not changed, and how to store a new one."""

    request: Request
    session: Session
    store: ResponseCache
    authorized: bytes | None  # the caller's Authorization digest when reads need a key
    version: int | None = None  # the data version, once read: `build()` may key its own structures on it

    async def respond(self, build: Callable[[], Rendered]) -> Response:
        """The cached rendering, or `build()` kept — one thread-pool hop for the version read and the build."""
        return send(self.request, await run_in_threadpool(self._cached_or_built, build))

    def _cached_or_built(self, build: Callable[[], Rendered]) -> Rendered:
        self.version = data_version(self.session)
        key = make_key(
            path=self.request.scope["path"],
            query=canonical_query(self.request.scope["query_string"]),
            accept=self.request.headers.get("accept", ""),
            version=self.version,
            today=clock.county_today(),
        )
        entry = self.store.get(key)
        if entry is not None:
            if self.authorized is not None and (entry.authorized is None or self.authorized not in entry.authorized):
                self.store.put(key, entry.rendered, self.authorized)  # this key was accepted at this version too
            return entry.rendered
        rendered = build()
        self.store.put(key, rendered, self.authorized)
        return rendered


async def read_cache(request: Request, session: SessionDep, settings: SettingsDep) -> ReadCache:
    # async: building the handle does no I/O; the version is read in `respond`'s one thread-pool hop.
    authorized = authorization_digest(request.headers.get("authorization")) if settings.require_key_for_reads else None
    return ReadCache(request=request, session=session, store=request.app.state.response_cache, authorized=authorized)


ReadCacheDep = Annotated[ReadCache, Depends(read_cache)]
