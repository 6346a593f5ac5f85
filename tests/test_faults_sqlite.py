"""The embedded SQLite database on a full disk, and on a read-only file, with the real server.

- Disk full: the server runs under RLIMIT_FSIZE (the most a process may grow any file to, which is
  how a full volume looks to SQLite: SQLITE_FULL), just above the seeded database's size. Writes go
  on until the limit: then each gets a 503 problem+json `storage-unavailable`, never a 500, reads go
  on being served, every acknowledged report is there and `PRAGMA integrity_check` says ok.
- Read-only: the database file made immutable (`chattr +i`, which binds root too): the server starts,
  serves reads, refuses writes with the same clear 503.
"""

from __future__ import annotations

import resource
import signal
import sqlite3
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.factories import LiveServer, start_server
from tests.test_write_robustness import JUSTICE_TASKS, PLAN_URL, create_key, http, log_errors, unit_report_ids

NO_LIMITS = {"RATE_LIMIT_ENABLED": "false"}


@pytest.fixture
def seeded_file(tmp_path: Path) -> Iterator[tuple[str, Path, str]]:
    """A SQLite file migrated and seeded by a first server run, and a unit key on it."""
    path = tmp_path / "plan.sqlite3"
    url = f"sqlite:///{path}"
    start_server(url, tmp_path / "seed", env=NO_LIMITS).stop()
    yield url, path, create_key(url, tmp_path)


def integrity(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


def assert_storage_problem(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == "storage-unavailable" and "只读" in body["detail"], body
    assert response.headers["retry-after"]


def report(n: int) -> dict[str, Any]:
    # Long summaries fill the log (WAL) quickly; the limit is reached after a few dozen reports.
    return {
        "status": "in_progress",
        "percent": n % 100,
        "summary": f"磁盘测试 {n} " + "进展" * 900,
        "period": "2024-Q1",
    }


def test_disk_full_refuses_writes_clearly_and_corrupts_nothing(
    seeded_file: tuple[str, Path, str], tmp_path: Path
) -> None:
    url, path, secret = seeded_file
    wal = path.with_name(path.name + "-wal")
    limit = max(path.stat().st_size, wal.stat().st_size if wal.exists() else 0) + 512 * 1024

    def full_disk() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # write() then fails with EFBIG instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    server = start_server(url, tmp_path / "full", env=NO_LIMITS, preexec_fn=full_disk)
    acknowledged: list[int] = []
    statuses: Counter[int] = Counter()
    try:
        with http(server, secret) as client:
            for n in range(2000):
                response = client.post(
                    f"{PLAN_URL}/tasks/{JUSTICE_TASKS[n % len(JUSTICE_TASKS)]}/progress", json=report(n)
                )
                statuses[response.status_code] += 1
                if response.status_code == 201:
                    acknowledged.append(response.json()["id"])
                    continue
                assert_storage_problem(response)
                if statuses[503] >= 3:
                    break
            assert statuses[503] >= 3, f"the limit was never reached: {statuses}"
            assert set(statuses) == {201, 503} and len(acknowledged) >= 3, statuses
            # Reads go on while writes are refused.
            assert client.get(f"{PLAN_URL}/tasks/4.4.1").status_code == 200
            assert set(acknowledged) <= set(unit_report_ids(client))
        assert "Traceback" not in server.log_path.read_text(errors="replace"), log_errors(server)
    finally:
        server.stop()

    assert integrity(path) == "ok"
    restarted = start_server(url, tmp_path / "after", env=NO_LIMITS)  # space again: service resumes
    try:
        with http(restarted, secret) as client:
            assert set(acknowledged) <= set(unit_report_ids(client))
            assert client.post(f"{PLAN_URL}/tasks/4.4.1/progress", json=report(1)).status_code == 201
    finally:
        restarted.stop()
    assert integrity(path) == "ok"


def _chattr(flag: str, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["chattr", flag, str(path)], capture_output=True, text=True, check=False)


def test_read_only_database_serves_reads_and_refuses_writes_clearly(
    seeded_file: tuple[str, Path, str], tmp_path: Path
) -> None:
    url, path, secret = seeded_file
    try:
        made = _chattr("+i", path)
    except FileNotFoundError:
        pytest.skip("no chattr on this machine: cannot make the file read-only for root")
    if made.returncode != 0:
        pytest.skip(f"chattr +i not possible here ({made.stderr.strip()}): cannot make the file read-only for root")
    server: LiveServer | None = None
    try:
        server = start_server(url, tmp_path / "ro", env=NO_LIMITS)
        with http(server, secret) as client:
            assert client.get(f"{PLAN_URL}/tasks/4.4.1").status_code == 200
            assert_storage_problem(client.post(f"{PLAN_URL}/tasks/4.4.1/progress", json=report(1)))
            assert client.get("/api/v1/plans").status_code == 200
        assert "Traceback" not in server.log_path.read_text(errors="replace"), log_errors(server)
    finally:
        if server is not None:
            server.stop()
        _chattr("-i", path)
    assert integrity(path) == "ok"
