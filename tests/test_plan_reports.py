"""GET /api/v1/plans/{plan}/progress: every report of a plan, newest first, on the one list contract
(`limit`, `cursor` → `next_cursor`, `count=true` → `total`), filtered by unit (a group: its members),
period, kind, review and the county days it was sent (`since`, `until`). Both backends."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session

from app.core.clock import county_today
from tests.factories import make_key

PLAN = "/api/v1/plans/xiji-fzsh-2021-2025"
REPORTS = f"{PLAN}/progress"
REPORT = {"status": "in_progress", "percent": 60, "summary": "开展宪法进校园活动 42 场", "period": "2022-H2"}


def _post(client: TestClient, code: str, key: str, **changes: Any) -> int:
    response = client.post(f"{PLAN}/tasks/{code}/progress", json={**REPORT, **changes}, headers={"Authorization": key})
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def _ids(client: TestClient, **params: Any) -> list[int]:
    response = client.get(REPORTS, params=params)
    assert response.status_code == 200, response.text
    return [r["id"] for r in response.json()["items"]]


def test_a_plans_reports_newest_first_filtered_and_paged(client: TestClient, db: Session) -> None:
    justice, court = make_key(db, unit="司法局"), make_key(db, unit="法院")
    first = _post(client, "2.2.2", justice, period="2022-Q1")
    second = _post(client, "4.1.2", justice)
    third = _post(client, "2.2.2", court)
    assert _ids(client) == [third, second, first]  # across tasks and units
    assert _ids(client, unit="司法局") == [second, first]
    assert _ids(client, period="2022-Q1") == [first]

    page = client.get(REPORTS, params={"limit": 2, "count": "true"}).json()
    assert ([r["id"] for r in page["items"]], page["total"]) == ([third, second], 3)
    rest = client.get(REPORTS, params={"limit": 2, "cursor": page["next_cursor"]}).json()
    assert [r["id"] for r in rest["items"]] == [first] and rest["next_cursor"] is None and "total" not in rest

    today = county_today()
    assert _ids(client, since=today.isoformat(), until=today.isoformat()) == [third, second, first]
    assert _ids(client, until=(today - timedelta(days=1)).isoformat()) == []
    assert _ids(client, since=(today + timedelta(days=1)).isoformat()) == []


def test_bad_parameters_are_problems_not_500s(client: TestClient, db: Session) -> None:
    bad_date = client.get(REPORTS, params={"since": "2022-13-01"})
    assert bad_date.status_code in (400, 422), bad_date.text
    assert "since" in bad_date.text and bad_date.headers["content-type"].startswith("application/problem+json")
    assert client.get(REPORTS, params={"colour": "red"}).status_code == 400  # unknown parameters are refused
    assert client.get(REPORTS, params={"unit": "没有这个单位"}).status_code == 400
    assert client.get("/api/v1/plans/no-such-plan/progress").status_code == 404
    assert client.get(REPORTS, params={"since": "0001-01-01", "until": "9999-12-31"}).status_code == 200
