"""Done-when of issue #8, as a new 县司法局 clerk would go about it, against a real running server on
SQLite and PostgreSQL: download the template, fill it with openpyxl (Chinese labels), `plan-api submit`
it, submit again (nothing duplicated), correct one row (the correction supersedes), break two rows
(row-numbered errors, exit 1, the other rows stored), and read the reports back through the client."""

from __future__ import annotations

import csv
import os
import subprocess
from pathlib import Path

from openpyxl import load_workbook
from openpyxl.worksheet.worksheet import Worksheet
from plan_api_client import PlanAPI
from plan_api_client.sheets import HEADERS

from tests.factories import PLAN_API, SEED_SLUG, live_server

SFJ = "县司法局"
FILLED = {  # task → (状态, 完成百分比, 进展摘要, 佐证材料)
    "2.3.3": (
        "推进中",
        60,
        "组建普法志愿者队伍 12 支,开展以案释法 8 场",
        "西司发〔2024〕3号;https://www.nxxj.gov.cn/sfj/1",
    ),
    "2.3.4": ("已完成", 100, "县融媒体中心开设普法专栏", ""),
    "2.4.1": ("常态化", 80, "法治文化建设纳入年度考核", "西司发〔2024〕4号"),
    "2.2.5": ("滞后", 20, "企业法治文化建设尚未启动调研", ""),
}
ENGLISH = {"推进中": "in_progress", "已完成": "completed", "常态化": "ongoing", "滞后": "delayed"}


def column(name: str) -> int:
    return HEADERS.index(name) + 1


def fill(sheet: Worksheet, row: int, status: str, percent: object, summary: str, evidence: str = "") -> None:
    sheet.cell(row, column("状态")).value = status
    sheet.cell(row, column("完成百分比")).value = percent
    sheet.cell(row, column("进展摘要")).value = summary
    sheet.cell(row, column("佐证材料")).value = evidence or None


def results(path: Path) -> dict[str, tuple[str, str]]:
    """The results file next to the input: 行号 → (结果, 说明)."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return {row["行号"]: (row["结果"], row["说明"]) for row in csv.DictReader(handle)}


def test_a_clerk_fills_the_template_and_submits_it(backend: str, tmp_path: Path) -> None:
    for live in live_server(backend, tmp_path):
        env = {**os.environ, "PLAN_API_URL": live.base_url, "PLAN_API_KEY": live.key(SFJ)}
        env.pop("DATABASE_URL", None)  # the department commands talk HTTP only

        def plan_api(*args: str, env: dict[str, str] = env) -> subprocess.CompletedProcess[str]:
            done = subprocess.run(
                [str(PLAN_API), *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False
            )
            assert "Traceback" not in done.stderr, done.stderr
            return done

        sheet_path = tmp_path / "司法局-2024Q1.xlsx"
        done = plan_api("template", "--unit", SFJ, "--plan", SEED_SLUG, "--period", "2024-Q1", "-o", str(sheet_path))
        assert done.returncode == 0, done.stderr

        book = load_workbook(sheet_path)
        sheet = book.worksheets[0]
        assert [c.value for c in sheet[1]] == list(HEADERS)
        assert sheet.freeze_panes == "A2"
        rules = {rule.type: rule for rule in sheet.data_validations.dataValidation}
        assert rules["list"].formula1 == '"未启动,推进中,已完成,滞后,常态化"'
        assert (rules["whole"].formula1, rules["whole"].formula2) == ("0", "100")
        row_of = {sheet.cell(r, 1).value: r for r in range(2, sheet.max_row + 1)}
        assert "2.1.3" not in row_of  # 县教育体育局's task alone
        assert sheet.cell(row_of["2.3.3"], column("本单位角色")).value.startswith("牵头")
        assert sheet.cell(row_of["2.2.5"], column("本单位角色")).value == "责任"
        assert sheet.cell(row_of["2.3.3"], column("当前状态")).value == "未启动"
        assert sheet.cell(row_of["2.3.3"], column("报告期")).value == "2024-Q1"
        assert all(sheet.cell(r, column("任务标题")).value for r in row_of.values())  # derived where the plan has none
        for code, values in FILLED.items():
            fill(sheet, row_of[code], *values)
        book.save(sheet_path)

        # First submission: four new reports.
        done = plan_api("submit", str(sheet_path), "--plan", SEED_SLUG)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "新增 4 / 更正 0 / 已存在 0 / 失败 0" in done.stdout
        results_path = tmp_path / "司法局-2024Q1.results.csv"
        assert {row: outcome for row, (outcome, _) in results(results_path).items()} == {
            str(row_of[code]): "新增" for code in FILLED
        }

        # The same file again: nothing duplicated.
        done = plan_api("submit", str(sheet_path), "--plan", SEED_SLUG)
        assert done.returncode == 0, done.stderr
        assert "新增 0 / 更正 0 / 已存在 4 / 失败 0" in done.stdout
        with PlanAPI(live.base_url) as api:
            for code in FILLED:
                assert len(list(api.history(code, plan=SEED_SLUG, period="2024-Q1"))) == 1, code

        # A corrected row supersedes its first version.
        sheet.cell(row_of["2.3.3"], column("完成百分比")).value = 70
        book.save(sheet_path)
        done = plan_api("submit", str(sheet_path), "--plan", SEED_SLUG)
        assert done.returncode == 0, done.stderr
        assert "新增 0 / 更正 1 / 已存在 3 / 失败 0" in done.stdout
        with PlanAPI(live.base_url) as api:
            newest, first = api.history("2.3.3", plan=SEED_SLUG, period="2024-Q1")
        assert (newest["percent"], newest["current"], newest["supersedes"]) == (70, True, first["id"])
        assert (first["percent"], first["current"]) == (60, False)

        # Two rows broken (a label the sheet does not offer, a percent out of range), one row newly
        # filled, one row the server refuses (a task that is not 县司法局's): row-numbered errors, exit 1,
        # and the valid rows stored.
        fill(sheet, row_of["2.3.4"], "进行中", 100, "县融媒体中心开设普法专栏")
        fill(sheet, row_of["2.4.1"], "常态化", 150, "法治文化建设纳入年度考核", "西司发〔2024〕4号")
        fill(sheet, row_of["2.4.2"], "推进中", 30, "建成法治文化广场 2 处")
        foreign = sheet.max_row + 1
        sheet.cell(foreign, 1).value = "2.1.3"
        sheet.cell(foreign, column("报告期")).value = "2024-Q1"
        fill(sheet, foreign, "推进中", 10, "配合开展宪法进校园")
        book.save(sheet_path)

        done = plan_api("submit", str(sheet_path), "--plan", SEED_SLUG, "--dry-run")
        assert done.returncode == 1
        assert f"第 {row_of['2.3.4']} 行:状态“进行中”应为 未启动/推进中/已完成/滞后/常态化 之一" in done.stderr
        assert f"第 {row_of['2.4.1']} 行:完成百分比应为 0–100 的整数" in done.stderr
        # … and the server's validate-only batch checked the rows that were valid locally: 2.1.3 is
        # not 县司法局's task, 2.4.2 would be stored, 2.3.3 is already there.
        assert f"第 {foreign} 行:" in done.stderr and "县司法局与任务 2.1.3 无关联" in done.stderr
        assert f"第 {row_of['2.4.2']} 行\t2.4.2\t2024-Q1\t将报送" in done.stdout
        assert f"第 {row_of['2.3.3']} 行\t2.3.3\t2024-Q1\t已存在" in done.stdout
        assert "未写入任何数据" in done.stdout
        with PlanAPI(live.base_url) as api:
            assert list(api.history("2.4.2", plan=SEED_SLUG)) == []  # --dry-run wrote nothing

        done = plan_api("submit", str(sheet_path), "--plan", SEED_SLUG)
        assert done.returncode == 1
        assert f"第 {row_of['2.3.4']} 行:状态“进行中”应为" in done.stderr
        assert f"第 {row_of['2.4.1']} 行:完成百分比应为 0–100 的整数" in done.stderr
        assert "新增 1 / 更正 0 / 已存在 2 / 失败 3" in done.stdout
        answers = results(results_path)
        assert answers[str(row_of["2.4.2"])] == ("新增", "")
        assert answers[str(row_of["2.3.4"])][0] == "失败"
        assert answers[str(foreign)][0] == "失败" and "县司法局与任务 2.1.3 无关联" in answers[str(foreign)][1]

        # The reports as the client reads them: one current version per task, as last sent validly.
        expected = {**FILLED, "2.3.3": ("推进中", 70, "", ""), "2.4.2": ("推进中", 30, "", "")}
        with PlanAPI(live.base_url) as api:
            for code, (status, percent, _, _) in expected.items():
                current = [r for r in api.history(code, plan=SEED_SLUG, period="2024-Q1") if r["current"]]
                assert [(r["status"], r["percent"], r["unit"]["name"]) for r in current] == [
                    (ENGLISH[status], percent, SFJ)
                ], code
            assert list(api.history("2.1.3", plan=SEED_SLUG)) == []
            evidence = next(api.history("2.3.3", plan=SEED_SLUG, period="2024-Q1"))["evidence"]
            assert evidence == ["西司发〔2024〕3号", "https://www.nxxj.gov.cn/sfj/1"]
