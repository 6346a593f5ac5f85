"""Writes under real concurrency and a hard crash, against the real server, on SQLite and PostgreSQL.

Every test here starts `plan-api serve` as a subprocess on a fresh database (the server migrates and
seeds it), creates API keys with `plan-api keys create` (so the CLI is exercised too), and talks to
it over loopback HTTP from several threads at once — no TestClient, no shared session: each request
gets its own connection and transaction in the server, as in production.

- Concurrent distinct reports (single and batch): every one acknowledged, stored exactly once, and
  announced exactly once in a change feed whose seq has no gaps.
- Concurrent identical retries (same Idempotency-Key and body): exactly one report, one id for all.
- SIGKILL after acknowledgements: a restarted server still has every acknowledged report.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.services.periods import parse_period
from tests.conftest import fresh_database_url
from tests.factories import SEED_SLUG, LiveServer, run_plan_api, start_server

PLAN_URL = f"/api/v1/plans/{SEED_SLUG}"
BATCH_URL = f"{PLAN_URL}/progress:batch"
UNIT = "县司法局"
# Tasks 县司法局 alone owns (牵头/责任), so all its reports on them are status reports.
JUSTICE_TASKS = ["2.3.3", "4.1.3", "4.2.1", "4.4.1", "4.4.2", "4.4.3", "4.4.4", "5.5.3"]
THREADS = 8
PER_THREAD = 25
BATCH_THREADS = {6, 7}  # these threads send their reports as batches of BATCH_SIZE
BATCH_SIZE = 5
REQUEST_TIMEOUT = 60.0  # per HTTP request; SQLite writers queue on a 30 s busy timeout at worst
POOL_TIMEOUT = 240.0  # for a whole thread pool run


@pytest.fixture
def database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    yield from fresh_database_url(backend, tmp_path)


@pytest.fixture
def serve(database_url: str, tmp_path: Path) -> Iterator[Callable[[], LiveServer]]:
    """Starts servers on the test's database (one at a time, or again after a kill); stops them all."""
    started: list[LiveServer] = []

    def _start() -> LiveServer:
        try:
            server = start_server(database_url, tmp_path / "server")
        except RuntimeError as exc:
            pytest.fail(str(exc))
        started.append(server)
        return server

    try:
        yield _start
    finally:
        for server in started:
            server.stop()


def log_errors(server: LiveServer) -> str:
    """The distinct exception lines of the server's log (the log itself is mostly access lines)."""
    lines = server.log_path.read_text(errors="replace").splitlines()
    found = Counter(line for line in lines if re.match(r"^[\w.]+(Error|Exception|Violation|Detected)\b", line))
    return "\n".join(f"{n}× {line}" for line, n in found.most_common()) or "(no exception in the server log)"


def create_key(database_url: str, tmp_path: Path, unit: str = UNIT) -> str:
    """`plan-api keys create --unit …`: the secret is the last line of stdout."""
    result = run_plan_api("keys", "create", "--unit", unit, database_url=database_url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    secret = result.stdout.strip().splitlines()[-1]
    assert secret.startswith("pa_"), result.stdout
    return secret


def http(server: LiveServer, secret: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {secret}"} if secret else {}
    return httpx.Client(base_url=server.base_url, headers=headers, trust_env=False, timeout=REQUEST_TIMEOUT)


def report_body(n: int, tag: str) -> dict[str, Any]:
    return {
        "status": "delayed" if n % 7 == 3 else "in_progress",
        "percent": (n * 7) % 100,
        "summary": f"并发测试报告 {tag}-{n}",
        "period": f"{2021 + n % 5}-H{1 + n % 2}",
    }


def run_threads(work: Callable[[int], Any], threads: int = THREADS) -> list[Any]:
    """Runs work(i) for i in range(threads) in threads released together by a barrier."""
    barrier = threading.Barrier(threads, timeout=60)

    def _run(i: int) -> Any:
        barrier.wait()
        return work(i)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        futures = [pool.submit(_run, i) for i in range(threads)]
        return [f.result(timeout=POOL_TIMEOUT) for f in futures]


def unit_report_ids(client: httpx.Client, unit: str = UNIT) -> list[int]:
    """Every report the unit has, paging through its history."""
    ids: list[int] = []
    params: dict[str, Any] = {"limit": 37}  # an odd page size, so paging is really exercised
    for _ in range(1000):
        response = client.get(f"/api/v1/units/{unit}/progress", params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        ids += [item["id"] for item in body["items"]]
        if not body["next_cursor"]:
            return ids
        params["cursor"] = body["next_cursor"]
    raise AssertionError("unit history paging did not end")


def change_feed(client: httpx.Client) -> list[dict[str, Any]]:
    """The whole change feed, paging with next_cursor until has_more is false."""
    events: list[dict[str, Any]] = []
    since = "0"
    for _ in range(1000):
        response = client.get("/api/v1/changes", params={"since": since, "limit": 50})
        assert response.status_code == 200, response.text
        body = response.json()
        events += body["items"]
        since = body["next_cursor"]
        if not body["has_more"]:
            return events
    raise AssertionError("change feed paging did not end")


def assert_feed_is_gapless(events: list[dict[str, Any]]) -> None:
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(1, len(seqs) + 1)), f"seq not 1..N without gaps: {seqs}"


def _failure(code: int, body: Any) -> str | None:
    """None for an acknowledged report (201, or a 200 batch item `created`), else what went wrong."""
    if code == 201 or (code == 200 and body.get("outcome") == "created"):
        return None
    if not isinstance(body, dict):
        return f"{code} {body}"
    problem = body.get("problem") or body
    return f"{code} {problem.get('status')} {problem.get('detail')}"


def test_concurrent_reports_are_all_stored_once(
    serve: Callable[[], LiveServer], database_url: str, tmp_path: Path
) -> None:
    server = serve()
    secret = create_key(database_url, tmp_path)

    def work(i: int) -> list[tuple[int, str, Any]]:
        """Returns (http status, idempotency key, report or batch result) per report."""
        out: list[tuple[int, str, Any]] = []
        run = uuid.uuid4().hex[:8]
        with http(server, secret) as client:
            if i in BATCH_THREADS:
                for start in range(0, PER_THREAD, BATCH_SIZE):
                    items = [
                        {
                            "task": JUSTICE_TASKS[(i + n) % len(JUSTICE_TASKS)],
                            "idempotency_key": f"t{i}-{n}-{run}",
                            **report_body(n, f"t{i}"),
                        }
                        for n in range(start, start + BATCH_SIZE)
                    ]
                    try:
                        response = client.post(BATCH_URL, json={"items": items})
                    except httpx.TransportError as exc:  # recorded, so the failure report shows it
                        out += [(0, item["idempotency_key"], repr(exc)) for item in items]
                        continue
                    body = response.json()
                    for item, result in zip(items, body.get("results", [body] * len(items)), strict=True):
                        out.append((response.status_code, item["idempotency_key"], result))
            else:
                for n in range(PER_THREAD):
                    key = f"t{i}-{n}-{run}"
                    code = JUSTICE_TASKS[(i + n) % len(JUSTICE_TASKS)]
                    try:
                        response = client.post(
                            f"{PLAN_URL}/tasks/{code}/progress",
                            json=report_body(n, f"t{i}"),
                            headers={"Idempotency-Key": key},
                        )
                    except httpx.TransportError as exc:
                        out.append((0, key, repr(exc)))
                        continue
                    out.append((response.status_code, key, response.json()))
        return out

    results = [row for rows in run_threads(work) for row in rows]
    assert len(results) == THREADS * PER_THREAD

    failures = Counter(_failure(code, body) for code, _, body in results)
    del failures[None]
    assert not failures, f"{sum(failures.values())} reports not acknowledged: {dict(failures)}\n{log_errors(server)}"
    acknowledged: dict[int, str] = {}
    sent: dict[str, set[str]] = {}  # task → the periods reported on it
    for code, key, body in results:
        if code == 200:  # a batch: each item answers for itself
            assert body["outcome"] == "created", body
            body = body["report"]
        assert body["kind"] == "status" and body["unit"]["name"] == UNIT, body
        acknowledged[body["id"]] = key
        sent.setdefault(body["task"], set()).add(body["period"])
    assert len(acknowledged) == THREADS * PER_THREAD, "two acknowledgements carry the same report id"
    log = server.log_path.read_text(errors="replace")
    assert "database is locked" not in log and "Traceback" not in log, log_errors(server)
    # The server logged every one of these requests (uvicorn's access log), and never the key.
    assert log.count(f"POST {PLAN_URL}/tasks/") >= PER_THREAD and secret not in log

    with http(server) as client:
        stored = unit_report_ids(client)
        assert len(stored) == len(set(stored)), "the history lists a report twice"
        assert set(stored) == set(acknowledged)
        assert stored == sorted(stored, reverse=True), "history is not newest first"

        events = change_feed(client)
        assert_feed_is_gapless(events)
        created = Counter(e["report_id"] for e in events if e["type"] == "report.created")
        assert set(created) == set(acknowledged) and set(created.values()) == {1}
        assert [e["type"] for e in events].count("key.created") == 1
        for e in events:
            if e["type"] == "task.status_changed":
                assert e["report_id"] in acknowledged

        # Every task's derived state is that of 县司法局's (the only owner slot) newest report on the
        # latest period it reported on (app/services/cycle.py), not simply its last arrival.
        for code in JUSTICE_TASKS:
            task = client.get(f"{PLAN_URL}/tasks/{code}").json()
            (state,) = task["unit_states"]
            latest_period = max(sent[code], key=lambda p: parse_period(p).end)
            history = client.get(f"{PLAN_URL}/tasks/{code}/progress", params={"limit": 1, "period": latest_period})
            latest = history.json()["items"][0]
            assert state["report_id"] == latest["id"], f"{code}: state from report {state['report_id']}, not the latest"
            assert (task["status"], task["progress"]) == (latest["status"], latest["percent"]), code

    # A retry after the storm replays: same id, no new report.
    with http(server, secret) as client:
        some_id, key = next(iter(acknowledged.items()))
        original = next(body for _, k, body in results if k == key)
        replay = client.post(
            f"{PLAN_URL}/tasks/{original['task']}/progress",
            json={k: original[k] for k in ("status", "percent", "summary", "period")},
            headers={"Idempotency-Key": key},
        )
        assert replay.status_code == 201 and replay.headers.get("Idempotent-Replayed") == "true"
        assert replay.json()["id"] == some_id
        assert len(unit_report_ids(client)) == len(acknowledged)


def test_concurrent_identical_retries_create_one_report(
    serve: Callable[[], LiveServer], database_url: str, tmp_path: Path
) -> None:
    server = serve()
    secret = create_key(database_url, tmp_path)
    rounds = 3  # several rounds, each on a fresh key, to give a race more than one chance

    for r in range(rounds):
        key = f"same-{r}-{uuid.uuid4().hex}"
        body = report_body(r, f"same-{key}")

        def work(_: int, key: str = key, body: dict[str, Any] = body) -> tuple[int, dict[str, Any], bool]:
            with http(server, secret) as client:
                response = client.post(f"{PLAN_URL}/tasks/4.4.1/progress", json=body, headers={"Idempotency-Key": key})
                return response.status_code, response.json(), response.headers.get("Idempotent-Replayed") == "true"

        answers = run_threads(work)
        assert [code for code, _, _ in answers] == [201] * THREADS, answers
        ids = {answer["id"] for _, answer, _ in answers}
        assert len(ids) == 1, f"round {r}: {THREADS} identical requests created {len(ids)} reports"
        assert sum(not replayed for _, _, replayed in answers) == 1, "exactly one answer is the original"
        # The replays answer exactly as the original did.
        assert len({str(answer) for _, answer, _ in answers}) == 1

    with http(server) as client:
        stored = unit_report_ids(client)
        assert len(stored) == rounds
        events = change_feed(client)
        assert_feed_is_gapless(events)
        assert sorted(e["report_id"] for e in events if e["type"] == "report.created") == sorted(stored)


# Tasks two units own together (县司法局 and the other), for concurrent reports from both owners.
SHARED_TASKS = {
    "2.1.4": "县委宣传部",
    "2.2.1": "县委宣传部",
    "2.3.4": "县委宣传部",
    "4.5.1": "县委宣传部",
    "3.1.1": "县人大办",
    "4.2.3": "县政府办",
    "4.3.2": "县委政法委",
}


def test_concurrent_reports_of_two_owners_derive_the_task_state(
    serve: Callable[[], LiveServer], database_url: str, tmp_path: Path
) -> None:
    """Both owners of a task report the same state at the same moment: the task must take that state.

    Each report derives the task's status and progress from both owners' latest states; a derivation
    that missed the other owner's concurrent report must not be the one that sticks. Rounds alternate
    between `completed` and `in_progress`, so a stale derivation shows in the status or the percent.
    """
    server = serve()
    secrets = {unit: create_key(database_url, tmp_path, unit) for unit in {UNIT, *SHARED_TASKS.values()}}
    pairs = [(code, owner) for code, other in SHARED_TASKS.items() for owner in (UNIT, other)]

    for r in range(4):
        status, percent = ("completed", 100) if r % 2 == 0 else ("in_progress", 30 + 10 * r)
        body = {"status": status, "percent": percent, "summary": f"第 {r} 轮", "period": "2025-H2"}

        def work(i: int, body: dict[str, Any] = body) -> int | str:
            code, owner = pairs[i]
            try:
                with http(server, secrets[owner]) as client:
                    return client.post(f"{PLAN_URL}/tasks/{code}/progress", json=body).status_code
            except httpx.TransportError as exc:
                return repr(exc)

        answers = run_threads(work, threads=len(pairs))
        assert answers == [201] * len(pairs), f"round {r}: {answers}\n{log_errors(server)}"

        with http(server) as client:
            wrong = {}
            for code, other in SHARED_TASKS.items():
                task = client.get(f"{PLAN_URL}/tasks/{code}").json()
                states = {s["unit"]["name"]: (s["status"], s["percent"]) for s in task["unit_states"]}
                assert states == {UNIT: (status, percent), other: (status, percent)}, (r, code, states)
                if (task["status"], task["progress"]) != (status, percent):
                    wrong[code] = (task["status"], task["progress"])
            assert not wrong, f"round {r}: both owners reported {status} {percent}%, yet the tasks say {wrong}"


def test_acknowledged_reports_survive_sigkill(
    serve: Callable[[], LiveServer], database_url: str, tmp_path: Path
) -> None:
    """Writers are mid-stream when the server is SIGKILLed: every acknowledged report survives."""
    server = serve()
    secret = create_key(database_url, tmp_path)
    pid = server.proc.pid
    # `plan-api serve` runs uvicorn in-process (1 worker): the Popen'd process is the server itself.
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        assert children.read_text().split() == [], "plan-api serve forked: SIGKILL would miss the server"

    writers = 4
    kill_after = 40  # acknowledgements before the kill
    acknowledged: list[int] = []
    lock = threading.Lock()
    enough = threading.Event()

    def work(i: int) -> int:
        """Posts until the server dies; returns how many requests were cut off (0 or 1)."""
        own_tasks = JUSTICE_TASKS[2 * i : 2 * i + 2]  # disjoint per writer: this test is about durability
        with http(server, secret) as client:
            for n in range(500):
                try:
                    response = client.post(
                        f"{PLAN_URL}/tasks/{own_tasks[n % 2]}/progress", json=report_body(n, f"k{i}")
                    )
                except httpx.TransportError:
                    return 1
                assert response.status_code == 201, response.text
                with lock:
                    acknowledged.append(response.json()["id"])
                    if len(acknowledged) >= kill_after:
                        enough.set()
        return 0

    with ThreadPoolExecutor(max_workers=writers + 1) as pool:
        futures = [pool.submit(work, i) for i in range(writers)]
        assert enough.wait(timeout=POOL_TIMEOUT), "the writers did not get going"
        os.kill(pid, signal.SIGKILL)
        assert server.proc.wait(timeout=20) == -signal.SIGKILL
        cut_off = sum(f.result(timeout=POOL_TIMEOUT) for f in futures)
    with pytest.raises(httpx.TransportError), http(server) as client:
        client.get("/healthz")  # really gone
    assert len(acknowledged) == len(set(acknowledged)) >= kill_after

    restarted = serve()
    with http(restarted) as client:
        stored = set(unit_report_ids(client))
        assert set(acknowledged) <= stored, f"lost acknowledged reports: {sorted(set(acknowledged) - stored)}"
        # A request cut off by the kill may or may not have committed; nothing else may appear.
        assert len(stored - set(acknowledged)) <= cut_off
        events = change_feed(client)
        assert_feed_is_gapless(events)
        assert {e["report_id"] for e in events if e["type"] == "report.created"} == stored
    with http(restarted, secret) as client:  # and it takes writes again
        response = client.post(f"{PLAN_URL}/tasks/4.4.1/progress", json=report_body(1, "after"))
        assert response.status_code == 201, response.text
        assert response.json()["id"] not in stored
