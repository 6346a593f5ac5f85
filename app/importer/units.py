"""Canonical units: loading a jurisdiction's unit file (`seed/units/<code>.toml`, one per jurisdiction).

Names are resolved by `app/services/unit_names.py` (the API uses it too): within the plan's
jurisdiction first, then up its ancestors (a county plan's 市委政法委 is the prefecture's unit).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlmodel import Session, select

from app.models import GroupMember, Jurisdiction, UnitAlias, UnitKind
from app.services.unit_names import UnitResolver, name_key


class UnitSeed(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    kind: UnitKind
    aliases: list[str] = []
    members: list[str] = []


class UnitFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    unit: list[UnitSeed]


class UnitFileError(ValueError):
    pass


def read_unit_file(path: Path) -> UnitFile:
    try:
        return UnitFile.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))
    except (OSError, tomllib.TOMLDecodeError, ValidationError) as exc:
        raise UnitFileError(f"单位文件 {path} 无法读取 / unit file unreadable: {exc}") from exc


def apply_unit_file(session: Session, unit_file: UnitFile, jurisdiction: Jurisdiction) -> list[str]:
    """Adds the file's units, aliases and memberships that are missing, in the jurisdiction. Never
    removes: the county may have added more through the admin API. Returns the units it created."""
    created: list[str] = []
    resolver = UnitResolver(session, jurisdiction, upward=False)
    existing_aliases = {
        name_key(a) for a in session.exec(select(UnitAlias.alias).where(UnitAlias.jurisdiction_id == jurisdiction.id))
    }
    for seed in unit_file.unit:
        unit = resolver.resolve(seed.name)
        if unit is None or name_key(unit.name) != name_key(seed.name):
            unit = resolver.create(seed.name, seed.kind)
            created.append(unit.name)
        assert unit.id is not None
        for alias in seed.aliases:
            if name_key(alias) not in existing_aliases:
                session.add(UnitAlias(unit_id=unit.id, jurisdiction_id=unit.jurisdiction_id, alias=name_key(alias)))
                existing_aliases.add(name_key(alias))
    session.flush()
    resolver = UnitResolver(session, jurisdiction, upward=False)
    members = {(g, m) for g, m in session.exec(select(GroupMember.group_id, GroupMember.member_id))}
    for seed in unit_file.unit:
        group = resolver.resolve(seed.name)
        assert group is not None and group.id is not None
        for member_name in seed.members:
            member = resolver.resolve(member_name)
            if member is None or member.id is None:
                raise UnitFileError(f"单位文件中 {seed.name} 的成员 {member_name} 未定义 / unknown member")
            if (group.id, member.id) not in members:
                session.add(GroupMember(group_id=group.id, member_id=member.id))
                members.add((group.id, member.id))
    session.flush()
    return created
