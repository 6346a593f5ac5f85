"""API shapes of progress reports, keys and the change feed."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationInfo, field_validator, model_validator

from app.errors import Problem
from app.models import ReportKind, ReviewState, TaskStatus, UnitKind
from app.schemas.common import SINGLE_LINE, IdempotencyKeyValue, MultiLine, SingleLine, documented_as
from app.schemas.jurisdiction import JurisdictionRef
from app.schemas.unit import UnitRef
from app.services.periods import PERIOD_PATTERN, PeriodError, parse_period

Evidence = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500), SINGLE_LINE[0], SINGLE_LINE[1]
]


class ProgressCreate(BaseModel):
    """一条进展报告 / One progress report."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "status": "in_progress",
                    "percent": 60,
                    "summary": "已在全县中小学开展“学宪法讲宪法”活动 42 场,覆盖学生 1.2 万人。",
                    "period": "2022-H2",
                    "evidence": ["https://www.nxxj.gov.cn/xwzx/bmdt/202212/t20221205.html", "西司发〔2022〕15号"],
                }
            ]
        },
    )

    status: TaskStatus = Field(
        description="not_started 未启动 / in_progress 推进中 / completed 已完成 / delayed 滞后 / ongoing 常态化(长效机制运行中)"
    )
    percent: int = Field(ge=0, le=100, description="完成百分比;completed 必须为 100,not_started 必须为 0")
    summary: MultiLine = Field(min_length=1, max_length=2000, description="进展摘要(1–2000 字)/ what was done")
    period: SingleLine = Field(
        json_schema_extra={"pattern": PERIOD_PATTERN},
        description="报告期:`2022`、`2022-H1`、`2022-Q3` 或 `2022-07`(半角数字),须符合方案的报送周期(或更粗,如年度小结),"
        "在方案实施期内(或次年,用于终期评估)/ canonical period, at the plan's cadence or coarser",
        examples=["2022-Q3"],
    )
    evidence: list[Evidence] = Field(
        default_factory=list, max_length=20, description="佐证材料:网址或文号,最多 20 条 / URLs or document numbers"
    )

    @field_validator("summary")
    @classmethod
    def _summary_not_blank(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("摘要不能为空白 / summary must not be blank")
        return value

    @field_validator("period")
    @classmethod
    def _period_canonical(cls, value: str) -> str:
        try:
            parse_period(value)
        except PeriodError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("percent")
    @classmethod
    def _percent_matches_status(cls, value: int, info: ValidationInfo) -> int:
        status = info.data.get("status")  # validated first: it is declared first
        if status == TaskStatus.completed and value != 100:
            raise ValueError("状态为 completed 时 percent 必须为 100 / completed means percent 100")
        if status == TaskStatus.not_started and value != 0:
            raise ValueError("状态为 not_started 时 percent 必须为 0 / not_started means percent 0")
        return value


class ReviewOut(BaseModel):
    state: ReviewState = Field(description="not_required 无需审核 / pending 待审核 / accepted 已通过 / returned 已退回")
    reviewed_at: datetime | None = None
    reason: str | None = Field(default=None, description="审核意见(退回时必有)/ the reviewer's reason")


class ProgressOut(BaseModel):
    id: int = Field(examples=[1])
    plan: str = Field(examples=["xiji-fzsh-2021-2025"])
    task: str = Field(description="任务编号 / task code", examples=["2.1.3"])
    kind: ReportKind = Field(
        description="status 状态报告(牵头/责任单位)/ contribution 配合报告 / correction 依法治县办更正"
    )
    unit: UnitRef | None = Field(description="报送单位;依法治县办的更正为 null / reporting unit")
    via: UnitRef | None = Field(description="凭借的关联单位(单位本身或其所属组)/ the linked unit that granted it")
    submitted_by: str = Field(description="报送人(单位或管理密钥名称)及密钥前缀 / who, and the key prefix")
    status: TaskStatus
    percent: int
    summary: str
    period: str
    evidence: list[str]
    created_at: datetime
    supersedes: int | None = Field(
        default=None, description="本报告更正(取代)的上一版本 id / the version this one supersedes"
    )
    superseded_by: int | None = Field(
        default=None, description="取代本报告的新版本 id / the version that superseded this one"
    )
    current: bool = Field(
        default=True,
        description="是否为该单位此任务此报告期的现行版本且未撤回 / the head of its versions, not withdrawn",
    )
    withdrawn_at: datetime | None = Field(default=None, description="撤回时间 / when withdrawn")
    withdrawn_reason: str | None = Field(default=None, description="撤回理由 / why withdrawn")
    review: ReviewOut = Field(
        default_factory=lambda: ReviewOut(state=ReviewState.not_required),
        description="审核情况(方案报送周期要求审核时)/ review by the office, when the schedule asks for it",
    )


class UnitState(BaseModel):
    unit: UnitRef = Field(description="报送单位 / reporting unit")
    via: UnitRef = Field(description="其牵头/责任关联(单位本身或所属组)/ the owner link it reported through")
    status: TaskStatus
    percent: int
    period: str = Field(default="", description="给出此状态的报告所属报告期 / the period of the report behind it")
    report_id: int
    updated_at: datetime


class BatchItem(ProgressCreate):
    """批量报送中的一条:单条报送的字段,另加任务编号和可选的幂等键 / one report of a batch."""

    task: SingleLine = Field(min_length=1, max_length=20, description="任务编号 / task code", examples=["2.1.3"])
    idempotency_key: IdempotencyKeyValue | None = Field(
        default=None,
        description="重试安全键:重发同一条时重放而非重复 / retry-safe key of this item",
        examples=["jyt-2022-H2-2.1.3"],
    )


BatchOutcome = Literal["created", "replayed", "would_create", "would_replay", "error", "rolled_back"]


BatchItemObject = Annotated[dict[str, Any], documented_as(BatchItem)]


class BatchIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "task": "2.1.3",
                            "idempotency_key": "jyt-2022-H2-2.1.3",
                            "status": "in_progress",
                            "percent": 60,
                            "summary": "开展宪法进校园活动 42 场。",
                            "period": "2022-H2",
                        }
                    ]
                }
            ]
        },
    )

    items: list[BatchItemObject] = Field(
        min_length=1,
        max_length=500,
        description="最多 500 条;每条字段同单条报送,另加 `task`(任务编号)和可选的 `idempotency_key`"
        " / up to 500 reports: the single-report fields plus `task` and an optional `idempotency_key`",
    )


class BatchResult(BaseModel):
    index: int = Field(description="在 items 中的序号(从 0 起)/ the item's index in items")
    task: str | None
    outcome: BatchOutcome = Field(
        description="created 已创建 / replayed 重放 / error 出错 / rolled_back 因整批失败而回滚;"
        "dry_run 时为 would_create 将创建 / would_replay 将重放 / the item's fate"
    )
    report: ProgressOut | None = Field(default=None, description="created、replayed 时的报告 / the stored report")
    problem: Problem | None = Field(default=None, description="出错时的 problem+json / the item's problem")


class BatchOut(BaseModel):
    dry_run: bool = Field(default=False, description="仅校验,未写入任何数据 / validated only, nothing written")
    atomic: bool
    created: int = Field(description="新建条数(dry_run 时为将新建的条数)/ created (with dry_run: would be)")
    replayed: int = Field(description="重放条数(dry_run 时为将重放的条数)/ replayed (with dry_run: would be)")
    failed: int
    results: list[BatchResult]


class BatchProblem(Problem):
    """A batch's 422: a problem+json. When an atomic batch is refused (code `batch-rejected`), its
    extension members are the batch's answer; a body that is not a batch at all has none of them."""

    atomic: bool | None = Field(default=None, description="仅 batch-rejected / only with batch-rejected")
    created: int | None = None
    replayed: int | None = None
    failed: int | None = None
    results: list[BatchResult] | None = Field(default=None, description="逐条结果 / per-item results")


class ChangeOut(BaseModel):
    seq: int = Field(description="单调递增序号 / monotonically increasing sequence")
    type: str = Field(
        examples=["report.created"],
        description="report.created / report.withdrawn / report.accepted / report.returned / task.status_changed /"
        " schedule.changed / duty.excused / duty.excuse_revoked / key.created …",
    )
    occurred_at: datetime
    plan: str | None
    task: str | None
    unit: UnitRef | None
    report_id: int | None
    actor: str = Field(description="操作者(单位或管理密钥名)/ who")
    data: dict[str, Any]


class AuditOut(ChangeOut):
    key_prefix: str | None
    remote_addr: str | None


class ChangesPage(BaseModel):
    items: list[ChangeOut]
    next_cursor: str = Field(description="下次以 since=<next_cursor> 继续;没有新事件时不变 / resume with since=")
    has_more: bool


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    unit: SingleLine | None = Field(default=None, description="单位 id、名称或别名(单位密钥)/ unit for a unit key")
    admin: bool = Field(default=False, description="依法治县办管理密钥 / an admin key")
    name: SingleLine | None = Field(default=None, max_length=100, description="密钥名称(管理密钥必填)/ key name")
    jurisdiction: SingleLine | None = Field(
        default=None,
        description="管理密钥管辖的行政区划(代码或名称);省略时为签发者自己的区划,全平台管理员省略则签发全平台密钥"
        " / the admin key's jurisdiction; default: the issuer's own (platform-wide from a platform admin)",
        examples=["640422"],
    )

    @model_validator(mode="after")
    def _one_kind(self) -> KeyCreate:
        if self.admin == (self.unit is not None):
            raise ValueError("须且只能指定 unit 或 admin=true 之一 / give either unit or admin=true")
        if self.admin and not self.name:
            raise ValueError("管理密钥须提供 name / admin keys need a name")
        if self.unit is not None and self.jurisdiction is not None:
            raise ValueError("单位密钥的区划即其单位的区划,不能另行指定 / a unit key takes its unit's jurisdiction")
        return self


class KeyOut(BaseModel):
    prefix: str
    name: str
    unit: UnitRef | None
    admin: bool
    jurisdiction: JurisdictionRef | None = Field(
        description="密钥的行政区划;全平台管理密钥为 null / null: platform-wide"
    )
    created_at: datetime
    revoked_at: datetime | None


class KeyCreated(KeyOut):
    key: str = Field(description="密钥明文,仅此一次显示 / the secret, shown once")


class UnitCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: SingleLine = Field(min_length=1, max_length=100)
    kind: UnitKind = Field(description="单位类别 / unit kind", examples=["government_department"])
    aliases: list[
        Annotated[
            str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), SINGLE_LINE[0], SINGLE_LINE[1]
        ]
    ] = []
    jurisdiction: SingleLine | None = Field(
        default=None,
        description="所属行政区划(代码或名称);省略时为管理密钥自己的区划 / default: the admin key's own",
        examples=["640422"],
    )


class AliasCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    alias: SingleLine = Field(min_length=1, max_length=100)


class MemberAdd(BaseModel):
    model_config = ConfigDict(extra="forbid")

    member: SingleLine = Field(min_length=1, max_length=100, description="成员单位 id、名称或别名 / member unit")
