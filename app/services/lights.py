"""Warning lights (亮灯): each task is red, yellow or green as of a date, with the reasons behind it.

Rule set `LIGHT_RULES_VERSION`; thresholds from settings (env `LIGHT_MISSING_DAYS`, default 10;
`LIGHT_DUE_SOON_DAYS`, default 30; `LIGHT_LAG_TOLERANCE`, default 20 percentage points). Everything is
judged from the task's state as of the date (`cycle.task_state` from the reports that existed at the
end of that local day) and its duties then (`app/services/duties.py`).

Red (any of):
- `overdue`: the due date is before the date and the task is not `completed` (as `overdue=` does:
  `ongoing` counts as not completed);
- `owner_delayed`: an owner unit's current state is `delayed`;
- `duty_missing`: a duty of the most recent period whose deadline has passed is `missing` more than
  `LIGHT_MISSING_DAYS` days after that deadline, and the task is not `completed`. Only that period
  is judged: an older gap is history the 通报 already dealt with, and the latest period is what the
  task's state now rests on; once the task is completed the gap stays in compliance, not in its light.
Yellow (any of):
- `behind_schedule`: progress lags the expected progress by more than `LIGHT_LAG_TOLERANCE` points;
  expected = the elapsed share of the time from the plan's start (1 January of its first year) to the
  task's due date × 100, capped at 100. Not applied to `completed` or `ongoing` (常态化) tasks, whose
  percent measures no remaining work;
- `due_soon`: not completed and due within `LIGHT_DUE_SOON_DAYS` days (the due date itself included);
- `returned_unresolved`: an owner's report was returned in review and that unit has not sent a new
  version since (the head of its task/unit/period is the returned report).
Otherwise green. The light is the worst of the reasons; every matching reason is listed.

Pure: `evaluate` takes plain facts; the loader is `supervision_facts.load_facts`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any

from app.models import TaskStatus

LIGHT_RULES_VERSION = "2023.1"


class Light(StrEnum):
    red = "red"
    yellow = "yellow"
    green = "green"


LIGHT_LABELS = {Light.red: "红", Light.yellow: "黄", Light.green: "绿"}
SEVERITY = {Light.green: 0, Light.yellow: 1, Light.red: 2}


@dataclass(frozen=True)
class LightThresholds:
    missing_days: int = 10
    due_soon_days: int = 30
    lag_tolerance: int = 20


@dataclass(frozen=True)
class LightReason:
    rule: str
    light: Light
    message: str
    figures: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MissingDuty:
    unit: str
    period: str
    deadline: date


@dataclass(frozen=True)
class ReturnedReport:
    unit: str
    period: str
    report_id: int
    returned_on: date


def expected_progress(*, term_start: date, due: date, as_of: date) -> int:
    """Elapsed share of the time from the plan's start to the due date, in percent (0–100)."""
    span = (due - term_start).days
    if span <= 0:
        return 100 if as_of >= due else 0
    return max(0, min(100, round(100 * (as_of - term_start).days / span)))


def evaluate(
    *,
    due: date | None,
    status: TaskStatus,
    progress: int,
    as_of: date,
    term_start: date | None,
    delayed_units: list[str],
    missing: list[MissingDuty],
    returned: list[ReturnedReport],
    thresholds: LightThresholds,
) -> tuple[Light, list[LightReason]]:
    """`due` None (an open-term plan's task without a year): the date rules (overdue, behind schedule,
    due soon) do not apply; the reporting rules still do."""
    reasons: list[LightReason] = []
    if due is not None and due < as_of and status != TaskStatus.completed:
        days = (as_of - due).days
        reasons.append(
            LightReason(
                "overdue",
                Light.red,
                f"任务期限为 {due.isoformat()},已过期 {days} 天仍未完成(当前状态:{status.label},进度 {progress}%)",
                {"due": due.isoformat(), "days_overdue": days, "status": status.value, "progress": progress},
            )
        )
    if delayed_units:
        reasons.append(
            LightReason(
                "owner_delayed",
                Light.red,
                f"{'、'.join(delayed_units)} 报告该任务滞后",
                {"units": delayed_units},
            )
        )
    late = [m for m in missing if (as_of - m.deadline).days > thresholds.missing_days]
    if status == TaskStatus.completed:
        late = []
    if late:
        days = max((as_of - m.deadline).days for m in late)
        units = [m.unit for m in late]
        reasons.append(
            LightReason(
                "duty_missing",
                Light.red,
                f"{'、'.join(units)} 未报送 {late[0].period} 进展,已超过报送期限 {late[0].deadline.isoformat()} "
                f"{days} 天(阈值 {thresholds.missing_days} 天)",
                {
                    "units": units,
                    "period": late[0].period,
                    "deadline": late[0].deadline.isoformat(),
                    "days_missing": days,
                    "threshold_days": thresholds.missing_days,
                },
            )
        )
    if due is not None and term_start is not None and status not in (TaskStatus.completed, TaskStatus.ongoing):
        expected = expected_progress(term_start=term_start, due=due, as_of=as_of)
        if expected - progress > thresholds.lag_tolerance:
            reasons.append(
                LightReason(
                    "behind_schedule",
                    Light.yellow,
                    f"按时间进度应完成约 {expected}%,实际进度 {progress}%,落后 {expected - progress} 个百分点"
                    f"(容差 {thresholds.lag_tolerance})",
                    {
                        "expected": expected,
                        "progress": progress,
                        "lag": expected - progress,
                        "tolerance": thresholds.lag_tolerance,
                    },
                )
            )
    if due is not None and status != TaskStatus.completed and 0 <= (due - as_of).days <= thresholds.due_soon_days:
        days = (due - as_of).days
        reasons.append(
            LightReason(
                "due_soon",
                Light.yellow,
                f"距任务期限 {due.isoformat()} 还有 {days} 天,尚未完成(进度 {progress}%)",
                {"due": due.isoformat(), "days_left": days, "threshold_days": thresholds.due_soon_days},
            )
        )
    if returned:
        units = [r.unit for r in returned]
        reasons.append(
            LightReason(
                "returned_unresolved",
                Light.yellow,
                f"{'、'.join(f'{r.unit} 的 {r.period} 报告' for r in returned)}被审核退回,尚未重新报送",
                {
                    "units": units,
                    "periods": [r.period for r in returned],
                    "report_ids": [r.report_id for r in returned],
                },
            )
        )
    light = max((r.light for r in reasons), key=SEVERITY.__getitem__, default=Light.green)
    return light, reasons
