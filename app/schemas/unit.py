"""API shapes of units."""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel, Field

from app.models import Unit, UnitKind
from app.schemas.jurisdiction import JurisdictionLike, JurisdictionRef


class UnitLike(Protocol):
    """A unit table row, or a lighter row with the same fields (`services.tasks.UnitLabel`)."""

    @property
    def id(self) -> int | None: ...
    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> UnitKind: ...
    @property
    def jurisdiction(self) -> JurisdictionLike: ...


class UnitRef(BaseModel):
    id: int = Field(description="单位的稳定 id / stable unit id", examples=[12])
    name: str = Field(description="规范名称 / canonical name", examples=["县司法局"])
    kind: UnitKind = Field(description="单位类别 / unit kind", examples=["government_department"])
    jurisdiction: JurisdictionRef = Field(description="所属行政区划 / the unit's jurisdiction")

    @classmethod
    def from_unit(cls, unit: Unit | UnitLike) -> UnitRef:
        assert unit.id is not None
        return cls(id=unit.id, name=unit.name, kind=unit.kind, jurisdiction=JurisdictionRef.of(unit.jurisdiction))


class UnitDetail(UnitRef):
    aliases: list[str] = Field(description="别名(方案中出现过的写法)/ aliases", examples=[["司法局"]])
    groups: list[UnitRef] = Field(description="所属的组(如 各部门(单位))/ groups it belongs to")
    members: list[UnitRef] | None = Field(
        default=None, description="组的成员,仅当 kind=group / members, for groups only"
    )
