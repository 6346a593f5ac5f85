"""The ceiling of a durable write on this stack: validate the body, commit one row to SQLite, answer 201.

Started by `bench/write_bench.py` exactly as `plan-api serve` starts the real app (one uvicorn worker,
uvicorn's default loop and HTTP implementation, log level info, access log on):

    BENCH_DB=/tmp/base.sqlite3 .venv/bin/python -m uvicorn write_baseline_app:app --app-dir bench --port 0

Same body model as the app (`ProgressCreate`), same URL paths, and the same SQLite discipline as
`app/db.py`: PRAGMA journal_mode=WAL, foreign_keys=ON, busy_timeout=30000, synchronous=FULL, one
connection per worker thread, sync endpoints in FastAPI's thread pool, `BEGIN IMMEDIATE` for writes.
No auth, permission check, idempotency record, derived status, audit or change feed.

With BENCH_DB a PostgreSQL URL (`postgresql://…` or `postgresql+psycopg://…`) it commits to that database
instead, one psycopg connection per worker thread, `synchronous_commit = on` (the server's default, set
explicitly: the commit waits for the WAL flush, the same durability the app gets from PostgreSQL).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from app.schemas.progress import ProgressCreate

DB = os.environ["BENCH_DB"].removeprefix("sqlite:///")  # a file path or sqlite:/// URL, or PostgreSQL
PRAGMAS = ("journal_mode=WAL", "foreign_keys=ON", "busy_timeout=30000", "synchronous=FULL")  # as app/db.py
INSERT = """insert into report (plan, task, status, percent, summary, period, evidence, created_at)
            values (?, ?, ?, ?, ?, ?, ?, ?)"""
POSTGRES = DB.startswith("postgresql")
_local = threading.local()


def connection() -> Any:
    if (conn := getattr(_local, "conn", None)) is None:
        if POSTGRES:
            import psycopg

            conn = _local.conn = psycopg.connect(DB.replace("+psycopg", ""), autocommit=True)
            conn.execute("SET synchronous_commit = on")
        else:
            conn = _local.conn = sqlite3.connect(DB, isolation_level=None, timeout=30, check_same_thread=False)
            for pragma in PRAGMAS:
                conn.execute(f"PRAGMA {pragma}")
    return conn


if POSTGRES:  # several workers import this at once: one creates the table, the others wait for it
    connection().execute("select pg_advisory_lock(4242)")
connection().execute(
    f"""create table if not exists report (id {"serial" if POSTGRES else "integer"} primary key,
       plan text not null, task text not null, status text not null, percent integer not null,
       summary text not null, period text not null, evidence text not null, created_at text not null)"""
)
if POSTGRES:
    connection().execute("select pg_advisory_unlock(4242)")


def store(plan: str, reports: list[tuple[str, ProgressCreate]]) -> list[int]:
    """One transaction, committed (fsync'd) before returning."""
    conn, now = connection(), datetime.now(UTC).isoformat()
    conn.execute("BEGIN" if POSTGRES else "BEGIN IMMEDIATE")
    try:
        ids = []
        for task, r in reports:
            row = (plan, task, r.status.value, r.percent, r.summary, r.period, json.dumps(r.evidence), now)
            if POSTGRES:
                ids.append(conn.execute(INSERT.replace("?", "%s") + " returning id", row).fetchone()[0])
            else:
                ids.append(conn.execute(INSERT, row).lastrowid)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return [i for i in ids if i is not None]


class BatchItem(ProgressCreate):
    task: str
    idempotency_key: str | None = None


class Batch(BaseModel):
    items: list[BatchItem] = Field(min_length=1, max_length=500)


app = FastAPI()


@app.post("/api/v1/plans/{plan}/tasks/{code}/progress")
def submit(plan: str, code: str, data: ProgressCreate) -> JSONResponse:
    (report_id,) = store(plan, [(code, data)])
    return JSONResponse({"id": report_id}, status_code=201, headers={"Location": f"/api/v1/progress/{report_id}"})


@app.post("/api/v1/plans/{plan}/progress:batch")
def submit_batch(plan: str, body: Batch) -> JSONResponse:
    ids = store(plan, [(item.task, item) for item in body.items])
    return JSONResponse({"results": [{"outcome": "created", "report": {"id": i}} for i in ids]})
