"""Government units, their aliases, and groups such as 各乡镇 with their members."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import String, UniqueConstraint
from sqlmodel import Field, Relationship, SQLModel

from app.models.base import UTCDateTime, utcnow
from app.models.jurisdiction import Jurisdiction


class UnitKind(StrEnum):
    party_organ = "party_organ"  # 县委及其工作机关
    government_department = "government_department"  # 县政府组成部门及直属机构
    people_congress = "people_congress"  # 县人大常委会机关
    judicial_organ = "judicial_organ"  # 法院、检察院
    people_organisation = "people_organisation"  # 人民团体
    group = "group"  # 各乡镇、各部门(单位) …: stands for its members
    other = "other"  # created by an import that met an unknown name; the county classifies it


class Unit(SQLModel, table=True):
    """A unit belongs to one jurisdiction: 县司法局 of 西吉县 and 县司法局 of 渠县 are two units."""

    __table_args__ = (UniqueConstraint("jurisdiction_id", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    jurisdiction_id: int = Field(foreign_key="jurisdiction.id", index=True)
    name: str = Field(max_length=100)  # canonical: the plan's most complete spelling
    kind: UnitKind = Field(sa_type=String(32))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # Loaded with the unit (one join): every representation of a unit names its jurisdiction.
    jurisdiction: Jurisdiction = Relationship(sa_relationship_kwargs={"lazy": "joined"})


class UnitAlias(SQLModel, table=True):
    """An alias is unique within its unit's jurisdiction (司法局 names one unit per county)."""

    __tablename__ = "unit_alias"
    __table_args__ = (UniqueConstraint("jurisdiction_id", "alias"),)

    id: int | None = Field(default=None, primary_key=True)
    unit_id: int = Field(foreign_key="unit.id", index=True, ondelete="CASCADE")
    jurisdiction_id: int = Field(foreign_key="jurisdiction.id")  # the unit's, kept here for the constraint
    alias: str = Field(max_length=100)


class GroupMember(SQLModel, table=True):
    __tablename__ = "group_member"

    group_id: int = Field(foreign_key="unit.id", primary_key=True, ondelete="CASCADE")
    member_id: int = Field(foreign_key="unit.id", primary_key=True, index=True, ondelete="CASCADE")
