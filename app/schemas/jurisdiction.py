"""API shapes of jurisdictions (行政区划)."""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel, Field

from app.models import JurisdictionLevel
from app.schemas.common import SingleLine


class JurisdictionLike(Protocol):
    @property
    def code(self) -> str: ...
    @property
    def name(self) -> str: ...


class JurisdictionRef(BaseModel):
    code: str = Field(description="行政区划代码(GB/T 2260;乡镇 9 位以上)/ division code", examples=["640422"])
    name: str = Field(description="名称 / name", examples=["西吉县"])

    @classmethod
    def of(cls, jurisdiction: JurisdictionLike) -> JurisdictionRef:
        return cls(code=jurisdiction.code, name=jurisdiction.name)


class JurisdictionCounts(BaseModel):
    plans: int = Field(description="本级及下级的方案数 / plans here and below")
    units: int = Field(description="本级及下级的单位数 / units here and below")
    tasks: int = Field(description="本级及下级的任务数 / tasks here and below")


class JurisdictionNode(JurisdictionRef):
    level: JurisdictionLevel = Field(description="province 省级 / prefecture 地级 / county 县级 / township 乡级")
    parent: str | None = Field(description="上级区划代码 / parent's code", examples=["640400"])
    counts: JurisdictionCounts
    children: list[JurisdictionNode] = []


class JurisdictionCreate(BaseModel):
    """新增一个本地区划(乡镇等)/ A local jurisdiction, e.g. a township."""

    code: str = Field(
        pattern=r"^[0-9]{6}([0-9]{3,10})?$", description="区划代码;乡镇为 9 位以上", examples=["640422100"]
    )
    name: SingleLine = Field(min_length=1, max_length=100, examples=["吉强镇"])
    level: JurisdictionLevel = Field(examples=["township"])
    parent: SingleLine = Field(
        max_length=100, description="上级区划的代码或名称 / parent code or name", examples=["640422"]
    )
