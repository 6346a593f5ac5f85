"""API shapes of webhook endpoints, their secrets and their delivery log."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field

from app.models import MessageState
from app.schemas.jurisdiction import JurisdictionRef
from app.schemas.unit import UnitRef


class WebhookEventType(StrEnum):
    """Public event type names; `app/services/webhooks.py` (`public_type`) maps feed events onto them."""

    report_submitted = "report.submitted"
    report_corrected = "report.corrected"
    report_withdrawn = "report.withdrawn"
    task_status_changed = "task.status_changed"
    task_light_changed = "task.light_changed"
    duty_missing = "duty.missing"
    review_decided = "review.decided"
    plan_imported = "plan.imported"


EVENT_TYPES_DESCRIPTION = (
    "订阅的事件类型 / event types: report.submitted 报送进展、report.corrected 更正(依法治县办或更正报告)、"
    "report.withdrawn 撤回、task.status_changed 任务状态或进度变化、task.light_changed 亮灯变化、"
    "duty.missing 报送截止后未报送、review.decided 审核结论(通过/退回)、"
    "plan.imported 方案导入"
)
Chapter = Field(default=None, pattern=r"^[1-9][0-9]?$", description="只推送某章的任务(章号,如 2)/ one chapter only")


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: AnyHttpUrl = Field(
        description="接收地址(http/https)/ receiver URL", examples=["https://oa.example.gov.cn/hooks"]
    )
    event_types: list[WebhookEventType] = Field(min_length=1, max_length=20, description=EVENT_TYPES_DESCRIPTION)
    plan: str | None = Field(default=None, description="只推送某方案的事件(slug)/ one plan only")
    unit: str | None = Field(default=None, description="只推送某单位的事件(id、名称或别名)/ one unit only")
    chapter: str | None = Chapter
    description: str = Field(default="", max_length=200, description="说明 / what the endpoint is for")


class WebhookUpdate(BaseModel):
    """Only the fields sent are changed; `"plan": null` removes that filter."""

    model_config = ConfigDict(extra="forbid")

    url: AnyHttpUrl | None = None
    event_types: list[WebhookEventType] | None = Field(default=None, min_length=1, max_length=20)
    plan: str | None = None
    unit: str | None = None
    chapter: str | None = Chapter
    description: str | None = Field(default=None, max_length=200)
    enabled: bool | None = Field(
        default=None, description="停用 / 重新启用;重新启用时未送达的消息重新投递 / disable, or re-enable and retry"
    )


class WebhookOut(BaseModel):
    id: int
    url: str
    description: str
    event_types: list[WebhookEventType]
    plan: str | None = Field(description="方案过滤 / plan filter")
    unit: UnitRef | None = Field(description="单位过滤 / unit filter")
    chapter: str | None = Field(description="章过滤 / chapter filter")
    jurisdiction: JurisdictionRef | None = Field(description="所属区划,null 为全平台 / owning jurisdiction")
    enabled: bool
    disabled_reason: str | None = Field(description="停用原因 / why it was disabled")
    cursor: str = Field(description="已分发到的变更序号 / the last feed cursor fanned out")
    previous_secret_expires_at: datetime | None = Field(
        description="轮换后旧密钥仍同时签名至此时 / the rotated-out secret signs too until then"
    )
    created_at: datetime
    updated_at: datetime


class WebhookCreated(WebhookOut):
    secret: str = Field(description="签名密钥(whsec_…),仅此一次显示 / the signing secret, shown once")


class WebhookSecret(BaseModel):
    secret: str = Field(description="新签名密钥,仅此一次显示 / the new signing secret, shown once")
    previous_secret_expires_at: datetime | None = Field(
        description="旧密钥同时签名至此时 / the old secret keeps signing until then"
    )


class WebhookReplay(BaseModel):
    model_config = ConfigDict(extra="forbid")

    since: str = Field(
        pattern=r"^[0-9]{1,18}$",
        description="从此变更序号之后重新投递(/changes 的游标)/ redeliver events after this feed cursor",
        examples=["0"],
    )


class DeliveryAttemptOut(BaseModel):
    id: int
    webhook_id: str = Field(description="webhook-id 头(同一事件各次重试相同)/ the message id, stable across retries")
    event_seq: int = Field(description="变更序号 / feed seq")
    event_type: WebhookEventType
    message_state: MessageState = Field(description="pending 待重试 / delivered 已送达 / failed 失败")
    attempted_at: datetime
    status_code: int | None = Field(description="HTTP 状态码;null 为无应答(超时、拒绝连接)/ null: no answer")
    duration_ms: int
    error: str | None
    next_attempt_at: datetime | None = Field(description="下次重试时间;null 为不再重试 / next retry, if any")
