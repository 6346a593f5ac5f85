"""`POST /plans/{plan}/progress:batch?dry_run=true`: every check of a real batch, answered per item,
nothing written (no report, no feed event, no status change, no idempotency record)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session

from tests.factories import SEED_SLUG, make_key

PLAN = f"/api/v1/plans/{SEED_SLUG}"
BATCH = f"{PLAN}/progress:batch"


def item(task: str, percent: int = 40, period: str = "2024-Q1", **extra: Any) -> dict[str, Any]:
    return {"task": task, "status": "in_progress", "percent": percent, "summary": "开展普法", "period": period, **extra}


def state(client: TestClient) -> tuple[Any, ...]:
    """What a dry run must leave as it was: the unit's reports, the feed, the tasks' states."""
    reports = client.get("/api/v1/units/县司法局/progress", params={"limit": 500}).json()["items"]
    feed = client.get("/api/v1/changes", params={"since": "0", "limit": 500}).json()
    tasks = client.get(f"{PLAN}/tasks", params={"limit": 500, "fields": "code,status,progress"}).json()["items"]
    return [r["id"] for r in reports], feed["next_cursor"], tasks


def test_a_dry_run_answers_per_item_and_writes_nothing(client: TestClient, db: Session) -> None:
    key = {"Authorization": make_key(db, unit="司法局")}
    sent = client.post(BATCH, json={"items": [item("2.3.3", idempotency_key="sfj-2.3.3")]}, headers=key)
    assert sent.status_code == 200 and sent.json()["created"] == 1
    stored = sent.json()["results"][0]["report"]
    before = state(client)

    items = [
        item("2.3.3", idempotency_key="sfj-2.3.3"),  # exactly what was sent: would be replayed
        item("2.2.5", idempotency_key="sfj-2.2.5"),  # new
        item("2.1.3"),  # not 县司法局's task: permission
        item("2.4.1", percent=150),  # content
        item("2.4.2", period="2024-07"),  # monthly, finer than the plan's quarterly cadence
        item("2.3.3", idempotency_key="sfj-2.3.3", percent=55),  # the same key with other content
    ]
    answer = client.post(BATCH, params={"dry_run": "true"}, json={"items": items}, headers=key)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["dry_run"], body["created"], body["replayed"], body["failed"]) == (True, 1, 1, 4)
    outcomes = [(r["index"], r["task"], r["outcome"]) for r in body["results"]]
    assert outcomes == [
        (0, "2.3.3", "would_replay"),
        (1, "2.2.5", "would_create"),
        (2, "2.1.3", "error"),
        (3, "2.4.1", "error"),
        (4, "2.4.2", "error"),
        (5, "2.3.3", "error"),
    ]
    results = body["results"]
    assert results[0]["report"]["id"] == stored["id"] and results[1]["report"] is None
    assert results[2]["problem"]["status"] == 403 and "无关联" in results[2]["problem"]["detail"]
    assert results[3]["problem"]["errors"][0]["field"] == "body.items.3.percent"
    assert results[4]["problem"]["errors"][0]["field"] == "body.items.4.period"
    assert results[5]["problem"]["code"] == "idempotency-key-reused"
    assert state(client) == before  # nothing written

    # The same batch for real does what the dry run said.
    real = client.post(BATCH, json={"items": items}, headers=key).json()
    assert [r["outcome"] for r in real["results"]] == ["replayed", "created", "error", "error", "error", "error"]
    assert state(client) != before


def test_a_dry_run_checks_the_key_too(client: TestClient) -> None:
    answer = client.post(BATCH, params={"dry_run": "true"}, json={"items": [item("2.3.3")]})
    assert answer.status_code == 401
