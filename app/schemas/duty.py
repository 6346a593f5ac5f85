"""API shapes of duties (who owes which report) and compliance (rules: `app/services/duties.py`)."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from app.models import Role
from app.schemas.jurisdiction import JurisdictionRef
from app.schemas.unit import UnitRef
from app.services.duties import Compliance, Duty, DutyState
from app.services.supervision_facts import SupervisionFacts, UnitName


class DutyExcusalRef(BaseModel):
    """The waiver behind an excused duty (its full record: `GET /plans/{plan}/excusals`)."""

    id: int = Field(description="免报记录 id / excusal id")
    reason: str = Field(description="免报理由 / why it was waived")


class DutyOut(BaseModel):
    plan: str = Field(description="方案 slug / plan slug", examples=["xiji-fzsh-2021-2025"])
    task: str = Field(description="任务编号 / task code", examples=["2.3.3"])
    unit: UnitRef = Field(description="应报送的单位 / the unit that owes the report")
    role: Role = Field(description="该单位的角色 / its role on the task", examples=["lead"])
    via: UnitRef = Field(description="经由的关联(单位本身或其所属组)/ the link it owes through (itself or its group)")
    period: str = Field(description="报告期 / period", examples=["2023-Q4"])
    period_start: date
    period_end: date
    deadline: date = Field(description="报送期限(含当日,县本地日期)/ deadline, that local day included")
    state: DutyState = Field(
        description="submitted 已按时报送、late 逾期报送、missing 未报送、due 待报送、excused 已免报 / duty state",
        examples=["missing"],
    )
    report_id: int | None = Field(description="计入的报告 id / the counting report")
    sent_at: datetime | None = Field(
        description="报送时间(更正沿用被更正版本的时间)/ when the duty was met (a correction keeps its predecessor's time)"
    )
    excusal: DutyExcusalRef | None = Field(description="免报信息 / the waiver, when excused")


class ComplianceOut(BaseModel):
    unit: UnitRef | None = Field(description="单位;合计行为 null / the unit; null for the totals")
    owed: int = Field(description="应报数 / duties owed")
    on_time: int = Field(description="按时报送 / submitted on time")
    late: int = Field(description="逾期报送 / submitted late")
    missing: int = Field(description="未报送(已过期限)/ missing, deadline passed")
    due: int = Field(description="待报送(未到期限)/ not yet due")
    excused: int = Field(description="已免报 / excused")
    rate: float | None = Field(
        description="按时报送率 = on_time /(owed − excused − due),无可评判项时为 null"
        " / on-time rate over the judgeable duties; null when none",
        examples=[0.75],
    )
    reported_rate: float | None = Field(
        description="报送率 =(on_time + late)/(owed − excused − due)/ reported rate, late included"
    )


class ComplianceReport(BaseModel):
    plan: str
    as_of: date
    period: str | None = Field(description="报告期;null 表示截至 as_of 的全部报告期 / period, null: all begun by as_of")
    items: list[ComplianceOut] = Field(description="各单位 / per unit")
    next_cursor: str | None = Field(
        default=None, description="下一页游标;null 为最后一页 / next page, null on the last"
    )
    total: int | None = Field(default=None, description="单位总数,仅当 count=true / units in all, with count=true")
    totals: ComplianceOut = Field(description="全方案合计 / plan-wide totals")


def unit_ref(names: UnitName, unit_id: int) -> UnitRef:
    unit = names(unit_id)
    return UnitRef(
        id=unit_id,
        name=unit.name,
        kind=unit.kind,
        jurisdiction=JurisdictionRef(code=unit.jurisdiction_code, name=unit.jurisdiction_name),
    )


def duty_out(facts: SupervisionFacts, duty: Duty) -> DutyOut:
    return DutyOut(
        plan=facts.plans[duty.plan_id].slug,
        task=facts.tasks[duty.task_id].code,
        unit=unit_ref(facts.unit, duty.unit_id),
        role=duty.role,
        via=unit_ref(facts.unit, duty.via_unit_id),
        period=duty.period.label,
        period_start=duty.period.start,
        period_end=duty.period.end,
        deadline=duty.deadline,
        state=duty.state,
        report_id=duty.report_id,
        sent_at=duty.sent_at,
        excusal=DutyExcusalRef(id=duty.excusal.id, reason=duty.excusal.reason) if duty.excusal else None,
    )


def compliance_out(facts: SupervisionFacts, row: Compliance) -> ComplianceOut:
    return ComplianceOut(
        unit=unit_ref(facts.unit, row.unit_id) if row.unit_id else None,
        owed=row.owed,
        on_time=row.on_time,
        late=row.late,
        missing=row.missing,
        due=row.due,
        excused=row.excused,
        rate=row.rate,
        reported_rate=row.reported_rate,
    )


class ComplianceSort(StrEnum):
    rate = "rate"
    rate_desc = "-rate"
    missing = "missing"
    missing_desc = "-missing"
    name = "name"


def sort_compliance(rows: list[ComplianceOut], sort: ComplianceSort) -> list[ComplianceOut]:
    """The compliance list's order (`sort=`); the dashboard and the 通报 list units in the default one."""

    def name(row: ComplianceOut) -> tuple[str, int]:
        assert row.unit is not None
        return (row.unit.name, row.unit.id)

    if sort == ComplianceSort.name:
        return sorted(rows, key=name)
    if sort in (ComplianceSort.missing, ComplianceSort.missing_desc):
        sign = -1 if sort == ComplianceSort.missing_desc else 1
        return sorted(rows, key=lambda r: (sign * r.missing, name(r)))
    sign = 1 if sort == ComplianceSort.rate else -1
    # Units with nothing judgeable yet go last either way.
    return sorted(rows, key=lambda r: (r.rate is None, sign * (r.rate or 0), -r.missing, name(r)))
