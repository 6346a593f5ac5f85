"""The permission rule, over every unit × task of the seed plan, against an independent oracle.

The oracle never calls `app/services/permissions.py`. It reads the plan text with the parser (each
task's unit mentions, with their roles as written), maps every spelling to its canonical unit with
the explicit table `SEED_SPELLINGS` (tests/test_importer.py), and takes group memberships from
`seed/units.toml` with tomllib, plus one township the test adds to 各乡镇. Then, per (unit, task):

- "status" if the unit, or a group it is a member of, is lead (牵头) or responsible (责任);
- else "contribution" if the unit, or a group of it, is cooperating (配合);
- else forbidden (403, saying who and which task).

The sweep calls the service directly (`check_permission`, with a `Principal` built from a key issued
by the real key service); a sample then goes through HTTP: 201 status / 201 contribution / 403.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, func, select

from app.errors import NotLinkedToTask, OutsideJurisdiction
from app.importer.parsed import Role as ParsedRole
from app.importer.parser import parse_plan
from app.models import ApiKey, ChangeEvent, GroupMember, Plan, ProgressReport, ReportKind, Role, Task, Unit, UnitKind
from app.services.keys import Principal, create_key
from app.services.permissions import check_permission, permission
from tests.factories import SEED_PLAN, SEED_SLUG, SEED_UNITS, make_key, xiji_id
from tests.test_importer import SEED_SPELLINGS

TOWNSHIP = "兴隆镇"  # one of 西吉县's townships; units.toml ships 各乡镇 with no members
TOWNSHIPS_GROUP = "各乡镇"
OWNER = {ParsedRole.lead, ParsedRole.responsible}
PLAN_URL = f"/api/v1/plans/{SEED_SLUG}"
REPORT = {"status": "in_progress", "percent": 40, "summary": "已召开专题会议部署落实。", "period": "2023-H1"}


# --- The oracle: plan text + units.toml, nothing from the permission service -------------------


@dataclass(frozen=True)
class Expected:
    kind: str | None  # "status", "contribution" or None (forbidden)
    via: frozenset[str]  # the linked units (the unit itself or its groups) that may have granted it


def _plan_links() -> dict[str, dict[str, set[ParsedRole]]]:
    """task code → canonical unit name → the roles the plan text gives it."""
    parsed = parse_plan(Path(SEED_PLAN).read_text(encoding="utf-8"))
    links: dict[str, dict[str, set[ParsedRole]]] = {}
    for task in parsed.tasks:
        per_unit = links.setdefault(task.code, {})
        for mention in task.units:
            per_unit.setdefault(SEED_SPELLINGS[mention.as_written], set()).add(mention.role)
    return links


def _unit_file() -> tuple[set[str], dict[str, set[str]]]:
    """All canonical unit names, and each unit's groups, from units.toml (plus the test's township)."""
    data = tomllib.loads(Path(SEED_UNITS).read_text(encoding="utf-8"))
    names = {entry["name"] for entry in data["unit"]} | {TOWNSHIP}
    groups_of: dict[str, set[str]] = {name: set() for name in names}
    for entry in data["unit"]:
        for member in entry.get("members", []):
            groups_of[member].add(entry["name"])
    groups_of[TOWNSHIP].add(TOWNSHIPS_GROUP)
    return names, groups_of


PLAN_LINKS = _plan_links()
UNIT_NAMES, GROUPS_OF = _unit_file()


def expected(unit: str, code: str) -> Expected:
    links = PLAN_LINKS[code]
    direct = links.get(unit, set())
    if direct & OWNER:  # a direct link wins over a group link of the same class
        return Expected("status", frozenset({unit}))
    owner_groups = {g for g in GROUPS_OF[unit] if links.get(g, set()) & OWNER}
    if owner_groups:
        return Expected("status", frozenset(owner_groups))
    if ParsedRole.cooperating in direct:
        return Expected("contribution", frozenset({unit}))
    cooperating_groups = {g for g in GROUPS_OF[unit] if ParsedRole.cooperating in links.get(g, set())}
    if cooperating_groups:
        return Expected("contribution", frozenset(cooperating_groups))
    return Expected(None, frozenset())


def test_oracle_inputs_are_the_seed() -> None:
    """Guard the oracle itself: 76 tasks, every spelling known, every class of case present."""
    assert len(PLAN_LINKS) == 76
    assert set(SEED_SPELLINGS.values()) <= UNIT_NAMES
    kinds = {expected(u, c).kind for u in UNIT_NAMES for c in PLAN_LINKS}
    assert kinds == {"status", "contribution", None}
    # Both ways of owning a task through a group occur: 各人民团体 is responsible for 5.3.1.
    assert expected("团县委", "5.3.1") == Expected("status", frozenset({"各人民团体"}))
    assert expected(TOWNSHIP, "2.1.1") == Expected("contribution", frozenset({TOWNSHIPS_GROUP}))


# --- The sweep ------------------------------------------------------------------------------


@pytest.fixture
def township(db: Session) -> Unit:
    unit = Unit(name=TOWNSHIP, kind=UnitKind.government_department, jurisdiction_id=xiji_id(db))
    db.add(unit)
    db.flush()
    group = db.exec(select(Unit).where(Unit.name == TOWNSHIPS_GROUP)).one()
    assert unit.id is not None and group.id is not None
    db.add(GroupMember(group_id=group.id, member_id=unit.id))
    db.flush()
    return unit


def _tasks(db: Session) -> list[Task]:
    plan = db.exec(select(Plan).where(Plan.slug == SEED_SLUG)).one()
    return list(db.exec(select(Task).where(Task.plan_id == plan.id).order_by(col(Task.position))))


def _principal(db: Session, unit: Unit | None, *, admin: bool = False) -> Principal:
    key, _ = create_key(session=db, name=unit.name if unit else "依法治县办", unit=unit, is_admin=admin)
    return Principal(key=key, unit=unit)


def test_every_unit_on_every_task(db: Session, township: Unit) -> None:
    units = list(db.exec(select(Unit).order_by(col(Unit.id))))
    names = {u.id: u.name for u in units}
    # The sweep covers exactly the county's units: no unit in the DB the oracle does not know.
    assert set(names.values()) == UNIT_NAMES
    tasks = _tasks(db)
    assert sorted(t.code for t in tasks) == sorted(PLAN_LINKS)

    mismatches: list[str] = []
    checked = 0
    for unit in units:
        principal = _principal(db, unit)
        for task in tasks:
            want = expected(unit.name, task.code)
            checked += 1
            try:
                got = check_permission(session=db, task=task, principal=principal)
            except NotLinkedToTask as exc:
                if want.kind is not None:
                    mismatches.append(f"{unit.name} × {task.code}: 403, expected {want.kind}")
                elif unit.name not in exc.detail or task.code not in exc.detail:
                    mismatches.append(f"{unit.name} × {task.code}: 403 detail does not name both: {exc.detail}")
                continue
            if got.kind != want.kind:
                mismatches.append(f"{unit.name} × {task.code}: {got.kind}, expected {want.kind}")
            elif names.get(got.via_unit_id) not in want.via:
                mismatches.append(
                    f"{unit.name} × {task.code}: granted via {names.get(got.via_unit_id)}, expected one of {set(want.via)}"
                )
            elif (got.role in (Role.lead, Role.responsible)) != (want.kind == "status"):
                mismatches.append(f"{unit.name} × {task.code}: role {got.role} for a {want.kind} grant")
    assert checked == len(UNIT_NAMES) * 76
    assert not mismatches, f"{len(mismatches)} of {checked} pairs disagree with the plan:\n" + "\n".join(mismatches)


def test_pure_rule_agrees_with_service_on_a_sample(db: Session, township: Unit) -> None:
    """`permission()` on plain data gives what `check_permission` gives, for a spread of pairs."""
    tasks = {t.code: t for t in _tasks(db)}
    units = {u.name: u for u in db.exec(select(Unit))}
    ids = {name: u.id for name, u in units.items()}
    sample = [
        ("县委宣传部", "2.1.1"),
        ("县司法局", "2.1.1"),
        (TOWNSHIP, "2.1.1"),
        ("团县委", "5.3.1"),
        ("县司法局", "5.3.1"),
        ("县法院", "5.5.2"),
        ("县司法局", "4.4.2"),
        (TOWNSHIP, "2.1.3"),
        ("各乡镇", "2.1.1"),
    ]
    for name, code in sample:
        unit_id = ids[name]
        links = [(ids[canonical], Role(role.value)) for canonical, roles in PLAN_LINKS[code].items() for role in roles]
        groups = {ids[g] for g in GROUPS_OF[name]}
        pure = permission(links=links, unit_id=unit_id, groups=groups, is_admin=False)
        try:
            service = check_permission(session=db, task=tasks[code], principal=_principal(db, units[name]))
        except NotLinkedToTask:
            service = None
        assert pure == service, (name, code)
        assert (pure.kind if pure else None) == expected(name, code).kind, (name, code)


def test_admin_key_corrects_every_task(db: Session) -> None:
    admin = _principal(db, None, admin=True)
    for task in _tasks(db):
        granted = check_permission(session=db, task=task, principal=admin)
        assert granted.kind == ReportKind.correction, task.code
        assert granted.via_unit_id is None


def test_unitless_non_admin_key_is_refused(db: Session) -> None:
    """A key with neither a unit nor admin rights (only reachable by a bad row) may report on nothing:
    it belongs to no jurisdiction, so the boundary refuses it before the link rule is asked.
    (`create_key` refuses to issue one, so the row is written directly.)"""
    row = ApiKey(prefix="deadbeef", secret_hash="0" * 64, name="nobody", unit_id=None, is_admin=False)
    db.add(row)
    db.flush()
    nobody = Principal(key=row, unit=None)
    for task in _tasks(db)[:5]:
        with pytest.raises(OutsideJurisdiction):
            check_permission(session=db, task=task, principal=nobody)


# --- Through HTTP: one unit of each class ------------------------------------------------------


def _count(db: Session, model: type) -> int:
    return db.exec(select(func.count()).select_from(model)).one()


# (unit, task, class, expected kind, expected via)
HTTP_CASES = [
    ("县委宣传部", "2.1.1", "direct lead", "status", "县委宣传部"),
    ("县教育体育局", "2.1.3", "direct responsible", "status", "县教育体育局"),
    ("团县委", "5.3.1", "group-responsible member", "status", "各人民团体"),
    ("县工商联", "5.3.1", "group-responsible member", "status", "各人民团体"),
    ("县法院", "5.5.2", "direct cooperating", "contribution", "县法院"),
    ("县司法局", "2.1.1", "group-cooperating member", "contribution", "各部门(单位)"),
    (TOWNSHIP, "2.1.1", "group-cooperating member", "contribution", "各乡镇"),
    ("县司法局", "5.3.1", "unrelated", None, None),
    (TOWNSHIP, "2.1.3", "unrelated", None, None),
    ("县委宣传部", "4.4.2", "unrelated", None, None),
]


@pytest.mark.parametrize(
    ("unit", "code", "what", "kind", "via"), HTTP_CASES, ids=[f"{u}-{c}-{w}" for u, c, w, _, _ in HTTP_CASES]
)
def test_report_through_http(
    client: TestClient,
    db: Session,
    township: Unit,
    unit: str,
    code: str,
    what: str,
    kind: str | None,
    via: str | None,
) -> None:
    assert expected(unit, code).kind == kind, "the case table disagrees with the oracle"
    headers = {"Authorization": make_key(db, unit=unit)}
    before = (_count(db, ProgressReport), _count(db, ChangeEvent))
    response = client.post(f"{PLAN_URL}/tasks/{code}/progress", json=REPORT, headers=headers)
    if kind is None:
        assert response.status_code == 403, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        problem = response.json()
        assert problem["code"] == "not-linked-to-task" and problem["status"] == 403
        assert unit in problem["detail"] and code in problem["detail"], problem["detail"]
        # Refused means nothing written: no report, no event.
        assert (_count(db, ProgressReport), _count(db, ChangeEvent)) == before
        history = client.get(f"{PLAN_URL}/tasks/{code}/progress", params={"unit": unit}).json()
        assert history["items"] == []
        return
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["kind"] == kind and body["task"] == code
    assert body["unit"]["name"] == unit and body["via"]["name"] == via
    assert _count(db, ProgressReport) == before[0] + 1
    stored = db.get(ProgressReport, body["id"])
    assert stored is not None and stored.kind == kind
    task = client.get(f"{PLAN_URL}/tasks/{code}").json()
    # A status report moves the task; a contribution leaves it where it was.
    assert task["status"] == ("in_progress" if kind == "status" else "not_started"), task


def test_admin_report_is_a_correction_through_http(client: TestClient, db: Session) -> None:
    headers = {"Authorization": make_key(db, admin=True)}
    response = client.post(f"{PLAN_URL}/tasks/5.3.1/progress", json=REPORT, headers=headers)
    assert response.status_code == 201, response.text
    assert response.json()["kind"] == "correction" and response.json()["unit"] is None
