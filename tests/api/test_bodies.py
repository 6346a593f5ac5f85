"""Text entering through JSON bodies and headers: control characters, idempotency keys, periods and
dates are refused with a 422 naming the field, and nothing is written (issue #10), on both engines."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, func, select

from app.models import ApiKey, ProgressReport, Unit, UnitAlias
from tests.factories import make_key

PLAN = "/api/v1/plans/xiji-fzsh-2021-2025"
REPORT = {"status": "in_progress", "percent": 60, "summary": "开展宪法进校园活动 42 场", "period": "2022-H2"}


def count(db: Session, model: Any) -> int:
    return db.exec(select(func.count()).select_from(model)).one()


def assert_refused(response: Any, field: str, status: int = 422) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert field in [e["field"] for e in response.json()["errors"]], response.json()


@pytest.mark.parametrize("bad", ["\x00", "\x07", "\x1b[31m", "\x7f"])
def test_control_characters_in_body_text_are_422_everywhere(client: TestClient, db: Session, bad: str) -> None:
    admin, unit_key = make_key(db, admin=True), make_key(db, unit="司法局")
    reports, units, aliases, keys = (count(db, m) for m in (ProgressReport, Unit, UnitAlias, ApiKey))
    as_admin, as_unit = {"Authorization": admin}, {"Authorization": unit_key}
    cases = [
        (f"{PLAN}/tasks/2.3.3/progress", {**REPORT, "summary": f"开展{bad}活动"}, as_unit, "body.summary"),
        (f"{PLAN}/tasks/2.3.3/progress", {**REPORT, "evidence": [f"西司发{bad}5号"]}, as_unit, "body.evidence.0"),
        ("/api/v1/admin/units", {"name": f"新{bad}镇", "kind": "other"}, as_admin, "body.name"),
        (
            "/api/v1/admin/units",
            {"name": "新营镇", "kind": "other", "aliases": [f"新{bad}营"]},
            as_admin,
            "body.aliases.0",
        ),
        ("/api/v1/admin/units/县司法局/aliases", {"alias": f"司{bad}法"}, as_admin, "body.alias"),
        ("/api/v1/admin/keys", {"admin": True, "name": f"依法{bad}治县办"}, as_admin, "body.name"),
        ("/api/v1/admin/keys", {"unit": f"司法{bad}局"}, as_admin, "body.unit"),
        (
            f"{PLAN}/excusals",
            {"task": f"2.3{bad}.3", "unit": "司法局", "period": "2022-H2", "reason": "x"},
            as_admin,
            "body.task",
        ),
        (
            f"{PLAN}/excusals",
            {"task": "2.3.3", "unit": "司法局", "period": "2022-H2", "reason": f"机构{bad}改革"},
            as_admin,
            "body.reason",
        ),
    ]
    for url, body, headers, field in cases:
        assert_refused(client.post(url, json=body, headers=headers), field)
    batch = client.post(
        f"{PLAN}/progress:batch", json={"items": [{"task": "2.3.3", **REPORT, "summary": f"a{bad}b"}]}, headers=as_unit
    )
    assert batch.status_code == 200 and batch.json()["results"][0]["problem"]["errors"][0]["field"] == (
        "body.items.0.summary"
    )
    assert (reports, units, aliases, keys) == tuple(count(db, m) for m in (ProgressReport, Unit, UnitAlias, ApiKey))


def test_free_text_keeps_its_line_breaks(client: TestClient, db: Session) -> None:
    key = make_key(db, unit="司法局")
    body = {**REPORT, "summary": "第一项:普法讲座 12 场;\n第二项:\t志愿者队伍 3 支。"}
    response = client.post(f"{PLAN}/tasks/2.3.3/progress", json=body, headers={"Authorization": key})
    assert response.status_code == 201, response.text
    assert response.json()["summary"] == body["summary"]


@pytest.mark.parametrize("value", ["", "   ", " lead", "trail ", "a\tb", "x" * 201])
def test_blank_or_malformed_idempotency_keys_are_422_not_keys(client: TestClient, db: Session, value: str) -> None:
    key = make_key(db, unit="司法局")
    before = count(db, ProgressReport)
    headers = {"Authorization": key, "Idempotency-Key": value}
    response = client.post(f"{PLAN}/tasks/2.3.3/progress", json=REPORT, headers=headers)
    assert_refused(response, "header.idempotency-key")
    item = {"task": "2.3.3", **REPORT, "idempotency_key": value}
    batch = client.post(f"{PLAN}/progress:batch", json={"items": [item]}, headers={"Authorization": key}).json()
    assert batch["results"][0]["problem"]["errors"][0]["field"] == "body.items.0.idempotency_key"
    assert count(db, ProgressReport) == before


def test_a_visible_idempotency_key_with_inner_spaces_still_works(client: TestClient, db: Session) -> None:
    key = make_key(db, unit="司法局")
    headers = {"Authorization": key, "Idempotency-Key": "sfj 2022-H2 2.3.3"}
    first = client.post(f"{PLAN}/tasks/2.3.3/progress", json=REPORT, headers=headers)
    again = client.post(f"{PLAN}/tasks/2.3.3/progress", json=REPORT, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true" and again.json()["id"] == first.json()["id"]


@pytest.mark.parametrize("period", ["２０２２-H2", "2022-Ｈ2", "٢٠٢٢", "2022-h2", " 2022"])
def test_periods_with_non_ascii_digits_are_refused_with_the_rule(client: TestClient, db: Session, period: str) -> None:
    key, admin = make_key(db, unit="司法局"), make_key(db, admin=True)
    before = count(db, ProgressReport)
    response = client.post(
        f"{PLAN}/tasks/2.3.3/progress", json={**REPORT, "period": period}, headers={"Authorization": key}
    )
    assert_refused(response, "body.period")
    assert "半角数字" in response.json()["errors"][0]["message"]
    excusal = {"task": "2.3.3", "unit": "司法局", "period": period, "reason": "机构改革"}
    assert client.post(f"{PLAN}/excusals", json=excusal, headers={"Authorization": admin}).status_code == 422
    assert count(db, ProgressReport) == before
    for url in (f"{PLAN}/duties?period={period}", f"/api/v1/units/县司法局/template.csv?period={period}"):
        answer = client.get(url)
        assert answer.status_code in (400, 422) and "query.period" in answer.text, (url, answer.text)


@pytest.mark.parametrize("value", ["0", "1700000000", "２０２３-01-01", "2023-1-1", "20230101"])
def test_dates_are_iso_and_ascii_only(client: TestClient, value: str) -> None:
    for url in (f"{PLAN}/stats?as_of={value}", f"{PLAN}/tasks?due_before={value}", f"{PLAN}/tasks/2.3.3?as_of={value}"):
        response = client.get(url)
        assert response.status_code == 422, (url, response.text)
        assert response.json()["errors"][0]["field"] in ("query.as_of", "query.due_before")
    assert client.get(f"{PLAN}/stats?as_of=2023-01-01").status_code == 200
