"""The read API against the seeded plan: every filter checked against what the plan text says."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.models import GroupMember, Plan, Task, TaskStatus, Unit, UnitKind
from tests.factories import SEED_SLUG, make_key, xiji_id

PLAN = "/api/v1/plans/xiji-fzsh-2021-2025"
TASKS = f"{PLAN}/tasks"

# Read off the plan: tasks whose 牵头单位 line names 司法局/县司法局.
JUSTICE_LEADS = [
    "2.1.4", "2.2.1", "2.2.2", "2.3.1", "2.3.2", "2.3.3", "2.3.4", "2.4.1", "2.4.2", "2.4.3",
    "3.1.1", "3.3.4",
    "4.1.2", "4.1.3", "4.2.1", "4.2.3", "4.3.2", "4.4.1", "4.4.3", "4.5.1",
    "5.2.5", "5.4.5", "5.5.3",
]  # fmt: skip
# Tasks that do NOT name 各乡镇 (every other task of the 76 does).
NOT_TOWNSHIPS = {
    "2.1.3", "2.2.5", "4.3.1", "4.3.2", "4.3.3", "4.3.4", "4.3.5", "4.3.6", "4.3.7", "4.4.2", "4.4.4",
    "4.5.2", "4.5.3", "5.2.7", "5.3.1", "5.3.2", "5.3.3", "5.3.4", "5.3.5", "5.3.6", "5.3.7", "5.5.1",
}  # fmt: skip


def codes(client: TestClient, **params: Any) -> list[str]:
    response = client.get(TASKS, params={"limit": 500, **params})
    assert response.status_code == 200, response.text
    return [t["code"] for t in response.json()["items"]]


def all_codes(client: TestClient) -> list[str]:
    return codes(client)


def test_task_list_is_the_whole_plan_in_document_order(client: TestClient) -> None:
    body = client.get(TASKS, params={"count": "true"}).json()
    assert body["total"] == 76
    assert len(body["items"]) == 50 and body["next_cursor"]
    everything = all_codes(client)
    assert len(everything) == 76
    assert everything[:5] == ["2.1.1", "2.1.2", "2.1.3", "2.1.4", "2.2.1"]
    assert everything[-1] == "6.3.2"


def test_unit_by_alias_and_role(client: TestClient) -> None:
    assert codes(client, unit="司法局", role="lead") == JUSTICE_LEADS
    assert codes(client, unit="县司法局", role="lead") == JUSTICE_LEADS
    assert codes(client, unit="司法局", role="responsible") == ["2.2.5", "4.4.2", "4.4.4"]
    assert codes(client, unit="司法局", role="cooperating") == ["4.3.5", "4.3.6", "4.5.2", "5.5.1", "5.5.2"]
    unit_id = client.get("/api/v1/units/县司法局").json()["id"]
    assert codes(client, unit=str(unit_id), role="lead") == JUSTICE_LEADS


def test_several_roles_like_several_statuses(client: TestClient) -> None:
    """`role=lead,responsible` (or the parameter repeated) is any of them, as with `status=`."""
    either = sorted([*JUSTICE_LEADS, "2.2.5", "4.4.2", "4.4.4"])
    assert sorted(codes(client, unit="司法局", role="lead,responsible")) == either
    assert sorted(codes(client, unit="司法局", role=["responsible", "lead"])) == either
    assert codes(client, unit="司法局", role="lead, lead") == JUSTICE_LEADS
    found = client.get(TASKS, params={"unit": "司法局", "role": "responsible,cooperating", "limit": 500}).json()
    task = next(t for t in found["items"] if t["code"] == "4.4.2")
    assert {link["role"] for link in task["matched_via"]["links"]} <= {"responsible", "cooperating"}
    units = client.get("/api/v1/units/司法局/tasks", params={"role": "lead,responsible", "limit": 500}).json()
    assert sorted(t["code"] for t in units["items"]) == either


def test_direct_match_reports_how_it_matched(client: TestClient) -> None:
    task = client.get(TASKS, params={"unit": "委宣传部", "limit": 1}).json()["items"][0]
    assert task["code"] == "2.1.1"
    assert task["matched_via"]["as_typed"] == "委宣传部"
    assert task["matched_via"]["unit"]["name"] == "县委宣传部"
    assert task["matched_via"]["links"] == [{"role": "lead", "through_group": None}]


def test_township_sees_every_township_task_through_its_group(client: TestClient, db: Session) -> None:
    township = Unit(name="吉强镇", kind=UnitKind.government_department, jurisdiction_id=xiji_id(db))
    db.add(township)
    db.flush()
    group_id = db.exec(select(Unit.id).where(Unit.name == "各乡镇")).one()
    assert township.id is not None
    db.add(GroupMember(group_id=group_id, member_id=township.id))
    db.flush()

    assert codes(client, unit="吉强镇") == []  # direct links only by default
    found = codes(client, unit="吉强镇", include_groups="true")
    assert set(found) == set(all_codes(client)) - NOT_TOWNSHIPS
    assert len(found) == 54
    task = client.get(TASKS, params={"unit": "吉强镇", "include_groups": "true", "limit": 1}).json()["items"][0]
    assert task["matched_via"]["links"] == [
        {
            "role": "cooperating",
            "through_group": {
                "id": group_id,
                "name": "各乡镇",
                "kind": "group",
                "jurisdiction": {"code": "640422", "name": "西吉县"},
            },
        }
    ]
    assert codes(client, unit="吉强镇", include_groups="true", role="lead") == []


def test_role_alone(client: TestClient) -> None:
    responsible = codes(client, role="responsible")
    assert responsible == ["2.1.3", "2.2.5", "4.3.1", "4.3.3", "4.3.4", "4.3.7", "4.4.2", "4.4.4", "5.3.1"]


def test_section_filters(client: TestClient) -> None:
    assert codes(client, section="2.1") == ["2.1.1", "2.1.2", "2.1.3", "2.1.4"]
    chapter_four = codes(client, section="4")
    assert len(chapter_four) == 20 and all(c.startswith("4.") for c in chapter_four)
    assert codes(client, section="5.1") == ["5.1.1"]


def test_due_and_overdue(client: TestClient) -> None:
    assert codes(client, due_before="2023-12-31") == ["5.2.5"]
    assert len(codes(client, due_after="2024-01-01")) == 75
    assert codes(client, overdue="true", as_of="2024-01-01") == ["5.2.5"]
    assert codes(client, section="4", overdue="true", as_of="2024-01-01") == []
    assert len(codes(client, section="4", overdue="true", as_of="2026-01-01")) == 20
    assert len(codes(client, overdue="false", as_of="2024-01-01")) == 75


def test_status_filter_and_completed_is_never_overdue(client: TestClient, db: Session) -> None:
    for code, status in (("5.2.5", TaskStatus.completed), ("2.1.1", TaskStatus.ongoing)):
        task = db.exec(select(Task).where(Task.code == code)).one()
        task.status = status
        db.add(task)
    db.flush()
    assert codes(client, status="completed") == ["5.2.5"]
    assert codes(client, status="completed,ongoing") == ["2.1.1", "5.2.5"]
    assert codes(client, status=["completed", "ongoing"]) == ["2.1.1", "5.2.5"]
    # Today (every due date has passed): a completed task is never overdue, an ongoing one is.
    overdue = codes(client, overdue="true")
    assert "5.2.5" not in overdue and "2.1.1" in overdue
    assert len(codes(client, status="not_started")) == 74


def test_keyword_search(client: TestClient) -> None:
    assert codes(client, q="民法典") == ["2.2.1"]
    assert codes(client, q="%") == []  # LIKE wildcards are escaped, not matched
    assert "4.3.3" in codes(client, q="非法取证")


def test_sorts(client: TestClient) -> None:
    assert codes(client, sort="due")[0] == "5.2.5"
    assert codes(client, sort="-due")[-1] == "5.2.5"
    assert codes(client, sort="-code") == list(reversed(all_codes(client)))
    assert len(codes(client, sort="-updated_at")) == 76


@pytest.mark.parametrize("sort", ["code", "-code", "due", "-due", "updated_at", "-updated_at"])
def test_cursor_pagination_walks_every_task_once(client: TestClient, sort: str) -> None:
    seen: list[str] = []
    cursor = None
    for _ in range(20):
        params: dict[str, Any] = {"limit": 7, "sort": sort}
        if cursor:
            params["cursor"] = cursor
        body = client.get(TASKS, params=params).json()
        seen += [t["code"] for t in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == codes(client, sort=sort)
    assert len(seen) == 76


def test_fields_selects_fields(client: TestClient) -> None:
    items = client.get(TASKS, params={"fields": "code,status", "limit": 2}).json()["items"]
    assert items == [{"code": "2.1.1", "status": "not_started"}, {"code": "2.1.2", "status": "not_started"}]


def test_task_detail(client: TestClient) -> None:
    task = client.get(f"{TASKS}/5.4.2").json()
    assert task["section"] == {"code": "5.4", "title": "增强社会安全感"}
    assert task["chapter"] == {"code": "5", "title": "推进社会治理法治化"}
    leads = [(r["unit"]["name"], r["as_written"]) for r in task["responsibilities"] if r["role"] == "lead"]
    assert leads == [
        ("县委政法委", "县委政法委"),
        ("县法院", "法院"),
        ("县检察院", "检察院"),
        ("县公安局", "公安局"),
        ("县自然资源局", "自然资源局"),
        ("县卫生健康局", "卫生健康局"),
        ("县市场监管局", "市场监管局"),
    ]
    cooperating = [r["unit"]["name"] for r in task["responsibilities"] if r["role"] == "cooperating"]
    assert cooperating == ["各乡镇", "各部门(单位)"]
    assert task["due"] == "2025-12-31" and task["status"] == "not_started" and task["progress"] == 0
    assert task["provenance"]["number_inferred"] is False
    assert "matched_via" not in task
    inferred = client.get(f"{TASKS}/2.1.3").json()
    assert inferred["provenance"]["number_inferred"] is True
    assert inferred["responsibilities"][0]["role"] == "responsible"


@pytest.mark.parametrize(
    ("params", "status", "field"),
    [
        ({"staus": "completed"}, 400, "query.staus"),
        ({"limit": "0"}, 422, "query.limit"),
        ({"limit": "501"}, 422, "query.limit"),
        ({"limit": "abc"}, 422, "query.limit"),
        ({"role": "boss"}, 400, "query.role"),
        ({"role": "lead,boss"}, 400, "query.role"),
        ({"status": "done"}, 400, "query.status"),
        ({"section": "9"}, 400, "query.section"),
        ({"section": "abc"}, 422, "query.section"),
        ({"unit": "不存在的局"}, 400, "query.unit"),
        ({"cursor": "garbage"}, 400, "query.cursor"),
        ({"due_before": "2025-13-01"}, 422, "query.due_before"),
        ({"overdue": "maybe"}, 422, "query.overdue"),
        ({"fields": "code,colour"}, 400, "query.fields"),
        ({"sort": "title"}, 422, "query.sort"),
        ({"format": "xml"}, 422, "query.format"),
    ],
)
def test_bad_parameters_are_problems_naming_the_parameter(
    client: TestClient, params: dict[str, str], status: int, field: str
) -> None:
    response = client.get(TASKS, params=params)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert [e["field"] for e in body["errors"]] == [field]
    assert body["detail"]  # a sentence a person can read


def test_cursor_of_another_sort_is_refused(client: TestClient) -> None:
    cursor = client.get(TASKS, params={"limit": 5}).json()["next_cursor"]
    response = client.get(TASKS, params={"limit": 5, "sort": "due", "cursor": cursor})
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "query.cursor"


def test_unknown_plan_and_task_are_404(client: TestClient) -> None:
    assert client.get("/api/v1/plans/nope/tasks").json()["code"] == "not-found"
    response = client.get(f"{TASKS}/9.9.9")
    assert response.status_code == 404 and "9.9.9" in response.json()["detail"]


def test_etag_and_304(client: TestClient) -> None:
    first = client.get(TASKS, params={"unit": "司法局"})
    etag = first.headers["etag"]
    assert first.headers["cache-control"] == "no-cache"
    again = client.get(TASKS, params={"unit": "司法局"}, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    other = client.get(TASKS, params={"unit": "民政局"}, headers={"If-None-Match": etag})
    assert other.status_code == 200


def test_etag_and_cached_reads_change_when_a_report_arrives(client: TestClient, db: Session) -> None:
    etag = client.get(f"{TASKS}/2.1.1").headers["etag"]
    listed = client.get(TASKS, params={"status": "in_progress"}).json()["items"]
    assert listed == []
    key = make_key(db, unit="委宣传部")
    report = {"status": "in_progress", "percent": 40, "summary": "已列入学习计划", "period": "2022"}
    assert client.post(f"{TASKS}/2.1.1/progress", json=report, headers={"Authorization": key}).status_code == 201
    response = client.get(f"{TASKS}/2.1.1", headers={"If-None-Match": etag})
    assert response.status_code == 200 and response.json()["progress"] == 40
    assert [t["code"] for t in client.get(TASKS, params={"status": "in_progress"}).json()["items"]] == ["2.1.1"]


def test_gzip_for_large_responses(client: TestClient) -> None:
    response = client.get(TASKS, params={"limit": 100}, headers={"Accept-Encoding": "gzip"})
    assert response.headers["content-encoding"] == "gzip"
    assert response.headers["vary"] == "Accept, Accept-Encoding"
    plain = client.get(TASKS, params={"limit": 100}, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.headers["vary"] == "Accept, Accept-Encoding"
    assert plain.json() == response.json()
    assert len(response.json()["items"]) == 76


def test_csv_export(client: TestClient) -> None:
    for response in (
        client.get(TASKS, params={"unit": "司法局", "role": "lead", "format": "csv"}),
        client.get(TASKS, params={"unit": "司法局", "role": "lead"}, headers={"Accept": "text/csv"}),
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/csv")
        assert response.content.startswith("\ufeff".encode())
        rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
        assert [r["任务编号"] for r in rows] == JUSTICE_LEADS
        row = next(r for r in rows if r["任务编号"] == "2.2.2")
        assert row["牵头单位"] == "县法院、县委政法委、县司法局"
        assert row["配合单位"] == "各乡镇、各部门(单位)"
        assert row["匹配途径"] == "牵头(直接)" and row["状态"] == "未启动" and row["任务标题"]
        assert "next_cursor" not in response.headers and "link" not in response.headers  # the whole list


def read_csv(response: Any) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    return list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))


def test_csv_honours_fields_and_pages_like_json(client: TestClient) -> None:
    rows = read_csv(client.get(TASKS, params={"format": "csv", "fields": "code,title_derived,status"}))
    assert list(rows[0]) == ["任务编号", "标题系推得", "状态"] and len(rows) == 76
    json_items = client.get(TASKS, params={"limit": 500, "fields": "code,title_derived"}).json()["items"]
    assert [(r["任务编号"], r["标题系推得"] == "是") for r in rows] == [
        (t["code"], t["title_derived"]) for t in json_items
    ]
    # matched_via only where a unit was asked for, as in JSON; `responsibilities` is three columns.
    rows = read_csv(client.get(TASKS, params={"format": "csv", "fields": "code,responsibilities,matched_via"}))
    assert list(rows[0]) == ["任务编号", "牵头单位", "配合单位", "责任单位"]
    # Paging: limit= pages, the next page is in Link (relative, rel="next") and X-Next-Cursor, total on count.
    paged: list[str] = []
    params: dict[str, Any] = {"format": "csv", "unit": "司法局", "limit": 4, "count": "true", "fields": "code"}
    while True:
        response = client.get(TASKS, params=params)
        assert response.headers["x-total-count"] == str(len(JUSTICE_LEADS) + 8)  # lead, responsible, cooperating
        paged += [r["任务编号"] for r in read_csv(response)]
        if "link" not in response.headers:
            assert "x-next-cursor" not in response.headers
            break
        link = response.headers["link"]
        assert link.startswith(f"<{TASKS}?") and link.endswith('>; rel="next"')
        assert f"cursor={response.headers['x-next-cursor']}" in link
        params = {**params, "cursor": response.headers["x-next-cursor"]}
    whole = client.get(TASKS, params={"unit": "司法局", "limit": 500, "fields": "code"}).json()["items"]
    assert paged == [t["code"] for t in whole]


def test_units(client: TestClient) -> None:
    unit = client.get("/api/v1/units/司法局").json()
    assert unit["name"] == "县司法局" and unit["kind"] == "government_department"
    assert unit["aliases"] == ["司法局"]
    assert {g["name"] for g in unit["groups"]} == {"各部门(单位)", "各行政执法部门(单位)"}
    assert unit["members"] is None
    groups = client.get("/api/v1/units", params={"kind": "group"}).json()["items"]
    assert {g["name"] for g in groups} == {"各乡镇", "各部门(单位)", "各行政执法部门(单位)", "各人民团体"}
    people = next(g for g in groups if g["name"] == "各人民团体")
    assert {m["name"] for m in people["members"]} == {"团县委", "县工商联"}
    assert client.get("/api/v1/units/99999").status_code == 404


def test_unit_tasks_across_plans(client: TestClient) -> None:
    found = client.get("/api/v1/units/司法局/tasks", params={"role": "lead", "limit": 500}).json()["items"]
    assert [t["code"] for t in found] == JUSTICE_LEADS
    assert {t["plan"] for t in found} == {"xiji-fzsh-2021-2025"}
    response = client.get("/api/v1/units/司法局/tasks", params={"unit": "民政局"})
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "query.unit"


def test_plan_detail_sections_and_stats(client: TestClient) -> None:
    plan = client.get(PLAN).json()
    assert plan["counts"] == {"sections": 33, "tasks": 76, "units": 33, "links": 286}
    assert plan["goals"].startswith("2025年")
    tree = client.get(f"{PLAN}/sections").json()["items"]
    assert [c["code"] for c in tree] == ["1", "2", "3", "4", "5", "6", "7"]
    assert [len(c["children"]) for c in tree] == [2, 4, 4, 5, 5, 3, 3]
    assert [c["task_count"] for c in tree] == [0, 16, 9, 20, 23, 8, 0]
    assert tree[0]["children"][0]["title"] == "指导思想"
    assert tree[0]["children"][0]["body"].startswith("高举中国特色社会主义伟大旗帜")
    stats = client.get(f"{PLAN}/stats", params={"as_of": "2024-01-01"}).json()
    assert stats["tasks"] == 76 and stats["overdue"] == 1
    assert stats["by_status"]["not_started"] == 76
    assert [(c["code"], c["tasks"]) for c in stats["by_chapter"]] == [
        ("2", 16),
        ("3", 9),
        ("4", 20),
        ("5", 23),
        ("6", 8),
    ]
    top = stats["by_unit"][0]
    assert top["unit"]["name"] == "县司法局"
    assert (top["lead"], top["responsible"], top["cooperating"], top["overdue"]) == (23, 3, 5, 1)


def test_every_task_has_a_readable_title_and_says_when_it_was_derived(client: TestClient, db: Session) -> None:
    tasks = client.get(TASKS, params={"limit": 500}).json()["items"]
    assert len(tasks) == 76 and all(t["title"].strip() for t in tasks)
    plan = db.exec(select(Plan).where(Plan.slug == SEED_SLUG)).one()
    stored = {t.code: t.title for t in db.exec(select(Task).where(Task.plan_id == plan.id))}
    for task in tasks:
        assert task["title_derived"] == (stored[task["code"]] is None), task["code"]
        if task["title_derived"]:  # the text's first clause, at most 40 characters and an ellipsis
            assert task["text"].startswith(task["title"].removesuffix("…")) and len(task["title"]) <= 41
        else:
            assert task["title"] == stored[task["code"]]
    assert sum(t["title_derived"] for t in tasks) == sum(title is None for title in stored.values()) > 0
    only = client.get(TASKS, params={"fields": "code,title,title_derived", "limit": 1}).json()["items"][0]
    assert set(only) == {"code", "title", "title_derived"}
