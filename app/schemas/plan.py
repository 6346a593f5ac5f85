"""API shapes of plans (separate from the table models on purpose)."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field

from app.models import Plan
from app.schemas.duty import ComplianceOut
from app.schemas.jurisdiction import JurisdictionRef
from app.schemas.unit import UnitRef


class Period(BaseModel):
    """The term in years; both null when the plan was imported with its term left open."""

    start: int | None = Field(examples=[2021])
    end: int | None = Field(examples=[2025])


class PlanSummary(BaseModel):
    slug: str = Field(description="方案的稳定标识 / stable plan id", examples=["xiji-fzsh-2021-2025"])
    title: str = Field(examples=["西吉县法治社会建设实施方案(2021-2025年)"])
    jurisdiction: JurisdictionRef = Field(description="方案所属行政区划 / whose plan")
    issuer: str | None = Field(description="发布机构 / issuing body", examples=["西吉县政府办公室"])
    doc_index: str | None = Field(description="索引号 / document index", examples=["640422001/2022-00081"])
    issued_on: date | None = Field(description="发文时间 / date issued", examples=["2022-07-15"])
    period: Period = Field(description="实施期 / plan period")
    imported_at: datetime = Field(description="最近一次导入时间 / last import (UTC)")

    @classmethod
    def from_plan(cls, plan: Plan) -> PlanSummary:
        return cls(
            slug=plan.slug,
            title=plan.title,
            jurisdiction=JurisdictionRef.of(plan.jurisdiction),
            issuer=plan.issuer,
            doc_index=plan.doc_index,
            issued_on=plan.issued_on,
            period=Period(start=plan.period_start, end=plan.period_end),
            imported_at=plan.imported_at,
        )


class PlanCounts(BaseModel):
    sections: int = Field(examples=[35])
    tasks: int = Field(examples=[76])
    units: int = Field(description="有任务关联的单位数 / units linked to a task", examples=[34])
    links: int = Field(description="任务–单位责任关联数 / task–unit responsibility links", examples=[200])


class PlanSource(BaseModel):
    name: str = Field(examples=["xiji-fzsh-2021-2025.txt"])
    checksum: str = Field(description="原文 SHA-256 / sha256 of the source bytes")
    encoding: str = Field(examples=["utf-8"])


class PlanDetail(PlanSummary):
    goals: str | None = Field(description="总体目标 / overall goals")
    counts: PlanCounts
    source: PlanSource


class SectionNode(BaseModel):
    code: str = Field(examples=["2.1"])
    level: int = Field(description="1 章 chapter / 2 节 subsection", examples=[2])
    number: int = Field(examples=[1])
    title: str = Field(examples=["维护宪法法律权威"])
    body: str | None = Field(description="正文(指导思想、总体目标、组织保障等非任务内容)/ prose body, if any")
    task_count: int
    source_line: int
    marker_inferred: bool = Field(description="原文 (一) 标记缺损,序号为推断 / the (一) marker was damaged")
    children: list[SectionNode] = []


class StatusCounts(BaseModel):
    not_started: int = 0
    in_progress: int = 0
    completed: int = 0
    delayed: int = 0
    ongoing: int = 0


class LightCounts(BaseModel):
    red: int = 0
    yellow: int = 0
    green: int = 0


class ChapterStats(BaseModel):
    code: str
    title: str
    tasks: int
    overdue: int
    by_status: StatusCounts
    mean_progress: float = Field(description="平均进度(as_of 当日)/ mean progress as of as_of", examples=[42.5])
    by_light: LightCounts = Field(description="按亮灯计数 / tasks by light")


class UnitLoad(BaseModel):
    unit: UnitRef
    lead: int = Field(description="牵头任务数 / tasks led")
    responsible: int = Field(description="责任任务数 / tasks solely responsible")
    cooperating: int = Field(description="配合任务数 / tasks cooperating")
    overdue: int = Field(description="其牵头或责任任务中已过期未完成的数量 / overdue tasks it leads or owns")
    lead_by_status: StatusCounts = Field(description="其牵头任务按状态计数 / tasks it leads, by status")
    lead_by_light: LightCounts = Field(description="其牵头任务按亮灯计数 / tasks it leads, by light")
    delayed: int = Field(description="该单位自身报告为滞后的任务数 / tasks on which its own state is delayed")
    compliance: ComplianceOut | None = Field(
        description="该单位在 compliance_period 的报送合规情况;无报送义务时为 null"
        " / its compliance for compliance_period; null when it owes nothing then"
    )


class PlanStats(BaseModel):
    plan: str
    as_of: date
    tasks: int
    overdue: int
    by_status: StatusCounts
    by_chapter: list[ChapterStats]
    by_unit: list[UnitLoad] = Field(description="按牵头数量降序 / sorted by tasks led, descending")
    by_light: LightCounts = Field(description="全方案按亮灯计数 / tasks by light")
    light_rules_version: str = Field(description="亮灯规则版本 / the light rule set's version", examples=["2023.1"])
    compliance_period: str | None = Field(
        description="合规统计的报告期:period 参数,默认 as_of 时最近一个已过报送期限的报告期"
        " / the period of the compliance figures: `period`, default the latest whose deadline has passed"
    )
    compliance: ComplianceOut | None = Field(description="该报告期全方案合计 / plan-wide totals for that period")


class PlanStatusLine(BaseModel):
    plan: str
    jurisdiction: JurisdictionRef
    tasks: int
    overdue: int
    by_status: StatusCounts


class JurisdictionStats(BaseModel):
    jurisdiction: JurisdictionRef
    as_of: date
    plans: int = Field(description="本级及下级的方案数 / plans here and below")
    tasks: int
    overdue: int = Field(description="已过期未完成的任务数 / tasks past due and not completed")
    by_status: StatusCounts
    by_plan: list[PlanStatusLine] = Field(description="按方案 / per plan, by slug")
