"""Jurisdictions (行政区划): the administrative divisions plans, units and keys belong to.

A province, prefecture and county carry their six-digit GB/T 2260 code; a township the longer code
of its statistical division (nine digits or more). `parent_id` makes the tree a key's scope walks
down: a county's admin key covers the county and the townships below it.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import String
from sqlmodel import Field, SQLModel

from app.models.base import UTCDateTime, utcnow


class JurisdictionLevel(StrEnum):
    province = "province"  # 省级:省、自治区、直辖市
    prefecture = "prefecture"  # 地级:地级市、自治州、盟
    county = "county"  # 县级:县、县级市、市辖区、旗
    township = "township"  # 乡级:乡、镇、街道


class Jurisdiction(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=16, unique=True)
    name: str = Field(max_length=100)
    level: JurisdictionLevel = Field(sa_type=String(16))
    parent_id: int | None = Field(default=None, foreign_key="jurisdiction.id", index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
