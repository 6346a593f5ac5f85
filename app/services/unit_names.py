"""Unit names as plans and callers write them: the compared form, the spellings a short name may
stand for, and the resolver that finds a canonical unit of a jurisdiction or of one of its ancestors.

Used by the API (`services/units.py`) and by the importer (`importer/units.py`, `importer/loader.py`);
it lives here, below both, so imports run one way. Units belong to jurisdictions; each level drops its
own prefix (县 for a county, 市 for a prefecture, 自治区/省 for a province), so 司法局 in a county plan
is that county's 县司法局.
"""

from __future__ import annotations

import unicodedata

from sqlmodel import Session, col, select

from app.models import Jurisdiction, JurisdictionLevel, Unit, UnitAlias, UnitKind
from app.services.jurisdictions import LEVEL_PREFIXES, ancestors


def name_key(name: str) -> str:
    """The form names are compared in: full-width folded to ASCII, all whitespace removed."""
    folded = unicodedata.normalize("NFKC", name)
    return "".join(folded.split())


def candidate_keys(name: str, prefixes: tuple[str, ...] = ("县",)) -> list[str]:
    """The spellings a written name may stand for, most literal first. Plans drop their level's
    prefix (司法局 for 县司法局), and scraping drops its first character (委宣传部 for 县委宣传部)."""
    key = name_key(name)
    spelled = [key]
    for prefix in prefixes:
        spelled += [prefix + key, prefix + key.removeprefix("委")]
    return list(dict.fromkeys(spelled))


# Names that say they belong to a higher level (a county plan's 市委政法委), for units no file defines.
HIGHER_MARKERS: dict[JurisdictionLevel, tuple[str, ...]] = {
    JurisdictionLevel.prefecture: ("市委", "市政府", "市人民政府", "市人大", "市政协", "市中级人民法院"),
    JurisdictionLevel.province: ("自治区", "省委", "省政府", "省人民政府", "省人大", "省政协", "省高级人民法院"),
}


class UnitResolver:
    """Resolves a name as written to a canonical unit of the jurisdiction or, failing that, of one
    of its ancestors (`upward=False`: the jurisdiction only), through names, aliases and prefixes."""

    def __init__(self, session: Session, jurisdiction: Jurisdiction, *, upward: bool = True) -> None:
        self.session = session
        self.jurisdiction = jurisdiction
        self.chain = [jurisdiction, *(ancestors(session=session, jurisdiction=jurisdiction) if upward else [])]
        chain_ids = [j.id for j in self.chain]
        self._by_key: dict[int, dict[str, Unit]] = {j.id or 0: {} for j in self.chain}
        for unit in session.exec(select(Unit).where(col(Unit.jurisdiction_id).in_(chain_ids))):
            self._by_key[unit.jurisdiction_id][name_key(unit.name)] = unit
        aliases = session.exec(select(UnitAlias.alias, Unit).join(Unit).where(col(Unit.jurisdiction_id).in_(chain_ids)))
        for alias, unit in aliases:
            self._by_key[unit.jurisdiction_id].setdefault(name_key(alias), unit)

    def resolve_exact(self, name: str) -> Unit | None:
        """Only the name or alias itself in the jurisdiction, no prefix guessing: is a new name free?"""
        return self._by_key[self.jurisdiction.id or 0].get(name_key(name))

    def resolve(self, name: str) -> Unit | None:
        for level in self.chain:
            known = self._by_key[level.id or 0]
            for candidate in candidate_keys(name, LEVEL_PREFIXES[JurisdictionLevel(level.level)]):
                if candidate in known:
                    return known[candidate]
        return None

    def home_of(self, name: str) -> Jurisdiction:
        """Where a unit no file defines belongs: the level its name announces, else this jurisdiction."""
        key = name_key(name)
        for level in self.chain[1:]:
            if key.startswith(HIGHER_MARKERS.get(JurisdictionLevel(level.level), ())):
                return level
        return self.jurisdiction

    def create(self, name: str, kind: UnitKind = UnitKind.other) -> Unit:
        home = self.home_of(name) if kind == UnitKind.other else self.jurisdiction
        assert home.id is not None
        unit = Unit(name=name_key(name), kind=kind, jurisdiction_id=home.id)
        self.session.add(unit)
        self.session.flush()
        self._by_key[home.id][name_key(name)] = unit
        return unit
