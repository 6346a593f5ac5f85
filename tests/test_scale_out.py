"""Scale-out: two separate server processes, one of them with `--workers 2`, on one PostgreSQL.

Nothing the service guarantees may depend on which process answers: concurrent writers across them
are all stored once with a gapless change feed; the same Idempotency-Key through both is one report;
a key revoked through one is refused by the other at once; a write through one is read through the
other at once (the read cache is keyed on the database's data version, not on process memory).
Each request below opens its own connection, so the two workers of the second server both answer.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import fresh_database_url
from tests.factories import LiveServer, run_plan_api, start_server
from tests.test_write_robustness import (
    JUSTICE_TASKS,
    PLAN_URL,
    assert_feed_is_gapless,
    change_feed,
    create_key,
    report_body,
    run_threads,
    unit_report_ids,
)

SETTINGS = {"RATE_LIMIT_ENABLED": "false", "DB_POOL_SIZE": "4", "DB_MAX_OVERFLOW": "4"}


@dataclass
class Cluster:
    one: LiveServer  # 1 worker
    two: LiveServer  # --workers 2
    database_url: str
    workdir: Path

    @property
    def servers(self) -> list[LiveServer]:
        return [self.one, self.two]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    tmp = tmp_path_factory.mktemp("scale-out")
    for url in fresh_database_url("postgresql", tmp):
        one = start_server(url, tmp / "one", env=SETTINGS)  # migrates and seeds
        try:
            two = start_server(url, tmp / "two", env=SETTINGS, args=("--workers", "2"))
            try:
                yield Cluster(one=one, two=two, database_url=url, workdir=tmp)
            finally:
                two.stop()
        finally:
            one.stop()


def call(server: LiveServer, method: str, path: str, secret: str | None = None, **kwargs: Any) -> httpx.Response:
    """One request on a connection of its own (so either worker of a server may answer it)."""
    headers = {**({"Authorization": f"Bearer {secret}"} if secret else {}), **kwargs.pop("headers", {})}
    with httpx.Client(base_url=server.base_url, trust_env=False, timeout=60) as client:
        return client.request(method, path, headers=headers, **kwargs)


def test_second_server_really_runs_two_workers(cluster: Cluster) -> None:
    children = Path(f"/proc/{cluster.two.proc.pid}/task/{cluster.two.proc.pid}/children")
    if not children.exists():
        pytest.skip("no /proc children listing here")
    commands = [Path(f"/proc/{pid}/cmdline").read_bytes() for pid in children.read_text().split()]
    assert sum(b"spawn_main" in command for command in commands) == 2  # besides multiprocessing's tracker


def test_concurrent_writers_across_servers_are_all_stored_once(cluster: Cluster) -> None:
    secret = create_key(cluster.database_url, cluster.workdir)
    per_thread = 12

    def work(i: int) -> list[tuple[int, Any]]:
        server = cluster.servers[i % 2]
        out = []
        for n in range(per_thread):
            response = call(
                server,
                "POST",
                f"{PLAN_URL}/tasks/{JUSTICE_TASKS[(i + n) % len(JUSTICE_TASKS)]}/progress",
                secret,
                json=report_body(n, f"s{i}"),
                headers={"Idempotency-Key": f"scale-{i}-{n}-{uuid.uuid4().hex[:6]}"},
            )
            out.append((response.status_code, response.json()))
        return out

    results = [row for rows in run_threads(work, threads=6) for row in rows]
    assert [code for code, _ in results] == [201] * len(results), [b for c, b in results if c != 201][:3]
    acknowledged = {body["id"] for _, body in results}
    assert len(acknowledged) == len(results)
    for server in cluster.servers:
        with httpx.Client(base_url=server.base_url, trust_env=False, timeout=60) as client:
            assert acknowledged <= set(unit_report_ids(client))
            events = change_feed(client)
            assert_feed_is_gapless(events)
            created = [e["report_id"] for e in events if e["type"] == "report.created"]
            assert len(created) == len(set(created)) and acknowledged <= set(created)


def test_same_idempotency_key_through_both_servers_is_one_report(cluster: Cluster) -> None:
    secret = create_key(cluster.database_url, cluster.workdir)
    for r in range(3):
        key, body = f"both-{r}-{uuid.uuid4().hex}", report_body(r, f"both-{r}")

        def work(i: int, key: str = key, body: dict[str, Any] = body) -> tuple[int, int]:
            response = call(
                cluster.servers[i % 2],
                "POST",
                f"{PLAN_URL}/tasks/4.4.2/progress",
                secret,
                json=body,
                headers={"Idempotency-Key": key},
            )
            return response.status_code, response.json().get("id")

        answers = run_threads(work, threads=8)
        assert {code for code, _ in answers} == {201}, answers
        assert len({report_id for _, report_id in answers}) == 1, f"round {r}: {answers}"


def test_a_key_revoked_through_one_server_is_refused_by_the_other_at_once(cluster: Cluster) -> None:
    admin = run_plan_api(
        "keys", "create", "--admin", "--name", "扩展测试", "--jurisdiction", "640422",
        database_url=cluster.database_url, cwd=cluster.workdir,
    )  # fmt: skip
    assert admin.returncode == 0, admin.stderr
    admin_secret = admin.stdout.strip().splitlines()[-1]
    secret = create_key(cluster.database_url, cluster.workdir)
    prefix = secret.removeprefix("pa_").split("_", 1)[0]
    body = report_body(1, "revoke")
    for _ in range(4):  # both workers of the second server accept it first
        assert call(cluster.two, "POST", f"{PLAN_URL}/tasks/4.4.3/progress", secret, json=body).status_code == 201
    revoked = call(cluster.one, "DELETE", f"/api/v1/admin/keys/{prefix}", admin_secret)
    assert revoked.status_code == 200, revoked.text
    for _ in range(6):
        refused = call(cluster.two, "POST", f"{PLAN_URL}/tasks/4.4.3/progress", secret, json=body)
        assert refused.status_code == 401 and "吊销" in refused.json()["detail"], refused.text


def test_a_write_through_one_server_is_read_through_the_other_at_once(cluster: Cluster) -> None:
    unit = "县委宣传部"  # co-owns 2.1.4 with 县司法局; no other test here reports on it
    secret = create_key(cluster.database_url, cluster.workdir, unit)
    task = f"{PLAN_URL}/tasks/2.1.4"
    for r, percent in enumerate([15, 35, 55, 75]):
        for _ in range(4):  # warm the read caches of both workers of the second server
            assert call(cluster.two, "GET", task).status_code == 200
        before = call(cluster.two, "GET", task)
        body = {"status": "in_progress", "percent": percent, "summary": f"缓存一致性 {r}", "period": f"{2022 + r}-Q4"}
        written = call(cluster.one, "POST", f"{task}/progress", secret, json=body)
        assert written.status_code == 201, written.text
        for _ in range(4):
            after = call(cluster.two, "GET", task)
            states = {s["unit"]["name"]: s for s in after.json()["unit_states"]}
            assert states[unit]["report_id"] == written.json()["id"], (r, states[unit])
            assert states[unit]["percent"] == percent
            assert after.headers["etag"] != before.headers["etag"]
            # The ETag the other server sent is stale here too: no 304 for data that changed.
            assert call(cluster.two, "GET", task, headers={"If-None-Match": before.headers["etag"]}).status_code == 200
