"""A correction and a review round trip against a real `plan-api serve`, over HTTP, on both engines."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import fresh_database_url
from tests.factories import SEED_SLUG, run_plan_api, start_server

PLAN = f"/api/v1/plans/{SEED_SLUG}"
TASK = f"{PLAN}/tasks/2.3.3"  # one owner: 县司法局


@pytest.fixture
def database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    yield from fresh_database_url(backend, tmp_path)


def key(database_url: str, tmp_path: Path, *args: str) -> dict[str, str]:
    result = run_plan_api("keys", "create", *args, database_url=database_url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return {"Authorization": f"Bearer {result.stdout.strip().splitlines()[-1]}"}


def test_correction_and_review_round_trip_over_http(database_url: str, tmp_path: Path) -> None:
    try:
        server = start_server(database_url, tmp_path / "server")
    except RuntimeError as exc:
        pytest.fail(str(exc))
    try:
        unit = key(database_url, tmp_path, "--unit", "司法局")
        admin = key(database_url, tmp_path, "--admin", "--name", "依法治县办")
        with httpx.Client(base_url=server.base_url, trust_env=False, timeout=60) as client:
            body = {"status": "in_progress", "percent": 60, "summary": "四季度进展", "period": "2023-Q4"}
            first = client.post(f"{TASK}/progress", json=body, headers={**unit, "Idempotency-Key": "q4"})
            assert first.status_code == 201, first.text
            # A correction: the same unit, task and period, a new key.
            fixed = client.post(
                f"{TASK}/progress", json={**body, "percent": 55}, headers={**unit, "Idempotency-Key": "q4b"}
            )
            assert fixed.status_code == 201 and fixed.json()["supersedes"] == first.json()["id"]
            assert client.get(f"/api/v1/progress/{first.json()['id']}").json()["current"] is False
            assert client.get(TASK).json()["progress"] == 55

            # Review on: the next report waits, is returned, resubmitted, accepted.
            schedule = {
                "cadence": "quarterly",
                "deadline_days": 10,
                "cooperating_units_report": False,
                "review_required": True,
            }
            assert client.put(f"{PLAN}/schedule", json=schedule, headers=admin).status_code == 200
            sent = client.post(
                f"{TASK}/progress", json={**body, "percent": 80, "period": "2024-Q1"}, headers=unit
            ).json()
            assert sent["review"]["state"] == "pending" and client.get(TASK).json()["progress"] == 55
            returned = client.post(
                f"/api/v1/progress/{sent['id']}/review", json={"decision": "return", "reason": "缺佐证"}, headers=admin
            )
            assert returned.status_code == 200 and returned.json()["review"]["state"] == "returned"
            mine = client.get("/api/v1/units/司法局/progress", params={"review": "returned"}).json()["items"]
            assert [r["id"] for r in mine] == [sent["id"]]
            again = client.post(
                f"{TASK}/progress",
                json={**body, "percent": 80, "period": "2024-Q1", "evidence": ["西司发〔2024〕2号"]},
                headers=unit,
            ).json()
            assert again["supersedes"] == sent["id"]
            batch = client.post(
                f"{PLAN}/reviews:batch", json={"items": [{"report": again["id"], "decision": "accept"}]}, headers=admin
            )
            assert batch.status_code == 200 and batch.json()["accepted"] == 1, batch.text
            task = client.get(TASK).json()
            assert (task["status"], task["progress"]) == ("in_progress", 80)
            assert [s["report_id"] for s in task["unit_states"]] == [again["id"]]

            # The retry of the very first report still replays its original answer.
            replay = client.post(f"{TASK}/progress", json=body, headers={**unit, "Idempotency-Key": "q4"})
            assert replay.headers.get("idempotent-replayed") == "true" and replay.json()["id"] == first.json()["id"]

            feed = client.get("/api/v1/changes", params={"since": 0, "limit": 500}).json()["items"]
            types = [e["type"] for e in feed]
            for expected in ("schedule.changed", "report.returned", "report.accepted", "task.status_changed"):
                assert expected in types, types
        log = server.log_path.read_text(errors="replace")
        assert "Traceback" not in log, server.log_tail()
    finally:
        server.stop()
