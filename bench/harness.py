"""Shared by the benchmarks: start a server on port 0, CPU accounting (over uvicorn workers too), RSS, percentiles, machine facts.

(`read_bench.py` has its own copies of some of these; it was still changing when this was written.)
"""

from __future__ import annotations

import os
import platform
import re
import shlex
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

try:
    import sniffio  # noqa: F401
except ImportError:  # httpcore retries this import on every request (a sys.path scan): make it fail fast
    sys.modules["sniffio"] = None  # type: ignore[assignment]

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # the venv's bin: plan-api
RUNNING = re.compile(rb"Uvicorn running on http://[\d.]+:(\d+)")


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    base: str
    log: Path


@contextmanager
def serving(name: str, argv: list[str], env: dict[str, str], workdir: Path, pin: bool) -> Iterator[Server]:
    """Start a uvicorn server (argv must say `--port 0`), read its port from the "Uvicorn running on" line,
    SIGTERM it afterwards. With `pin`, the server runs on CPU 0 (the load generator pins itself to CPU 1)."""
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv,
            cwd=workdir,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=(lambda: os.sched_setaffinity(0, {0})) if pin else None,
        )
        try:
            deadline = time.monotonic() + 120
            while not (match := RUNNING.search(log.read_bytes())):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"{name} did not start:\n{log.read_text(errors='replace')[-3000:]}")
                time.sleep(0.1)
            yield Server(proc, f"http://127.0.0.1:{int(match.group(1))}", log)
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


def port_for(workers: int) -> str:
    """`0` (the server picks, and says which) for one worker; with several, uvicorn's supervisor binds
    the socket and announces port 0, so a free port is chosen here instead."""
    if workers == 1:
        return "0"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


def process_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime, all threads


def descendants(pid: int) -> list[int]:
    """`pid`'s child processes and theirs (uvicorn --workers N: the supervisor's worker processes)."""
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                children = [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
            found += children
            todo += children
    return found


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of `pid` and every live descendant: with several uvicorn workers, all of them."""
    total = 0.0
    for p in (pid, *descendants(pid)):
        with suppress(OSError):  # exited in between
            total += process_cpu_seconds(p)
    return total


def worker_rss_mb(pid: int) -> float:
    """The largest resident size among the processes serving requests: `pid` itself with one worker,
    else the biggest of its descendants (the supervisor itself serves nothing)."""
    sizes = []
    for p in descendants(pid) or [pid]:
        with suppress(OSError):
            sizes.append(resident_mb(p))
    return max(sizes, default=float("nan"))


def resident_mb(pid: int) -> float:
    """The process's resident set size (VmRSS), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def machine_busy_seconds() -> float:
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, Path("/proc/stat").read_text().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], p: int) -> float:
    """Milliseconds, from seconds."""
    if len(values) < 2:
        return values[0] * 1000 if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1] * 1000


def command_line() -> str:
    exe = Path(sys.executable)
    return shlex.join([str(exe.relative_to(ROOT)) if exe.is_relative_to(ROOT) else str(exe), *sys.argv])


def machine(packages: tuple[str, ...]) -> list[str]:
    cpu = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        "?",
    )
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return [
        f"- machine: {os.cpu_count()} CPUs (nproc), {cpu}, {platform.platform()}",
        f"- Python {platform.python_version()}; " + ", ".join(f"{p} {version(p)}" for p in packages),
        f"- git commit {commit.stdout.strip() or '?'} (working tree as it was, uncommitted changes included)",
    ]
