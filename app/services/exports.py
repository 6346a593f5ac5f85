"""A plan as spreadsheets for people: the plan workbook, the report history and the statistics.

- the plan workbook (`export.xlsx`): 任务 (every task with its units in their roles and its state as of
  a day), 单位 (every unit the plan links, with how many tasks it leads, cooperates on, owns) and 矩阵
  (unit × task, each cell 牵头 / 配合 / 责任, as the plan's annex tables are drawn);
- the report history (`history.csv|.xlsx`): every report of the plan, newest first, with its versions,
  review and withdrawal;
- the statistics (`stats.csv|.xlsx`): the figures of `GET /plans/{plan}/stats`, by chapter and by unit.

Headers and values are in Chinese; what the JSON API says in English enums is said here in words. The
figures are the JSON API's own (the same services), so a spreadsheet never disagrees with the API.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from sqlmodel import Session

from app.core.config import get_settings
from app.models import Plan, ReportKind, ReviewState, Role, TaskStatus, UnitKind
from app.schemas.plan import PlanStats
from app.schemas.progress import ProgressOut
from app.services import plans as plan_service
from app.services import progress as progress_service
from app.services.lights import LIGHT_LABELS
from app.services.sheets import add_sheet, csv_bytes, xlsx_bytes
from app.services.tasks import TaskFilter, TaskView, UnitLabel, query_tasks, readable_title
from app.services.templates import ROLE_LABELS

MAX_ROWS = 100_000  # far above any plan; a bound, not a page
ROLE_ORDER = (Role.lead, Role.cooperating, Role.responsible)
KIND_LABELS = {
    UnitKind.party_organ: "党委机关",
    UnitKind.government_department: "政府部门",
    UnitKind.people_congress: "人大机关",
    UnitKind.judicial_organ: "司法机关",
    UnitKind.people_organisation: "人民团体",
    UnitKind.group: "组(泛指)",
    UnitKind.other: "其他",
}
REPORT_KIND_LABELS = {ReportKind.status: "状态报告", ReportKind.contribution: "配合报告", ReportKind.correction: "更正"}
REVIEW_LABELS = {
    ReviewState.not_required: "无需审核",
    ReviewState.pending: "待审核",
    ReviewState.accepted: "已通过",
    ReviewState.returned: "已退回",
}

TASK_HEADER = ("任务编号", "任务标题", "标题系推得", "章", "节", "完成期限", "状态", "完成百分比", "已逾期", "亮灯",
               "亮灯原因", "牵头单位", "配合单位", "责任单位", "任务内容")  # fmt: skip
UNIT_HEADER = ("单位", "类别", "行政区划", "牵头任务数", "配合任务数", "责任任务数", "关联任务数")
HISTORY_HEADER = ("报告编号", "任务编号", "报送单位", "经由", "类别", "报告期", "状态", "完成百分比", "进展摘要",
                  "佐证材料", "报送人", "报送时间", "现行版本", "更正的报告", "审核", "审核意见", "撤回时间", "撤回理由")  # fmt: skip
CHAPTER_HEADER = (
    "章",
    "章标题",
    "任务数",
    "已逾期",
    "平均进度",
    *(s.label for s in TaskStatus),
    "红灯",
    "黄灯",
    "绿灯",
)
UNIT_STATS_HEADER = ("单位", "牵头", "责任", "配合", "已逾期", "自报滞后", "牵头红灯", "牵头黄灯", "牵头绿灯",
                     "应报", "按时", "逾期报送", "未报送", "待报送", "免报", "按时报送率")  # fmt: skip
WIDE = {"任务标题": 40, "任务内容": 80, "进展摘要": 60, "亮灯原因": 50, "佐证材料": 40, "牵头单位": 30,
        "配合单位": 30, "责任单位": 24, "审核意见": 30, "撤回理由": 30}  # fmt: skip


def _yes(value: bool) -> str:
    return "是" if value else "否"


def _units(view: TaskView, role: Role) -> str:
    return "、".join(link.unit.name for link in view.links if link.role == role)


def plan_tasks(*, session: Session, plan: Plan, as_of: date) -> list[TaskView]:
    return query_tasks(session=session, flt=TaskFilter(as_of=as_of, plan_id=plan.id), limit=MAX_ROWS).items


def plan_workbook(*, session: Session, plan: Plan, as_of: date) -> bytes:
    """The plan workbook: sheets 任务, 单位, 矩阵 (see the module's docstring)."""
    views = plan_tasks(session=session, plan=plan, as_of=as_of)
    book = Workbook()
    add_sheet(book, "任务", TASK_HEADER, (_task_row(v) for v in views), widths=WIDE)
    units: dict[int, UnitLabel] = {}
    roles: dict[int, dict[str, list[Role]]] = {}  # unit → task code → its roles there
    for view in views:
        for link in view.links:
            units.setdefault(link.unit.id, link.unit)
            roles.setdefault(link.unit.id, {}).setdefault(view.task.code, []).append(link.role)
    order = sorted(units, key=lambda u: (units[u].kind == UnitKind.group, -_count(roles[u], Role.lead), units[u].name))
    add_sheet(
        book,
        "单位",
        UNIT_HEADER,
        (
            (
                units[u].name,
                KIND_LABELS.get(UnitKind(units[u].kind), str(units[u].kind)),
                units[u].jurisdiction.name,
                *(_count(roles[u], role) for role in ROLE_ORDER),
                len(roles[u]),
            )
            for u in order
        ),
    )
    codes = [v.task.code for v in views]
    matrix = add_sheet(
        book,
        "矩阵",
        ("单位", *codes),
        (
            (units[u].name, *("、".join(ROLE_LABELS[r] for r in _sorted(roles[u].get(code, []))) for code in codes))
            for u in order
        ),
        widths={"单位": 24, **dict.fromkeys(codes, 7)},
    )
    matrix.freeze_panes = "B2"  # unit names stay in view while scrolling across the tasks
    book.create_sheet("说明").append(
        [f"{plan.title}({plan.slug}),状态与亮灯为 {as_of.isoformat()} 结束时的情况;由 Plan API 导出。"]
    )
    return xlsx_bytes(book)


def _sorted(roles: list[Role]) -> list[Role]:
    return sorted(set(roles), key=ROLE_ORDER.index)


def _count(by_task: dict[str, list[Role]], role: Role) -> int:
    return sum(role in found for found in by_task.values())


def _task_row(view: TaskView) -> tuple[Any, ...]:
    task = view.task
    return (
        task.code,
        readable_title(task),
        _yes(not task.title),
        f"{view.chapter.code} {view.chapter.title}",
        f"{view.section.code} {view.section.title}",
        task.due,
        TaskStatus(view.status).label,
        view.progress,
        _yes(view.overdue),
        LIGHT_LABELS[view.light],
        ";".join(r.message for r in view.light_reasons),
        _units(view, Role.lead),
        _units(view, Role.cooperating),
        _units(view, Role.responsible),
        task.text,
    )


# --- history ---------------------------------------------------------------------------------------


def plan_history(*, session: Session, plan: Plan, unit_id: int | None, period: str | None) -> list[ProgressOut]:
    reports = progress_service.list_reports(
        session=session,
        flt=progress_service.ReportFilter(plan_id=plan.id, unit_id=unit_id, period=period),
        limit=MAX_ROWS,
    )
    return progress_service.present_reports(session=session, reports=reports)


def _history_row(report: ProgressOut) -> tuple[Any, ...]:
    return (
        report.id,
        report.task,
        report.unit.name if report.unit else "依法治县办(更正)",
        report.via.name if report.via else "",
        REPORT_KIND_LABELS[report.kind],
        report.period,
        TaskStatus(report.status).label,
        report.percent,
        report.summary,
        ";".join(report.evidence),
        report.submitted_by,
        _local(report.created_at),
        _yes(report.current),
        report.supersedes or "",
        REVIEW_LABELS[report.review.state],
        report.review.reason or "",
        _local(report.withdrawn_at) if report.withdrawn_at else "",
        report.withdrawn_reason or "",
    )


def history_csv(reports: Sequence[ProgressOut]) -> bytes:
    return csv_bytes(HISTORY_HEADER, (_history_row(r) for r in reports))


def history_xlsx(reports: Sequence[ProgressOut]) -> bytes:
    book = Workbook()
    add_sheet(book, "进展历史", HISTORY_HEADER, (_history_row(r) for r in reports), widths=WIDE)
    return xlsx_bytes(book)


def _local(moment: datetime) -> str:
    """A timestamp as the county reads it (its own time zone), to the second."""
    return moment.astimezone(ZoneInfo(get_settings().timezone)).strftime("%Y-%m-%d %H:%M:%S")


# --- statistics ------------------------------------------------------------------------------------


def plan_stats(*, session: Session, plan: Plan, as_of: date, period: str | None) -> PlanStats:
    return plan_service.plan_stats(session=session, plan=plan, as_of=as_of, period=period)


def _chapter_rows(stats: PlanStats) -> list[tuple[Any, ...]]:
    return [
        (
            c.code,
            c.title,
            c.tasks,
            c.overdue,
            c.mean_progress,
            *(getattr(c.by_status, s.value) for s in TaskStatus),
            c.by_light.red,
            c.by_light.yellow,
            c.by_light.green,
        )
        for c in stats.by_chapter
    ]


def _unit_rows(stats: PlanStats) -> list[tuple[Any, ...]]:
    rows = []
    for u in stats.by_unit:
        c = u.compliance
        compliance = (c.owed, c.on_time, c.late, c.missing, c.due, c.excused, c.rate) if c else ("",) * 7
        light = u.lead_by_light
        rows.append(
            (u.unit.name, u.lead, u.responsible, u.cooperating, u.overdue, u.delayed, light.red, light.yellow,
             light.green, *("" if v is None else v for v in compliance))
        )  # fmt: skip
    return rows


def stats_csv(stats: PlanStats, table: str) -> bytes:
    if table == "chapters":
        return csv_bytes(CHAPTER_HEADER, _chapter_rows(stats))
    return csv_bytes(UNIT_STATS_HEADER, _unit_rows(stats))


def stats_xlsx(stats: PlanStats) -> bytes:
    book = Workbook()
    overview = [
        ("方案", stats.plan),
        ("基准日", stats.as_of.isoformat()),
        ("任务数", stats.tasks),
        ("已逾期", stats.overdue),
        *((f"状态:{s.label}", getattr(stats.by_status, s.value)) for s in TaskStatus),
        *((f"亮灯:{label}", getattr(stats.by_light, light.value)) for light, label in LIGHT_LABELS.items()),
        ("合规统计报告期", stats.compliance_period or ""),
        ("按时报送率", "" if stats.compliance is None or stats.compliance.rate is None else stats.compliance.rate),
        ("亮灯规则版本", stats.light_rules_version),
    ]
    add_sheet(book, "概况", ("指标", "数值"), overview, widths={"指标": 20, "数值": 24})
    add_sheet(book, "按章", CHAPTER_HEADER, _chapter_rows(stats), widths={"章标题": 30})
    add_sheet(book, "按单位", UNIT_STATS_HEADER, _unit_rows(stats), widths={"单位": 24})
    return xlsx_bytes(book)
