"""CPU time per request, in process: the API's ASGI app against the bare FastAPI endpoint, no network.

    .venv/bin/python bench/asgi_bench.py            # --requests 3000 --rounds 7 --profile

Calls each ASGI app directly with a prepared scope (no uvicorn, no sockets, no load generator), so
a shared machine's other load does not enter the figure: it is process CPU time (`time.process_time`)
per request, the median over `--rounds` rounds that alternate between the apps. HTTP parsing and
socket writes, the same for both apps, are left out, so the ratios here are stricter than over HTTP.

Targets measured, on a fresh SQLite database seeded by the real migrate + seed:
- the task list `…/tasks?unit=县司法局&role=lead` repeated (answered from the response cache),
  the same with If-None-Match (304), HEAD, and a cache miss (a new Accept header each time);
- `bench/trivial_app.py` returning the list's exact bytes: the ceiling of the stack;
- cold lists: every request a NEW URL (`unit=…&role=…&section=…&limit=…`, cycling the plan's units ×
  roles × chapters, never repeating), answered by the read model; the same URLs with the read model
  off (`READ_MODEL_MAX_BYTES=0`: the query path, as before it); and Datasette, in process on the same
  file, running the equivalent SQL with the same parameters each time (it keeps no response cache).
With `--profile`, pyinstrument shows where the cached request's and a cold list's remaining time goes.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from cold_lists import PLAN, ROLES, ColdLists

ROOT = Path(__file__).resolve().parents[1]
LIST_PATH = f"/api/v1/plans/{PLAN}/tasks"
LIST_QUERY = f"unit={quote('县司法局')}&role=lead".encode()

ASGI = Callable[
    [dict[str, Any], Callable[[], Awaitable[dict[str, Any]]], Callable[[dict[str, Any]], Awaitable[None]]],
    Awaitable[None],
]


def scope(
    path: str, query: bytes = b"", method: str = "GET", headers: list[tuple[bytes, bytes]] | None = None
) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query,
        "headers": [(b"host", b"bench"), (b"accept-encoding", b"identity"), *(headers or [])],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


async def call(app: ASGI, request: dict[str, Any]) -> tuple[int, bytes]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(dict(request), receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


async def cpu_per_request(app: ASGI, make: Callable[[int], dict[str, Any]], n: int, expect: int) -> float:
    start = time.process_time()
    for i in range(n):
        status, _ = await call(app, make(i))
        if status != expect:
            raise SystemExit(f"unexpected status {status} (expected {expect})")
    return (time.process_time() - start) / n


async def lifespan(app: ASGI) -> None:
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await queue.put({"type": "lifespan.startup"})

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "lifespan.startup.failed":
            raise SystemExit(f"lifespan failed: {message}")

    async def receive() -> dict[str, Any]:
        return await queue.get()

    asyncio.get_running_loop().create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send))
    await asyncio.sleep(0.1)


async def main(args: argparse.Namespace, workdir: Path) -> None:
    os.environ["DATABASE_URL"] = f"sqlite:///{workdir / 'db.sqlite3'}"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ["WEBHOOK_WORKER"] = "false"
    if args.limiter:  # the production default: counted per address and key, limits set out of reach
        os.environ["RATE_LIMIT_ENABLED"] = "true"
        os.environ["RATE_LIMIT_PER_ADDRESS"] = "1000000000/minute"
    else:  # the stack alone, as the bare endpoint has no limiter either
        os.environ["RATE_LIMIT_ENABLED"] = "false"
    from sqlmodel import Session  # the app's modules after DATABASE_URL: settings are read once

    from app.core.config import get_settings
    from app.db import get_engine
    from app.importer.service import seed_if_empty
    from app.migrate import upgrade_to_head

    upgrade_to_head(get_engine())
    with Session(get_engine()) as session:
        seed_if_empty(session=session, settings=get_settings())
    api: ASGI = importlib.import_module("app.main").app
    await lifespan(api)
    from app.main import create_app
    from app.services.read_model import ReadModel

    query_path = create_app()  # the same API answering every list by the query path (the "before")
    query_path.state.read_model = ReadModel(0)
    await lifespan(query_path)
    cold_lists = ColdLists(workdir / "db.sqlite3")
    datasette = await datasette_app(workdir / "db.sqlite3")
    await check_cold(api, datasette, cold_lists)
    status, body = await call(api, scope(LIST_PATH, LIST_QUERY))
    assert status == 200, body[:500]
    (workdir / "body.json").write_bytes(body)
    os.environ["BENCH_BODY_FILE"] = str(workdir / "body.json")
    sys.path.insert(0, str(ROOT / "bench"))
    trivial: ASGI = importlib.import_module("trivial_app").app
    etag = next(v for k, v in (await _headers(api, scope(LIST_PATH, LIST_QUERY))) if k == b"etag")

    cold_n = max(args.requests // 10, 20)
    targets: dict[str, tuple[ASGI, Callable[[int], dict[str, Any]], int, int]] = {
        "API list (cached)": (api, lambda i: scope(LIST_PATH, LIST_QUERY), 200, args.requests),
        "API list, If-None-Match (304)": (
            api,
            lambda i: scope(LIST_PATH, LIST_QUERY, headers=[(b"if-none-match", etag)]),
            304,
            args.requests,
        ),
        "API list, cache miss": (
            api,
            lambda i: scope(
                LIST_PATH, LIST_QUERY, headers=[(b"accept", f"application/json; bench={i}-{time.time_ns()}".encode())]
            ),
            200,
            max(args.requests // 30, 20),
        ),
        "trivial endpoint (same bytes)": (trivial, lambda i: scope("/body"), 200, args.requests),
        "API cold list (new URL each), read model": (api, lambda i: cold(cold_lists), 200, cold_n),
        "API cold list (new URL each), query path": (query_path, lambda i: cold(cold_lists), 200, cold_n),
        "Datasette cold SQL (new parameters each)": (datasette, lambda i: cold_sql(cold_lists), 200, cold_n),
    }
    results: dict[str, list[float]] = {name: [] for name in targets}
    for _ in range(args.rounds):
        for name, (app, make, expect, n) in targets.items():
            results[name].append(await cpu_per_request(app, make, n, expect))
    base = statistics.median(results["trivial endpoint (same bytes)"])
    sql_cold = statistics.median(results["Datasette cold SQL (new parameters each)"])
    print(f"CPU per request, median of {args.rounds} rounds ({args.requests} requests a round; misses fewer)")
    print("| target | µs CPU / request | spread (min–max) | trivial / target | Datasette cold / target |")
    print("|---|--:|--:|--:|--:|")
    for name, values in results.items():
        med = statistics.median(values)
        spread = f"{min(values) * 1e6:,.0f}–{max(values) * 1e6:,.0f}"
        print(f"| {name} | {med * 1e6:,.0f} | {spread} | {base / med:.2f}× | {sql_cold / med:.2f}× |")
    if args.profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0001, async_mode="disabled")
        profiler.start()
        for _ in range(args.requests):
            await call(api, scope(LIST_PATH, LIST_QUERY))
        profiler.stop()
        print(profiler.output_text(unicode=True, color=False, show_all=False))
        profiler = Profiler(interval=0.0005, async_mode="disabled")
        profiler.start()
        for i in range(50):
            await call(api, targets["API list, cache miss"][1](i))
        profiler.stop()
        print(profiler.output_text(unicode=True, color=False, show_all=False))
        import app.api.read_cache

        async def inline(func: Callable[..., Any], *a: Any) -> Any:  # the thread pool's work, seen by the profiler
            return func(*a)

        pooled, app.api.read_cache.run_in_threadpool = app.api.read_cache.run_in_threadpool, inline  # type: ignore[assignment]
        profiler = Profiler(interval=0.0002, async_mode="disabled")
        profiler.start()
        for _ in range(500):
            await call(api, cold(cold_lists))
        profiler.stop()
        app.api.read_cache.run_in_threadpool = pooled
        print(profiler.output_text(unicode=True, color=False, show_all=False))


def cold(lists: ColdLists, n: int | None = None) -> dict[str, Any]:
    return scope(LIST_PATH, lists.api_query(lists.take() if n is None else n).encode())


def cold_sql(lists: ColdLists, n: int | None = None) -> dict[str, Any]:
    return scope("/db.json", lists.datasette_query(lists.take() if n is None else n).encode())


async def datasette_app(db: Path) -> ASGI:
    import sqlite3

    from datasette.app import Datasette

    with sqlite3.connect(db) as conn:  # fold the WAL into the file: Datasette opens it immutable
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    ds = Datasette(immutables=[str(db)], settings={"sql_time_limit_ms": 5000})
    await ds.invoke_startup()
    return ds.app()  # type: ignore[no-any-return]


async def check_cold(api: ASGI, datasette: ASGI, lists: ColdLists) -> None:
    """The two cold targets answer the same rows (the first 20 parameter sets)."""
    import json

    for _ in range(min(20, len(lists.combos))):
        n = lists.take()
        status, body = await call(api, cold(lists, n))
        _, rows = await call(datasette, cold_sql(lists, n))
        assert status == 200, body[:300]
        tasks = json.loads(body)["items"]
        mine = [
            [t["code"], None if t["title_derived"] else t["title"], t["text"], t["due"], t["status"]]
            + [
                "、".join(x["unit"]["name"] for x in t["responsibilities"] if x["role"] == role) or None
                for role in ROLES
            ]
            for t in tasks
        ]
        theirs = [list(row.values()) for row in json.loads(rows)]
        assert tasks and mine == theirs, (mine[:1], theirs[:1])
    # The targets go on from the next number: none of their URLs is in a response cache.


async def _headers(app: ASGI, request: dict[str, Any]) -> list[tuple[bytes, bytes]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(dict(request), receive, send)
    return next(m["headers"] for m in sent if m["type"] == "http.response.start")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--limiter", action="store_true", help="with the rate limiter counting (in memory)")
    with tempfile.TemporaryDirectory(prefix="asgi-bench-") as tmp:
        asyncio.run(main(parser.parse_args(), Path(tmp)))
