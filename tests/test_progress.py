"""Progress reporting through the API: auth, validation, derived state, idempotency, batch, feed."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, func, select

from app.models import ChangeEvent, GroupMember, IdempotencyRecord, ProgressReport, TaskStatus, Unit, UnitKind
from app.services.progress import SlotState, derive_task_state
from tests.factories import SEED_PLAN, import_text, make_key, xiji_id

PLAN = "/api/v1/plans/xiji-fzsh-2021-2025"
TASKS = f"{PLAN}/tasks"
BATCH = f"{PLAN}/progress:batch"
REPORT = {"status": "in_progress", "percent": 60, "summary": "开展宪法进校园活动 42 场", "period": "2022-H2"}


def reports(db: Session) -> int:
    return db.exec(select(func.count()).select_from(ProgressReport)).one()


def post(client: TestClient, code: str, key: str, body: dict[str, Any] | None = None, **headers: str) -> Any:
    return client.post(f"{TASKS}/{code}/progress", json=body or REPORT, headers={"Authorization": key, **headers})


# --- the derivation rule, on plain data ------------------------------------------------------

S = TaskStatus


@pytest.mark.parametrize(
    ("slots", "latest", "expected"),
    [
        ([1], {}, (S.not_started, 0)),
        ([1], {1: SlotState(S.in_progress, 40)}, (S.in_progress, 40)),
        ([1, 2], {1: SlotState(S.completed, 100)}, (S.in_progress, 50)),
        ([1, 2], {1: SlotState(S.completed, 100), 2: SlotState(S.completed, 100)}, (S.completed, 100)),
        ([1, 2], {1: SlotState(S.completed, 100), 2: SlotState(S.ongoing, 80)}, (S.ongoing, 90)),
        ([1, 2], {1: SlotState(S.ongoing, 100)}, (S.in_progress, 50)),
        ([1, 2], {1: SlotState(S.completed, 100), 2: SlotState(S.delayed, 10)}, (S.delayed, 55)),
        ([1, 2], {1: SlotState(S.not_started, 0)}, (S.not_started, 0)),
        ([1, 2, 3], {1: SlotState(S.in_progress, 30), 2: SlotState(S.in_progress, 30)}, (S.in_progress, 20)),
    ],
)
def test_derivation_rule(slots: list[int], latest: dict[int, SlotState], expected: tuple[TaskStatus, int]) -> None:
    assert derive_task_state(slots, latest) == expected


# --- single reports ----------------------------------------------------------------------------


def test_lead_report_sets_status_and_is_read_back(client: TestClient, db: Session) -> None:
    key = make_key(db, unit="教育体育局")
    response = post(client, "2.1.3", key, {**REPORT, "evidence": ["https://example.gov.cn/a", "西教发〔2022〕1号"]})
    assert response.status_code == 201, response.text
    report = response.json()
    assert (report["kind"], report["task"], report["unit"]["name"]) == ("status", "2.1.3", "县教育体育局")
    assert report["evidence"] == ["https://example.gov.cn/a", "西教发〔2022〕1号"]
    assert client.get(response.headers["location"], headers={"Authorization": key}).json() == report
    assert client.get(response.headers["location"]).json()["submitted_by"] == "县教育体育局"  # no key prefix
    task = client.get(f"{TASKS}/2.1.3").json()
    assert (task["status"], task["progress"]) == ("in_progress", 60)
    assert [(s["unit"]["name"], s["status"], s["report_id"]) for s in task["unit_states"]] == [
        ("县教育体育局", "in_progress", report["id"])
    ]
    assert task["updated_at"] == report["created_at"]


def test_cooperating_report_is_a_contribution_and_leaves_status(client: TestClient, db: Session) -> None:
    key = make_key(db, unit="公安局")  # 4.3.5: 配合单位 县法院、公安局、司法局
    response = post(client, "4.3.5", key)
    assert response.status_code == 201
    assert response.json()["kind"] == "contribution"
    task = client.get(f"{TASKS}/4.3.5").json()
    assert (task["status"], task["progress"], task["unit_states"]) == ("not_started", 0, [])
    history = client.get(f"{TASKS}/4.3.5/progress").json()["items"]
    assert [h["kind"] for h in history] == ["contribution"]


def test_several_leads_each_keep_their_state(client: TestClient, db: Session) -> None:
    # 2.2.2 is led by 法院、县委政法委、司法局: one finished, one half-way, one silent.
    court, law, justice = (make_key(db, unit=u) for u in ("法院", "政法委", "司法局"))
    assert post(client, "2.2.2", court, {**REPORT, "status": "completed", "percent": 100}).status_code == 201
    assert post(client, "2.2.2", law, {**REPORT, "percent": 50}).status_code == 201
    task = client.get(f"{TASKS}/2.2.2").json()
    assert (task["status"], task["progress"]) == ("in_progress", 50)  # (100 + 50 + 0) / 3
    assert post(client, "2.2.2", justice, {**REPORT, "status": "delayed", "percent": 10}).status_code == 201
    assert client.get(f"{TASKS}/2.2.2").json()["status"] == "delayed"
    for key in (law, justice):
        assert post(client, "2.2.2", key, {**REPORT, "status": "completed", "percent": 100}).status_code == 201
    task = client.get(f"{TASKS}/2.2.2").json()
    assert (task["status"], task["progress"]) == ("completed", 100)
    assert len(task["unit_states"]) == 3


def test_group_member_reports_for_its_group(client: TestClient, db: Session) -> None:
    # 5.3.1: 责任单位 各人民团体; 团县委 is a member.
    response = post(client, "5.3.1", make_key(db, unit="团县委"))
    assert response.status_code == 201
    assert (response.json()["kind"], response.json()["via"]["name"]) == ("status", "各人民团体")
    assert client.get(f"{TASKS}/5.3.1").json()["status"] == "in_progress"


def test_unrelated_unit_is_403_and_nothing_is_written(client: TestClient, db: Session) -> None:
    before = reports(db)
    response = post(client, "2.1.3", make_key(db, unit="民政局"))
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "not-linked-to-task"
    assert "县民政局" in body["detail"] and "2.1.3" in body["detail"] and "县教育体育局" in body["detail"]
    assert reports(db) == before


@pytest.mark.parametrize(
    ("authorization", "fragment"),
    [(None, "缺少"), ("Basic abc", "格式"), ("Bearer pa_deadbeef_nope", "无效"), ("Bearer nonsense", "格式")],
)
def test_missing_or_bad_key_is_401(client: TestClient, db: Session, authorization: str | None, fragment: str) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = client.post(f"{TASKS}/2.1.3/progress", json=REPORT, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert fragment in response.json()["detail"]


def test_revoked_key_is_401(client: TestClient, db: Session) -> None:
    key = make_key(db, unit="教育体育局")
    admin = make_key(db, admin=True)
    assert post(client, "2.1.3", key).status_code == 201
    prefix = key.split("_")[1]
    assert client.delete(f"/api/v1/admin/keys/{prefix}", headers={"Authorization": admin}).status_code == 200
    response = post(client, "2.1.3", key)
    assert response.status_code == 401 and "吊销" in response.json()["detail"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"status": "completed", "percent": 80}, "body.percent"),
        ({"status": "not_started", "percent": 10}, "body.percent"),
        ({"percent": 101}, "body.percent"),
        ({"percent": -1}, "body.percent"),
        ({"status": "finished"}, "body.status"),
        ({"summary": "   "}, "body.summary"),
        ({"summary": "字" * 2001}, "body.summary"),
        ({"period": "2022-Q5"}, "body.period"),
        ({"period": "22"}, "body.period"),
        ({"period": "2019"}, "body.period"),
        ({"period": "2027-H1"}, "body.period"),
        ({"period": "２０２３-Q1"}, "body.period"),  # full-width digits: not canonical
        ({"period": "2023-07"}, "body.period"),  # a month, finer than the seed's quarterly cadence
        ({"evidence": ["x"] * 21}, "body.evidence"),
        ({"evidence": [""]}, "body.evidence.0"),
        ({"colour": "red"}, "body.colour"),
    ],
)
def test_invalid_reports_are_422_naming_the_field_and_write_nothing(
    client: TestClient, db: Session, change: dict[str, Any], field: str
) -> None:
    key = make_key(db, unit="教育体育局")
    before = reports(db)
    response = post(client, "2.1.3", key, {**REPORT, **change})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert field in [e["field"] for e in response.json()["errors"]]
    assert reports(db) == before


def test_periods_inside_the_plan_and_the_evaluation_year_are_accepted(client: TestClient, db: Session) -> None:
    key = make_key(db, unit="教育体育局")
    for period in ("2021", "2023-H1", "2024-Q4", "2025-Q4", "2026"):
        assert post(client, "2.1.3", key, {**REPORT, "period": period}).status_code == 201, period


def test_missing_body_and_bad_json_are_422(client: TestClient, db: Session) -> None:
    key = make_key(db, unit="教育体育局")
    response = client.post(
        f"{TASKS}/2.1.3/progress",
        content=b"{not json",
        headers={"Authorization": key, "Content-Type": "application/json"},
    )
    assert response.status_code == 422 and response.json()["code"] == "validation-error"
    assert post(client, "9.9.9", key).status_code == 404


def test_oversized_body_is_413(client: TestClient, db: Session) -> None:
    key = make_key(db, unit="教育体育局")
    response = client.post(
        f"{TASKS}/2.1.3/progress",
        content=b"{" + b" " * 3_000_000 + b"}",
        headers={"Authorization": key, "Content-Type": "application/json"},
    )
    assert response.status_code == 413 and response.json()["code"] == "body-too-large"
    chunked = client.post(  # no Content-Length: counted as it arrives
        f"{TASKS}/2.1.3/progress",
        content=iter([b"{", b" " * 1_500_000, b" " * 1_500_000, b"}"]),
        headers={"Authorization": key, "Content-Type": "application/json"},
    )
    assert chunked.status_code == 413 and chunked.json()["code"] == "body-too-large"
    assert reports(db) == 0


# --- idempotency and concurrency control -------------------------------------------------------


def test_idempotent_retry_returns_the_original_report(client: TestClient, db: Session) -> None:
    key = make_key(db, unit="教育体育局")
    first = post(client, "2.1.3", key, **{"Idempotency-Key": "jyt-2022-H2"})
    again = post(client, "2.1.3", key, **{"Idempotency-Key": "jyt-2022-H2"})
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true" and "idempotent-replayed" not in first.headers
    assert reports(db) == 1
    other = post(client, "2.1.3", key, {**REPORT, "percent": 70}, **{"Idempotency-Key": "jyt-2022-H2"})
    assert other.status_code == 422 and other.json()["code"] == "idempotency-key-reused"
    assert reports(db) == 1


def test_idempotency_keys_are_per_api_key(client: TestClient, db: Session) -> None:
    one, two = make_key(db, unit="法院"), make_key(db, unit="司法局")
    a = post(client, "2.2.2", one, **{"Idempotency-Key": "k"})
    b = post(client, "2.2.2", two, **{"Idempotency-Key": "k"})
    assert a.json()["id"] != b.json()["id"]
    assert db.exec(select(func.count()).select_from(IdempotencyRecord)).one() == 2


def test_if_match_guards_admin_corrections(client: TestClient, db: Session) -> None:
    admin = make_key(db, admin=True)
    etag = client.get(f"{TASKS}/2.1.1").headers["etag"]
    assert post(client, "2.1.1", make_key(db, unit="委宣传部")).status_code == 201  # the task moves on
    stale = post(client, "2.1.1", admin, {**REPORT, "status": "completed", "percent": 100}, **{"If-Match": etag})
    assert stale.status_code == 412 and stale.json()["code"] == "precondition-failed"
    fresh = client.get(f"{TASKS}/2.1.1").headers["etag"]
    ok = post(client, "2.1.1", admin, {**REPORT, "status": "completed", "percent": 100}, **{"If-Match": fresh})
    assert ok.status_code == 201 and ok.json()["kind"] == "correction" and ok.json()["unit"] is None
    task = client.get(f"{TASKS}/2.1.1").json()
    assert (task["status"], task["progress"]) == ("completed", 100)


# --- batch ---------------------------------------------------------------------------------------


def test_batch_answers_per_item(client: TestClient, db: Session) -> None:
    key = make_key(db, unit="司法局")
    items = [
        {"task": "2.3.3", **REPORT, "idempotency_key": "b-1"},
        {"task": "9.9.9", **REPORT},
        {"task": "2.3.4", **REPORT, "percent": "many"},
        {"task": "2.1.3", **REPORT},  # 司法局 is not linked to 2.1.3
        {**REPORT},
    ]
    response = client.post(BATCH, json={"items": items}, headers={"Authorization": key})
    assert response.status_code == 200
    body = response.json()
    assert [r["outcome"] for r in body["results"]] == ["created", "error", "error", "error", "error"]
    assert (body["created"], body["failed"]) == (1, 4)
    problems = [r["problem"] for r in body["results"][1:]]
    assert [p["status"] for p in problems] == [404, 422, 403, 400]
    assert problems[1]["errors"][0]["field"] == "body.items.2.percent"
    assert problems[3]["errors"][0]["field"] == "body.items.4.task"
    assert reports(db) == 1
    retry = client.post(BATCH, json={"items": items[:1]}, headers={"Authorization": key}).json()
    assert retry["results"][0]["outcome"] == "replayed"
    assert retry["results"][0]["report"]["id"] == body["results"][0]["report"]["id"]
    assert reports(db) == 1


def test_atomic_batch_is_all_or_nothing(client: TestClient, db: Session) -> None:
    key = make_key(db, unit="司法局")
    items = [{"task": "2.3.3", **REPORT}, {"task": "2.3.4", **REPORT}, {"task": "9.9.9", **REPORT}]
    response = client.post(BATCH, params={"atomic": "true"}, json={"items": items}, headers={"Authorization": key})
    assert response.status_code == 422
    assert [r["outcome"] for r in response.json()["results"]] == ["rolled_back", "rolled_back", "error"]
    assert reports(db) == 0
    assert client.get(f"{TASKS}/2.3.3").json()["status"] == "not_started"
    ok = client.post(BATCH, params={"atomic": "true"}, json={"items": items[:2]}, headers={"Authorization": key})
    assert ok.status_code == 200 and ok.json()["created"] == 2


def test_batch_limits(client: TestClient, db: Session) -> None:
    key = make_key(db, unit="司法局")
    too_many = client.post(BATCH, json={"items": [{"task": "2.3.3", **REPORT}] * 501}, headers={"Authorization": key})
    assert too_many.status_code == 422 and too_many.json()["errors"][0]["field"] == "body.items"
    empty = client.post(BATCH, json={"items": []}, headers={"Authorization": key})
    assert empty.status_code == 422


# --- history, feed, audit ----------------------------------------------------------------------


def test_history_newest_first_filtered_and_paged(client: TestClient, db: Session) -> None:
    key, court = make_key(db, unit="司法局"), make_key(db, unit="法院")
    ids = [post(client, "2.2.2", key, {**REPORT, "period": f"2022-Q{q}"}).json()["id"] for q in (1, 2, 3)]
    court_id = post(client, "2.2.2", court).json()["id"]
    history = client.get(f"{TASKS}/2.2.2/progress").json()
    assert [h["id"] for h in history["items"]] == [court_id, *reversed(ids)]
    assert [h["id"] for h in client.get(f"{TASKS}/2.2.2/progress", params={"unit": "法院"}).json()["items"]] == [
        court_id
    ]
    assert [h["id"] for h in client.get(f"{TASKS}/2.2.2/progress", params={"period": "2022-Q2"}).json()["items"]] == [
        ids[1]
    ]
    first = client.get(f"{TASKS}/2.2.2/progress", params={"limit": 3}).json()
    rest = client.get(f"{TASKS}/2.2.2/progress", params={"limit": 3, "cursor": first["next_cursor"]}).json()
    assert [h["id"] for h in first["items"] + rest["items"]] == [court_id, *reversed(ids)] and rest[
        "next_cursor"
    ] is None
    own = client.get("/api/v1/units/司法局/progress").json()["items"]
    assert [h["id"] for h in own] == list(reversed(ids))


def test_change_feed_in_order_and_resumable(client: TestClient, db: Session) -> None:
    start = client.get("/api/v1/changes").json()["next_cursor"]
    key = make_key(db, unit="教育体育局")
    report_id = post(client, "2.1.3", key).json()["id"]
    post(client, "2.1.3", key, {**REPORT, "percent": 80})
    feed = client.get("/api/v1/changes", params={"since": start}).json()
    assert [(e["type"], e["task"]) for e in feed["items"]] == [
        ("report.created", "2.1.3"),
        ("task.status_changed", "2.1.3"),
        ("report.created", "2.1.3"),
        ("task.status_changed", "2.1.3"),
    ]
    assert feed["items"][0]["report_id"] == report_id and feed["items"][0]["actor"] == "县教育体育局"
    assert feed["items"][1]["data"] == {"task": "2.1.3", "from": "not_started", "to": "in_progress", "progress": 60}
    seqs = [e["seq"] for e in feed["items"]]
    assert seqs == sorted(seqs) and len(set(seqs)) == 4
    assert feed["has_more"] is False and feed["next_cursor"] == str(seqs[-1])
    assert client.get("/api/v1/changes", params={"since": feed["next_cursor"]}).json()["items"] == []
    page = client.get("/api/v1/changes", params={"since": start, "limit": 1}).json()
    assert page["has_more"] is True and len(page["items"]) == 1
    assert "remote_addr" not in feed["items"][0]
    assert client.get("/api/v1/changes", params={"since": "abc"}).status_code == 400


def test_every_write_is_audited_with_key_and_address(client: TestClient, db: Session) -> None:
    admin = make_key(db, admin=True)
    before = db.exec(select(func.count()).select_from(ChangeEvent)).one()
    post(client, "2.1.3", make_key(db, unit="教育体育局"))
    audit = client.get("/api/v1/admin/audit", params={"since": before}, headers={"Authorization": admin}).json()
    entry = audit["items"][0]
    assert entry["type"] == "report.created" and entry["actor"] == "县教育体育局"
    assert entry["remote_addr"] == "testclient" and len(entry["key_prefix"]) == 8


def test_secrets_never_reach_the_logs(client: TestClient, db: Session, caplog: pytest.LogCaptureFixture) -> None:
    key = make_key(db, unit="教育体育局")
    secret = key.removeprefix("Bearer ")
    with caplog.at_level(logging.DEBUG):
        post(client, "2.1.3", key)
        post(client, "2.1.3", "Bearer pa_00000000_wrong-secret")
        client.post("/api/v1/admin/keys", json={"unit": "民政局"}, headers={"Authorization": key})
    assert caplog.records  # something was logged, so the check below means something
    assert secret not in caplog.text and "wrong-secret" not in caplog.text


# --- admin ---------------------------------------------------------------------------------------


def test_admin_manages_keys_units_and_groups(client: TestClient, db: Session) -> None:
    admin = make_key(db, admin=True)
    auth = {"Authorization": admin}
    created = client.post("/api/v1/admin/keys", json={"unit": "民政局"}, headers=auth)
    assert created.status_code == 201 and created.headers["cache-control"] == "no-store"
    secret = created.json()["key"]
    listed = client.get("/api/v1/admin/keys", headers=auth).json()["items"]
    assert created.json()["prefix"] in [k["prefix"] for k in listed]
    assert secret not in str(listed)
    assert post(client, "3.2.1", f"Bearer {secret}").status_code == 201  # 民政局 leads 3.2.1

    town = client.post(
        "/api/v1/admin/units",
        json={"name": "吉强镇", "kind": "government_department", "aliases": ["吉强"]},
        headers=auth,
    )
    assert town.status_code == 201
    assert client.post("/api/v1/admin/units/各乡镇/members", json={"member": "吉强"}, headers=auth).status_code == 201
    assert (
        client.post("/api/v1/admin/units/吉强镇/aliases", json={"alias": "吉强镇政府"}, headers=auth).status_code == 201
    )
    assert client.get("/api/v1/units/吉强镇政府").json()["groups"][0]["name"] == "各乡镇"
    town_key = make_key(db, unit="吉强镇")
    assert post(client, "4.4.3", town_key).json()["kind"] == "contribution"  # 各乡镇 cooperates on 4.4.3
    duplicate = client.post(
        "/api/v1/admin/units", json={"name": "司法局", "kind": "government_department"}, headers=auth
    )
    assert duplicate.status_code == 409
    not_group = client.post("/api/v1/admin/units/县司法局/members", json={"member": "吉强镇"}, headers=auth)
    assert not_group.status_code == 400
    assert client.delete("/api/v1/admin/units/各乡镇/members/吉强镇", headers=auth).status_code == 200
    assert post(client, "4.4.3", town_key).status_code == 403


def test_admin_endpoints_refuse_unit_keys(client: TestClient, db: Session) -> None:
    key = make_key(db, unit="司法局")
    response = client.get("/api/v1/admin/keys", headers={"Authorization": key})
    assert response.status_code == 403 and response.json()["code"] == "admin-only"
    assert client.get("/api/v1/admin/keys").status_code == 401


# --- imports never lose history ------------------------------------------------------------------


def test_reimport_keeps_tasks_that_have_history(client: TestClient, db: Session, tmp_path: Path) -> None:
    key = make_key(db, unit="教育体育局")
    assert post(client, "2.1.3", key).status_code == 201
    text = SEED_PLAN.read_text(encoding="utf-8")
    start = text.index("持续开展中小学生")
    end = text.index("4. 推动“12·4”")
    summary = import_text(db, tmp_path, text[:start] + text[end:], slug="xiji-fzsh-2021-2025")
    assert "2.1.3" not in summary.tasks_removed
    assert any("2.1.3" in w for w in summary.warnings)
    assert client.get(f"{TASKS}/2.1.3/progress").json()["items"][0]["task"] == "2.1.3"
    assert client.get(f"{TASKS}/2.1.3").json()["status"] == "in_progress"


def test_township_via_group_can_report_where_its_group_leads(db: Session, client: TestClient, tmp_path: Path) -> None:
    # No seed task names 各乡镇 as lead; a county's other plan might.
    town = Unit(name="兴隆镇", kind=UnitKind.government_department, jurisdiction_id=xiji_id(db))
    db.add(town)
    db.flush()
    group_id = db.exec(select(Unit.id).where(Unit.name == "各乡镇")).one()
    assert town.id is not None
    db.add(GroupMember(group_id=group_id, member_id=town.id))
    db.flush()
    text = "某县方案(2021-2025年)\n一、主要任务\n(一)基层治理\n1.推进乡村依法治理。\n牵头单位:各乡镇\n"
    import_text(db, tmp_path, text, slug="town")
    response = client.post(
        "/api/v1/plans/town/tasks/1.1.1/progress", json=REPORT, headers={"Authorization": make_key(db, unit="兴隆镇")}
    )
    assert response.status_code == 201, response.text
    assert (response.json()["kind"], response.json()["via"]["name"]) == ("status", "各乡镇")
    assert client.get("/api/v1/plans/town/tasks/1.1.1").json()["status"] == "in_progress"


def test_task_still_reads_after_a_reporting_unit_loses_its_link(
    client: TestClient, db: Session, tmp_path: Path
) -> None:
    assert post(client, "2.2.5", make_key(db, unit="工商联")).status_code == 201
    text = SEED_PLAN.read_text(encoding="utf-8").replace(
        "责任单位:县司法局、商务工业信息化局、工商联", "责任单位:县司法局、商务工业信息化局"
    )
    import_text(db, tmp_path, text, slug="xiji-fzsh-2021-2025")
    task = client.get(f"{TASKS}/2.2.5")
    assert task.status_code == 200
    assert [s["via"]["name"] for s in task.json()["unit_states"]] == ["县工商联"]
    assert "县工商联" not in [r["unit"]["name"] for r in task.json()["responsibilities"]]


def test_a_key_repeated_inside_one_batch_is_a_retry(client: TestClient, db: Session) -> None:
    key = make_key(db, unit="司法局")
    same = {"task": "2.3.3", **REPORT, "idempotency_key": "k-1"}
    changed = {**same, "percent": 70}
    body = client.post(BATCH, json={"items": [same, same, changed]}, headers={"Authorization": key}).json()
    assert [r["outcome"] for r in body["results"]] == ["created", "replayed", "error"]
    assert body["results"][1]["report"] == body["results"][0]["report"]
    assert body["results"][2]["problem"]["code"] == "idempotency-key-reused"
    assert reports(db) == 1


def test_a_refused_report_does_not_use_up_its_key(client: TestClient, db: Session) -> None:
    key = make_key(db, unit="司法局")
    refused = post(client, "2.3.3", key, {**REPORT, "period": "2019"}, **{"Idempotency-Key": "fix-me"})
    assert refused.status_code == 422
    assert post(client, "2.3.3", key, **{"Idempotency-Key": "fix-me"}).status_code == 201
    assert reports(db) == 1


def test_batch_derives_each_task_once_from_all_its_reports(client: TestClient, db: Session) -> None:
    # 2.2.2 is led by 法院、县委政法委、司法局; one batch from 司法局 moves it twice, an admin then corrects.
    key, admin = make_key(db, unit="司法局"), make_key(db, admin=True)
    items = [{"task": "2.2.2", **REPORT, "percent": 30}, {"task": "2.2.2", **REPORT, "percent": 90}]
    assert client.post(BATCH, json={"items": items}, headers={"Authorization": key}).json()["created"] == 2
    task = client.get(f"{TASKS}/2.2.2").json()
    assert (task["status"], task["progress"]) == ("in_progress", 30)  # (0 + 0 + 90) / 3
    changes = client.get("/api/v1/changes", params={"since": 0, "limit": 1000}).json()["items"]
    assert [c["type"] for c in changes if c["task"] == "2.2.2"] == [
        "report.created",
        "report.created",
        "task.status_changed",
    ]
    fix = [{"task": "2.2.2", **REPORT, "status": "completed", "percent": 100}]
    assert client.post(BATCH, json={"items": fix}, headers={"Authorization": admin}).json()["created"] == 1
    assert client.get(f"{TASKS}/2.2.2").json()["status"] == "completed"


def test_reimport_that_changes_owners_derives_the_status_anew(client: TestClient, db: Session, tmp_path: Path) -> None:
    # 2.2.2 is led by 法院、县委政法委、司法局; only 司法局 has finished.
    done = {**REPORT, "status": "completed", "percent": 100}
    assert post(client, "2.2.2", make_key(db, unit="司法局"), done).status_code == 201
    assert client.get(f"{TASKS}/2.2.2").json()["progress"] == 33
    text = SEED_PLAN.read_text(encoding="utf-8").replace("牵头单位:法院、县委政法委、司法局", "牵头单位:司法局", 1)
    summary = import_text(db, tmp_path, text, slug="xiji-fzsh-2021-2025")
    assert summary.tasks_rederived == ["2.2.2"]
    task = client.get(f"{TASKS}/2.2.2").json()
    assert (task["status"], task["progress"]) == ("completed", 100)
    feed = client.get("/api/v1/changes", params={"limit": 1000}).json()["items"]
    assert feed[-1]["type"] == "plan.imported" and feed[-1]["data"]["tasks_rederived"] == ["2.2.2"]
