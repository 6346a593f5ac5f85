"""Read-path load benchmark: the plan API against Datasette and a trivial FastAPI endpoint.

One command, from the repository root (after `.venv/bin/pip install -e '.[bench]'`):

    .venv/bin/python bench/read_bench.py

What it does, in one process that is only the load generator (every server is a subprocess):

1. makes a fresh SQLite database in a temp dir and starts the real server, `plan-api serve`, which
   migrates and seeds the plan on first start; measures the task list (`unit=县司法局&role=lead`) as
   repeated (answered from the API's response cache), the same list with a new Accept header on every
   request (a cache miss of the response cache, same URL and data), one task's detail, the list with
   `If-None-Match` (must be 304), the list gzip-compressed, and cold lists: every request a NEW URL
   (`unit=…&role=…&section=…&limit=…` cycling the plan's units × roles × chapters, never repeating);
2. stops it, then starts the trivial app (`bench/trivial_app.py`: the same uvicorn settings, returning
   the list's exact response body from memory) and measures it: the ceiling of FastAPI + uvicorn;
3. stops it, then starts Datasette on the same database file (with `--backend postgresql`, the API
   serves a PostgreSQL database and Datasette a SQLite file seeded the same way), checks that its SQL
   returns the same rows as the API, and measures that query as JSON, and the cold lists' SQL with the
   same varying parameters (Datasette keeps no response cache: each runs its SQL).

Servers run one at a time. CPU contention matters on a small machine: a Python load generator costs
about as much CPU per request as the server. With two or more CPUs the server is pinned to CPU 0 and
the load generator to CPU 1, so they do not compete for a core (`--no-pin` lets the scheduler place
them); other jobs on the machine still can, which the "other CPU" column shows. Each target gets
`--warmup` seconds of unmeasured load, then `--duration` seconds measured, with `--concurrency`
keep-alive connections. The table is printed and written to bench/results/read-<timestamp>.md.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import shlex
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import quote, urlencode

import httpx
from cold_lists import PLAN, ROLES, UNIT_COLUMNS, ColdLists
from harness import machine, machine_busy_seconds, tree_cpu_seconds, worker_rss_mb
from write_bench import fill_history, postgres_database

try:
    import sniffio  # noqa: F401
except ImportError:  # httpcore retries this import on every request (a sys.path scan): make it fail fast
    sys.modules["sniffio"] = None  # type: ignore[assignment]

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # the venv's bin: plan-api, datasette
UNIT = "县司法局"
LIST_PATH = f"/api/v1/plans/{PLAN}/tasks?unit={quote(UNIT)}&role=lead"
DETAIL_PATH = f"/api/v1/plans/{PLAN}/tasks/5.4.2"
LIST_LABEL = f"GET …/tasks?unit={UNIT}&role=lead"
IDENTITY = {"Accept-Encoding": "identity"}  # Datasette and the trivial app do not compress
GZIP = {"Accept-Encoding": "gzip"}

# Datasette's equivalent of LIST_PATH: the same tasks in plan order, unit names per role in source order.
DATASETTE_SQL = f"""select t.code, t.title, t.text, t.due, t.status, {UNIT_COLUMNS}
from task t join plan p on p.id = t.plan_id
where p.slug = '{PLAN}' and t.id in (select r.task_id from responsibility r join unit u on u.id = r.unit_id
                                     where u.name = '{UNIT}' and r.role = 'lead')
order by t.position"""
DATASETTE_PATH = "/db.json?" + urlencode({"sql": DATASETTE_SQL, "_shape": "array"})

# Settings a run may be given through the environment (the servers inherit it): shown in the report.
SETTINGS_SHOWN = ("WEBHOOK_WORKER", "DB_POOL_SIZE", "DB_MAX_OVERFLOW", "RESPONSE_CACHE_MAX_BYTES")


@dataclass
class Result:
    target: str
    request: str
    expect: int
    seconds: float
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int | str] = field(default_factory=Counter)
    body_bytes: int = 0
    server_cpu: float = 0.0  # share of one core, over the measured window
    client_cpu: float = 0.0
    other_cpu: float = 0.0  # everything else on the machine (other processes, hypervisor steal)
    rss_mb: float = 0.0  # the largest worker's resident size after the target's load

    @property
    def errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status != self.expect)

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds

    @property
    def per_cpu(self) -> float:
        return len(self.latencies) / (self.server_cpu * self.seconds)

    def percentile(self, p: int) -> float:
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[p - 1] * 1000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(
    name: str, argv: list[str], port: int, ready_path: str, workdir: Path, pin: bool, env: dict[str, str]
) -> Iterator[subprocess.Popen[bytes]]:
    """Start one server, wait until `ready_path` answers 200, stop it (SIGTERM) afterwards."""
    log = (workdir / f"{name}.log").open("wb")
    preexec = (lambda: os.sched_setaffinity(0, {0})) if pin else None
    proc = subprocess.Popen(
        argv, cwd=workdir, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT, preexec_fn=preexec
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{name} did not start; see {log.name}:\n" + Path(log.name).read_text()[-2000:])
            try:
                if httpx.get(f"http://127.0.0.1:{port}{ready_path}").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        time.sleep(0.5)
        if proc.poll() is not None:  # something else answered on our port and ours failed to bind
            raise SystemExit(f"{name} exited after start; see {log.name}")
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


async def load(
    target: str,
    request: str,
    url: str,
    headers: dict[str, str],
    expect: int,
    miss: bool,
    pid: int,
    args: argparse.Namespace,
    urls: Callable[[int], str] | None = None,
) -> Result:
    """`concurrency` workers, each sending requests back to back on its own keep-alive connection.

    With `miss`, every request carries a different Accept header: the API keeps rendered responses keyed
    by (path, query, Accept, data version), so each request is rendered from the database again.
    With `urls`, every request goes to a new address: `url` + `urls(n)` for the n-th request.
    """
    result = Result(target, request, expect, args.duration)
    sequence = itertools.count()
    start = time.perf_counter() + args.warmup
    stop = start + args.duration

    async def worker() -> None:
        # A client per worker: one shared pool of 16 connections costs httpcore more CPU than the requests.
        async with httpx.AsyncClient(headers=headers, timeout=30) as client:
            while (sent := time.perf_counter()) < stop:
                try:
                    n = next(sequence)
                    bust = {"Accept": f"application/json; bench={n}"} if miss else None
                    response = await client.get(url + urls(n) if urls else url, headers=bust)
                    status: int | str = response.status_code
                    result.body_bytes = response.num_bytes_downloaded  # as sent: compressed if gzip
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                done = time.perf_counter()
                if start <= sent and done <= stop:
                    result.latencies.append(done - sent)
                    result.statuses[status] += 1

    async def cpu_meter() -> None:
        await asyncio.sleep(start - time.perf_counter())
        server, client, busy = tree_cpu_seconds(pid), time.process_time(), machine_busy_seconds()
        await asyncio.sleep(stop - time.perf_counter())
        result.server_cpu = (tree_cpu_seconds(pid) - server) / args.duration
        result.client_cpu = (time.process_time() - client) / args.duration
        result.other_cpu = (machine_busy_seconds() - busy) / args.duration - result.server_cpu - result.client_cpu
        result.rss_mb = worker_rss_mb(pid)

    await asyncio.gather(cpu_meter(), *(worker() for _ in range(args.concurrency)))
    return result


def measure(
    target: str,
    request: str,
    url: str,
    pid: int,
    args: argparse.Namespace,
    expect: int = 200,
    miss: bool = False,
    urls: Callable[[int], str] | None = None,
    **headers: str,
) -> Result:
    result = asyncio.run(load(target, request, url, {**IDENTITY, **headers}, expect, miss, pid, args, urls))
    print(f"  {target:<24} {result.rps:7.0f} req/s  p50 {result.percentile(50):6.1f} ms  errors {result.errors}")
    return result


def api_rows(body: dict) -> list[tuple]:
    def names(task: dict, role: str) -> str | None:
        return "、".join(r["unit"]["name"] for r in task["responsibilities"] if r["role"] == role) or None

    return [
        (
            t["code"],
            None if t["title_derived"] else t["title"],
            t["text"],
            t["due"],
            t["status"],
            *(names(t, role) for role in ROLES),
        )
        for t in body["items"]
    ]


def prepare(db_url: str, workdir: Path, history: int) -> None:
    """Migrate and seed as `plan-api serve` does on first start; with `history`, a key (reports need
    one) and that many reports, bulk-filled."""
    env = {**os.environ, "DATABASE_URL": db_url, "LOG_LEVEL": "WARNING"}
    steps = [["migrate"], ["seed"]] + ([["keys", "create", "--unit", UNIT]] if history else [])
    for step in steps:
        subprocess.run([str(BIN / "plan-api"), *step], env=env, cwd=workdir, check=True, capture_output=True)
    if history:
        started = time.perf_counter()
        fill_history(db_url, history)
        print(f"  {db_url.split(':', 1)[0]}: bulk-filled to {history} reports in {time.perf_counter() - started:.0f} s")


def run(args: argparse.Namespace, workdir: Path, api_db: str) -> tuple[list[Result], int]:
    """`api_db`: the API's database URL; Datasette always reads the SQLite file `db.sqlite3`, which
    holds the same plan (and as many reports) when the API's database is PostgreSQL."""
    db = workdir / "db.sqlite3"
    results: list[Result] = []
    prepare(f"sqlite:///{db}", workdir, args.history)
    if api_db != f"sqlite:///{db}":
        prepare(api_db, workdir, args.history)

    port = free_port()
    env = {"DATABASE_URL": api_db, "LOG_LEVEL": "INFO", "SQL_ECHO": "false", "CORS_ORIGINS": "[]"}
    env["RATE_LIMIT_ENABLED"] = "false"  # a benchmark is one address at hundreds of requests a second
    argv = [str(BIN / "plan-api"), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(args.workers)]
    print(f"API (plan-api serve --workers {args.workers}, {api_db.split(':', 1)[0]})")
    with serving("api", argv, port, "/healthz", workdir, args.pin, env) as proc:
        base = f"http://127.0.0.1:{port}"
        args.rss_start = worker_rss_mb(proc.pid)
        first = httpx.get(base + LIST_PATH, headers=IDENTITY)
        first.raise_for_status()
        if first.json()["next_cursor"] is not None:
            raise SystemExit("the list has more than one page; the comparison assumes one")
        (workdir / "body.json").write_bytes(first.content)
        expected_rows = api_rows(first.json())
        etag = {"If-None-Match": first.headers["etag"]}
        results += [
            measure("API list", LIST_LABEL, base + LIST_PATH, proc.pid, args),
            measure("API list, cache miss", LIST_LABEL + " + new Accept", base + LIST_PATH, proc.pid, args, miss=True),
            measure("API detail", "GET …/tasks/5.4.2", base + DETAIL_PATH, proc.pid, args),
            measure("API list, If-None-Match", LIST_LABEL + " + ETag", base + LIST_PATH, proc.pid, args, 304, **etag),
            measure("API list, gzip", LIST_LABEL + " + gzip", base + LIST_PATH, proc.pid, args, **GZIP),
        ]
        cold = ColdLists(db)
        cold_url = f"/api/v1/plans/{PLAN}/tasks?"
        cold_rows = {
            n: api_rows(httpx.get(base + cold_url + cold.api_query(n), headers=IDENTITY).json())
            for n in range(0, 400, 7)
        }
        # Measured after the check, from a lap further on: none of its URLs was asked before.
        start = len(cold.combos)
        results.append(
            measure(
                "API cold list",
                "GET …/tasks?unit=…&role=…&section=…&limit=… (new URL each)",
                base,
                proc.pid,
                args,
                urls=lambda n: cold_url + cold.api_query(start + n),
            )
        )

    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "trivial_app:app", "--app-dir", str(ROOT / "bench")]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "info", "--workers", str(args.workers)]
    print("trivial FastAPI endpoint")
    with serving(
        "trivial", argv, port, "/healthz", workdir, args.pin, {"BENCH_BODY_FILE": str(workdir / "body.json")}
    ) as proc:
        url = f"http://127.0.0.1:{port}/body"
        results.append(measure("trivial", "GET /body (the list's bytes)", url, proc.pid, args))

    with sqlite3.connect(db) as conn:  # fold the WAL into the file: Datasette opens it immutable
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    port = free_port()
    argv = [str(BIN / "datasette"), "serve", "-i", str(db), "--host", "127.0.0.1", "-p", str(port)]
    argv += ["--setting", "sql_time_limit_ms", "5000"]
    print("Datasette")
    with serving("datasette", argv, port, "/-/versions.json", workdir, args.pin, {}) as proc:
        url = f"http://127.0.0.1:{port}{DATASETTE_PATH}"
        rows = [tuple(row.values()) for row in httpx.get(url).json()]
        # Titles aside: where the plan gives none the API derives one from the text when read
        # (`readable_title`), and Datasette shows the stored NULL.
        if [r[:1] + r[2:] for r in rows] != [r[:1] + r[2:] for r in expected_rows]:
            raise SystemExit(f"Datasette's rows differ from the API's:\n{rows[:2]}\n{expected_rows[:2]}")
        results.append(measure("Datasette", "GET /db.json?sql=… (same rows)", url, proc.pid, args))
        base = f"http://127.0.0.1:{port}"
        for n, expected in cold_rows.items():
            got = [tuple(row.values()) for row in httpx.get(base + "/db.json?" + cold.datasette_query(n)).json()]
            if [r[:1] + r[2:] for r in got] != [r[:1] + r[2:] for r in expected]:  # titles aside, as above
                raise SystemExit(
                    f"Datasette's cold rows differ from the API's ({cold.params(n)}):\n{got[:1]}\n{expected[:1]}"
                )
        results.append(
            measure(
                "Datasette cold",
                "GET /db.json?sql=…&unit=…&role=…&section=…&limit=… (new each)",
                base,
                proc.pid,
                args,
                urls=lambda n: "/db.json?" + cold.datasette_query(start + n),
            )
        )
    return results, len(rows)


def report(results: list[Result], rows: int, args: argparse.Namespace) -> str:
    exe = Path(sys.executable)
    command = shlex.join([str(exe.relative_to(ROOT)) if exe.is_relative_to(ROOT) else str(exe), *sys.argv])
    by = {r.target: r for r in results}
    api, conditional = by["API list"], by["API list, If-None-Match"]
    pinning = "server on CPU 0, load generator on CPU 1" if args.pin else "not pinned (server and client share cores)"
    lines = [
        f"# Read-path benchmark, {datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
        "",
        f"Command: `{command}`",
        "",
        *machine(("fastapi", "starlette", "uvicorn", "pydantic", "sqlalchemy", "datasette", "httpx")),
        f"- load: httpx.AsyncClient per connection, {args.concurrency} keep-alive connections, {args.warmup:g} s"
        f" warm-up then {args.duration:g} s measured per target; servers one at a time; {pinning}",
        f"- API: `plan-api serve --workers {args.workers}` on {args.backend}; trivial app with {args.workers}"
        " uvicorn worker(s); Datasette: one process on a SQLite copy of the same plan"
        + (f"; {args.history:,} progress reports in each database" if args.history else ""),
        *(f"- environment: {k}={os.environ[k]}" for k in SETTINGS_SHOWN if k in os.environ),
        f"- API worker resident size at start (after seeding, before any request): {args.rss_start:.0f} MB;"
        " server CPU sums every worker (100% = one core); RSS is the largest worker's",
        f"- list query: `GET {LIST_PATH}` ({rows} tasks, one page); Datasette runs the equivalent SQL",
        "",
        "| target | request | req/s | req per server CPU-s | p50 ms | p99 ms | errors | statuses | body bytes"
        " | server CPU | client CPU | other CPU | server RSS MB |",
        "|---|---|--:|--:|--:|--:|--:|---|--:|--:|--:|--:|--:|",
    ]
    for r in results:
        statuses = " ".join(f"{s}×{n}" for s, n in sorted(r.statuses.items(), key=str))
        bound = "" if r.server_cpu >= 0.9 else " *" if r.client_cpu >= 0.8 else " †"
        lines.append(
            f"| {r.target} | `{r.request}` | {r.rps:.0f}{bound} | {r.per_cpu:.0f} | {r.percentile(50):.1f}"
            f" | {r.percentile(99):.1f} | {r.errors} | {statuses} | {r.body_bytes} | {r.server_cpu:.0%}"
            f" | {r.client_cpu:.0%} | {max(r.other_cpu, 0):.0%} | {r.rss_mb:.0f} |"
        )

    def ratio(other: Result, target: float, api: Result = api) -> str:
        measured, per_cpu = api.rps / other.rps, api.per_cpu / other.per_cpu
        verdict = "met" if min(measured, per_cpu) >= target else "**missed**"
        return f"**{measured:.2f}×** measured, {per_cpu:.2f}× per server CPU-second (target ≥ {target:g}×: {verdict})"

    all_304 = conditional.statuses[304] == len(conditional.latencies) > 0
    lines += [
        "",
        "The server had less than 90% of a core: \\* the load generator was the limit (its CPU at 80% or more);"
        " † neither was saturated, so other processes took the core (see other CPU) or the server waited."
        " Req per server CPU-s (req/s ÷ server CPU) is what the server does per second of its own CPU:"
        " the figure to compare across targets when req/s is not server-bound.",
        "",
        f"- API list / Datasette: {ratio(by['Datasette'], 1.0)}",
        f"- API list / trivial endpoint: {ratio(by['trivial'], 0.5)}",
        f"- API list, cache miss / Datasette: {ratio(by['Datasette'], 1.0, by['API list, cache miss'])}",
        f"- API list, cache miss / trivial endpoint: {ratio(by['trivial'], 0.5, by['API list, cache miss'])}",
        f"- API cold list / Datasette cold (both a new URL each): {ratio(by['Datasette cold'], 1.0, by['API cold list'])}",
        f"- repeat with If-None-Match: {conditional.statuses[304]} of {len(conditional.latencies)} answered 304"
        f" ({'met' if all_304 else '**missed**'}), {conditional.rps:.0f} req/s"
        f" = {conditional.rps / api.rps:.2f}× the full response",
        f"- API list gzip-compressed / uncompressed: {by['API list, gzip'].rps / api.rps:.2f}×",
    ]
    noisy = [r.target for r in results if r.other_cpu > 0.2]
    if noisy:
        lines.append(f"- **other processes used > 20% of a CPU during: {', '.join(noisy)}**; rerun on a quiet machine")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent connections (default 16)")
    parser.add_argument("--warmup", type=float, default=2, help="unmeasured seconds per target (default 2)")
    parser.add_argument("--duration", type=float, default=10, help="measured seconds per target (default 10)")
    parser.add_argument("--no-pin", dest="pin", action="store_false", help="do not pin server and client to CPUs")
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite", help="the API's database")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("PLAN_API_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
        help="a server and database to connect to for CREATE/DROP DATABASE",
    )
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers for the API and the trivial app")
    parser.add_argument("--history", type=int, default=0, help="bulk-fill N progress reports first (e.g. 1000000)")
    args = parser.parse_args()
    # Several workers pinned to one CPU would share it: with --workers > 1 nothing is pinned.
    args.pin = args.pin and (os.cpu_count() or 1) >= 2 and args.workers == 1
    if args.pin:
        os.sched_setaffinity(0, {1})
    with tempfile.TemporaryDirectory(prefix="read-bench-") as tmp:
        if args.backend == "postgresql":
            with postgres_database(args.postgres_url) as url:
                results, rows = run(args, Path(tmp), url)
        else:
            results, rows = run(args, Path(tmp), f"sqlite:///{Path(tmp) / 'db.sqlite3'}")
    text = report(results, rows, args)
    print("\n" + text)
    out = ROOT / "bench" / "results" / f"read-{datetime.now():%Y%m%d-%H%M%S}.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(text)
    print(f"written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
