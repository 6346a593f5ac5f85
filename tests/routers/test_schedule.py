"""The reporting schedule, its calendar of periods, report periods against it, and excused duties."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, func, select

from app.models import ChangeEvent, DutyExcusal, ProgressReport
from tests.factories import make_key

PLAN = "/api/v1/plans/xiji-fzsh-2021-2025"
SCHEDULE = f"{PLAN}/schedule"
EXCUSALS = f"{PLAN}/excusals"
REPORT = {"status": "in_progress", "percent": 40, "summary": "开展宪法进校园活动", "period": "2023-Q4"}
DEFAULT = {"cadence": "quarterly", "deadline_days": 10, "cooperating_units_report": False, "review_required": False}


def events(db: Session, type: str) -> list[ChangeEvent]:
    return list(db.exec(select(ChangeEvent).where(ChangeEvent.type == type).order_by(col(ChangeEvent.id))))


def reports(db: Session) -> int:
    return db.exec(select(func.count()).select_from(ProgressReport)).one()


# --- schedule ------------------------------------------------------------------------------------


def test_the_seed_plan_has_the_default_schedule(client: TestClient) -> None:
    response = client.get(SCHEDULE)
    assert response.status_code == 200
    body = response.json()
    assert {k: body[k] for k in DEFAULT} == DEFAULT
    assert body["plan"] == "xiji-fzsh-2021-2025"
    assert client.get("/api/v1/plans/nope/schedule").status_code == 404


def test_admin_changes_the_schedule_audited_and_in_the_feed(client: TestClient, db: Session) -> None:
    admin = make_key(db, admin=True)
    new = {"cadence": "monthly", "deadline_days": 5, "cooperating_units_report": True, "review_required": True}
    response = client.put(SCHEDULE, json=new, headers={"Authorization": admin})
    assert response.status_code == 200, response.text
    assert {k: response.json()[k] for k in new} == new
    assert {k: client.get(SCHEDULE).json()[k] for k in new} == new
    [event] = events(db, "schedule.changed")
    data = json.loads(event.data)
    assert data["from"] == DEFAULT and data["to"] == new
    assert event.api_key_id is not None and event.remote_addr is not None
    feed = client.get("/api/v1/changes", params={"since": 0, "limit": 500}).json()["items"]
    assert "schedule.changed" in [e["type"] for e in feed]
    # Putting the same schedule again changes nothing and records nothing.
    assert client.put(SCHEDULE, json=new, headers={"Authorization": admin}).status_code == 200
    assert len(events(db, "schedule.changed")) == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"cadence": "weekly"}, "body.cadence"),
        ({"deadline_days": 91}, "body.deadline_days"),
        ({"deadline_days": -1}, "body.deadline_days"),
        ({"deadline_days": "10"}, "body.deadline_days"),  # strict: no strings for numbers
        ({"review_required": "yes"}, "body.review_required"),
        ({"colour": "red"}, "body.colour"),
    ],
)
def test_schedule_validation_names_the_field(
    client: TestClient, db: Session, change: dict[str, Any], field: str
) -> None:
    admin = make_key(db, admin=True)
    response = client.put(SCHEDULE, json={**DEFAULT, **change}, headers={"Authorization": admin})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert field in [e["field"] for e in response.json()["errors"]]
    assert events(db, "schedule.changed") == []


def test_schedule_needs_every_field_and_an_admin_key(client: TestClient, db: Session) -> None:
    admin, unit = make_key(db, admin=True), make_key(db, unit="司法局")
    response = client.put(SCHEDULE, json={"cadence": "yearly"}, headers={"Authorization": admin})
    assert response.status_code == 422
    assert "body.deadline_days" in [e["field"] for e in response.json()["errors"]]
    assert client.put(SCHEDULE, json=DEFAULT).status_code == 401
    response = client.put(SCHEDULE, json=DEFAULT, headers={"Authorization": unit})
    assert response.status_code == 403 and response.json()["code"] == "admin-only"


# --- periods -------------------------------------------------------------------------------------


def test_periods_calendar_with_deadlines_and_the_current_one(client: TestClient) -> None:
    body = client.get(f"{PLAN}/periods", params={"as_of": "2024-01-05"}).json()
    assert (body["as_of"], body["cadence"], body["current"]) == ("2024-01-05", "quarterly", "2024-Q1")
    items = body["items"]
    assert [i["period"] for i in items[:5]] == ["2021-Q1", "2021-Q2", "2021-Q3", "2021-Q4", "2022-Q1"]
    assert len(items) == 20 and items[-1]["period"] == "2025-Q4"  # the term 2021–2025
    q4 = next(i for i in items if i["period"] == "2023-Q4")
    assert q4 == {
        "period": "2023-Q4",
        "start": "2023-10-01",
        "end": "2023-12-31",
        "deadline": "2024-01-10",
        "current": False,
    }
    assert [i["period"] for i in items if i["current"]] == ["2024-Q1"]
    # Outside the term no period is current; a bad date is a 400/422 naming the parameter.
    assert client.get(f"{PLAN}/periods", params={"as_of": "2030-06-01"}).json()["current"] is None
    bad = client.get(f"{PLAN}/periods", params={"as_of": "2024-13-01"})
    assert bad.status_code in (400, 422) and bad.json()["errors"][0]["field"] == "query.as_of"


def test_periods_follow_the_schedule(client: TestClient, db: Session) -> None:
    admin = make_key(db, admin=True)
    half = {**DEFAULT, "cadence": "half_yearly", "deadline_days": 15}
    assert client.put(SCHEDULE, json=half, headers={"Authorization": admin}).status_code == 200
    body = client.get(f"{PLAN}/periods", params={"as_of": "2023-07-01"}).json()
    assert body["current"] == "2023-H2" and len(body["items"]) == 10
    h2 = next(i for i in body["items"] if i["period"] == "2023-H2")
    assert (h2["start"], h2["end"], h2["deadline"]) == ("2023-07-01", "2023-12-31", "2024-01-15")


# --- report periods ------------------------------------------------------------------------------


def test_report_periods_must_be_ascii_fit_the_cadence_and_lie_in_the_term(client: TestClient, db: Session) -> None:
    key = make_key(db, unit="司法局")
    url = f"{PLAN}/tasks/2.3.3/progress"
    before = reports(db)
    for period, kind in (
        ("２０２３-Q1", "value_error"),
        ("2023-11", "period_cadence"),
        ("2019-Q4", "period_out_of_range"),
    ):
        response = client.post(url, json={**REPORT, "period": period}, headers={"Authorization": key})
        assert response.status_code == 422, (period, response.text)
        [error] = response.json()["errors"]
        assert (error["field"], error["type"]) == ("body.period", kind), period
    # The cadence message names the cadence and gives examples.
    response = client.post(url, json={**REPORT, "period": "2023-11"}, headers={"Authorization": key})
    assert "按季度" in response.json()["detail"] and "2023-Q4" in response.json()["detail"]
    assert reports(db) == before
    # Coarser than the cadence is fine: a half-year or a yearly summary.
    for period in ("2023-Q4", "2023-H2", "2023"):
        assert client.post(url, json={**REPORT, "period": period}, headers={"Authorization": key}).status_code == 201


def test_batch_period_errors_name_the_item(client: TestClient, db: Session) -> None:
    key = make_key(db, unit="司法局")
    items = [{"task": "2.3.3", **REPORT}, {"task": "2.3.3", **REPORT, "period": "2023-11"}]
    body = client.post(f"{PLAN}/progress:batch", json={"items": items}, headers={"Authorization": key}).json()
    assert [r["outcome"] for r in body["results"]] == ["created", "error"]
    assert body["results"][1]["problem"]["errors"][0]["field"] == "body.items.1.period"


def test_monthly_schedule_accepts_months(client: TestClient, db: Session) -> None:
    admin, key = make_key(db, admin=True), make_key(db, unit="司法局")
    url = f"{PLAN}/tasks/2.3.3/progress"
    assert client.post(url, json={**REPORT, "period": "2023-11"}, headers={"Authorization": key}).status_code == 422
    monthly = {**DEFAULT, "cadence": "monthly"}
    assert client.put(SCHEDULE, json=monthly, headers={"Authorization": admin}).status_code == 200
    assert client.post(url, json={**REPORT, "period": "2023-11"}, headers={"Authorization": key}).status_code == 201


# --- excusals ------------------------------------------------------------------------------------


def test_excusal_create_list_revoke(client: TestClient, db: Session) -> None:
    admin = make_key(db, admin=True)
    auth = {"Authorization": admin}
    body = {"task": "2.3.3", "unit": "司法局", "period": "2023-Q4", "reason": "机构改革,职责已划转"}
    response = client.post(EXCUSALS, json=body, headers=auth)
    assert response.status_code == 201, response.text
    excusal = response.json()
    assert (excusal["task"], excusal["unit"]["name"], excusal["period"]) == ("2.3.3", "县司法局", "2023-Q4")
    assert excusal["revoked_at"] is None and "依法治县办" in excusal["excused_by"]
    # The same duty cannot be excused twice while the first stands.
    again = client.post(EXCUSALS, json=body, headers=auth)
    assert again.status_code == 409 and str(excusal["id"]) in again.json()["detail"]
    listed = client.get(EXCUSALS, params={"period": "2023-Q4"}).json()["items"]
    assert [e["id"] for e in listed] == [excusal["id"]]
    assert client.get(EXCUSALS, params={"period": "2023-Q3"}).json()["items"] == []

    revoked = client.delete(f"{EXCUSALS}/{excusal['id']}", headers=auth)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    assert client.delete(f"{EXCUSALS}/{excusal['id']}", headers=auth).status_code == 409
    assert client.delete(f"{EXCUSALS}/999999", headers=auth).status_code == 404
    # Kept, with revoked_at; the duty may be excused anew.
    assert client.get(EXCUSALS).json()["items"][0]["revoked_at"] is not None
    assert client.post(EXCUSALS, json=body, headers=auth).status_code == 201
    types = [e.type for e in db.exec(select(ChangeEvent).where(col(ChangeEvent.type).startswith("duty.")))]
    assert types == ["duty.excused", "duty.excuse_revoked", "duty.excused"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"task": "9.9.9"}, "body.task"),
        ({"unit": "不存在的局"}, "body.unit"),
        ({"task": "2.1.3", "unit": "民政局"}, "body.unit"),  # not linked to 2.1.3
        ({"period": "2023-11"}, "body.period"),  # not a period of the quarterly calendar
        ({"period": "2030-Q1"}, "body.period"),
        ({"reason": "  "}, "body.reason"),
        ({"extra": 1}, "body.extra"),
    ],
)
def test_excusal_validation(client: TestClient, db: Session, change: dict[str, Any], field: str) -> None:
    admin = make_key(db, admin=True)
    body = {"task": "2.3.3", "unit": "司法局", "period": "2023-Q4", "reason": "机构改革", **change}
    response = client.post(EXCUSALS, json=body, headers={"Authorization": admin})
    assert response.status_code == 422, response.text
    assert field in [e["field"] for e in response.json()["errors"]]
    assert db.exec(select(func.count()).select_from(DutyExcusal)).one() == 0


def test_excusals_need_an_admin_key(client: TestClient, db: Session) -> None:
    unit = make_key(db, unit="司法局")
    body = {"task": "2.3.3", "unit": "司法局", "period": "2023-Q4", "reason": "想免报"}
    response = client.post(EXCUSALS, json=body, headers={"Authorization": unit})
    assert response.status_code == 403
    assert client.delete(f"{EXCUSALS}/1", headers={"Authorization": unit}).status_code == 403
