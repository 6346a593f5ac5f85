"""Spreadsheet exports (`export.xlsx`, `history.csv|.xlsx`, `stats.csv|.xlsx`) opened with openpyxl and
read against the JSON API; and every CSV/XLSX we produce keeps formula-like text inert."""

from __future__ import annotations

import csv
import io
from typing import Any

from fastapi.testclient import TestClient
from openpyxl import load_workbook
from openpyxl.workbook import Workbook
from sqlmodel import Session, select

from app.models import Plan, Task, TaskStatus
from app.services.lights import LIGHT_LABELS, Light
from tests.factories import SEED_SLUG, make_key

PLAN = f"/api/v1/plans/{SEED_SLUG}"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
LABEL = {s.value: s.label for s in TaskStatus}


def workbook(response: Any) -> Workbook:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == XLSX
    assert response.headers["content-disposition"].startswith("attachment;")
    return load_workbook(io.BytesIO(response.content))


def records(sheet: Any) -> list[dict[str, Any]]:
    rows = list(sheet.iter_rows(values_only=True))
    return [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]


def read_csv(response: Any) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))


def report(client: TestClient, key: str, code: str, status: str, percent: int, summary: str) -> dict[str, Any]:
    body = {"status": status, "percent": percent, "summary": summary, "period": "2024-Q1"}
    response = client.post(f"{PLAN}/tasks/{code}/progress", json=body, headers={"Authorization": key})
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_the_plan_workbook_agrees_with_the_json_api(client: TestClient, db: Session) -> None:
    report(client, make_key(db, unit="司法局"), "2.3.3", "in_progress", 60, "组建普法志愿者队伍")
    book = workbook(client.get(f"{PLAN}/export.xlsx"))
    assert book.sheetnames[:3] == ["任务", "单位", "矩阵"]
    tasks = client.get(f"{PLAN}/tasks", params={"limit": 500}).json()["items"]

    sheet = book["任务"]
    assert sheet.freeze_panes == "A2" and sheet.column_dimensions["B"].width >= 30
    rows = records(sheet)
    assert [r["任务编号"] for r in rows] == [t["code"] for t in tasks]
    for row, task in zip(rows, tasks, strict=True):
        assert row["任务标题"] == task["title"] and (row["标题系推得"] == "是") == task["title_derived"]
        assert (row["状态"], row["完成百分比"]) == (LABEL[task["status"]], task["progress"])
        assert row["亮灯"] == LIGHT_LABELS[Light(task["light"])]
        leads = [r["unit"]["name"] for r in task["responsibilities"] if r["role"] == "lead"]
        assert (row["牵头单位"] or "") == "、".join(leads)
    assert next(r for r in rows if r["任务编号"] == "2.3.3")["状态"] == "推进中"

    # 单位 and 矩阵: what 县司法局 leads, cooperates on, owns — as the unit's task list says.
    def codes(role: str) -> list[str]:
        found = client.get(f"{PLAN}/tasks", params={"unit": "县司法局", "role": role, "limit": 500}).json()
        return [t["code"] for t in found["items"]]

    units = {r["单位"]: r for r in records(book["单位"])}
    justice = units["县司法局"]
    assert (justice["牵头任务数"], justice["配合任务数"], justice["责任任务数"]) == (
        len(codes("lead")),
        len(codes("cooperating")),
        len(codes("responsible")),
    )
    matrix = book["矩阵"]
    assert matrix.freeze_panes == "B2"
    header = [c.value for c in matrix[1]]
    assert header[1:] == [t["code"] for t in tasks]
    line = dict(zip(header, next(r for r in matrix.iter_rows(values_only=True) if r[0] == "县司法局"), strict=True))
    for label, role in (("牵头", "lead"), ("配合", "cooperating"), ("责任", "responsible")):
        assert [code for code in header[1:] if label in (line[code] or "")] == codes(role), label
    assert set(units) == {row[0] for row in matrix.iter_rows(min_row=2, values_only=True)}


def test_history_as_csv_and_xlsx_is_the_reports_of_the_api(client: TestClient, db: Session) -> None:
    justice, police = make_key(db, unit="司法局"), make_key(db, unit="公安局")
    first = report(client, justice, "2.3.3", "in_progress", 60, "组建普法志愿者队伍")
    report(client, justice, "2.3.3", "in_progress", 70, '=HYPERLINK("http://evil")')  # supersedes the first
    report(client, police, "4.3.5", "in_progress", 30, "配合开展专项整治")
    rows = read_csv(client.get(f"{PLAN}/history.csv"))
    api = (
        client.get("/api/v1/units/县司法局/progress").json()["items"]
        + client.get("/api/v1/units/公安局/progress").json()["items"]
    )
    by_id = {r["id"]: r for r in api}
    assert [int(r["报告编号"]) for r in rows] == sorted(by_id, reverse=True)
    for row in rows:
        expected = by_id[int(row["报告编号"])]
        assert (row["任务编号"], row["报送单位"], row["报告期"]) == (
            expected["task"],
            expected["unit"]["name"],
            expected["period"],
        )
        assert (row["状态"], int(row["完成百分比"])) == (LABEL[expected["status"]], expected["percent"])
        assert row["现行版本"] == ("是" if expected["current"] else "否")
    assert next(r for r in rows if r["报告编号"] == str(first["id"]))["现行版本"] == "否"
    assert any(r["进展摘要"] == '\'=HYPERLINK("http://evil")' for r in rows)  # inert in a spreadsheet

    only = read_csv(client.get(f"{PLAN}/history.csv", params={"unit": "公安局"}))
    assert [r["任务编号"] for r in only] == ["4.3.5"] and only[0]["类别"] == "配合报告"
    sheet = workbook(client.get(f"{PLAN}/history.xlsx", params={"period": "2024-Q1"}))["进展历史"]
    assert sheet.freeze_panes == "A2"
    assert [r["报告编号"] for r in records(sheet)] == [int(r["报告编号"]) for r in rows]
    evil = next(c for c in sheet["I"] if isinstance(c.value, str) and "HYPERLINK" in c.value)
    assert evil.value.startswith("'=") and evil.data_type == "s"
    assert client.get(f"{PLAN}/history.csv", params={"unit": "不存在的局"}).status_code == 400


def test_stats_as_csv_and_xlsx_are_the_figures_of_get_stats(client: TestClient, db: Session) -> None:
    report(client, make_key(db, unit="司法局"), "2.3.3", "completed", 100, "已完成")
    stats = client.get(f"{PLAN}/stats").json()
    units = read_csv(client.get(f"{PLAN}/stats.csv"))
    assert [(r["单位"], int(r["牵头"]), int(r["配合"]), int(r["已逾期"])) for r in units] == [
        (u["unit"]["name"], u["lead"], u["cooperating"], u["overdue"]) for u in stats["by_unit"]
    ]
    chapters = read_csv(client.get(f"{PLAN}/stats.csv", params={"table": "chapters"}))
    assert [(r["章"], int(r["任务数"]), int(r["已完成"])) for r in chapters] == [
        (c["code"], c["tasks"], c["by_status"]["completed"]) for c in stats["by_chapter"]
    ]
    book = workbook(client.get(f"{PLAN}/stats.xlsx"))
    assert book.sheetnames == ["概况", "按章", "按单位"]
    overview = {r["指标"]: r["数值"] for r in records(book["概况"])}
    assert (overview["任务数"], overview["已逾期"], overview["状态:已完成"]) == (
        stats["tasks"],
        stats["overdue"],
        stats["by_status"]["completed"],
    )
    assert [r["平均进度"] for r in records(book["按章"])] == [c["mean_progress"] for c in stats["by_chapter"]]
    assert len(records(book["按单位"])) == len(stats["by_unit"])
    assert client.get(f"{PLAN}/stats.csv", params={"table": "lights"}).status_code == 422


def test_formula_like_text_is_inert_in_every_spreadsheet(client: TestClient, db: Session) -> None:
    """A title or text a spreadsheet would run (`=`, `+`, `-`, `@`) is written with a leading apostrophe."""
    plan = db.exec(select(Plan).where(Plan.slug == SEED_SLUG)).one()
    task = db.exec(select(Task).where(Task.plan_id == plan.id, Task.code == "2.3.3")).one()
    task.title, task.text = '=HYPERLINK("http://evil","点我")', "-2+3 开展普法"
    db.add(task)
    db.flush()
    rows = read_csv(client.get(f"{PLAN}/tasks", params={"format": "csv", "fields": "code,title,text"}))
    row = next(r for r in rows if r["任务编号"] == "2.3.3")
    assert row["任务标题"] == "'" + task.title and row["任务内容"] == "'-2+3 开展普法"
    sheet = workbook(client.get(f"{PLAN}/export.xlsx"))["任务"]
    cells = next(r for r in sheet.iter_rows(min_row=2) if r[0].value == "2.3.3")
    assert cells[1].value == "'" + task.title and cells[1].data_type == "s"
    template = client.get("/api/v1/units/县司法局/template.csv").content.decode("utf-8-sig")
    assert "'=HYPERLINK" in template and ",=HYPERLINK" not in template
