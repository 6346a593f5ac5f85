"""The periodic 通报: drafted from a simulated year of reports, its figures match the API's stats and
compliance endpoints, every cited request answers, and the .docx opens with python-docx and says
the same. Both engines (the `office` server of test_supervision_cycle.py: a real server over HTTP)."""

from __future__ import annotations

import io
import re
from datetime import date
from typing import Any

import docx
import httpx
import pytest
from fastapi.testclient import TestClient

from tests.test_supervision_cycle import PLAN, Office, Script, get, run_2023
from tests.test_supervision_cycle import office as office

AS_OF = date(2024, 2, 1)
STATUS_LABELS = {
    "completed": "已完成",
    "ongoing": "常态化",
    "in_progress": "推进中",
    "delayed": "滞后",
    "not_started": "未启动",
}
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def percent(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f}%"


def standing(row: dict[str, Any]) -> str:
    """The documented rule (app/services/briefing.py), written again."""
    if row["missing"]:
        return "未报送"
    if row["late"]:
        return "逾期报送"
    if row["on_time"]:
        return "按时报送"
    return "尚无可评判"


def footnotes(markdown: str) -> dict[int, str]:
    return {int(n): url for n, url in re.findall(r"^\[\^(\d+)\]: .*?<(http[^>]+)>$", markdown, re.MULTILINE)}


def expected_lines(http: httpx.Client, period: str) -> list[str]:
    """What the draft must say, built from the API's own answers."""
    stats = get(http, f"{PLAN}/stats", as_of=AS_OF.isoformat(), period=period)
    compliance = get(http, f"{PLAN}/compliance", as_of=AS_OF.isoformat(), period=period)
    t = compliance["totals"]
    lines = [
        f"方案共 {stats['tasks']} 项任务",
        *(f"{label} {stats['by_status'][status]} 项" for status, label in STATUS_LABELS.items()),
        f"已过期限未完成 {stats['overdue']} 项",
        f"红灯 {stats['by_light']['red']} 项、黄灯 {stats['by_light']['yellow']} 项、绿灯 {stats['by_light']['green']} 项",
        f"全方案本期应报 {t['owed']} 项:按时报送 {t['on_time']} 项、逾期报送 {t['late']} 项、未报送 {t['missing']} 项、"
        f"待报送 {t['due']} 项、免报 {t['excused']} 项;按时报送率 {percent(t['rate'])},报送率 {percent(t['reported_rate'])}",
    ]
    for c in stats["by_chapter"]:
        cells = [
            c["code"],
            c["title"],
            str(c["tasks"]),
            *(str(c["by_status"][s]) for s in STATUS_LABELS),
            str(c["overdue"]),
            f"{c['mean_progress']}%",
            *(str(c["by_light"][light]) for light in ("red", "yellow", "green")),
        ]
        lines.append(" | ".join(cells))
    groups: dict[str, list[str]] = {}
    for row in compliance["items"]:
        groups.setdefault(standing(row), []).append(row["unit"]["name"])
    for label in ("按时报送", "逾期报送", "未报送", "尚无可评判"):
        lines.append(f"{label}的单位({len(groups.get(label, []))} 个)")
    return lines


def check_markdown(http: httpx.Client, period: str) -> str:
    response = http.get(f"{PLAN}/periods/{period}/briefing", params={"as_of": AS_OF.isoformat()})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/markdown")
    md = response.text
    for line in expected_lines(http, period):
        assert line in md, (period, line)
    # Each unit is named under its standing.
    compliance = get(http, f"{PLAN}/compliance", as_of=AS_OF.isoformat(), period=period)
    for row in compliance["items"]:
        bullet = next(b for b in md.splitlines() if b.startswith(f"- {standing(row)}的单位"))
        assert row["unit"]["name"] in bullet, (period, row["unit"]["name"], bullet)
    # The red tasks, each with its red reasons, as the task list answers.
    red = get(http, f"{PLAN}/tasks", light="red", as_of=AS_OF.isoformat(), fields="code,light_reasons", limit=500)
    for task in red["items"]:
        line = next(line for line in md.splitlines() if line.startswith(f"- {task['code']} "))
        for reason in task["light_reasons"]:
            if reason["light"] == "red":
                assert reason["message"] in line
    assert sum(1 for line in md.splitlines() if re.match(r"- \d+\.\d+\.\d+ ", line)) == len(red["items"])
    # Every figure cites a request, and every cited request answers (the stats one with the same figures).
    notes = footnotes(md)
    assert notes and set(re.findall(r"\[\^(\d+)\](?!:)", md)) == {str(n) for n in notes}
    for url in notes.values():
        assert http.get(url).status_code == 200, url
    assert any("/stats?" in url for url in notes.values()) and any("/compliance?" in url for url in notes.values())
    return md


def check_docx(http: httpx.Client, period: str) -> None:
    by_param = http.get(f"{PLAN}/periods/{period}/briefing", params={"as_of": AS_OF.isoformat(), "format": "docx"})
    by_path = http.get(f"{PLAN}/periods/{period}/briefing.docx", params={"as_of": AS_OF.isoformat()})
    for response in (by_param, by_path):
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == DOCX
        assert "attachment" in response.headers["content-disposition"]
    document = docx.Document(io.BytesIO(by_path.content))
    same = docx.Document(io.BytesIO(by_param.content))  # the zip's timestamps differ; the text does not
    assert [p.text for p in same.paragraphs] == [p.text for p in document.paragraphs]
    text = "\n".join(p.text for p in document.paragraphs)
    rows = [" | ".join(cell.text for cell in row.cells) for table in document.tables for row in table.rows]
    for line in expected_lines(http, period):
        assert line in text or line in rows, (period, line)
    links = [r.target_ref for r in document.part.rels.values() if r.reltype.endswith("/hyperlink")]
    assert any("/stats?" in link for link in links) and any("/compliance?" in link for link in links)
    for link in links:
        assert http.get(link).status_code == 200, link


def test_the_briefing_matches_the_api_over_a_simulated_year(office: Office) -> None:
    script = Script(office)
    run_2023(script)
    http = office.http
    for period in ("2023-Q3", "2023-Q4"):
        check_markdown(http, period)
        check_docx(http, period)

    # Notable reports: the counting reports of the period that say completed or delayed, or were returned.
    q3 = check_markdown(http, "2023-Q3")
    cited = {int(n) for n in re.findall(r"报告 (\d+):", q3)}
    expected = {s.id for s in script.sent if s.period == "2023-Q3" and s.status in ("completed", "delayed")}
    assert cited == expected and expected
    q2 = http.get(f"{PLAN}/periods/2023-Q2/briefing", params={"as_of": AS_OF.isoformat()}).text
    returned = next(s for s in script.sent if s.period == "2023-Q2" and s.unit == "县司法局" and s.task == "2.3.3")
    assert "被退回(佐证材料不全)" in q2 and f"报告 {returned.id}:" in q2

    # One unit's draft: only its own standing.
    mine = http.get(f"{PLAN}/periods/2023-Q4/briefing", params={"as_of": AS_OF.isoformat(), "unit": "县政府办"}).text
    assert "(县政府办)" in mine.splitlines()[0]
    assert "县司法局" not in "\n".join(line for line in mine.splitlines() if "的单位(" in line)


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/periods/2023-Q9/briefing", {}, "path.period"),  # not a period at all
        ("/periods/2019-Q1/briefing", {}, "path.period"),  # outside the plan's calendar
        ("/periods/2023-Q4/briefing", {"format": "pdf"}, "query.format"),
        ("/periods/2023-Q4/briefing", {"unit": "不存在的局"}, "query.unit"),
        ("/periods/2023-Q4/briefing", {"as_of": "2024-13-01"}, "query.as_of"),
        ("/periods/2023-Q4/briefing", {"formt": "md"}, "query.formt"),
        ("/periods/2023-Q4/briefing.docx", {"format": "md"}, "query.format"),
    ],
)
def test_bad_requests_are_problems_on_the_right_field(
    client: TestClient, path: str, params: dict[str, str], field: str
) -> None:
    response = client.get(f"{PLAN}{path}", params=params)
    assert response.status_code in (400, 422), response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in response.json()["errors"]] == [field]


def test_unknown_plan_is_404(client: TestClient) -> None:
    response = client.get("/api/v1/plans/no-such-plan/periods/2023-Q4/briefing")
    assert response.status_code == 404 and response.json()["code"] == "not-found"


def test_openapi_documents_both_content_types(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    for path in (
        "/api/v1/plans/{plan}/periods/{period}/briefing",
        "/api/v1/plans/{plan}/periods/{period}/briefing.docx",
    ):
        operation = spec["paths"][path]["get"]
        assert set(operation["responses"]["200"]["content"]) == {"text/markdown", DOCX}
        assert operation["tags"] == ["briefing"]
    assert "briefing" in {t["name"] for t in spec["tags"]}
