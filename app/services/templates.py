"""A unit's fill-in template: one row per task it reports on, as `plan-api submit` reads it back.

The rows: every task the unit is linked to in one plan — directly or through a group it belongs to
(各部门(单位), 各乡镇 …), as 牵头 lead, 责任 responsible or 配合 cooperating — with code, title (the
plan's, else the first clause of the text), the unit's role(s) in Chinese, the current status label
and progress; then the report's columns, empty (报告期 prefilled when asked). The column names and
status labels are the client's (`plan_api_client.sheets`), so the template and `submit` cannot drift.
"""

from __future__ import annotations

import io
from collections import defaultdict
from dataclasses import dataclass

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.worksheet.datavalidation import DataValidation
from plan_api_client.sheets import HEADERS, PERCENT, STATUS
from sqlmodel import Session, col, select

from app.errors import InvalidParameter
from app.models import GroupMember, Plan, Responsibility, Role, Task, TaskStatus, Unit
from app.services import schedule as schedule_service
from app.services import sheets
from app.services.tasks import readable_title

ROLE_LABELS = {Role.lead: "牵头", Role.responsible: "责任", Role.cooperating: "配合"}
_ROLE_ORDER = {Role.lead: 0, Role.responsible: 1, Role.cooperating: 2}
EXTRA_ROWS = 200  # validation reaches this far below the tasks, for rows a clerk inserts
WIDTHS = {"任务编号": 10, "任务标题": 40, "本单位角色": 14, "当前状态": 10, "当前进度": 10, "报告期": 10,
          "状态": 10, "完成百分比": 12, "进展摘要": 60, "佐证材料": 40}  # fmt: skip


@dataclass(frozen=True)
class TemplateRow:
    code: str
    title: str
    role: str
    status: TaskStatus
    progress: int


def template_rows(
    *, session: Session, unit: Unit, plan: Plan | None, period: str | None
) -> tuple[Plan, list[TemplateRow]]:
    """The plan (given, or the one plan the unit has tasks in) and its rows in document order."""
    assert unit.id is not None
    groups = {g: None for g in session.exec(select(GroupMember.group_id).where(GroupMember.member_id == unit.id))}
    names = {u.id: u.name for u in session.exec(select(Unit).where(col(Unit.id).in_([unit.id, *groups])))}
    query = (
        select(Responsibility, Task, Plan)
        .join(Task, col(Task.id) == col(Responsibility.task_id))
        .join(Plan, col(Plan.id) == col(Task.plan_id))
        .where(col(Responsibility.unit_id).in_([unit.id, *groups]))
        .order_by(col(Plan.slug), col(Task.position))
    )
    if plan is not None:
        query = query.where(col(Task.plan_id) == plan.id)
    found = list(session.exec(query))
    plans = {p.slug: p for _, _, p in found}
    if plan is None:
        if len(plans) > 1:
            raise InvalidParameter(
                "plan", f"该单位参与多个方案({'、'.join(sorted(plans))}),请用 plan= 指定其一 / several plans: name one"
            )
        if not plans:
            raise InvalidParameter(
                "plan", f"{unit.name} 在任何方案中都没有任务 / the unit has no tasks", kind="no_tasks"
            )
        plan = next(iter(plans.values()))
    if period is not None:
        schedule = schedule_service.get_schedule(session=session, plan=plan)
        try:
            schedule_service.check_report_period(plan=plan, schedule=schedule, period=period, field="query.period")
        except schedule_service.PeriodRejected as exc:
            raise InvalidParameter("period", exc.detail) from None
    links: dict[int, list[Responsibility]] = defaultdict(list)
    tasks: dict[int, Task] = {}
    for resp, task, _ in found:
        assert task.id is not None
        links[task.id].append(resp)
        tasks[task.id] = task
    rows = []
    for task_id, task in tasks.items():
        labels = []
        for resp in sorted(links[task_id], key=lambda r: (_ROLE_ORDER[r.role], r.position)):
            label = ROLE_LABELS[resp.role]
            if resp.unit_id != unit.id:
                label += f"(经{names.get(resp.unit_id, '组')})"
            if label not in labels:
                labels.append(label)
        rows.append(
            TemplateRow(
                code=task.code,
                title=readable_title(task),
                role="、".join(labels),
                status=TaskStatus(task.status),
                progress=task.progress,
            )
        )
    return plan, rows


def _cells(row: TemplateRow, period: str | None) -> list[object]:
    return [row.code, row.title, row.role, row.status.label, row.progress, period or "", "", None, "", ""]


def render_csv(rows: list[TemplateRow], *, period: str | None) -> bytes:
    return sheets.csv_bytes(HEADERS, (_cells(row, period) for row in rows))


def render_xlsx(rows: list[TemplateRow], *, plan: Plan, unit: Unit, period: str | None) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "报送模板"
    sheet.append(list(HEADERS))
    for row in rows:
        sheet.append([sheets.neutralise(cell) for cell in _cells(row, period)])
        for cell in sheet[sheet.max_row]:
            if isinstance(cell.value, str):
                cell.data_type = "s"  # a title is never a formula
    header_fill = PatternFill("solid", fgColor="DDEBF7")
    for index, name in enumerate(HEADERS, start=1):
        cell = sheet.cell(row=1, column=index)
        cell.font = Font(bold=True)
        cell.fill = header_fill
        cell.alignment = Alignment(horizontal="center", vertical="center")
        sheet.column_dimensions[cell.column_letter].width = WIDTHS.get(name, 12)
    sheet.freeze_panes = "A2"
    last = max(len(rows) + 1, 2) + EXTRA_ROWS
    status_col = sheet.cell(row=1, column=HEADERS.index(STATUS) + 1).column_letter
    percent_col = sheet.cell(row=1, column=HEADERS.index(PERCENT) + 1).column_letter
    labels = ",".join(s.label for s in TaskStatus)
    status_rule = DataValidation(type="list", formula1=f'"{labels}"', allow_blank=True, showDropDown=False)
    status_rule.error, status_rule.errorTitle = f"请从下拉列表选择:{labels}", "状态"
    status_rule.showErrorMessage = True
    percent_rule = DataValidation(type="whole", operator="between", formula1="0", formula2="100", allow_blank=True)
    percent_rule.error, percent_rule.errorTitle = "完成百分比应为 0–100 的整数", "完成百分比"
    percent_rule.showErrorMessage = True
    sheet.add_data_validation(status_rule)
    sheet.add_data_validation(percent_rule)
    status_rule.add(f"{status_col}2:{status_col}{last}")
    percent_rule.add(f"{percent_col}2:{percent_col}{last}")
    notes = book.create_sheet("说明")
    for line in (
        f"方案:{plan.title}({plan.slug})",
        f"单位:{unit.name}",
        "填写“报告期”至“佐证材料”五列;不需报送的任务整行留空即可。",
        f"状态:{labels};已完成须填 100,未启动须填 0。",
        "佐证材料:网址或文号,多条用分号或换行分隔。",
        f"报送:plan-api submit 本文件.xlsx --plan {plan.slug}(先加 --dry-run 校验)",
    ):
        notes.append([line])
    notes.column_dimensions["A"].width = 90
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
