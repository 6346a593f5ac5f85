"""CPU time per request, in process: the API's ASGI app against the bare FastAPI endpoint, no network.

    .venv/bin/python bench/asgi_bench.py            # --requests 3000 --rounds 7 --profile

Calls each ASGI app directly with a prepared scope (no uvicorn, no sockets, no load generator), so
a shared machine's other load does not enter the figure: it is process CPU time (`time.process_time`)
per request, the median over `--rounds` rounds that alternate between the apps. HTTP parsing and
socket writes, the same for both apps, are left out, so the ratios here are stricter than over HTTP.

Targets measured, on a fresh SQLite database seeded by the real migrate + seed:
- the task list `…/tasks?unit=县司法局&role=lead` repeated (answered from the response cache),
  the same with If-None-Match (304), HEAD, and a cache miss (a new Accept header each time);
- `bench/trivial_app.py` returning the list's exact bytes: the ceiling of the stack.
With `--profile`, pyinstrument shows where the cached request's remaining time goes.
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

ROOT = Path(__file__).resolve().parents[1]
PLAN = "xiji-fzsh-2021-2025"
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
    status, body = await call(api, scope(LIST_PATH, LIST_QUERY))
    assert status == 200, body[:500]
    (workdir / "body.json").write_bytes(body)
    os.environ["BENCH_BODY_FILE"] = str(workdir / "body.json")
    sys.path.insert(0, str(ROOT / "bench"))
    trivial: ASGI = importlib.import_module("trivial_app").app
    etag = next(v for k, v in (await _headers(api, scope(LIST_PATH, LIST_QUERY))) if k == b"etag")

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
    }
    results: dict[str, list[float]] = {name: [] for name in targets}
    for _ in range(args.rounds):
        for name, (app, make, expect, n) in targets.items():
            results[name].append(await cpu_per_request(app, make, n, expect))
    base = statistics.median(results["trivial endpoint (same bytes)"])
    print(f"CPU per request, median of {args.rounds} rounds ({args.requests} requests a round; misses fewer)")
    print("| target | µs CPU / request | spread (min–max) | trivial / target |")
    print("|---|--:|--:|--:|")
    for name, values in results.items():
        med = statistics.median(values)
        print(f"| {name} | {med * 1e6:,.0f} | {min(values) * 1e6:,.0f}–{max(values) * 1e6:,.0f} | {base / med:.2f}× |")
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
