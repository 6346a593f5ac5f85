"""Webhook endpoints, and their deliveries driven from the change feed.

The delivery state is durable: each endpoint has a cursor into the feed (`cursor`: the last event
sequence number fanned out to it), and each event it wants becomes one `WebhookMessage` row whose
id never changes, so an event committed before a crash is still delivered, under the same
`webhook-id`, however many attempts it takes. Every attempt is a `WebhookAttempt` row (the delivery log).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.models.base import UTCDateTime, utcnow

# Delivery bookkeeping is written all the time by the delivery worker and is in no cached read (webhook
# admin answers are never cached): its writes must not move the data version that keys the read cache
# (`app/services/feed.py`), or every delivery would empty every worker's cache.
NOT_DATA = {"info": {"data_version": False}}


class MessageState(StrEnum):
    pending = "pending"  # waiting for its next attempt (or for the endpoint to be enabled again)
    delivered = "delivered"  # a 2xx answer was received
    failed = "failed"  # the retry schedule ran out, or the endpoint answered 410 Gone


class WebhookEndpoint(SQLModel, table=True):
    __tablename__ = "webhook_endpoint"
    __table_args__ = NOT_DATA

    id: int | None = Field(default=None, primary_key=True)
    jurisdiction_id: int | None = Field(default=None, foreign_key="jurisdiction.id", index=True)  # None: platform
    url: str = Field(sa_column=Column(Text, nullable=False))
    description: str = Field(default="", max_length=200)
    event_types: str = Field(sa_column=Column(Text, nullable=False))  # JSON list of public event type names
    plan_id: int | None = Field(default=None, foreign_key="plan.id", ondelete="CASCADE")  # filters; None: any
    unit_id: int | None = Field(default=None, foreign_key="unit.id")
    chapter: str | None = Field(default=None, max_length=16)  # "2": tasks 2.x.y only
    # The HMAC key must be readable to sign with, so it is stored as issued (`whsec_…`); after a
    # rotation the previous one keeps signing alongside until `previous_secret_expires_at`.
    secret: str = Field(max_length=80)
    previous_secret: str | None = Field(default=None, max_length=80)
    previous_secret_expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    enabled: bool = True
    disabled_reason: str | None = Field(default=None, sa_column=Column(Text))
    cursor: int = 0  # the last feed seq fanned out to this endpoint
    created_by_key_id: int | None = Field(default=None, foreign_key="api_key.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class WebhookMessage(SQLModel, table=True):
    """One feed event to deliver to one endpoint; its `webhook-id` is fixed by the event."""

    __tablename__ = "webhook_message"
    __table_args__ = (UniqueConstraint("endpoint_id", "event_seq"), NOT_DATA)

    id: int | None = Field(default=None, primary_key=True)
    endpoint_id: int = Field(foreign_key="webhook_endpoint.id", ondelete="CASCADE")
    event_seq: int
    event_type: str = Field(max_length=40)  # the public name
    state: MessageState = Field(default=MessageState.pending, sa_type=String(16), index=True)
    attempts: int = 0  # attempts in the current run of the schedule
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime)  # claimed by a worker until then
    last_status: int | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class WebhookAttempt(SQLModel, table=True):
    __tablename__ = "webhook_attempt"
    __table_args__ = NOT_DATA

    id: int | None = Field(default=None, primary_key=True)
    endpoint_id: int = Field(foreign_key="webhook_endpoint.id", index=True, ondelete="CASCADE")
    message_id: int = Field(foreign_key="webhook_message.id", ondelete="CASCADE")
    attempted_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    status_code: int | None = None  # None: no answer (timeout, refused, address not allowed)
    duration_ms: int
    error: str | None = Field(default=None, sa_column=Column(Text))
    next_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # None: no retry


class TaskLightSeen(SQLModel, table=True):
    """The light the supervision watch last saw on a task, so a change is recorded once."""

    __tablename__ = "task_light_seen"
    __table_args__ = NOT_DATA

    task_id: int = Field(foreign_key="task.id", primary_key=True, ondelete="CASCADE")
    light: str = Field(max_length=8)
    seen_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class DutyMissingSeen(SQLModel, table=True):
    """A duty the supervision watch found missing after its deadline (recorded in the feed once)."""

    __tablename__ = "duty_missing_seen"
    __table_args__ = NOT_DATA

    task_id: int = Field(foreign_key="task.id", primary_key=True, ondelete="CASCADE")
    unit_id: int = Field(foreign_key="unit.id", primary_key=True)
    period: str = Field(max_length=10, primary_key=True)
    seen_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
