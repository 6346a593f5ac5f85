"""Duties, compliance, a unit's to-do list, lights and task reads as of a date, through the API.

Reports go through the real submit endpoint while `time_machine` moves the clock, so their times are
those a county script would have produced in 2023.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import time_machine
from fastapi.testclient import TestClient
from sqlmodel import Session

from tests.factories import make_key

PLAN = "/api/v1/plans/xiji-fzsh-2021-2025"
TZ = ZoneInfo("Asia/Shanghai")


def at(day: str, hour: int = 10) -> time_machine.travel:
    return time_machine.travel(datetime.fromisoformat(day).replace(hour=hour, tzinfo=TZ), tick=False)


def send(client: TestClient, key: str, code: str, period: str, status: str = "in_progress", percent: int = 40) -> int:
    body = {"status": status, "percent": percent, "summary": f"{period} 进展", "period": period}
    response = client.post(f"{PLAN}/tasks/{code}/progress", json=body, headers={"Authorization": key})
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def get(client: TestClient, path: str, **params: Any) -> Any:
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def duties(client: TestClient, **params: Any) -> list[tuple[str, str, str, str]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = get(client, f"{PLAN}/duties", **params, **({"cursor": cursor} if cursor else {}))
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return [(d["task"], d["unit"]["name"], d["period"], d["state"]) for d in items]


def in_2023(found: list[tuple[str, str, str, str]]) -> list[tuple[str, str, str, str]]:
    return [d for d in found if d[2].startswith("2023-")]


def script_2023(client: TestClient, db: Session) -> None:
    """县司法局 on 2.3.3: Q1 on time (30%), Q2 late (50%), Q3 silent; 县委宣传部 on 2.1.1: Q1 delayed."""
    justice = make_key(db, unit="县司法局")
    publicity = make_key(db, unit="县委宣传部")
    with at("2023-04-05"):
        send(client, justice, "2.3.3", "2023-Q1", percent=30)
        send(client, publicity, "2.1.1", "2023-Q1", status="delayed", percent=10)
    with at("2023-07-15"):
        send(client, justice, "2.3.3", "2023-Q2", percent=50)


def test_duty_states_filters_pages_and_csv(client: TestClient, db: Session) -> None:
    script_2023(client, db)
    with at("2023-10-20"):
        got = in_2023(duties(client, task="2.3.3", limit=3))
        assert got == [
            ("2.3.3", "县司法局", "2023-Q1", "submitted"),
            ("2.3.3", "县司法局", "2023-Q2", "late"),
            ("2.3.3", "县司法局", "2023-Q3", "missing"),
            ("2.3.3", "县司法局", "2023-Q4", "due"),
        ]
        # The same picture drawn for an earlier day: the Q2 report did not exist yet, Q3 had not begun.
        assert in_2023(duties(client, task="2.3.3", as_of="2023-06-30")) == [
            ("2.3.3", "县司法局", "2023-Q1", "submitted"),
            ("2.3.3", "县司法局", "2023-Q2", "due"),
        ]
        assert in_2023(duties(client, task="2.3.3", state="late,submitted")) == got[:2]
        mine = duties(client, unit="司法局", period="2023-Q3")
        assert ("2.3.3", "县司法局", "2023-Q3", "missing") in mine and {d[1] for d in mine} == {"县司法局"}
        response = client.get(f"{PLAN}/duties", params={"task": "2.3.3", "format": "csv"})
        assert response.status_code == 200 and response.content.startswith("\ufeff".encode())
        rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
        assert rows[0][:3] == ["方案", "任务编号", "单位"] and rows[0][7] == "状态"
        assert [r[7] for r in rows[1:] if r[5].startswith("2023-")] == ["已按时报送", "逾期报送", "未报送", "待报送"]


def test_bad_parameters_are_400_with_the_field(client: TestClient) -> None:
    cases = [
        ("duties", {"period": "2023-13"}, "query.period"),
        ("duties", {"period": "2023"}, "query.period"),  # yearly: not a period of the quarterly calendar
        ("duties", {"period": "2019-Q1"}, "query.period"),
        ("duties", {"period": "２０２３-Q1"}, "query.period"),
        ("duties", {"state": "late,nope"}, "query.state"),
        ("duties", {"unit": "没有这个局"}, "query.unit"),
        ("duties", {"task": "9.9.9"}, "query.task"),
        ("duties", {"cursor": "garbage"}, "query.cursor"),
        ("duties", {"stat": "late"}, "query.stat"),
        ("compliance", {"sort": "worst"}, "query.sort"),
        ("compliance", {"period": "2023-Q5"}, "query.period"),
        ("tasks", {"light": "purple"}, "query.light"),
    ]
    for path, params, field in cases:
        response = client.get(f"{PLAN}/{path}", params=params)
        assert response.status_code in (400, 422), (params, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert field in [e["field"] for e in response.json()["errors"]], (params, response.json())
    response = client.get("/api/v1/units/县司法局/duties", params={"period": "Q4"})
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "query.period"
    response = client.get("/api/v1/units/县司法局/duties", params={"plan": "nope"})
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "query.plan"


def test_compliance_agrees_with_the_duties_and_lists_the_worst_first(client: TestClient, db: Session) -> None:
    script_2023(client, db)
    with at("2023-10-20"):
        report = get(client, f"{PLAN}/compliance", period="2023-Q2")
        listed = duties(client, period="2023-Q2", limit=500)
        assert report["totals"]["owed"] == len(listed)
        for row in report["items"]:
            mine = [d for d in listed if d[1] == row["unit"]["name"]]
            states = [d[3] for d in mine]
            assert row["owed"] == len(mine)
            assert (row["on_time"], row["late"], row["missing"]) == (
                states.count("submitted"),
                states.count("late"),
                states.count("missing"),
            )
            judgeable = row["owed"] - row["excused"] - row["due"]
            assert row["rate"] == (round(row["on_time"] / judgeable, 4) if judgeable else None)
        rates = [r["rate"] for r in report["items"] if r["rate"] is not None]
        assert rates == sorted(rates)
        justice = next(r for r in report["items"] if r["unit"]["name"] == "县司法局")
        assert justice["late"] == 1 and justice["on_time"] == 0
        best = get(client, f"{PLAN}/compliance", period="2023-Q1", sort="-rate")["items"]
        assert best[0]["unit"]["name"] in {"县司法局", "县委宣传部"} and best[0]["on_time"] >= 1


def test_a_units_to_do_list(client: TestClient, db: Session) -> None:
    script_2023(client, db)
    with at("2023-10-20"):
        todo = get(client, "/api/v1/units/司法局/duties", period="2023-Q3")["items"]
        assert {d["state"] for d in todo} == {"missing"}  # the Q3 deadline 2023-10-10 has passed
        assert "2.3.3" in [d["task"] for d in todo] and {d["unit"]["name"] for d in todo} == {"县司法局"}
        everything = get(client, "/api/v1/units/司法局/duties")["items"]
        assert ("2.3.3", "2023-Q2") not in [(d["task"], d["period"]) for d in everything]  # reported (late)
        assert [d["deadline"] for d in everything] == sorted(d["deadline"] for d in everything)
        assert {d["state"] for d in everything} == {"missing", "due"}


STATE_FIELDS = ("status", "progress", "overdue", "light", "light_reasons")


def picture(task: dict[str, Any]) -> dict[str, Any]:
    states = [{k: v for k, v in s.items() if k != "updated_at"} for s in task["unit_states"]]
    return {**{k: task[k] for k in STATE_FIELDS}, "unit_states": states}


def test_a_past_as_of_reconstructs_what_today_showed_then(client: TestClient, db: Session) -> None:
    justice = make_key(db, unit="县司法局")
    seen: dict[str, dict[str, Any]] = {}
    steps = [("2023-04-05", "2023-Q1", 30), ("2023-07-05", "2023-Q2", 50), ("2023-10-09", "2023-Q3", 70)]
    for day, period, percent in steps:
        with at(day):
            send(client, justice, "2.3.3", period, percent=percent)
            seen[day] = picture(get(client, f"{PLAN}/tasks/2.3.3"))  # today: the maintained columns
    with at("2024-03-01"):
        for day, _, percent in steps:
            past = picture(get(client, f"{PLAN}/tasks/2.3.3", as_of=day))  # reconstructed
            assert past == seen[day]
            assert past["progress"] == percent and past["status"] == "in_progress"
        before = get(client, f"{PLAN}/tasks/2.3.3", as_of="2023-04-04")
        assert (before["status"], before["progress"], before["unit_states"]) == ("not_started", 0, [])
        # Filters judge the past day too: status then, not now.
        listed = get(client, f"{PLAN}/tasks", status="in_progress", as_of="2023-04-04", fields="code")["items"]
        assert listed == []
        listed = get(client, f"{PLAN}/tasks", status="in_progress", as_of="2023-04-05", fields="code")["items"]
        assert listed == [{"code": "2.3.3"}]


def test_lights_with_reasons_and_the_light_filter_pages(client: TestClient, db: Session) -> None:
    script_2023(client, db)
    with at("2023-10-25"):
        delayed = get(client, f"{PLAN}/tasks/2.1.1")
        assert delayed["light"] == "red"
        assert "owner_delayed" in [r["rule"] for r in delayed["light_reasons"]]
        silent = get(client, f"{PLAN}/tasks/2.3.3")
        rules = {r["rule"]: r for r in silent["light_reasons"]}
        # Q3 (the latest closed period) is missing 15 days after its deadline 2023-10-10: more than 10.
        assert silent["light"] == "red" and rules["duty_missing"]["figures"]["days_missing"] == 15
        assert "县司法局" in rules["duty_missing"]["message"]
        early = get(client, f"{PLAN}/tasks/2.3.3", as_of="2023-10-15")  # only 5 days late then
        assert "duty_missing" not in [r["rule"] for r in early["light_reasons"]]
        all_red = get(client, f"{PLAN}/tasks", light="red", limit=500, count="true", fields="code,light")
        assert all_red["total"] == len(all_red["items"]) > 0 and {t["light"] for t in all_red["items"]} == {"red"}
        paged: list[str] = []
        cursor = None
        while True:
            params = {"light": "red,yellow", "limit": 7, "fields": "code,light"}
            page = get(client, f"{PLAN}/tasks", **params, **({"cursor": cursor} if cursor else {}))
            paged += [t["code"] for t in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        whole = get(client, f"{PLAN}/tasks", light="red,yellow", limit=500, fields="code")["items"]
        assert paged == [t["code"] for t in whole] and len(paged) == len(set(paged))
        response = client.get(f"{PLAN}/tasks", params={"light": "red", "format": "csv"})
        rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
        light_col = rows[0].index("亮灯")
        assert {r[light_col] for r in rows[1:]} == {"红"}


def test_stats_count_lights_progress_and_compliance_as_of_a_date(client: TestClient, db: Session) -> None:
    script_2023(client, db)
    with at("2023-10-25"):
        stats = get(client, f"{PLAN}/stats")
        tasks = get(client, f"{PLAN}/tasks", limit=500, fields="code,light,progress,status")["items"]
        assert stats["compliance_period"] == "2023-Q3" and stats["light_rules_version"]
        assert sum(stats["by_light"].values()) == stats["tasks"] == len(tasks)
        for chapter in stats["by_chapter"]:
            mine = [t for t in tasks if t["code"].split(".")[0] == chapter["code"]]
            assert chapter["by_light"] == {c: sum(t["light"] == c for t in mine) for c in ("red", "yellow", "green")}
            assert chapter["mean_progress"] == round(sum(t["progress"] for t in mine) / len(mine), 1)
        chapter2 = next(c for c in stats["by_chapter"] if c["code"] == "2")
        assert chapter2["by_status"]["delayed"] == 1 and chapter2["by_status"]["in_progress"] == 1
        publicity = next(u for u in stats["by_unit"] if u["unit"]["name"] == "县委宣传部")
        assert publicity["delayed"] == 1 and publicity["lead_by_status"]["delayed"] == 1
        assert publicity["lead_by_light"]["red"] >= 1
        justice = next(u for u in stats["by_unit"] if u["unit"]["name"] == "县司法局")
        compliance = get(client, f"{PLAN}/compliance", period="2023-Q3")
        assert justice["compliance"] == next(r for r in compliance["items"] if r["unit"]["name"] == "县司法局")
        assert stats["compliance"] == compliance["totals"]
        q1 = get(client, f"{PLAN}/stats", period="2023-Q1")
        assert q1["compliance_period"] == "2023-Q1"
        # Before any report: every task not started, and nothing delayed.
        early = get(client, f"{PLAN}/stats", as_of="2023-04-01")
        assert early["by_status"]["not_started"] == 76 and early["compliance_period"] == "2022-Q4"
        response = client.get(f"{PLAN}/stats", params={"period": "2023-Q7"})
        assert response.status_code == 400 and response.json()["errors"][0]["field"] == "query.period"


def test_extreme_dates_read_everything_or_nothing_never_a_500(client: TestClient) -> None:
    paths = [f"{PLAN}/tasks", f"{PLAN}/tasks/2.3.3", f"{PLAN}/duties", f"{PLAN}/compliance", f"{PLAN}/stats"]
    for path in [*paths, "/api/v1/units/司法局/duties"]:
        for as_of in ("0001-01-01", "9999-12-31"):
            assert client.get(path, params={"as_of": as_of}).status_code == 200, (path, as_of)
        response = client.get(path, params={"as_of": "2023-02-30"})
        assert response.status_code == 422 and response.json()["errors"][0]["field"] == "query.as_of"
    assert get(client, f"{PLAN}/duties", as_of="0001-01-01")["items"] == []


def test_a_group_owes_through_each_member(client: TestClient, db: Session) -> None:
    # 5.3.1 is the responsibility of 各人民团体, whose members are 团县委 and 县工商联.
    youth = make_key(db, unit="团县委")
    with at("2023-04-06"):
        send(client, youth, "5.3.1", "2023-Q1", percent=30)
    with at("2023-05-01"):
        got = in_2023(duties(client, task="5.3.1"))
        assert got == [
            ("5.3.1", "团县委", "2023-Q1", "submitted"),
            ("5.3.1", "县工商联", "2023-Q1", "missing"),
            ("5.3.1", "团县委", "2023-Q2", "due"),
            ("5.3.1", "县工商联", "2023-Q2", "due"),
        ]
        assert {d[1] for d in duties(client, unit="各人民团体", period="2023-Q1")} == {"团县委", "县工商联"}
        vias = {d["via"]["name"] for d in get(client, f"{PLAN}/duties", task="5.3.1")["items"]}
        assert vias == {"各人民团体"}
        members = get(client, "/api/v1/units/各人民团体/duties", period="2023-Q1")["items"]
        assert [(d["task"], d["unit"]["name"]) for d in members if d["task"] == "5.3.1"] == [("5.3.1", "县工商联")]
        mine = get(client, "/api/v1/units/团县委/duties", period="2023-Q1")["items"]
        assert "5.3.1" not in [d["task"] for d in mine]
        task = get(client, f"{PLAN}/tasks/5.3.1", as_of="2023-04-30")
        assert (task["status"], task["progress"]) == ("in_progress", 30)
        assert [s["via"]["name"] for s in task["unit_states"]] == ["各人民团体"]


def test_overdue_with_a_past_as_of_judges_the_status_of_that_day(client: TestClient, db: Session) -> None:
    # 5.2.5 is due 2023-12-31; 县司法局 reports it completed only on 2024-03-01.
    justice = make_key(db, unit="县司法局")
    with at("2024-03-01"):
        send(client, justice, "5.2.5", "2024-Q1", status="completed", percent=100)
    with at("2024-04-01"):
        assert get(client, f"{PLAN}/tasks", overdue="true", as_of="2024-02-01", fields="code")["items"] == [
            {"code": "5.2.5"}
        ]
        assert get(client, f"{PLAN}/tasks", overdue="true", as_of="2024-03-02", fields="code")["items"] == []
        late = get(client, f"{PLAN}/tasks/5.2.5", as_of="2024-02-01")
        assert late["overdue"] and late["light"] == "red" and late["light_reasons"][0]["rule"] == "overdue"
        assert late["light_reasons"][0]["figures"]["days_overdue"] == 32
        done = get(client, f"{PLAN}/tasks/5.2.5")
        assert (done["status"], done["overdue"], done["light"]) == ("completed", False, "green")


def test_todays_lights_read_only_the_reports_they_judge_and_agree_with_a_full_rebuild(
    client: TestClient, db: Session
) -> None:
    """Today's list loads only the latest closed period's report groups, groups with a returned report
    and the history of tasks completed before that period (duties.load_facts_for_today); read again
    later as of the same day, every task is rebuilt from all its reports. The two must agree."""
    admin = make_key(db, admin=True)
    justice = make_key(db, unit="县司法局")
    publicity = make_key(db, unit="县委宣传部")
    review_on = {
        "cadence": "quarterly",
        "deadline_days": 10,
        "cooperating_units_report": False,
        "review_required": True,
    }
    assert client.put(f"{PLAN}/schedule", json=review_on, headers={"Authorization": admin}).status_code == 200
    seen: dict[str, dict[str, dict[str, Any]]] = {}

    def decide(report_id: int, decision: str) -> None:
        body = {"decision": decision, **({"reason": "佐证不足"} if decision == "return" else {})}
        answer = client.post(f"/api/v1/progress/{report_id}/review", json=body, headers={"Authorization": admin})
        assert answer.status_code == 200, answer.text

    def look(day: str) -> None:
        seen[day] = {t["code"]: picture(t) for t in get(client, f"{PLAN}/tasks", limit=500)["items"]}

    with at("2023-04-05"):
        decide(send(client, justice, "2.3.3", "2023-Q1", status="completed", percent=100), "accept")
        decide(send(client, justice, "2.1.4", "2023-Q1", percent=20), "return")  # returned, not resubmitted
        for q in range(1, 30):  # many versions of one period: today's read must not depend on them
            send(client, publicity, "2.1.1", "2023-Q1", percent=q)
        look("2023-04-05")
    with at("2023-07-20"):
        decide(send(client, justice, "2.1.4", "2023-Q1", percent=25), "accept")  # resubmitted late
        look("2023-07-20")
    with at("2023-10-25"):
        # 2.3.3 was completed before Q3 began, so it owes no Q3 report, though a Q4 report reopens it now.
        decide(send(client, justice, "2.3.3", "2023-Q4", percent=90), "accept")
        look("2023-10-25")
    with at("2024-03-01"):
        for day, today in seen.items():
            rebuilt = {t["code"]: picture(t) for t in get(client, f"{PLAN}/tasks", limit=500, as_of=day)["items"]}
            assert rebuilt == today, day

    def rules(day: str, code: str) -> set[str]:
        return {r["rule"] for r in seen[day][code]["light_reasons"]}

    assert "returned_unresolved" in rules("2023-04-05", "2.1.4")
    assert "returned_unresolved" not in rules("2023-07-20", "2.1.4")
    assert seen["2023-10-25"]["2.3.3"]["status"] == "in_progress"
    assert "duty_missing" not in rules("2023-10-25", "2.3.3") and "duty_missing" in rules("2023-10-25", "2.1.4")


def test_today_is_the_countys_calendar_day_not_the_servers(client: TestClient) -> None:
    """At 00:30 on 11 January in Xiji (16:30 UTC on the 10th) the 2023-Q4 deadline (10 January) has
    passed: with no `as_of`, a silent unit's duty is already missing."""
    # Destinations in UTC: a ZoneInfo destination would make time-machine move the process's own zone.
    with time_machine.travel(datetime(2024, 1, 10, 16, 30, tzinfo=UTC), tick=False):
        found = get(client, f"{PLAN}/duties", period="2023-Q4", unit="县司法局", limit=1)
    assert found["items"][0]["state"] == "missing"
    with time_machine.travel(datetime(2024, 1, 10, 15, 30, tzinfo=UTC), tick=False):
        found = get(client, f"{PLAN}/duties", period="2023-Q4", unit="县司法局", limit=1)
    assert found["items"][0]["state"] == "due"
