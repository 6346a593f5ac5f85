"""API schemas of the supervision cycle's writes: schedule, periods, withdrawal, review, excusals."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from app.errors import Problem
from app.models import Cadence
from app.schemas.common import MAX_ID, MULTI_LINE, SingleLine, documented_as
from app.schemas.progress import ProgressOut
from app.schemas.unit import UnitRef
from app.services.periods import PERIOD_PATTERN

Reason = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000), MULTI_LINE[0], MULTI_LINE[1]
]


class ScheduleIn(BaseModel):
    """The whole schedule (PUT replaces it)."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {
                    "cadence": "quarterly",
                    "deadline_days": 10,
                    "cooperating_units_report": False,
                    "review_required": True,
                }
            ]
        },
    )

    # strict everywhere else; an enum arrives as its JSON string (FastAPI validates in python mode)
    cadence: Cadence = Field(
        strict=False, description="monthly 按月 / quarterly 按季度 / half_yearly 按半年 / yearly 按年"
    )
    deadline_days: int = Field(ge=0, le=90, description="报告期结束后几天内须报送(0–90)/ days after a period ends")
    cooperating_units_report: bool = Field(description="配合单位是否也须报送 / do cooperating units owe reports")
    review_required: bool = Field(description="报告是否须经依法治县办审核后才计入 / must reports be accepted first")


class ScheduleOut(BaseModel):
    plan: str = Field(examples=["xiji-fzsh-2021-2025"])
    cadence: Cadence
    deadline_days: int = Field(
        description="报告期结束后几天内须报送 / a period's report is due this many days after it"
    )
    cooperating_units_report: bool
    review_required: bool
    updated_at: datetime


class PeriodOut(BaseModel):
    period: str = Field(examples=["2023-Q4"])
    start: date
    end: date = Field(description="最后一天(含)/ last day, included")
    deadline: date = Field(description="报送截止日(含)/ reports due by this day, included")
    current: bool = Field(description="是否包含 as_of 当日 / contains the as_of date")


class PeriodsOut(BaseModel):
    plan: str
    as_of: date
    cadence: Cadence
    deadline_days: int
    current: str | None = Field(description="as_of 所在的报告期;在实施期外为 null / the period holding as_of")
    items: list[PeriodOut]


class WithdrawIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason = Field(description="撤回理由 / why the report is withdrawn")


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["accept", "return"] = Field(description="accept 通过 / return 退回")
    reason: Reason | None = Field(default=None, description="审核意见;退回时必填 / required when returning")

    @model_validator(mode="after")
    def _return_needs_reason(self) -> ReviewIn:
        if self.decision == "return" and not self.reason:
            raise ValueError("退回须说明理由(reason)/ a return needs a reason")
        return self


class ReviewItem(ReviewIn):
    report: int = Field(ge=1, le=MAX_ID, description="进展报告 id / report id")


ReviewItemObject = Annotated[dict[str, Any], documented_as(ReviewItem)]


class ReviewBatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[ReviewItemObject] = Field(
        min_length=1,
        max_length=500,
        description="最多 500 条,每条 `report`、`decision`、`reason` / up to 500 decisions",
        examples=[[{"report": 12, "decision": "return", "reason": "佐证材料不全"}]],
    )


class ReviewResult(BaseModel):
    index: int
    report_id: int | None
    outcome: Literal["accepted", "returned", "error"] = Field(
        description="accepted 已通过 / returned 已退回 / error 出错"
    )
    report: ProgressOut | None = None
    problem: Problem | None = Field(default=None, description="出错时的 problem+json / the item's problem")


class ReviewBatchOut(BaseModel):
    accepted: int
    returned: int
    failed: int
    results: list[ReviewResult]


class ExcusalIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"task": "2.3.3", "unit": "司法局", "period": "2023-Q4", "reason": "机构改革,职责已划转"}]
        },
    )

    task: SingleLine = Field(min_length=1, max_length=20, description="任务编号 / task code")
    unit: SingleLine = Field(min_length=1, max_length=100, description="单位 id、名称或别名 / unit")
    period: SingleLine = Field(
        min_length=1, max_length=10, json_schema_extra={"pattern": PERIOD_PATTERN}, description="报告期 / period"
    )
    reason: Reason = Field(description="免报理由 / why the duty is waived")


class ExcusalOut(BaseModel):
    id: int
    plan: str
    task: str
    unit: UnitRef
    period: str
    reason: str
    excused_by: str = Field(description="管理密钥名称及前缀 / the admin key that waived it")
    created_at: datetime
    revoked_at: datetime | None
