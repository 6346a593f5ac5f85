"""CPU time per progress report, in process: the real app on a fresh seeded SQLite file, no network.

    .venv/bin/python bench/write_profile.py [--reports 500] [--profile] [--prefill 1000000]

Sends `--reports` single reports (each with a new Idempotency-Key, round-robin over 司法局's own tasks)
straight into the ASGI app one after another, with the thread pool's work run inline so that a
profiler sees it, and prints the process CPU time per report (`time.process_time`): a figure the
machine's other load barely moves, to compare commits by. With `--profile`, pyinstrument shows where
a report's time goes; with `--prefill N`, the database first holds N reports (`write_bench.fill_history`:
versions of one period on every task-unit link), as at a province's scale. The load test under
concurrency is `bench/write_bench.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from asgi_bench import lifespan, scope
from cold_lists import PLAN

ROOT = Path(__file__).resolve().parents[1]
UNIT = "县司法局"


async def main(args: argparse.Namespace, workdir: Path) -> None:
    os.environ["DATABASE_URL"] = f"sqlite:///{workdir / 'db.sqlite3'}"
    os.environ.update(LOG_LEVEL="WARNING", WEBHOOK_WORKER="false", RATE_LIMIT_ENABLED="false")
    from sqlalchemy import text
    from sqlmodel import Session

    from app.core.config import get_settings
    from app.db import get_engine
    from app.importer.service import seed_if_empty
    from app.migrate import upgrade_to_head

    upgrade_to_head(get_engine())
    with Session(get_engine()) as session:
        seed_if_empty(session=session, settings=get_settings())
    made = subprocess.run(
        [str(Path(sys.executable).parent / "plan-api"), "keys", "create", "--unit", UNIT],
        capture_output=True,
        text=True,
        check=True,
        env=os.environ,
        cwd=workdir,
    )
    token = made.stdout.strip().splitlines()[-1]
    if args.prefill:
        from write_bench import fill_history

        fill_history(os.environ["DATABASE_URL"], args.prefill)
    with get_engine().connect() as connection:
        codes = list(
            connection.execute(
                text(
                    "select t.code from task t join responsibility r on r.task_id = t.id join unit u on u.id = r.unit_id"
                    " where u.name = :unit and r.role in ('lead', 'responsible') order by t.id"
                ),
                {"unit": UNIT},
            ).scalars()
        )

    import anyio.to_thread

    async def inline(func: Any, *a: Any, **_: Any) -> Any:  # the thread pool's work, seen by the profiler
        return func(*a)

    anyio.to_thread.run_sync = inline  # type: ignore[assignment]
    from app.main import app

    await lifespan(app)

    async def report(i: int) -> None:
        body = json.dumps(
            {"status": "in_progress", "percent": 10 + i % 80, "summary": f"进展 {i}", "period": "2025-H2"}
        )
        headers = [
            (b"authorization", f"Bearer {token}".encode()),
            (b"content-type", b"application/json"),
            (b"idempotency-key", uuid.uuid4().hex.encode()),
            (b"content-length", str(len(body)).encode()),
        ]
        request = scope(f"/api/v1/plans/{PLAN}/tasks/{codes[i % len(codes)]}/progress", method="POST", headers=headers)
        sent: list[dict[str, Any]] = []
        messages = [{"type": "http.request", "body": body.encode(), "more_body": False}]

        async def receive() -> dict[str, Any]:
            return messages.pop() if messages else await asyncio.Future()

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await app(request, receive, send)
        status = next(m["status"] for m in sent if m["type"] == "http.response.start")
        assert status == 201, b"".join(m.get("body", b"") for m in sent)

    for i in range(30):  # warm: the first report of a key loads what later ones find remembered
        await report(i)
    started = time.process_time()
    for i in range(args.reports):
        await report(i)
    print(f"{(time.process_time() - started) / args.reports * 1e3:.2f} ms CPU per report ({args.reports} reports)")
    if args.profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0002, async_mode="disabled")
        profiler.start()
        for i in range(args.reports):
            await report(i)
        profiler.stop()
        print(profiler.output_text(unicode=True, color=False, show_all=False))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=500)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--prefill", type=int, default=0, help="reports in the database before the first one sent")
    with tempfile.TemporaryDirectory() as workdir:
        asyncio.run(main(parser.parse_args(), Path(workdir)))
