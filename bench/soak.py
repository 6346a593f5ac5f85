"""Soak: a bounded mixed read/write load on a real server, sampling its memory and latency.

    .venv/bin/python bench/soak.py                          # 120 s on a fresh SQLite file
    .venv/bin/python bench/soak.py --duration 300 --database-url postgresql+psycopg://postgres@127.0.0.1:5432/soak

Starts `plan-api serve` (it migrates and seeds the database), issues a unit key, then runs reader
and writer threads for --duration seconds: task lists with varying filters (so the read cache keeps
filling and evicting), task detail, history, the change feed; and progress reports with fresh
Idempotency-Keys (some of them retried, which must replay). The rate limiter stays on, with limits
high enough not to refuse the load, so its counters are part of what is soaked. Every --sample
seconds it records the server's resident memory (VmRSS, all its processes) and the window's
latencies; it prints one line per window and a summary, and writes both as JSON to --out.

Reading the result: RSS after warm-up (the first quarter) should stay flat; errors should be zero.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
PLAN_API = Path(sys.executable).with_name("plan-api")
SLUG = "xiji-fzsh-2021-2025"
PLAN = f"/api/v1/plans/{SLUG}"
UNIT = "县司法局"
TASKS = ["2.3.3", "4.1.3", "4.2.1", "4.4.1", "4.4.2", "4.4.3", "4.4.4", "5.5.3"]  # 县司法局 alone owns these
RUNNING = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")


@dataclass
class Window:
    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    writes: int = 0
    replays: int = 0


class Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.window = Window()

    def record(self, seconds: float, error: str | None = None, *, write: bool = False, replay: bool = False) -> None:
        with self.lock:
            self.window.latencies.append(seconds)
            self.window.writes += write
            self.window.replays += replay
            if error:
                self.window.errors[error] = self.window.errors.get(error, 0) + 1

    def take(self) -> Window:
        with self.lock:
            window, self.window = self.window, Window()
            return window


def rss_kib(pid: int) -> int:
    """VmRSS of the server and its children (uvicorn workers), KiB."""
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    total = 0
    for p in pids:
        try:
            status = Path(f"/proc/{p}/status").read_text()
        except FileNotFoundError:
            continue
        match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        total += int(match.group(1)) if match else 0
    return total


def percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0] * 1000
    return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1] * 1000


def start_server(database_url: str, workdir: Path, workers: int) -> tuple[subprocess.Popen[bytes], str, Path]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "LOG_LEVEL": "INFO",  # the access log too, as in production
        "RATE_LIMIT_PER_ADDRESS": "1000000/minute",
        "RATE_LIMIT_PER_KEY": "1000000/minute",
        "PYTHONUNBUFFERED": "1",
    }
    log = workdir / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(PLAN_API), "serve", "--host", "127.0.0.1", "--port", "0", "--workers", str(workers)],
            cwd=workdir,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 180
    while not (match := RUNNING.search(log.read_text(errors="replace"))):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"server did not start:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.2)
    return proc, f"http://127.0.0.1:{match.group(1)}", log


def issue_key(database_url: str, workdir: Path) -> str:
    done = subprocess.run(
        [str(PLAN_API), "keys", "create", "--unit", UNIT],
        env={**os.environ, "DATABASE_URL": database_url},
        cwd=workdir,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip().splitlines()[-1]


READS = [
    (f"{PLAN}/tasks", {"limit": "50"}),
    (f"{PLAN}/tasks", {"unit": UNIT, "role": "lead"}),
    (f"{PLAN}/tasks", {"status": "in_progress,delayed", "count": "true"}),
    (f"{PLAN}/tasks", {"overdue": "true", "as_of": "2024-01-01"}),
    (f"{PLAN}/tasks", {"q": "普法", "fields": "code,title,status"}),
    (f"{PLAN}/tasks/4.4.1", {}),
    (f"{PLAN}/tasks/4.4.1/progress", {"limit": "20"}),
    (f"/api/v1/units/{UNIT}/progress", {"limit": "20"}),
    ("/api/v1/changes", {"since": "0", "limit": "50"}),
    ("/api/v1/plans", {}),
]


def reader(base: str, stop: threading.Event, rec: Recorder, seed: int) -> None:
    rng = random.Random(seed)
    with httpx.Client(base_url=base, trust_env=False, timeout=30) as client:
        while not stop.is_set():
            path, params = rng.choice(READS)
            params = dict(params)
            if path.endswith("/tasks") and rng.random() < 0.3:  # a long tail of distinct queries
                params["section"] = rng.choice(["1", "2", "2.1", "3", "4", "4.4", "5"])
                params["limit"] = str(rng.randint(1, 200))
            began = time.perf_counter()
            try:
                response = client.get(path, params=params)
                error = None if response.status_code == 200 else f"GET {response.status_code}"
            except httpx.HTTPError as exc:
                error = f"GET {type(exc).__name__}"
            rec.record(time.perf_counter() - began, error)


def writer(base: str, secret: str, stop: threading.Event, rec: Recorder, seed: int) -> None:
    rng = random.Random(seed)
    sent: list[tuple[str, str, dict[str, Any]]] = []
    with httpx.Client(
        base_url=base, trust_env=False, timeout=30, headers={"Authorization": f"Bearer {secret}"}
    ) as client:
        n = 0
        while not stop.is_set():
            n += 1
            replay = bool(sent) and rng.random() < 0.1
            if replay:
                key, task, body = rng.choice(sent)
            else:
                key, task = f"soak-{seed}-{n}-{uuid.uuid4().hex[:8]}", rng.choice(TASKS)
                year, half = rng.randint(2021, 2025), rng.randint(1, 2)
                body = {"status": "in_progress", "percent": rng.randint(0, 99), "summary": f"浸泡测试 {n}",
                        "period": f"{year}-H{half}"}  # fmt: skip
            began = time.perf_counter()
            try:
                response = client.post(f"{PLAN}/tasks/{task}/progress", json=body, headers={"Idempotency-Key": key})
                replayed = response.headers.get("Idempotent-Replayed") == "true"
                error = None if response.status_code == 201 and replayed == replay else f"POST {response.status_code}"
            except httpx.HTTPError as exc:
                error, replayed = f"POST {type(exc).__name__}", False
            rec.record(time.perf_counter() - began, error, write=True, replay=replayed)
            if error is None and not replay:
                sent = [*sent[-200:], (key, task, body)]  # acknowledged: may be retried later


def soak(
    *, duration: float, sample: float, readers: int, writers: int, database_url: str | None, workers: int = 1,
    quiet: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """Runs the soak and returns its samples and summary (also used by tests/test_soak.py)."""
    workdir = Path(tempfile.mkdtemp(prefix="plan-api-soak-"))
    url = database_url or f"sqlite:///{workdir / 'soak.sqlite3'}"
    proc, base, log = start_server(url, workdir, workers)
    samples: list[dict[str, Any]] = []
    try:
        secret = issue_key(url, workdir)
        rec, stop = Recorder(), threading.Event()
        threads = [threading.Thread(target=reader, args=(base, stop, rec, i)) for i in range(readers)]
        threads += [threading.Thread(target=writer, args=(base, secret, stop, rec, 100 + i)) for i in range(writers)]
        start_rss = rss_kib(proc.pid)
        began = time.monotonic()
        for thread in threads:
            thread.start()
        try:
            while (elapsed := time.monotonic() - began) < duration:
                time.sleep(min(sample, duration - elapsed))
                window = rec.take()
                row = {
                    "t": round(time.monotonic() - began, 1),
                    "requests": len(window.latencies),
                    "writes": window.writes,
                    "replays": window.replays,
                    "errors": window.errors,
                    "p50_ms": round(percentile(window.latencies, 50), 1),
                    "p99_ms": round(percentile(window.latencies, 99), 1),
                    "max_ms": round(max(window.latencies, default=0) * 1000, 1),
                    "rss_mib": round(rss_kib(proc.pid) / 1024, 1),
                }
                samples.append(row)
                if not quiet:
                    print(json.dumps(row, ensure_ascii=False), flush=True)
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=60)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    warm = samples[len(samples) // 4 :] or samples
    errors: dict[str, int] = {}
    for row in samples:
        for name, count in row["errors"].items():
            errors[name] = errors.get(name, 0) + count
    summary = {
        "duration_s": duration,
        "readers": readers,
        "writers": writers,
        "workers": workers,
        "database": url.split(":", 1)[0],
        "requests": sum(r["requests"] for r in samples),
        "writes": sum(r["writes"] for r in samples),
        "replays": sum(r["replays"] for r in samples),
        "errors": errors,
        "p99_ms_worst_window": max((r["p99_ms"] for r in samples), default=0),
        "p99_ms_median_window": statistics.median([r["p99_ms"] for r in samples]) if samples else 0,
        "rss_mib_start": round(start_rss / 1024, 1),
        "rss_mib_after_warmup": warm[0]["rss_mib"] if warm else None,
        "rss_mib_end": samples[-1]["rss_mib"] if samples else None,
        "rss_mib_max": max((r["rss_mib"] for r in samples), default=None),
        "traceback_in_log": "Traceback" in log.read_text(errors="replace"),
    }
    return {"summary": summary, "samples": samples}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=120.0, help="seconds of load")
    parser.add_argument("--sample", type=float, default=10.0, help="seconds per sample window")
    parser.add_argument("--readers", type=int, default=3)
    parser.add_argument("--writers", type=int, default=1)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers of the server")
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file in a temp dir")
    parser.add_argument("--out", type=Path, default=None, help="write samples and summary as JSON here")
    args = parser.parse_args()
    result = soak(
        duration=args.duration,
        sample=args.sample,
        readers=args.readers,
        writers=args.writers,
        database_url=args.database_url,
        workers=args.workers,
    )
    print(json.dumps(result["summary"], ensure_ascii=False, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
