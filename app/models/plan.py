"""A plan and its chapter/subsection tree."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Column, Text, UniqueConstraint
from sqlmodel import Field, Relationship, SQLModel

from app.models.base import UTCDateTime, utcnow
from app.models.jurisdiction import Jurisdiction


class Plan(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(max_length=64, unique=True)
    jurisdiction_id: int = Field(foreign_key="jurisdiction.id", index=True)  # whose plan (the issuer's division)
    title: str = Field(max_length=200)
    issuer: str | None = Field(default=None, max_length=100)  # 发布机构
    doc_index: str | None = Field(default=None, max_length=64)  # 索引号
    issued_on: date | None = None  # 发文时间
    # The term (实施期限) in years; both None for a plan imported with its term left open.
    period_start: int | None = None
    period_end: int | None = None
    goals: str | None = Field(default=None, sa_column=Column(Text))  # 总体目标
    source_name: str = Field(max_length=200)
    source_checksum: str = Field(max_length=64)  # sha256 of the source bytes
    source_encoding: str = Field(max_length=16)
    imported_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    jurisdiction: Jurisdiction = Relationship(sa_relationship_kwargs={"lazy": "joined"})


class Section(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("plan_id", "code"),)

    id: int | None = Field(default=None, primary_key=True)
    plan_id: int = Field(foreign_key="plan.id", index=True, ondelete="CASCADE")
    parent_id: int | None = Field(default=None, foreign_key="section.id", ondelete="CASCADE")
    code: str = Field(max_length=16)  # "2" for chapter 二, "2.1" for its (一)
    level: int  # 1 chapter, 2 subsection
    number: int
    title: str = Field(max_length=200)
    body: str | None = Field(default=None, sa_column=Column(Text))
    position: int  # document order
    source_line: int
    marker_inferred: bool = False


class PlanImport(SQLModel, table=True):
    """One run of the importer against a plan: the provenance of what the tables now hold."""

    __tablename__ = "plan_import"

    id: int | None = Field(default=None, primary_key=True)
    plan_id: int = Field(foreign_key="plan.id", index=True, ondelete="CASCADE")
    source_name: str = Field(max_length=200)
    source_checksum: str = Field(max_length=64)
    imported_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    tasks: int
    links: int
    warnings: str = Field(default="", sa_column=Column(Text, nullable=False))  # one per line
