"""The client's spreadsheet side, without a server: reading .xlsx/.csv/.json with Chinese or English
headers, every row's errors by its own row number, and `submit --dry-run` as a clerk runs it. Also:
the client package imports none of the server's dependencies."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from openpyxl import Workbook
from plan_api_client import cli as client_cli
from plan_api_client.sheets import HEADERS, SheetError, parse_rows, read_rows, results_path, write_results
from typer.testing import CliRunner

HEADER = ",".join(HEADERS)


def write_csv(path: Path, *rows: str, encoding: str = "utf-8-sig") -> Path:
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding=encoding)
    return path


def test_every_row_error_is_reported_by_its_row_number(tmp_path: Path) -> None:
    sheet = write_csv(
        tmp_path / "q1.csv",
        "2.3.3,标题,牵头,未启动,0,2024-Q1,推进中,60%,开展培训,西司发〔2024〕1号;https://a.cn/1",  # row 2: fine
        "2.3.4,标题,牵头,未启动,0,,,,,",  # row 3: nothing filled in: skipped
        "2.4.1,标题,牵头,未启动,0,2024-Q1,已完成,90,完成,",  # row 4
        ",标题,牵头,未启动,0,2024-13,进行中,abc,,",  # row 5
        "2.3.3,标题,牵头,未启动,0,2024-Q1,滞后,20,重复一行,",  # row 6: same task and period as row 2
        "2.4.2,标题,牵头,未启动,0,,未启动,0,尚未开始,",  # row 7: no period, --period fills it
    )
    parsed = parse_rows(read_rows(sheet), period="2024-Q2")
    assert parsed.messages() == [
        "第 4 行:状态为已完成时完成百分比应为 100",
        "第 5 行:缺少任务编号",
        "第 5 行:报告期“2024-13”格式应为 2024、2024-H1、2024-Q1 或 2024-03",
        "第 5 行:状态“进行中”应为 未启动/推进中/已完成/滞后/常态化 之一",
        "第 5 行:完成百分比应为 0–100 的整数",
        "第 5 行:缺少进展摘要",
        "第 6 行:与第 2 行重复(同一任务、同一报告期)",
    ]
    assert parsed.skipped == [3]
    assert [(n, r["task"], r["status"], r["percent"], r["period"], r["evidence"]) for n, r in parsed.reports] == [
        (2, "2.3.3", "in_progress", 60, "2024-Q1", ["西司发〔2024〕1号", "https://a.cn/1"]),
        (7, "2.4.2", "not_started", 0, "2024-Q2", []),
    ]


def test_xlsx_gb18030_csv_and_json_read_alike(tmp_path: Path) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(list(HEADERS))
    sheet.append(["2.3.3", "标题", "牵头", "未启动", 0, "2024-Q1", "常态化", 80.0, "持续开展", "文号一\n文号二"])
    book.save(tmp_path / "a.xlsx")
    write_csv(
        tmp_path / "b.csv", "2.3.3,标题,牵头,未启动,0,2024-Q1,常态化,80,持续开展,文号一;文号二", encoding="gb18030"
    )
    (tmp_path / "c.json").write_text(
        json.dumps(
            [
                {
                    "task": "2.3.3",
                    "period": "2024-Q1",
                    "status": "ongoing",
                    "percent": 80,
                    "summary": "持续开展",
                    "evidence": ["文号一", "文号二"],
                }
            ]
        ),
        encoding="utf-8",
    )
    parsed = [parse_rows(read_rows(tmp_path / name)) for name in ("a.xlsx", "b.csv", "c.json")]
    assert all(p.errors == {} for p in parsed)
    assert parsed[0].reports == parsed[1].reports == [(2, parsed[2].reports[0][1])]
    assert parsed[2].reports[0][1] == {
        "task": "2.3.3", "status": "ongoing", "percent": 80, "summary": "持续开展", "period": "2024-Q1", "evidence": ["文号一", "文号二"]
    }  # fmt: skip


def test_unreadable_files_are_named(tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text("hello", encoding="utf-8")
    (tmp_path / "bad.csv").write_text("任务编号,状态\n2.3.3,推进中\n", encoding="utf-8")
    (tmp_path / "bad.xlsx").write_bytes(b"not a zip")
    (tmp_path / "bad.json").write_text('{"a": 1}', encoding="utf-8")
    for name, words in [
        ("x.txt", "不支持的文件类型"),
        ("bad.csv", "缺少列:完成百分比、进展摘要"),
        ("bad.xlsx", "无法读取"),
        ("bad.json", "对象数组"),
    ]:
        with pytest.raises(SheetError, match=words):
            read_rows(tmp_path / name)


def test_dry_run_lists_the_errors_and_sends_nothing(tmp_path: Path) -> None:
    runner = CliRunner()
    good = write_csv(tmp_path / "good.csv", "2.3.3,标题,牵头,未启动,0,2024-Q1,推进中,60,开展培训,")
    bad = write_csv(tmp_path / "bad.csv", "2.3.3,标题,牵头,未启动,0,2024-Q1,推进中,160,开展培训,")
    env = {"PLAN_API_URL": "http://127.0.0.1:9"}  # nothing listens there
    # Without a server the dry run is the local check alone; with one, the server checks too (it is
    # asked, so an unreachable server is an error, not a pass).
    done = runner.invoke(client_cli.app, ["submit", str(good), "--plan", "p", "--dry-run"], env={"PLAN_API_URL": ""})
    assert done.exit_code == 0, done.output
    assert "校验通过,未报送" in done.output
    done = runner.invoke(client_cli.app, ["submit", str(good), "--plan", "p", "--dry-run"], env=env)
    assert done.exit_code == 1 and "无法连接服务" in done.output
    done = runner.invoke(client_cli.app, ["submit", str(bad), "--plan", "p", "--dry-run"], env=env)
    assert done.exit_code == 1
    assert "第 2 行:完成百分比应为 0–100 的整数" in done.output
    assert not results_path(bad).exists()
    done = runner.invoke(client_cli.app, ["submit", str(good), "--plan", "p"], env={"PLAN_API_URL": ""})
    assert done.exit_code == 2 and "PLAN_API_URL" in done.output
    done = runner.invoke(client_cli.app, ["submit", str(good), "--plan", "p"], env=env)
    assert done.exit_code == 1 and "无法连接服务" in done.output


def test_the_client_needs_none_of_the_servers_dependencies() -> None:
    probe = (
        "import sys, plan_api_client, plan_api_client.cli, plan_api_client.sheets\n"
        "server = {'app', 'fastapi', 'sqlmodel', 'sqlalchemy', 'pydantic', 'alembic', 'starlette'}\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & server))\n"
    )
    client_dir = Path(__file__).resolve().parents[2] / "clients" / "python"
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=client_dir, capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"


def test_the_results_file_keeps_formula_like_text_inert(tmp_path: Path) -> None:
    out = tmp_path / "r.results.csv"
    write_results(
        out, [(2, "2.3.3", "2024-Q1", "失败", None, '=HYPERLINK("http://evil")'), (3, "2.3.4", "", "新增", 7, "")]
    )
    rows = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8-sig"), newline="")))
    assert rows[1][-1] == '\'=HYPERLINK("http://evil")' and rows[2][1:] == ["2.3.4", "", "新增", "7", ""]
