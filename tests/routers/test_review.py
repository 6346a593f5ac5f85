"""Report versions, withdrawal and review through the API: which report counts, and the task follows.

2.3.3 has one owner, 县司法局 (牵头), so its state is exactly that of 司法局's counting report.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session, col, func, select

from app.models import ChangeEvent, ProgressReport
from tests.factories import make_key

PLAN = "/api/v1/plans/xiji-fzsh-2021-2025"
TASK = f"{PLAN}/tasks/2.3.3"
Q4 = {"status": "in_progress", "percent": 60, "summary": "组建普法志愿者队伍 12 支", "period": "2023-Q4"}
Q3 = {**Q4, "percent": 40, "summary": "补报三季度", "period": "2023-Q3"}
REVIEW_ON = {"cadence": "quarterly", "deadline_days": 10, "cooperating_units_report": False, "review_required": True}


def post(client: TestClient, key: str, body: dict[str, Any], **headers: str) -> dict[str, Any]:
    response = client.post(f"{TASK}/progress", json=body, headers={"Authorization": key, **headers})
    assert response.status_code == 201, response.text
    return dict(response.json())


def task_state(client: TestClient) -> tuple[str, int, list[int]]:
    task = client.get(TASK).json()
    return task["status"], task["progress"], [s["report_id"] for s in task["unit_states"]]


def report(client: TestClient, report_id: int) -> dict[str, Any]:
    return dict(client.get(f"/api/v1/progress/{report_id}").json())


def event_types(db: Session, prefix: str) -> list[str]:
    rows = db.exec(
        select(ChangeEvent.type).where(col(ChangeEvent.type).startswith(prefix)).order_by(col(ChangeEvent.id))
    )
    return list(rows)


def turn_review_on(client: TestClient, admin: str) -> None:
    response = client.put(f"{PLAN}/schedule", json=REVIEW_ON, headers={"Authorization": admin})
    assert response.status_code == 200, response.text


# --- versions ------------------------------------------------------------------------------------


def test_a_second_report_on_the_same_period_supersedes_the_first(client: TestClient, db: Session) -> None:
    key = make_key(db, unit="司法局")
    first = post(client, key, Q4)
    assert (first["supersedes"], first["superseded_by"], first["current"]) == (None, None, True)
    second = post(client, key, {**Q4, "percent": 50})
    assert (second["supersedes"], second["current"]) == (first["id"], True)
    old = report(client, first["id"])
    assert (old["superseded_by"], old["current"]) == (second["id"], False)
    # The history keeps both; only the head counts.
    history = client.get(f"{TASK}/progress").json()["items"]
    assert [h["id"] for h in history] == [second["id"], first["id"]]
    assert task_state(client) == ("in_progress", 50, [second["id"]])


def test_a_back_filled_earlier_quarter_never_moves_the_task_backwards(client: TestClient, db: Session) -> None:
    key = make_key(db, unit="司法局")
    q4 = post(client, key, Q4)
    q3 = post(client, key, Q3)  # sent after Q4, about an earlier quarter
    assert q3["supersedes"] is None  # another period: not a version of the Q4 report
    assert task_state(client) == ("in_progress", 60, [q4["id"]])
    # The owner's state names the period it rests on, today and when read as of a past date.
    assert [s["period"] for s in client.get(TASK).json()["unit_states"]] == ["2023-Q4"]
    past = client.get(TASK, params={"as_of": "2020-01-01"}).json()
    assert (past["status"], past["unit_states"]) == ("not_started", [])
    future = client.get(TASK, params={"as_of": "2099-01-01"}).json()
    assert [(s["period"], s["report_id"]) for s in future["unit_states"]] == [("2023-Q4", q4["id"])]


def test_versions_inside_one_batch_chain_in_order(client: TestClient, db: Session) -> None:
    key = make_key(db, unit="司法局")
    items = [{"task": "2.3.3", **Q4, "percent": p} for p in (10, 20, 30)]
    body = client.post(f"{PLAN}/progress:batch", json={"items": items}, headers={"Authorization": key}).json()
    ids = [r["report"]["id"] for r in body["results"]]
    assert [r["report"]["supersedes"] for r in body["results"]] == [None, ids[0], ids[1]]
    assert [report(client, i)["superseded_by"] for i in ids] == [ids[1], ids[2], None]
    assert task_state(client) == ("in_progress", 30, [ids[2]])


def test_admin_corrections_supersede_each_other_per_period(client: TestClient, db: Session) -> None:
    unit, admin = make_key(db, unit="司法局"), make_key(db, admin=True)
    post(client, unit, Q4)
    first = post(client, admin, {**Q4, "status": "delayed", "percent": 10})
    assert first["kind"] == "correction" and first["supersedes"] is None
    assert task_state(client)[:2] == ("delayed", 10)
    second = post(client, admin, {**Q4, "percent": 30})
    assert second["supersedes"] == first["id"]
    assert task_state(client)[:2] == ("in_progress", 30)


def test_an_idempotent_retry_replays_and_creates_no_version(client: TestClient, db: Session) -> None:
    key = make_key(db, unit="司法局")
    first = client.post(f"{TASK}/progress", json=Q4, headers={"Authorization": key, "Idempotency-Key": "sfj-q4"})
    stored = db.exec(select(func.count()).select_from(ProgressReport)).one()
    again = client.post(f"{TASK}/progress", json=Q4, headers={"Authorization": key, "Idempotency-Key": "sfj-q4"})
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert db.exec(select(func.count()).select_from(ProgressReport)).one() == stored
    assert report(client, first.json()["id"])["superseded_by"] is None
    # A new key on the same period is a correction, superseding the first.
    fix = client.post(
        f"{TASK}/progress", json={**Q4, "percent": 70}, headers={"Authorization": key, "Idempotency-Key": "sfj-q4-fix"}
    )
    assert fix.json()["supersedes"] == first.json()["id"]
    # The original key still replays the original answer, as first given.
    replay = client.post(f"{TASK}/progress", json=Q4, headers={"Authorization": key, "Idempotency-Key": "sfj-q4"})
    assert replay.headers["idempotent-replayed"] == "true" and replay.json()["id"] == first.json()["id"]
    assert task_state(client)[:2] == ("in_progress", 70)


# --- withdrawal ----------------------------------------------------------------------------------


def test_withdrawal_by_the_unit_and_by_an_admin(client: TestClient, db: Session) -> None:
    key, admin, other = make_key(db, unit="司法局"), make_key(db, admin=True), make_key(db, unit="民政局")
    q4, q3 = post(client, key, Q4), post(client, key, Q3)
    url = f"/api/v1/progress/{q4['id']}/withdraw"
    response = client.post(url, json={"reason": "数据填错"}, headers={"Authorization": key})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["current"], body["withdrawn_reason"]) == (False, "数据填错") and body["withdrawn_at"]
    assert task_state(client) == ("in_progress", 40, [q3["id"]])  # the latest counting period is Q3 now

    again = client.post(url, json={"reason": "再撤"}, headers={"Authorization": key})
    assert again.status_code == 409 and "撤回" in again.json()["detail"]
    refused = client.post(
        f"/api/v1/progress/{q3['id']}/withdraw", json={"reason": "x"}, headers={"Authorization": other}
    )
    assert refused.status_code == 403 and refused.json()["code"] == "not-your-report"
    missing = client.post(f"/api/v1/progress/{q3['id']}/withdraw", json={}, headers={"Authorization": key})
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "body.reason"
    assert (
        client.post(
            "/api/v1/progress/999999/withdraw", json={"reason": "x"}, headers={"Authorization": key}
        ).status_code
        == 404
    )

    by_admin = client.post(
        f"/api/v1/progress/{q3['id']}/withdraw", json={"reason": "重复报送"}, headers={"Authorization": admin}
    )
    assert by_admin.status_code == 200
    assert task_state(client) == ("not_started", 0, [])  # nothing counts any more
    assert event_types(db, "report.withdrawn") == ["report.withdrawn", "report.withdrawn"]
    # Reporting again on the withdrawn period supersedes the withdrawn version, and counts.
    fresh = post(client, key, {**Q4, "percent": 65})
    assert fresh["supersedes"] == q4["id"]
    assert task_state(client) == ("in_progress", 65, [fresh["id"]])


def test_only_the_current_version_can_be_withdrawn(client: TestClient, db: Session) -> None:
    key = make_key(db, unit="司法局")
    first = post(client, key, Q4)
    second = post(client, key, {**Q4, "percent": 50})
    response = client.post(
        f"/api/v1/progress/{first['id']}/withdraw", json={"reason": "x"}, headers={"Authorization": key}
    )
    assert response.status_code == 409 and str(second["id"]) in response.json()["detail"]
    assert task_state(client)[:2] == ("in_progress", 50)


# --- review --------------------------------------------------------------------------------------


def test_under_review_reports_count_only_once_accepted(client: TestClient, db: Session) -> None:
    key, admin = make_key(db, unit="司法局"), make_key(db, admin=True)
    turn_review_on(client, admin)
    pending = post(client, key, Q4)
    assert pending["review"] == {"state": "pending", "reviewed_at": None, "reason": None}
    assert task_state(client) == ("not_started", 0, [])  # pending does not move the task

    queue = client.get(f"{PLAN}/reviews", headers={"Authorization": admin}).json()["items"]
    assert [r["id"] for r in queue] == [pending["id"]]
    assert client.get(f"{PLAN}/reviews", headers={"Authorization": key}).status_code == 403

    url = f"/api/v1/progress/{pending['id']}/review"
    response = client.post(url, json={"decision": "accept"}, headers={"Authorization": admin})
    assert response.status_code == 200, response.text
    review = response.json()["review"]
    assert review["state"] == "accepted" and review["reviewed_at"]
    assert task_state(client) == ("in_progress", 60, [pending["id"]])
    assert (
        client.post(url, json={"decision": "return", "reason": "x"}, headers={"Authorization": admin}).status_code
        == 409
    )
    accepted = client.get(f"{PLAN}/reviews", params={"state": "accepted"}, headers={"Authorization": admin}).json()
    assert [r["id"] for r in accepted["items"]] == [pending["id"]]
    assert event_types(db, "report.accepted") == ["report.accepted"]
    assert "task.status_changed" in event_types(db, "task.")


def test_a_returned_report_never_counts_and_the_unit_lists_it(client: TestClient, db: Session) -> None:
    key, admin = make_key(db, unit="司法局"), make_key(db, admin=True)
    turn_review_on(client, admin)
    sent = post(client, key, Q4)
    url = f"/api/v1/progress/{sent['id']}/review"
    no_reason = client.post(url, json={"decision": "return"}, headers={"Authorization": admin})
    assert no_reason.status_code == 422
    assert client.post(url, json={"decision": "accept"}, headers={"Authorization": key}).status_code == 403
    response = client.post(url, json={"decision": "return", "reason": "佐证材料不全"}, headers={"Authorization": admin})
    assert response.status_code == 200
    assert response.json()["review"]["state"] == "returned" and response.json()["review"]["reason"] == "佐证材料不全"
    assert task_state(client) == ("not_started", 0, [])

    returned = client.get("/api/v1/units/司法局/progress", params={"review": "returned"}).json()["items"]
    assert [r["id"] for r in returned] == [sent["id"]]
    history = client.get(f"{TASK}/progress", params={"review": "returned"}).json()["items"]
    assert [r["id"] for r in history] == [sent["id"]]
    # The unit resubmits: a new pending version; accepted, it counts.
    again = post(client, key, {**Q4, "evidence": ["西司发〔2024〕1号"]})
    assert (again["supersedes"], again["review"]["state"]) == (sent["id"], "pending")
    ok = client.post(
        f"/api/v1/progress/{again['id']}/review", json={"decision": "accept"}, headers={"Authorization": admin}
    )
    assert ok.status_code == 200
    assert task_state(client) == ("in_progress", 60, [again["id"]])
    assert event_types(db, "report.returned") == ["report.returned"]


def test_admin_corrections_are_not_reviewed(client: TestClient, db: Session) -> None:
    admin = make_key(db, admin=True)
    turn_review_on(client, admin)
    correction = post(client, admin, {**Q4, "status": "delayed", "percent": 20})
    assert correction["review"]["state"] == "not_required"
    assert task_state(client)[:2] == ("delayed", 20)


def test_review_batch_is_answered_per_item(client: TestClient, db: Session) -> None:
    key, admin = make_key(db, unit="司法局"), make_key(db, admin=True)
    turn_review_on(client, admin)
    q3, q4 = post(client, key, Q3), post(client, key, Q4)
    items = [
        {"report": q3["id"], "decision": "accept"},
        {"report": q4["id"], "decision": "return", "reason": "数据有误"},
        {"report": 999999, "decision": "accept"},
        {"report": q3["id"], "decision": "bogus"},
        {"report": q3["id"], "decision": "accept"},  # decided a moment ago in this batch
    ]
    response = client.post(f"{PLAN}/reviews:batch", json={"items": items}, headers={"Authorization": admin})
    assert response.status_code == 200, response.text
    body = response.json()
    assert [r["outcome"] for r in body["results"]] == ["accepted", "returned", "error", "error", "error"]
    assert [r["problem"]["status"] for r in body["results"][2:]] == [404, 422, 409]
    assert body["results"][3]["problem"]["errors"][0]["field"] == "body.items.3.decision"
    assert (body["accepted"], body["returned"], body["failed"]) == (1, 1, 3)
    assert task_state(client) == ("in_progress", 40, [q3["id"]])  # the Q4 report was returned
    assert (
        client.post(f"{PLAN}/reviews:batch", json={"items": items}, headers={"Authorization": key}).status_code == 403
    )


def test_without_review_reports_need_no_decision(client: TestClient, db: Session) -> None:
    key, admin = make_key(db, unit="司法局"), make_key(db, admin=True)
    sent = post(client, key, Q4)
    assert sent["review"]["state"] == "not_required"
    response = client.post(
        f"/api/v1/progress/{sent['id']}/review", json={"decision": "accept"}, headers={"Authorization": admin}
    )
    assert response.status_code == 409 and "pending" in response.json()["detail"]


def test_a_correction_under_review_leaves_the_accepted_report_standing(client: TestClient, db: Session) -> None:
    key, admin = make_key(db, unit="司法局"), make_key(db, admin=True)
    turn_review_on(client, admin)
    original = post(client, key, Q4)
    decide = {"Authorization": admin}
    assert (
        client.post(
            f"/api/v1/progress/{original['id']}/review", json={"decision": "accept"}, headers=decide
        ).status_code
        == 200
    )
    correction = post(client, key, {**Q4, "percent": 80})
    assert correction["supersedes"] == original["id"] and correction["review"]["state"] == "pending"
    assert task_state(client) == ("in_progress", 60, [original["id"]])  # the accepted version still counts
    returned = client.post(
        f"/api/v1/progress/{correction['id']}/review", json={"decision": "return", "reason": "无依据"}, headers=decide
    )
    assert returned.status_code == 200
    assert task_state(client) == ("in_progress", 60, [original["id"]])  # a returned correction changes nothing
    again = post(client, key, {**Q4, "percent": 75})
    assert (
        client.post(f"/api/v1/progress/{again['id']}/review", json={"decision": "accept"}, headers=decide).status_code
        == 200
    )
    assert task_state(client) == ("in_progress", 75, [again["id"]])


def test_ids_beyond_the_database_range_are_4xx_not_500(client: TestClient, db: Session) -> None:
    key, admin = make_key(db, unit="司法局"), make_key(db, admin=True)
    huge = 2**40
    assert client.post(
        f"/api/v1/progress/{huge}/withdraw", json={"reason": "x"}, headers={"Authorization": key}
    ).status_code in (404, 422)
    assert client.post(
        f"/api/v1/progress/{huge}/review", json={"decision": "accept"}, headers={"Authorization": admin}
    ).status_code in (404, 422)
    batch = client.post(
        f"{PLAN}/reviews:batch",
        json={"items": [{"report": huge, "decision": "accept"}]},
        headers={"Authorization": admin},
    )
    assert batch.status_code == 200 and batch.json()["results"][0]["problem"]["status"] in (404, 422)
    assert client.delete(f"{PLAN}/excusals/{huge}", headers={"Authorization": admin}).status_code in (404, 422)


def test_the_review_queue_is_paged_newest_first(client: TestClient, db: Session) -> None:
    key, admin = make_key(db, unit="司法局"), make_key(db, admin=True)
    turn_review_on(client, admin)
    sent = [post(client, key, {**Q4, "period": period})["id"] for period in ("2023-Q2", "2023-Q3", "2023-Q4")]
    auth = {"Authorization": admin}
    first = client.get(f"{PLAN}/reviews", params={"limit": 2}, headers=auth).json()
    assert [r["id"] for r in first["items"]] == sent[:0:-1] and first["next_cursor"]
    rest = client.get(f"{PLAN}/reviews", params={"limit": 2, "cursor": first["next_cursor"]}, headers=auth).json()
    assert [r["id"] for r in rest["items"]] == [sent[0]] and rest["next_cursor"] is None
    assert client.get(f"{PLAN}/reviews", params={"state": "returned"}, headers=auth).json()["items"] == []
    assert client.get(f"{PLAN}/reviews", params={"state": "bogus"}, headers=auth).status_code == 422


def test_review_batch_items_that_fail_validation_are_answered_with_their_field_paths(
    client: TestClient, db: Session
) -> None:
    key, admin = make_key(db, unit="司法局"), make_key(db, admin=True)
    turn_review_on(client, admin)
    q4 = post(client, key, Q4)
    items: list[dict[str, Any]] = [
        {"report": q4["id"], "decision": "return"},  # a return needs a reason
        {"report": "第一条", "decision": "accept"},
        {"decision": "accept"},
        {"report": q4["id"], "decision": "accept", "note": "多余"},
    ]
    response = client.post(f"{PLAN}/reviews:batch", json={"items": items}, headers={"Authorization": admin})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["accepted"], body["returned"], body["failed"]) == (0, 0, 4)
    results = body["results"]
    assert [r["index"] for r in results] == [0, 1, 2, 3]
    assert [r["outcome"] for r in results] == ["error"] * 4
    assert [r["report_id"] for r in results] == [q4["id"], None, None, q4["id"]]
    assert [r["problem"]["status"] for r in results] == [422] * 4
    assert [[e["field"] for e in r["problem"]["errors"]] for r in results] == [
        ["body.items.0"],
        ["body.items.1.report"],
        ["body.items.2.report"],
        ["body.items.3.note"],
    ]
    assert report(client, q4["id"])["review"]["state"] == "pending"  # nothing was decided
    assert event_types(db, "report.accepted") == [] and event_types(db, "report.returned") == []
