"""Write-path load benchmark: progress reports through the real API, against a bare durable-write endpoint.

One command, from the repository root:

    .venv/bin/python bench/write_bench.py [--backend sqlite|postgresql|both]

This process is only the load generator; every server is a subprocess (`plan-api serve --port 0`, the
port read from uvicorn's "Uvicorn running on" line), one at a time.

1. For each backend, a fresh database (SQLite: a file in a temp dir; PostgreSQL: `plan_api_bench_<random>`
   created on --postgres-url and dropped afterwards). The server migrates and seeds it; the CLI creates
   one key for each of the four units that own the most tasks (UNITS); clients take them in turn, each
   reporting round-robin on its unit's lead/responsible tasks.
2. `--clients` concurrent clients (an httpx.AsyncClient each): single reports with a fresh
   Idempotency-Key each, then batches of `--batch-size` items, `--warmup` s unmeasured then `--duration` s.
3. The same load against `bench/write_baseline_app.py` (same body model, one row committed to SQLite with
   app/db.py's PRAGMAs, nothing else): the ceiling of a durable write on this stack.
4. After every run, every acknowledged report id is looked up in the database.
   `--workers N` runs API and baselines with N uvicorn workers (unpinned; CPU summed over the workers,
   RSS of the largest); `--pool-size` (repeatable) runs the API once per DB_POOL_SIZE; with PostgreSQL
   the baseline also runs against PostgreSQL (`synchronous_commit = on`); `--prefill N` bulk-fills the
   API's database to N reports first (memory and speed at 10^6).
5. Read flatness (SQLite): a database with 10^3 reports (submitted through the API) and a copy bulk-filled
   to `--history` reports; one server on each, measured in alternating rounds by one sequential client.

With two or more CPUs the servers run on CPU 0 and the load generator on CPU 1 (`--no-pin` to not pin;
PostgreSQL's own processes are never pinned). The table is printed and written to bench/results/;
docs/performance.md ("Write path") quotes one such run with the analysis. `--keep` keeps the server logs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shlex
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote, unquote

import httpx
from harness import (
    BIN,
    ROOT,
    command_line,
    machine,
    machine_busy_seconds,
    percentile,
    port_for,
    serving,
    tree_cpu_seconds,
    worker_rss_mb,
)
from sqlalchemy import create_engine, make_url, text

PLAN = "xiji-fzsh-2021-2025"
UNITS = ("县司法局", "县民政局", "县委宣传部", "县委政法委")  # 26, 17, 14 and 10 lead/responsible links
BODY = {"status": "in_progress", "percent": 50, "summary": "开展“八五”普法宣传进机关活动 3 场。", "period": "2023-Q1"}
SINGLE = "/api/v1/plans/{plan}/tasks/{code}/progress"
BATCH = f"/api/v1/plans/{PLAN}/progress:batch"
READS = {
    "list": f"/api/v1/plans/{PLAN}/tasks?unit={quote('县司法局')}",
    "history": f"/api/v1/plans/{PLAN}/tasks/2.3.3/progress",
    "history, deep page": f"/api/v1/plans/{PLAN}/tasks/2.3.3/progress?cursor={{cursor}}",
}
HISTORY_SQL = """select * from progress_report where task_id = ? and id < ? order by id desc limit 51"""

# One request: (client, worker index, request number) -> (report ids it acknowledged, problems: "409 conflict" …)
Send = Callable[[httpx.AsyncClient, int, int], Awaitable[tuple[list[int], list[str]]]]

# Settings a run may be given through the environment (the servers inherit it): shown in the report.
SETTINGS_SHOWN = ("WEBHOOK_WORKER", "DB_POOL_SIZE", "DB_MAX_OVERFLOW", "RESPONSE_CACHE_MAX_BYTES")


@dataclass
class Run:
    backend: str
    target: str
    request: str
    single: bool
    seconds: float
    latencies: list[float] = field(default_factory=list)
    requests: int = 0  # completed within the measured window
    reports: int = 0  # acknowledged within the measured window
    problems: Counter[str] = field(default_factory=Counter)  # failed requests or batch items, in the window
    acked: list[int] = field(default_factory=list)  # every acknowledged id, warm-up included
    server_cpu: float = 0.0
    client_cpu: float = 0.0
    other_cpu: float = 0.0
    rss_start_mb: float = 0.0  # the largest worker's resident size before the run
    rss_mb: float = 0.0  # the largest worker's resident size after the run
    found: int = 0
    rows_added: int = 0

    @property
    def errors(self) -> str:
        return ", ".join(f"{problem} ×{n}" for problem, n in self.problems.most_common()) or "0"

    @property
    def rate(self) -> float:
        return self.reports / self.seconds

    @property
    def per_cpu(self) -> float:
        return self.rate / self.server_cpu if self.server_cpu else float("nan")


async def load(run: Run, base: str, keys: list[str], send: Send, pid: int, args: argparse.Namespace) -> None:
    """`clients` workers, each sending back to back on its own keep-alive connection."""
    start = time.perf_counter() + args.warmup
    stop = start + args.duration

    async def worker(index: int) -> None:
        headers = {"Authorization": f"Bearer {keys[index % len(keys)]}"}
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as client:
            n = 0
            while (sent := time.perf_counter()) < stop:
                try:
                    ids, problems = await send(client, index, n)
                except httpx.HTTPError as exc:
                    ids, problems = [], [type(exc).__name__]
                done, n = time.perf_counter(), n + 1
                run.acked += ids
                if start <= done <= stop:  # throughput: what completed in the window
                    run.requests += 1
                    run.reports += len(ids)
                    run.problems.update(problems)
                if start <= sent and done <= stop:  # latency: requests wholly inside it
                    run.latencies.append(done - sent)

    async def cpu_meter() -> None:
        await asyncio.sleep(start - time.perf_counter())
        server, client, busy = tree_cpu_seconds(pid), time.process_time(), machine_busy_seconds()
        await asyncio.sleep(stop - time.perf_counter())
        run.server_cpu = (tree_cpu_seconds(pid) - server) / args.duration
        run.client_cpu = (time.process_time() - client) / args.duration
        run.other_cpu = (machine_busy_seconds() - busy) / args.duration - run.server_cpu - run.client_cpu
        run.rss_mb = worker_rss_mb(pid)

    await asyncio.gather(cpu_meter(), *(worker(i) for i in range(args.clients)))


def senders(codes: list[list[str]], batch_size: int) -> tuple[Send, Send]:
    tag = secrets.token_hex(4)

    def failed(response: httpx.Response) -> list[str]:
        try:
            code = response.json().get("code", "?")
        except ValueError:
            code = "?"
        return [f"{response.status_code} {code}"]

    async def single(client: httpx.AsyncClient, w: int, n: int) -> tuple[list[int], list[str]]:
        mine = codes[w % len(codes)]  # clients sharing a unit start at different tasks
        url = SINGLE.format(plan=PLAN, code=mine[(n + w) % len(mine)])
        response = await client.post(url, json=BODY, headers={"Idempotency-Key": f"{tag}-{w}-{n}"})
        if response.status_code == 201:
            return [response.json()["id"]], []
        return [], failed(response)

    async def batch(client: httpx.AsyncClient, w: int, n: int) -> tuple[list[int], list[str]]:
        mine = codes[w % len(codes)]
        items = [
            {**BODY, "task": mine[(n * batch_size + i + w) % len(mine)], "idempotency_key": f"{tag}-b{w}-{n}-{i}"}
            for i in range(batch_size)
        ]
        response = await client.post(BATCH, json={"items": items})
        if response.status_code != 200:
            return [], failed(response)
        results = response.json()["results"]
        created = [r["report"]["id"] for r in results if r["outcome"] == "created"]
        return created, [f"{r['problem']['status']} {r['problem']['code']}" for r in results if r["outcome"] == "error"]

    return single, batch


def acked_in_db(url: str, table: str, acked: list[int]) -> tuple[int, int]:
    """(acknowledged ids found, rows in the table)."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            ids = set(conn.execute(text(f"select id from {table}")).scalars())
    finally:
        engine.dispose()
    return len(ids.intersection(acked)), len(ids)


def measure_writes(
    backend: str, target: str, server_base: str, pid: int, db_url: str, table: str, keys: list[str], codes, args
) -> list[Run]:
    single, batch = senders(codes, args.batch_size)
    runs = [
        Run(backend, target, "single report, Idempotency-Key", True, args.duration),
        Run(backend, target, f"batch of {args.batch_size}", False, args.duration),
    ]
    # With --workers the "running" line comes before any worker listens on the socket: any answer
    # means one does, having imported the app (the baseline creates its table on import).
    deadline = time.monotonic() + 120
    while True:
        try:
            httpx.get(server_base + "/healthz", timeout=120)
            break
        except httpx.ConnectError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    _, rows = acked_in_db(db_url, table, [])
    for run, send in zip(runs, (single, batch), strict=True):
        run.rss_start_mb = worker_rss_mb(pid)
        asyncio.run(load(run, server_base, keys, send, pid, args))
        run.found, now = acked_in_db(db_url, table, run.acked)
        run.rows_added, rows = now - rows, now
        print(
            f"  {backend:<10} {target:<9} {run.request:<32} {run.rate:6.0f} reports/s  p50 {percentile(run.latencies, 50):6.1f} ms"
            f"  errors {run.errors}  acked {len(run.acked)} found {run.found}"
        )
    return runs


def create_key(unit: str, env: dict[str, str], workdir: Path) -> str:
    """`plan-api keys create --unit NAME`: the secret is the last line of stdout."""
    argv = [str(BIN / "plan-api"), "keys", "create", "--unit", unit]
    done = subprocess.run(argv, env={**os.environ, **env}, cwd=workdir, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{shlex.join(argv)} failed:\n{done.stderr[-2000:]}")
    return done.stdout.strip().splitlines()[-1]


def owned_codes(db_url: str, unit: str) -> list[str]:
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            return list(
                conn.execute(
                    text("""select distinct t.code, t.position from task t
                            join plan p on p.id = t.plan_id and p.slug = :plan
                            join responsibility r on r.task_id = t.id and r.role in ('lead', 'responsible')
                            join unit u on u.id = r.unit_id and u.name = :unit
                            order by t.position"""),
                    {"plan": PLAN, "unit": unit},
                ).scalars()
            )
    finally:
        engine.dispose()


@contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    name = f"plan_api_bench_{secrets.token_hex(4)}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'create database "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'drop database if exists "{name}" with (force)'))
        admin.dispose()


def api_argv(workers: int = 1) -> list[str]:
    return [
        str(BIN / "plan-api"),
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        port_for(workers),
        "--workers",
        str(workers),
    ]


def bench_backend(backend: str, db_url: str, workdir: Path, args) -> list[Run]:
    """The API on one database; once per `--pool-size` (DB_POOL_SIZE) if given, each a fresh server."""
    env = {"DATABASE_URL": db_url, "LOG_LEVEL": "INFO", "SQL_ECHO": "false", "RATE_LIMIT_ENABLED": "false"}
    for step in ("migrate", "seed"):  # as `plan-api serve` does on first start
        subprocess.run([str(BIN / "plan-api"), step], env={**os.environ, **env}, cwd=workdir, check=True)
    keys = [create_key(unit, env, workdir) for unit in UNITS]
    if args.prefill:
        started = time.perf_counter()
        fill_history(db_url, args.prefill)
        print(f"  {backend}: bulk-filled to {args.prefill} reports in {time.perf_counter() - started:.0f} s")
    codes = [owned_codes(db_url, unit) for unit in UNITS]
    runs = []
    for pool in args.pool_size or [None]:
        pool_env = {"DB_POOL_SIZE": str(pool)} if pool else {}
        target = f"API ×{args.workers}" + (f", pool {pool}" if pool else "")
        with serving(f"api-{backend}-{pool}", api_argv(args.workers), {**env, **pool_env}, workdir, args.pin) as srv:
            runs += measure_writes(
                backend, target, srv.base, srv.proc.pid, db_url, "progress_report", keys, codes, args
            )
    return runs


def bench_baseline(backend: str, db_url: str, workdir: Path, args) -> list[Run]:
    argv = [sys.executable, "-m", "uvicorn", "write_baseline_app:app", "--app-dir", str(ROOT / "bench")]
    argv += ["--host", "127.0.0.1", "--port", port_for(args.workers), "--log-level", "info"]
    argv += ["--workers", str(args.workers)]
    with serving(f"baseline-{backend}", argv, {"BENCH_DB": db_url}, workdir, args.pin) as server:
        codes = [["2.3.3"]]
        return measure_writes(
            backend, f"baseline ×{args.workers}", server.base, server.proc.pid, db_url, "report", ["-"], codes, args
        )


# --- read flatness -----------------------------------------------------------------------------------


FILL_POSTGRES = """insert into progress_report (task_id, unit_id, via_unit_id, api_key_id, kind, status, percent,
    summary, period, evidence, created_at, review_state)
  select l.task_id, l.unit_id, l.unit_id, :key, case when l.role = 'cooperating' then 'contribution' else 'status' end,
         'in_progress', 50, :summary, '2023-Q1', '[]', :base + g * interval '1 microsecond', 'not_required'
  from generate_series(0, :n - 1) g
  join (select row_number() over (order by r.task_id, r.unit_id) - 1 as i, r.task_id, r.unit_id, r.role
        from responsibility r join task t on t.id = r.task_id join plan p on p.id = t.plan_id
        where p.slug = :plan) l on l.i = g % :links"""


# The versions the API would have made of the same reports: within each (task, unit, period), each
# report supersedes the one before it. Without the links every filled row would be a head, a state
# no write can reach (thousands of current versions of one unit's one period), which the write path's
# queries are not built for.
LINK_VERSIONS = """update progress_report set supersedes_id = v.previous, superseded_by_id = v.next
  from (select id, lag(id) over w as previous, lead(id) over w as next from progress_report
        window w as (partition by task_id, unit_id, period order by id)) as v
  where progress_report.id = v.id"""


def fill_history(db_url: str, total: int) -> None:
    """Bulk-insert reports round-robin over every task-unit link of the plan until `total` rows
    (`sqlite:///…` or a PostgreSQL URL), then link them into versions as the API would."""
    if not db_url.startswith("sqlite:///"):
        engine = create_engine(db_url)
        try:
            with engine.begin() as conn:
                have = conn.execute(text("select count(*) from progress_report")).scalar_one()
                links = conn.execute(
                    text(
                        "select count(*) from responsibility r join task t on t.id = r.task_id"
                        " join plan p on p.id = t.plan_id where p.slug = :plan"
                    ),
                    {"plan": PLAN},
                ).scalar_one()
                key = conn.execute(text("select min(id) from api_key")).scalar_one()
                base = datetime.now(UTC).replace(tzinfo=None)
                params = {"key": key, "summary": BODY["summary"], "base": base, "n": total - have, "links": links}
                conn.execute(text(FILL_POSTGRES), {**params, "plan": PLAN})
                conn.execute(text(LINK_VERSIONS))
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("vacuum analyze progress_report"))
        finally:
            engine.dispose()
        return
    db = Path(db_url.removeprefix("sqlite:///"))
    with sqlite3.connect(db) as conn:
        have = conn.execute("select count(*) from progress_report").fetchone()[0]
        links = conn.execute(
            "select r.task_id, r.unit_id, r.role from responsibility r join task t on t.id = r.task_id"
            " join plan p on p.id = t.plan_id where p.slug = ? order by r.task_id, r.unit_id",
            (PLAN,),
        ).fetchall()
        key_id = conn.execute("select min(id) from api_key").fetchone()[0]
        base = datetime.now(UTC).replace(tzinfo=None)
        same = ("in_progress", 50, BODY["summary"], "2023-Q1", "[]")  # status, percent, summary, period, evidence

        def rows() -> Iterator[tuple]:
            for i in range(total - have):
                task_id, unit_id, role = links[i % len(links)]
                kind = "contribution" if role == "cooperating" else "status"
                created = (base + timedelta(microseconds=i)).strftime("%Y-%m-%d %H:%M:%S.%f")
                yield (task_id, unit_id, unit_id, key_id, kind, *same, created)

        conn.executemany(
            "insert into progress_report (task_id, unit_id, via_unit_id, api_key_id, kind, status, percent, summary,"
            " period, evidence, created_at) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows(),
        )
        conn.execute(LINK_VERSIONS)
    with sqlite3.connect(db) as conn:
        conn.execute("pragma wal_checkpoint(truncate)")


def history_facts(db: Path) -> tuple[int, int, str]:
    """(rows in progress_report, a cursor halfway down task 2.3.3's history, the history query's plan)."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute("select count(*) from progress_report").fetchone()[0]
        task_id = conn.execute("select id from task where code = '2.3.3'").fetchone()[0]
        n = conn.execute("select count(*) from progress_report where task_id = ?", (task_id,)).fetchone()[0]
        cursor = conn.execute(
            "select id from progress_report where task_id = ? order by id desc limit 1 offset ?", (task_id, n // 2)
        ).fetchone()[0]
        plan = conn.execute("explain query plan " + HISTORY_SQL, (task_id, cursor)).fetchall()
    return rows, cursor, "; ".join(row[-1] for row in plan)


async def sequential(base: str, path: str, n: int) -> list[float]:
    """Each request carries a new Accept parameter: the API keys its read cache on Accept, so every
    request is answered from the database, which is what the flatness target is about."""
    latencies = []
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        for i in range(n):
            sent = time.perf_counter()
            response = await client.get(path, headers={"Accept": f"application/json; bench={time.time_ns()}-{i}"})
            latencies.append(time.perf_counter() - sent)
            response.raise_for_status()
    return latencies


def read_flatness(workdir: Path, args) -> tuple[dict[str, dict[str, list[float]]], dict[str, tuple[int, int, str]]]:
    small, big = workdir / "read-small.sqlite3", workdir / "read-big.sqlite3"
    env = {
        "DATABASE_URL": f"sqlite:///{small}",
        "LOG_LEVEL": "INFO",
        "SQL_ECHO": "false",
        "RATE_LIMIT_ENABLED": "false",
    }
    with serving("read-seed", api_argv(), env, workdir, args.pin) as server:
        key = create_key("县司法局", env, workdir)
        _, batch = senders([owned_codes(env["DATABASE_URL"], "县司法局")], 100)

        async def seed() -> None:
            async with httpx.AsyncClient(base_url=server.base, timeout=60) as client:
                client.headers["Authorization"] = f"Bearer {key}"
                for n in range(10):
                    await batch(client, 0, n)

        asyncio.run(seed())
    with sqlite3.connect(small) as src, sqlite3.connect(big) as dst:
        src.backup(dst)
    started = time.perf_counter()
    fill_history(f"sqlite:///{big}", args.history)
    print(f"  bulk-filled to {args.history} reports in {time.perf_counter() - started:.0f} s")
    facts = {f"{f[0]:,}": f for f in (history_facts(small), history_facts(big))}
    latencies: dict[str, dict[str, list[float]]] = {label: {name: [] for name in READS} for label in facts}
    with (
        serving("read-small", api_argv(), env, workdir, args.pin) as a,
        serving("read-big", api_argv(), {**env, "DATABASE_URL": f"sqlite:///{big}"}, workdir, args.pin) as b,
    ):
        servers = dict(zip(facts, (a, b), strict=True))
        for _ in range(args.rounds):  # alternate, so drift on a shared machine hits both sides alike
            for name, path in READS.items():
                for label, server in servers.items():
                    url = path.format(cursor=facts[label][1])
                    asyncio.run(sequential(server.base, url, 5))  # warm
                    latencies[label][name] += asyncio.run(sequential(server.base, url, args.read_requests))
    return latencies, facts


# --- report --------------------------------------------------------------------------------------------


def report(runs: list[Run], reads, facts, args: argparse.Namespace) -> str:
    pinning = "servers on CPU 0, load generator on CPU 1" if args.pin else "not pinned"
    lines = [
        f"### Write-path run, {datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
        "",
        f"Command: `{command_line()}`",
        "",
        *machine(("fastapi", "starlette", "uvicorn", "pydantic", "sqlalchemy", "psycopg", "httpx")),
        f"- load: {args.clients} clients (httpx.AsyncClient each, keep-alive), {args.warmup:g} s warm-up then"
        f" {args.duration:g} s measured per run; {pinning}; PostgreSQL 15 on the same machine, unpinned",
        *(f"- environment: {k}={os.environ[k]}" for k in SETTINGS_SHOWN if k in os.environ),
        f"- keys: one per unit for {', '.join(UNITS)} (clients take them in turn), each reporting on its own"
        " lead/responsible tasks; the baseline takes no key",
        "",
        "| backend | server | request | reports/s | reports per server CPU-s | p50 ms | p99 ms | errors | acked"
        " | found in DB | rows added | server CPU | client CPU | other CPU | worker RSS MB before → after |",
        "|---|---|---|--:|--:|--:|--:|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in runs:
        lines.append(
            f"| {r.backend} | {r.target} | {r.request} | {r.rate:.0f}{'' if r.server_cpu >= 0.9 else ' *'}"
            f" | {r.per_cpu:.0f} | {percentile(r.latencies, 50):.1f}"
            f" | {percentile(r.latencies, 99):.1f} | {r.errors} | {len(r.acked)} | {r.found} | {r.rows_added}"
            f" | {r.server_cpu:.0%} | {r.client_cpu:.0%} | {max(r.other_cpu, 0):.0%}"
            f" | {r.rss_start_mb:.0f} → {r.rss_mb:.0f} |"
        )
    lines += [
        "",
        "reports/s and latencies over the measured window; acked / found / rows added include the warm-up."
        " Server CPU is the uvicorn processes (every worker; 100% = one core; PostgreSQL's backends show under other CPU, with any other load)."
        " \\* server below 90% CPU: something else (the load generator, lock waits, PostgreSQL) was the limit.",
        "",
    ]
    base = {(r.backend, r.single): r for r in runs if r.target.startswith("baseline")}
    for r in runs:
        if r.target.startswith("API") and (b := base.get((r.backend, r.single)) or base.get(("sqlite", r.single))):
            ratio, per_cpu = r.rate / b.rate, r.per_cpu / b.per_cpu
            target = r.single and r.backend == "sqlite"  # the target is about SQLite; PostgreSQL: reported
            verdict = f" (target ≥ 0.5×: {'met' if ratio >= 0.5 else '**missed**'})" if target else ""
            lines.append(
                f"- {r.backend} {r.target} / {b.backend} {b.target}, {r.request}: **{ratio:.2g}×** measured{verdict},"
                f" {per_cpu:.2g}× per server CPU-second"
            )
    lost = sum(len(r.acked) - r.found for r in runs)
    lines.append(
        f"- acknowledged reports found in the database: {sum(r.found for r in runs)} of {sum(len(r.acked) for r in runs)}"
        f" ({'met' if lost == 0 else f'**missed: {lost} lost**'})"
    )
    if reads:
        small, big = facts
        lines += [
            "",
            f"Read latency, SQLite, one sequential client, {args.rounds} alternating rounds × {args.read_requests}"
            f" requests per database: {facts[small][0]} vs {facts[big][0]} rows in progress_report",
            "",
            f"| request | p50 ms @{small} | p99 ms @{small} | p50 ms @{big} | p99 ms @{big} | p50 ratio | p99 ratio |",
            "|---|--:|--:|--:|--:|--:|--:|",
        ]
        verdicts = []
        for name, path in READS.items():
            a, b = reads[small][name], reads[big][name]
            p50 = percentile(b, 50) / percentile(a, 50)
            p99 = percentile(b, 99) / percentile(a, 99)
            lines.append(
                f"| `GET {unquote(path).split('/plans/', 1)[1].replace('{cursor}', '…')}` ({name}) | {percentile(a, 50):.1f}"
                f" | {percentile(a, 99):.1f} | {percentile(b, 50):.1f} | {percentile(b, 99):.1f} | {p50:.2f}× | {p99:.2f}× |"
            )
            verdicts.append((name, p50))
        lines += [
            "",
            *(
                f"- {name} p50 @{big} / @{small}: **{ratio:.2f}×** (target ≤ 1.25×: {'met' if ratio <= 1.25 else '**missed**'})"
                for name, ratio in verdicts
            ),
            f"- history query plan @{big}: `{facts[big][2]}`",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("PLAN_API_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
        help="a server and database to connect to for CREATE/DROP DATABASE",
    )
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    parser.add_argument("--warmup", type=float, default=2, help="unmeasured seconds per run (default 2)")
    parser.add_argument("--duration", type=float, default=10, help="measured seconds per run (default 10)")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers, API and baseline (default 1)")
    parser.add_argument(
        "--pool-size", type=int, action="append", help="DB_POOL_SIZE for the API; repeat to compare (one server each)"
    )
    parser.add_argument("--prefill", type=int, default=0, help="bulk-fill the API's database to N reports first")
    parser.add_argument("--batch-size", type=int, default=100, help="items per batch (default 100)")
    parser.add_argument("--history", type=int, default=10**6, help="reports for the big read database (10^6)")
    parser.add_argument("--rounds", type=int, default=5, help="alternating read rounds (default 5)")
    parser.add_argument("--read-requests", type=int, default=40, help="requests per read, round and database")
    parser.add_argument("--no-read", dest="read", action="store_false", help="skip the read-flatness part")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (server logs, SQLite files)")
    parser.add_argument("--no-pin", dest="pin", action="store_false", help="do not pin server and client to CPUs")
    args = parser.parse_args()
    # Several workers pinned to one CPU would share it: with --workers > 1 nothing is pinned.
    args.pin = args.pin and (os.cpu_count() or 1) >= 2 and args.workers == 1
    if args.pin:
        os.sched_setaffinity(0, {1})

    runs: list[Run] = []
    reads = facts = None
    workdir = Path(tempfile.mkdtemp(prefix="write-bench-"))  # server logs and databases
    try:
        print("writes")
        if args.backend in ("sqlite", "both"):
            runs += bench_backend("sqlite", f"sqlite:///{workdir / 'api.sqlite3'}", workdir, args)
        if args.backend in ("postgresql", "both"):
            with postgres_database(args.postgres_url) as url:
                runs += bench_backend("postgresql", url, workdir, args)
        runs += bench_baseline("sqlite", f"sqlite:///{workdir / 'baseline.sqlite3'}", workdir, args)
        if args.backend in ("postgresql", "both"):
            with postgres_database(args.postgres_url) as url:
                runs += bench_baseline("postgresql", url, workdir, args)
        if args.read:
            print("read flatness")
            reads, facts = read_flatness(workdir, args)
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir)
    text_ = report(runs, reads, facts, args)
    print("\n" + text_)
    out = ROOT / "bench" / "results" / f"write-{datetime.now():%Y%m%d-%H%M%S}.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(text_)
    print(f"written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
