"""`GET /units/{unit}/template.xlsx|.csv` through the real app on SQLite and PostgreSQL: the rows a
unit reports on (directly and through its groups, every role), their prefilled cells, formula-safe
titles, and clear 4xx answers for a bad unit, plan or period."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from fastapi.testclient import TestClient
from openpyxl import load_workbook
from plan_api_client.sheets import HEADERS, Row, parse_rows
from sqlmodel import Session, col, select

from app.models import GroupMember, Plan, Responsibility, Task, Unit
from app.services.tasks import readable_title
from tests.factories import SEED_PLAN, SEED_SLUG, import_text

SFJ = "县司法局"


def csv_rows(client: TestClient, path: str) -> list[list[str]]:
    answer = client.get(path)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    assert answer.content.startswith("\ufeff".encode())
    return list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))


def linked_codes(db: Session, unit_name: str) -> set[str]:
    """An independent statement of the rows: tasks linked to the unit or to a group it belongs to."""
    unit = db.exec(select(Unit).where(Unit.name == unit_name)).one()
    groups = set(db.exec(select(GroupMember.group_id).where(GroupMember.member_id == unit.id)))
    linked = select(Task.code).join(Responsibility).where(col(Responsibility.unit_id).in_({unit.id, *groups}))
    return set(db.exec(linked))


def test_csv_template_lists_every_task_the_unit_reports_on(client: TestClient, db: Session) -> None:
    rows = csv_rows(client, f"/api/v1/units/{SFJ}/template.csv?period=2024-Q1")
    assert tuple(rows[0]) == HEADERS
    body = {row[0]: row for row in rows[1:]}
    assert len(body) == len(rows) - 1
    assert set(body) == linked_codes(db, SFJ)
    assert body["2.3.3"][2:] == ["牵头、配合(经各部门(单位))", "未启动", "0", "2024-Q1", "", "", "", ""]
    assert body["2.2.5"][2] == "责任"
    untitled = db.exec(select(Task).where(col(Task.title).is_(None), col(Task.code).in_(list(body)))).first()
    assert untitled is not None
    assert body[untitled.code][1] == readable_title(untitled) and body[untitled.code][1]
    assert untitled.text.startswith(body[untitled.code][1].removesuffix("…"))


def test_xlsx_template_has_the_same_rows_with_drop_downs(client: TestClient) -> None:
    answer = client.get(f"/api/v1/units/{SFJ}/template.xlsx", params={"plan": SEED_SLUG})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    sheet = load_workbook(io.BytesIO(answer.content)).worksheets[0]
    from_csv = csv_rows(client, f"/api/v1/units/{SFJ}/template.csv")
    from_xlsx = [["" if c is None else str(c) for c in row] for row in sheet.iter_rows(values_only=True)]
    assert from_xlsx == from_csv
    assert sheet.freeze_panes == "A2"
    assert sheet.column_dimensions["B"].width >= 30 and sheet.column_dimensions["I"].width >= 40
    ranges = {rule.type: str(rule.sqref) for rule in sheet.data_validations.dataValidation}
    assert ranges["list"].startswith("G2:G") and ranges["whole"].startswith("H2:H")


def test_a_filled_template_is_what_submit_accepts(client: TestClient) -> None:
    rows = csv_rows(client, f"/api/v1/units/{SFJ}/template.csv?period=2024-Q1")
    header, first, second = rows[0], rows[1], rows[2]
    first[6:9], second[6:9] = ["推进中", "50", "已部署"], ["已完成", "100", "已完成"]
    parsed = parse_rows([Row(number=i + 2, values=dict(zip(header, r, strict=True))) for i, r in enumerate(rows[1:])])
    assert parsed.errors == {}
    assert [(n, r["task"], r["status"], r["period"]) for n, r in parsed.reports] == [
        (2, first[0], "in_progress", "2024-Q1"),
        (3, second[0], "completed", "2024-Q1"),
    ]
    assert len(parsed.skipped) == len(rows) - 3


def test_titles_a_spreadsheet_would_run_are_text(client: TestClient, db: Session) -> None:
    task = db.exec(select(Task).where(Task.code == "2.3.3")).one()
    task.title = '=HYPERLINK("http://evil","点击")'
    db.add(task)
    db.flush()
    body = {row[0]: row for row in csv_rows(client, f"/api/v1/units/{SFJ}/template.csv")}
    assert body["2.3.3"][1] == "'" + task.title
    sheet = load_workbook(io.BytesIO(client.get(f"/api/v1/units/{SFJ}/template.xlsx").content)).worksheets[0]
    cell = next(row[1] for row in sheet.iter_rows(min_row=2) if row[0].value == "2.3.3")
    assert cell.data_type == "s" and cell.value == "'" + task.title  # the same rule as CSV: app/services/sheets.py


def test_bad_requests_are_clear_problems(client: TestClient, db: Session, tmp_path: Path) -> None:
    def problem(path: str, status: int) -> dict[str, object]:
        answer = client.get(path)
        assert answer.status_code == status, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
        return answer.json()

    assert problem("/api/v1/units/不存在的局/template.xlsx", 404)["code"] == "not-found"
    bad = problem(f"/api/v1/units/{SFJ}/template.csv?period=2024-Q5", 400)
    assert bad["errors"] == [{"field": "query.period", "message": bad["errors"][0]["message"], "type": "value_error"}]  # type: ignore[index]
    finer = problem(f"/api/v1/units/{SFJ}/template.csv?period=2024-05", 400)
    assert "报送周期" in str(finer["detail"])
    assert "不在方案实施期" in str(problem(f"/api/v1/units/{SFJ}/template.csv?period=2031", 400)["detail"])
    assert problem(f"/api/v1/units/{SFJ}/template.xlsx?plan=no-such-plan", 400)["errors"][0]["field"] == "query.plan"  # type: ignore[index]
    assert problem(f"/api/v1/units/{SFJ}/template.csv?format=pdf", 400)["code"]  # unknown parameters are refused

    import_text(db, tmp_path, SEED_PLAN.read_text(encoding="utf-8"), slug="xiji-copy-2021-2025")
    several = problem(f"/api/v1/units/{SFJ}/template.csv", 400)
    assert "xiji-copy-2021-2025" in str(several["detail"]) and SEED_SLUG in str(several["detail"])
    assert len(csv_rows(client, f"/api/v1/units/{SFJ}/template.csv?plan=xiji-copy-2021-2025")) > 1
    assert db.exec(select(Plan).where(Plan.slug == "xiji-copy-2021-2025")).one()
