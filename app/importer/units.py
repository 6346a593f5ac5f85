"""Canonical units: loading the county's unit file, and resolving names as plans write them."""

from __future__ import annotations

import tomllib
import unicodedata
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlmodel import Session, select

from app.models import GroupMember, Unit, UnitAlias, UnitKind


def name_key(name: str) -> str:
    """The form names are compared in: full-width folded to ASCII, all whitespace removed."""
    folded = unicodedata.normalize("NFKC", name)
    return "".join(folded.split())


def candidate_keys(name: str) -> list[str]:
    """The spellings a written name may stand for, most literal first. Plans drop the county prefix
    (司法局 for 县司法局), and scraping drops its first character (委宣传部 for 县委宣传部)."""
    key = name_key(name)
    return list(dict.fromkeys((key, "县" + key, "县" + key.removeprefix("委"))))


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


class UnitResolver:
    """Resolves a name as written to a canonical unit, through names, aliases and the county prefix."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._by_key: dict[str, Unit] = {}
        for unit in session.exec(select(Unit)):
            self._by_key[name_key(unit.name)] = unit
        for alias, unit in session.exec(select(UnitAlias.alias, Unit).join(Unit)):
            self._by_key.setdefault(name_key(alias), unit)

    def resolve_exact(self, name: str) -> Unit | None:
        """Only the name or alias itself, no prefix guessing: for checking a new name is free."""
        return self._by_key.get(name_key(name))

    def resolve(self, name: str) -> Unit | None:
        for candidate in candidate_keys(name):
            if candidate in self._by_key:
                return self._by_key[candidate]
        return None

    def create(self, name: str, kind: UnitKind = UnitKind.other) -> Unit:
        unit = Unit(name=name_key(name), kind=kind)
        self.session.add(unit)
        self.session.flush()
        self._by_key[name_key(name)] = unit
        return unit


def apply_unit_file(session: Session, unit_file: UnitFile) -> list[str]:
    """Adds the file's units, aliases and memberships that are missing. Never removes: the county
    may have added more through the admin API. Returns the names of units it created."""
    created: list[str] = []
    resolver = UnitResolver(session)
    existing_aliases = {name_key(a) for a in session.exec(select(UnitAlias.alias))}
    for seed in unit_file.unit:
        unit = resolver.resolve(seed.name)
        if unit is None or name_key(unit.name) != name_key(seed.name):
            unit = resolver.create(seed.name, seed.kind)
            created.append(unit.name)
        assert unit.id is not None
        for alias in seed.aliases:
            if name_key(alias) not in existing_aliases:
                session.add(UnitAlias(unit_id=unit.id, alias=name_key(alias)))
                existing_aliases.add(name_key(alias))
    session.flush()
    resolver = UnitResolver(session)
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
