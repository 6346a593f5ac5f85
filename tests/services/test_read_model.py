"""The read model of cold task lists (`app/services/read_model.py`) against the query path.

Two apps over the same rolled-back session: the test's own (read model on) and one whose read model
keeps nothing, so every list goes through `tasks.query_tasks` + `hydrate()`. Their answers must be the
same bytes, headers included, for every combination asked.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import time_machine
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.core.clock import county_today
from app.models import Plan
from app.schemas.task import task_fragments
from app.services.read_model import ReadModel
from tests.factories import SEED_PLAN, SEED_SLUG, import_text, make_key, report

PLAN = f"/api/v1/plans/{SEED_SLUG}"
TASKS = f"{PLAN}/tasks"
COMPARED_HEADERS = ("content-type", "etag", "link", "x-next-cursor", "x-total-count", "content-disposition")


def same(fast: TestClient, slow: TestClient, url: str, params: dict[str, Any], **headers: str) -> Any:
    a = fast.get(url, params=params, headers=headers)
    b = slow.get(url, params=params, headers=headers)
    assert a.status_code == b.status_code, (params, a.text, b.text)
    assert a.content == b.content, params
    assert [a.headers.get(h) for h in COMPARED_HEADERS] == [b.headers.get(h) for h in COMPARED_HEADERS], params
    return a


BATTERY: list[dict[str, Any]] = [
    {},
    {"count": "true"},
    {"unit": "司法局"},
    *({"unit": "司法局", "role": role, "count": "true"} for role in ("lead", "cooperating", "responsible")),
    {"role": "lead,responsible"},
    {"role": "cooperating"},
    {"unit": "公安局", "role": "cooperating"},
    {"unit": "吉强镇", "include_groups": "true", "count": "true"},
    {"unit": "吉强镇"},
    {"unit": "团县委", "include_groups": "true", "role": "responsible"},
    {"unit": "县司法局", "include_groups": "true", "fields": "code,matched_via"},
    {"section": "2"},
    {"section": "2.2", "count": "true"},
    {"status": "completed"},
    {"status": "in_progress,delayed,ongoing", "count": "true"},
    {"status": "not_started", "section": "3"},
    {"light": "red", "count": "true"},
    {"light": "green,yellow"},
    {"overdue": "true", "count": "true"},
    {"overdue": "false", "count": "true"},
    {"due_before": "2022-12-31"},
    {"due_after": "2023-06-30", "due_before": "2024-12-31", "count": "true"},
    {"q": "宪法"},
    {"q": "民法典", "count": "true"},
    {"q": "A"},
    {"q": "%"},
    {"jurisdiction": "640422", "unit": "司法局"},
    {"jurisdiction": "511725"},
    {"fields": "code,title,status,light"},
    {"fields": "matched_via"},
    {"sort": "-code", "limit": "7"},
    {"sort": "due", "limit": "500"},
    {"sort": "-due", "unit": "司法局"},
    {"sort": "updated_at", "count": "true"},
    {"sort": "-updated_at", "light": "red"},
    {"format": "csv"},
    {"format": "csv", "unit": "司法局", "include_groups": "true"},
    {"format": "csv", "limit": "9", "count": "true", "sort": "-due"},
    {"format": "csv", "fields": "code,unit_states,light_reasons"},
    {"unit": "没有这个单位"},
    {"section": "9.9"},
    {"cursor": "not-a-cursor"},
]


def test_read_model_answers_every_list_as_the_query_path(reported: TestClient, slow: TestClient) -> None:
    for params in BATTERY:
        same(reported, slow, TASKS, params)
    # Accept: text/csv chooses CSV as format=csv does.
    same(reported, slow, TASKS, {"unit": "司法局"}, accept="text/csv")
    assert reported.app.state.read_model.builds >= 1  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "params",
    [
        {"sort": "code", "limit": "13", "count": "true"},
        {"sort": "-due", "limit": "11"},
        {"sort": "updated_at", "limit": "17", "unit": "司法局", "include_groups": "true"},
        {"sort": "-updated_at", "limit": "5", "light": "red"},
        {"sort": "due", "limit": "20", "format": "csv"},
    ],
)
def test_every_page_through_the_cursor_is_the_same(
    reported: TestClient, slow: TestClient, params: dict[str, Any]
) -> None:
    pages, cursor = 0, None
    while True:
        response = same(reported, slow, TASKS, {**params, **({"cursor": cursor} if cursor else {})})
        pages += 1
        cursor = response.headers.get("x-next-cursor") if params.get("format") else response.json()["next_cursor"]
        if cursor is None:
            break
    assert pages > 2


def codes(client: TestClient, **params: str) -> list[tuple[str, str, str]]:
    items = client.get(TASKS, params={"limit": "500", **params}).json()["items"]
    return [(t["code"], t["status"], t["light"]) for t in items]


def test_a_report_a_correction_a_review_and_an_alias_change_the_next_list(
    client: TestClient, slow: TestClient, db: Session
) -> None:
    justice, admin = make_key(db, unit="司法局"), make_key(db, admin=True)
    assert "2.3.3" not in [code for code, _, _ in codes(client, status="in_progress")]
    sent = report(client, justice, "2.3.3", status="in_progress", percent=60)
    after = codes(client, status="in_progress")
    assert "2.3.3" in [code for code, _, _ in after]
    assert after == codes(slow, status="in_progress")

    report(client, admin, "2.3.3", status="delayed", percent=10)  # an admin's correction
    assert "2.3.3" in [code for code, _, _ in codes(client, status="delayed")]
    assert "2.3.3" not in [code for code, _, _ in codes(client, status="in_progress")]

    schedule = {"cadence": "quarterly", "deadline_days": 10, "cooperating_units_report": False}
    on = client.put(f"{PLAN}/schedule", json={**schedule, "review_required": True}, headers={"Authorization": admin})
    assert on.status_code == 200, on.text
    pending = report(client, justice, "2.3.3", status="completed", percent=100, period="2024-Q1")
    assert "2.3.3" not in [code for code, _, _ in codes(client, status="completed")]
    decided = client.post(
        f"/api/v1/progress/{pending['id']}/review", json={"decision": "accept"}, headers={"Authorization": admin}
    )
    assert decided.status_code == 200, decided.text
    assert "2.3.3" in [code for code, _, _ in codes(client, status="completed")]
    assert codes(client, status="completed") == codes(slow, status="completed")
    assert sent["id"]

    assert client.get(TASKS, params={"unit": "法治局"}).status_code == 400
    alias = client.post(
        "/api/v1/admin/units/县司法局/aliases", json={"alias": "法治局"}, headers={"Authorization": admin}
    )
    assert alias.status_code == 201, alias.text
    assert codes(client, unit="法治局") == codes(client, unit="县司法局") != []

    # A group's new member: its next list (same URL) includes the group's tasks.
    made = client.post(
        "/api/v1/admin/units", json={"name": "兴隆镇", "kind": "other"}, headers={"Authorization": admin}
    )
    assert made.status_code == 201, made.text
    assert codes(client, unit="兴隆镇", include_groups="true") == []
    added = client.post(
        "/api/v1/admin/units/各乡镇/members", json={"member": "兴隆镇"}, headers={"Authorization": admin}
    )
    assert added.status_code == 201, added.text
    assert codes(client, unit="兴隆镇", include_groups="true") != []
    assert codes(client, unit="兴隆镇", include_groups="true") == codes(slow, unit="兴隆镇", include_groups="true")


def test_the_date_rolling_over_moves_overdue_and_lights_without_a_write(client: TestClient, slow: TestClient) -> None:
    def picture() -> tuple[int, bytes]:
        overdue = {"overdue": "true", "count": "true", "fields": "code"}
        lights = {"fields": "code,overdue,light,light_reasons", "limit": "500"}
        assert client.get(TASKS, params=overdue).content == slow.get(TASKS, params=overdue).content
        assert client.get(TASKS, params=lights).content == slow.get(TASKS, params=lights).content
        return client.get(TASKS, params=overdue).json()["total"], client.get(TASKS, params=lights).content

    # 23:00 in Xiji on 2023-12-31, then 01:00 on 2024-01-01: tasks due 2023-12-31 fall due.
    with time_machine.travel(datetime(2023, 12, 31, 15, 0, tzinfo=UTC), tick=False):
        assert str(county_today()) == "2023-12-31"
        on_the_day = picture()
    with time_machine.travel(datetime(2023, 12, 31, 17, 0, tzinfo=UTC), tick=False):
        assert str(county_today()) == "2024-01-01"
        next_day = picture()
    assert next_day[0] > on_the_day[0]
    assert next_day[1] != on_the_day[1]
    assert b'"rule":"overdue"' in next_day[1] and b'"rule":"overdue"' not in on_the_day[1]


def test_the_read_model_is_bounded_in_bytes(db: Session) -> None:
    plan = db.exec(select(Plan).where(Plan.slug == SEED_SLUG)).one()
    today = county_today()
    unbounded = ReadModel(1 << 40)
    one = unbounded.picture(session=db, plan=plan, version=1, today=today, render=task_fragments)
    assert one.size > 0 and len(one.rows) > 50

    nothing = ReadModel(one.size - 1)  # smaller than a picture: served, never kept
    nothing.picture(session=db, plan=plan, version=1, today=today, render=task_fragments)
    assert (len(nothing), nothing.bytes) == (0, 0)

    room = ReadModel(one.size * 3 // 2)
    for version in (1, 2, 3):
        room.picture(session=db, plan=plan, version=version, today=today, render=task_fragments)
        assert len(room) == 1 and room.bytes == one.size <= room.max_bytes  # the older version dropped
    room.picture(session=db, plan=plan, version=3, today=today, render=task_fragments)
    assert room.builds == 3  # the same key again is not rebuilt
    room.picture(session=db, plan=plan, version=2, today=today, render=task_fragments)  # read before a write
    assert room.builds == 4 and len(room) == 1
    room.picture(session=db, plan=plan, version=3, today=today, render=task_fragments)
    assert room.builds == 4  # the newer picture was kept, not displaced by the older one


def test_every_task_detail_is_the_same_from_the_read_model(reported: TestClient, slow: TestClient) -> None:
    codes = [t["code"] for t in slow.get(TASKS, params={"limit": "500", "fields": "code"}).json()["items"]]
    builds = reported.app.state.read_model.builds  # type: ignore[attr-defined]
    for code in codes:
        same(reported, slow, f"{TASKS}/{code}", {})
    same(reported, slow, f"{TASKS}/2.2.2", {"as_of": str(county_today())})
    same(reported, slow, f"{TASKS}/2.2.2", {"as_of": "2024-01-01"})  # the past: the query path
    same(reported, slow, f"{TASKS}/9.9.9", {})  # 404
    assert reported.app.state.read_model.builds == builds + 1  # type: ignore[attr-defined]


UNIT_BATTERY: list[dict[str, Any]] = [
    {},
    {"count": "true", "include_groups": "true"},
    {"role": "lead"},
    {"role": "cooperating", "section": "2"},
    {"light": "red", "count": "true"},
    {"status": "completed,delayed"},
    {"overdue": "false", "count": "true"},
    {"q": "宪法"},
    {"jurisdiction": "640422"},
    {"jurisdiction": "511725"},
    {"fields": "plan,code,matched_via"},
    {"as_of": "2024-01-01", "count": "true"},
    {"format": "csv", "include_groups": "true"},
    {"unit": "司法局"},
]


def test_a_units_tasks_across_plans_are_the_same(
    reported: TestClient, slow: TestClient, db: Session, tmp_path: Path
) -> None:
    import_text(db, tmp_path, SEED_PLAN.read_text(encoding="utf-8"), slug="xiji-again")  # a second plan
    builds = reported.app.state.read_model.builds  # type: ignore[attr-defined]
    for unit in ("县司法局", "吉强镇", "团县委"):
        url = f"/api/v1/units/{unit}/tasks"
        for params in UNIT_BATTERY:
            same(reported, slow, url, params)
        cursor, pages = None, 0
        while True:
            page = {"sort": "-due", "limit": "9", "include_groups": "true", **({"cursor": cursor} if cursor else {})}
            cursor = same(reported, slow, url, page).json()["next_cursor"]
            pages += 1
            if cursor is None:
                break
        assert pages > 1
    plans = {t["plan"] for t in reported.get("/api/v1/units/县司法局/tasks", params={"limit": "500"}).json()["items"]}
    assert plans == {SEED_SLUG, "xiji-again"}
    assert reported.app.state.read_model.builds == builds + 2  # type: ignore[attr-defined]
