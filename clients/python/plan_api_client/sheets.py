"""Spreadsheets as departments keep them: Chinese headers and status labels, read from .xlsx, .csv or
.json, every row checked locally before anything is sent, errors named by the sheet's own row numbers.

The server's fill-in template (`GET /api/v1/units/{unit}/template.xlsx|.csv`) writes exactly these
columns, so a filled template is what `plan-api submit` reads.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The template's columns, in order: five prefilled from the server, five for the new report.
TASK_CODE, TASK_TITLE, ROLE, CURRENT_STATUS, CURRENT_PROGRESS = (
    "任务编号",
    "任务标题",
    "本单位角色",
    "当前状态",
    "当前进度",
)
PERIOD, STATUS, PERCENT, SUMMARY, EVIDENCE = "报告期", "状态", "完成百分比", "进展摘要", "佐证材料"
HEADERS = (TASK_CODE, TASK_TITLE, ROLE, CURRENT_STATUS, CURRENT_PROGRESS, PERIOD, STATUS, PERCENT, SUMMARY, EVIDENCE)
REPORT_COLUMNS = (PERIOD, STATUS, PERCENT, SUMMARY, EVIDENCE)

# Chinese labels in spreadsheets; the JSON API keeps the English values (the server's TaskStatus.label).
STATUS_LABELS = {
    "not_started": "未启动",
    "in_progress": "推进中",
    "completed": "已完成",
    "delayed": "滞后",
    "ongoing": "常态化",
}
_STATUS_BY_LABEL = {label: value for value, label in STATUS_LABELS.items()}
ROLE_LABELS = {"lead": "牵头", "responsible": "责任", "cooperating": "配合"}

# English column names a script may use in .json/.csv instead of the Chinese ones.
_ENGLISH = {
    "task": TASK_CODE,
    "period": PERIOD,
    "status": STATUS,
    "percent": PERCENT,
    "summary": SUMMARY,
    "evidence": EVIDENCE,
}
PERIOD_RE = re.compile(r"^\d{4}(-(H[12]|Q[1-4]|0[1-9]|1[0-2]))?$")
_EVIDENCE_SPLIT = re.compile(r"[\n;;]+")
MAX_SUMMARY, MAX_EVIDENCE, MAX_EVIDENCE_ITEM = 2000, 20, 500


@dataclass
class Row:
    """One data row and its number as the user sees it (the spreadsheet row; the 1-based item in .json)."""

    number: int
    values: dict[str, Any]


@dataclass
class Parsed:
    reports: list[tuple[int, dict[str, Any]]] = field(default_factory=list)  # (row number, report with `task`)
    errors: dict[int, list[str]] = field(default_factory=dict)  # row number → what is wrong with it
    error_tasks: dict[int, str] = field(default_factory=dict)  # row number → its task code, for the results
    skipped: list[int] = field(default_factory=list)  # rows with no report filled in
    unit_word: str = "行"

    def messages(self) -> list[str]:
        """`第 5 行:完成百分比应为 0–100 的整数`, one per problem, in row order."""
        return [f"第 {n} {self.unit_word}:{m}" for n in sorted(self.errors) for m in self.errors[n]]


class SheetError(Exception):
    """The file as a whole cannot be read (format, missing columns)."""


def _cell(value: Any) -> Any:
    if isinstance(value, str):
        return value.strip()
    return value


def _normalise_header(name: Any) -> str:
    text = str(name or "").strip()
    return _ENGLISH.get(text, text)


def read_rows(path: Path) -> list[Row]:
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        return _read_xlsx(path)
    if suffix == ".csv":
        return _read_csv(path.read_bytes())
    if suffix == ".json":
        return _read_json(path)
    raise SheetError(f"不支持的文件类型 {suffix}:请用 .xlsx、.csv 或 .json / unsupported file type")


def _table(rows: list[tuple[int, list[Any]]]) -> list[Row]:
    if not rows:
        raise SheetError("文件是空的 / the file is empty")
    _, header = rows[0]
    names = [_normalise_header(h) for h in header]
    missing = [c for c in (TASK_CODE, STATUS, PERCENT, SUMMARY) if c not in names]
    if missing:
        raise SheetError(f"缺少列:{'、'.join(missing)}(第 1 行应为表头)/ missing columns")
    out = []
    for number, cells in rows[1:]:
        values = {name: _cell(cells[i]) if i < len(cells) else None for i, name in enumerate(names) if name}
        if any(v not in (None, "") for v in values.values()):
            out.append(Row(number=number, values=values))
    return out


def _read_xlsx(path: Path) -> list[Row]:
    try:
        from openpyxl import load_workbook
    except ImportError:  # pragma: no cover - the `xlsx` extra
        raise SheetError("读取 .xlsx 需要 openpyxl:pip install 'plan-api-client[xlsx]'") from None
    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises several kinds for a damaged file
        raise SheetError(f"无法读取 {path.name}:{exc} / not a readable .xlsx file") from None
    sheet = book.worksheets[0]
    rows = [(i, list(r)) for i, r in enumerate(sheet.iter_rows(values_only=True), start=1)]
    book.close()
    return _table(rows)


def _read_csv(data: bytes) -> list[Row]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("gb18030")  # Excel's "CSV" on a Chinese Windows
    reader = csv.reader(io.StringIO(text))
    return _table([(i, row) for i, row in enumerate(reader, start=1)])


def _read_json(path: Path) -> list[Row]:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise SheetError(f"无法解析 JSON:{exc} / invalid JSON") from None
    if isinstance(data, dict) and isinstance(data.get("items"), list):
        data = data["items"]
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise SheetError('JSON 应为对象数组(或 {"items": [...]})/ expected a list of objects')
    return [
        Row(number=i, values={_normalise_header(k): _cell(v) for k, v in item.items()})
        for i, item in enumerate(data, 1)
    ]


def status_value(value: Any) -> str | None:
    """A status label (未启动 …) or English value (`in_progress`) as the API's value; None if neither."""
    text = str(value or "").strip()
    if text in _STATUS_BY_LABEL:
        return _STATUS_BY_LABEL[text]
    return text if text in STATUS_LABELS else None


def _percent(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    text = str(value or "").strip().removesuffix("%").strip()
    return int(text) if re.fullmatch(r"-?\d+", text) else None


def _evidence(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    return [part.strip() for part in _EVIDENCE_SPLIT.split(str(value or "")) if part.strip()]


def parse_rows(rows: list[Row], *, period: str | None = None, unit_word: str = "行") -> Parsed:
    """Checks every row and collects all errors (`第 5 行:完成百分比应为 0–100`). A row whose report
    columns are all empty (a template row the unit has nothing to say on) is skipped, not an error.
    `period` fills an empty 报告期."""
    parsed = Parsed(unit_word=unit_word)
    seen: dict[tuple[str, str], int] = {}
    for row in rows:
        v = row.values
        if all(v.get(c) in (None, "", []) for c in (STATUS, PERCENT, SUMMARY, EVIDENCE)):
            parsed.skipped.append(row.number)
            continue
        problems: list[str] = []
        task = str(v.get(TASK_CODE) or "").strip()
        if not task:
            problems.append("缺少任务编号")
        row_period = str(v.get(PERIOD) or "").strip() or (period or "")
        if not row_period:
            problems.append("缺少报告期(填写报告期列,或使用 --period)")
        elif not PERIOD_RE.fullmatch(row_period):
            problems.append(f"报告期“{row_period}”格式应为 2024、2024-H1、2024-Q1 或 2024-03")
        status = status_value(v.get(STATUS))
        if status is None:
            shown = v.get(STATUS)
            problems.append(
                f"状态{'“' + str(shown) + '”' if shown not in (None, '') else ''}应为 {'/'.join(STATUS_LABELS.values())} 之一"
            )
        percent = _percent(v.get(PERCENT))
        if percent is None or not 0 <= percent <= 100:
            problems.append("完成百分比应为 0–100 的整数")
        elif status == "completed" and percent != 100:
            problems.append("状态为已完成时完成百分比应为 100")
        elif status == "not_started" and percent != 0:
            problems.append("状态为未启动时完成百分比应为 0")
        summary = str(v.get(SUMMARY) or "").strip()
        if not summary:
            problems.append("缺少进展摘要")
        elif len(summary) > MAX_SUMMARY:
            problems.append(f"进展摘要不能超过 {MAX_SUMMARY} 字")
        evidence = _evidence(v.get(EVIDENCE))
        if len(evidence) > MAX_EVIDENCE:
            problems.append(f"佐证材料最多 {MAX_EVIDENCE} 条")
        if any(len(item) > MAX_EVIDENCE_ITEM for item in evidence):
            problems.append(f"每条佐证材料不能超过 {MAX_EVIDENCE_ITEM} 字")
        if task and row_period:
            first = seen.setdefault((task, row_period), row.number)
            if first != row.number:
                problems.append(f"与第 {first} {unit_word}重复(同一任务、同一报告期)")
        if problems:
            parsed.errors[row.number] = problems
            parsed.error_tasks[row.number] = task
            continue
        report: dict[str, Any] = {
            "task": task,
            "status": status,
            "percent": percent,
            "summary": summary,
            "period": row_period,
            "evidence": evidence,
        }
        parsed.reports.append((row.number, report))
    return parsed


def results_path(source: Path) -> Path:
    """`<name>.results.csv` next to the input."""
    return source.with_name(f"{source.stem}.results.csv")


RESULT_HEADERS = ("行号", "任务编号", "报告期", "结果", "报告编号", "说明")


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: object) -> object:
    """Text a spreadsheet would run as a formula gets a leading `'` (the server's rule, app/services/sheets.py)."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def write_results(path: Path, rows: list[tuple[int, str, str, str, int | None, str]]) -> None:
    with path.open("w", encoding="utf-8-sig", newline="") as out:
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(RESULT_HEADERS)
        for row in rows:
            writer.writerow(["" if cell is None else neutralise(cell) for cell in row])
