"""A plan whose text states no term, imported with `--term open` (issue #10): stored with an open term
(no years, tasks without a stated year have no due date), and every reader copes — plan, task list
sorted and paged by due date, lights, overdue, stats, periods, duties, CSV, reporting. Both engines."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.importer.parser import PlanTextError, parse_plan
from app.models import Plan, Task
from app.services import tasks as tasks_service
from tests.factories import import_text, make_key

FIXTURE = Path(__file__).parent / "fixtures" / "open_term_plan.txt"
SLUG = "xiji-jcfzxc-open"
PLAN = f"/api/v1/plans/{SLUG}"


def test_a_plan_without_a_term_is_refused_unless_left_open() -> None:
    text = FIXTURE.read_text(encoding="utf-8")
    with pytest.raises(PlanTextError, match="--term open"):
        parse_plan(text)
    parsed = parse_plan(text, term="open")
    assert (parsed.period_start, parsed.period_end) == (None, None)
    assert [str(t.due) if t.due else None for t in parsed.tasks] == [None, "2024-12-31", None, None]
    assert any("实施期限未定" in w for w in parsed.warnings)
    with pytest.raises(PlanTextError, match="标题已写明实施期限"):
        parse_plan("某某县实施方案(2021-2025年)\n一、任务\n(一)甲组\n1.甲。(牵头单位:县司法局)\n", term="open")


@pytest.fixture
def open_plan(db: Session, tmp_path: Path) -> Session:
    summary = import_text(db, tmp_path, FIXTURE.read_text(encoding="utf-8"), slug=SLUG, term="open")
    assert summary.tasks == 4, summary
    return db


def test_it_is_stored_with_an_open_term(open_plan: Session) -> None:
    plan = open_plan.exec(select(Plan).where(Plan.slug == SLUG)).one()
    assert (plan.period_start, plan.period_end) == (None, None)
    dues = open_plan.exec(select(Task.due).where(Task.plan_id == plan.id).order_by(Task.position)).all()
    assert [str(d) if d else None for d in dues] == [None, "2024-12-31", None, None]


def test_every_reader_copes_with_the_open_term(client: TestClient, open_plan: Session) -> None:
    plan = client.get(PLAN)
    assert plan.status_code == 200, plan.text
    assert plan.json()["period"] == {"start": None, "end": None}

    as_of = {"as_of": "2026-01-01"}
    tasks = client.get(f"{PLAN}/tasks", params=as_of).json()["items"]
    assert [t["due"] for t in tasks] == [None, "2024-12-31", None, None]
    by_code = {t["code"]: t for t in tasks}
    # Only the task with a stated year can be overdue; the others have no date rule to break.
    assert by_code["2.1.2"]["overdue"] is True and by_code["2.1.2"]["light"] == "red"
    assert all(not t["overdue"] for code, t in by_code.items() if code != "2.1.2")
    overdue = client.get(f"{PLAN}/tasks", params={**as_of, "overdue": "true"}).json()["items"]
    assert [t["code"] for t in overdue] == ["2.1.2"]

    # Sorted by due date and paged one by one: dated tasks first, then the undated, none lost or repeated.
    for sort, expected in (
        ("due", ["2.1.2", "2.1.1", "2.2.3", "2.2.4"]),
        ("-due", ["2.2.4", "2.2.3", "2.1.1", "2.1.2"]),
    ):
        seen, cursor = [], None
        while True:
            params = {"sort": sort, "limit": 1, **({"cursor": cursor} if cursor else {})}
            page = client.get(f"{PLAN}/tasks", params=params).json()
            seen += [t["code"] for t in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == expected, sort

    stats = client.get(f"{PLAN}/stats", params=as_of)
    assert stats.status_code == 200 and stats.json()["tasks"] == 4 and stats.json()["overdue"] == 1
    periods = client.get(f"{PLAN}/periods", params=as_of)
    assert periods.status_code == 200 and periods.json()["items"] == [] and periods.json()["current"] is None
    for url in (f"{PLAN}/duties", f"{PLAN}/compliance", "/api/v1/jurisdictions/640422/stats"):
        assert client.get(url, params=as_of).status_code == 200, url
    refused = client.get(f"{PLAN}/duties", params={"period": "2023"})
    assert refused.status_code == 400 and "实施期限未定" in refused.json()["detail"]
    csv = client.get(f"{PLAN}/tasks", params={"format": "csv"})
    assert csv.status_code == 200 and "2.2.4" in csv.text


def test_an_undated_task_is_not_overdue_on_every_path(client: TestClient, slow: TestClient, open_plan: Session) -> None:
    """`overdue=false` is the complement of `overdue=true`: an undated task is in it, for today (the
    read model, and the query path with the read model off) and for a past day (computed)."""
    for reader in (client, slow):
        for as_of in ({}, {"as_of": "2026-01-01"}):
            codes = {}
            for flag in ("true", "false"):
                page = reader.get(f"{PLAN}/tasks", params={**as_of, "overdue": flag})
                assert page.status_code == 200, page.text
                codes[flag] = {t["code"] for t in page.json()["items"]}
            assert codes["true"] == {"2.1.2"}, as_of
            assert codes["false"] == {"2.1.1", "2.2.3", "2.2.4"}, as_of


def test_computed_lists_read_past_undated_tasks_chunk_by_chunk(
    client: TestClient, open_plan: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A past day's list is judged in Python, reading candidates in chunks keyed like the cursor: an
    undated task ends a chunk under OPEN_DUE, not NULL (which matched nothing and lost the rest)."""
    monkeypatch.setattr(tasks_service, "COMPUTED_CHUNK", 1)  # every task ends a chunk
    for sort, expected in (
        ("due", ["2.1.2", "2.1.1", "2.2.3", "2.2.4"]),
        ("-due", ["2.2.4", "2.2.3", "2.1.1", "2.1.2"]),
    ):
        # A status filter on a past day is judged in Python: every status, so every task is kept.
        every = ",".join(("not_started", "in_progress", "completed", "delayed", "ongoing"))
        params = {"as_of": "2026-01-01", "sort": sort, "status": every, "count": "true"}
        page = client.get(f"{PLAN}/tasks", params=params)
        assert page.status_code == 200, page.text
        assert [t["code"] for t in page.json()["items"]] == expected, sort
        assert page.json()["total"] == 4


def test_reports_on_an_open_term_plan_are_accepted_at_its_cadence(client: TestClient, open_plan: Session) -> None:
    key = make_key(open_plan, unit="县司法局")
    report = {"status": "in_progress", "percent": 30, "summary": "宪法宣传周活动 8 场", "period": "2023"}
    response = client.post(f"{PLAN}/tasks/2.1.1/progress", json=report, headers={"Authorization": key})
    assert response.status_code == 201, response.text
    task = client.get(f"{PLAN}/tasks/2.1.1").json()
    assert task["status"] == "in_progress" and task["due"] is None and task["light"] in ("green", "yellow", "red")
