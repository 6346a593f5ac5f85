"""A batch of reports (`app/services/batches.py`), through the real app: each item parsed on its own
(field paths `body.items.N.…`); a dry run runs every check of a real batch, answers per item and
writes nothing (no report, no feed event, no status change, no idempotency record); an atomic batch
with a failing item writes nothing and answers 422 with the other items `rolled_back`."""

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


def test_each_item_is_parsed_on_its_own_with_field_paths(client: TestClient, db: Session) -> None:
    key = {"Authorization": make_key(db, unit="司法局")}
    no_task = {k: v for k, v in item("2.3.4").items() if k != "task"}
    items = [item("2.3.3"), item("2.2.5", percent=150), no_task, item("2.4.1", summary=""), item("2.4.2")]
    answer = client.post(BATCH, json={"items": items}, headers=key)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [(r["index"], r["task"], r["outcome"]) for r in body["results"]] == [
        (0, "2.3.3", "created"),
        (1, "2.2.5", "error"),
        (2, None, "error"),
        (3, "2.4.1", "error"),
        (4, "2.4.2", "created"),
    ]
    fields = [[e["field"] for e in r["problem"]["errors"]] for r in body["results"][1:4]]
    assert fields == [["body.items.1.percent"], ["body.items.2.task"], ["body.items.3.summary"]]
    counts = {k: body[k] for k in ("dry_run", "atomic", "created", "replayed", "failed")}
    assert counts == {"dry_run": False, "atomic": False, "created": 2, "replayed": 0, "failed": 3}


def test_an_atomic_batch_with_one_bad_item_writes_nothing(client: TestClient, db: Session) -> None:
    key = {"Authorization": make_key(db, unit="司法局")}
    replayed = client.post(BATCH, json={"items": [item("2.3.3", idempotency_key="sfj-2.3.3")]}, headers=key)
    assert replayed.status_code == 200 and replayed.json()["created"] == 1
    before = state(client)

    items = [item("2.3.3", idempotency_key="sfj-2.3.3"), item("2.2.5", idempotency_key="sfj-2.2.5"), item("2.1.3")]
    answer = client.post(BATCH, params={"atomic": "true"}, json={"items": items}, headers=key)
    assert answer.status_code == 422 and answer.headers["content-type"].startswith("application/problem+json")
    body = answer.json()
    counts = {k: body[k] for k in ("code", "atomic", "created", "replayed", "failed")}
    assert counts == {"code": "batch-rejected", "atomic": True, "created": 0, "replayed": 0, "failed": 1}
    assert [(r["outcome"], r["report"]) for r in body["results"][:2]] == [("rolled_back", None)] * 2
    assert body["results"][2]["outcome"] == "error" and body["results"][2]["problem"]["status"] == 403
    assert state(client) == before  # nothing written

    retried = client.post(BATCH, params={"atomic": "true"}, json={"items": items[:2]}, headers=key).json()
    assert [r["outcome"] for r in retried["results"]] == ["replayed", "created"]  # item 1's key was not kept


def test_a_dry_run_of_an_atomic_batch_answers_per_item(client: TestClient, db: Session) -> None:
    """A dry run says what each item would do, even where the real atomic batch would be refused."""
    key = {"Authorization": make_key(db, unit="司法局")}
    before = state(client)
    items = [item("2.3.3"), item("2.1.3")]
    answer = client.post(BATCH, params={"atomic": "true", "dry_run": "true"}, json={"items": items}, headers=key)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["dry_run"], body["atomic"], body["created"], body["failed"]) == (True, True, 1, 1)
    assert [r["outcome"] for r in body["results"]] == ["would_create", "error"]
    assert state(client) == before
    assert client.post(BATCH, params={"atomic": "true"}, json={"items": items}, headers=key).status_code == 422
