"""Two counties on one platform, through the real app: 西吉县 (the seed, 640422) and 渠县 (511725,
the seed text under 渠县's header). Same unit names, different units; keys and admins that never
cross; filters by jurisdiction; a platform admin who sees both."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from app.core.clock import county_today
from app.models import Plan, Task, Unit
from tests.factories import QU, QU_SLUG, SEED_SLUG, XIJI, make_key

REPORT = {"status": "in_progress", "percent": 40, "summary": "已部署。", "period": "2023-H1"}


def report(client: TestClient, slug: str, code: str, key: str) -> Any:
    return client.post(f"/api/v1/plans/{slug}/tasks/{code}/progress", json=REPORT, headers={"Authorization": key})


def plan_tasks(db: Session, slug: str) -> set[str]:
    return set(db.exec(select(Task.code).join(Plan).where(Plan.slug == slug)))


def test_same_names_are_different_units(client: TestClient, two_counties: Session) -> None:
    db = two_counties
    sfj = db.exec(select(Unit).where(Unit.name == "县司法局").order_by(col(Unit.id))).all()
    assert [u.jurisdiction.code for u in sfj] == [XIJI, QU]

    ambiguous = client.get("/api/v1/units/县司法局/tasks")
    assert ambiguous.status_code == 400, ambiguous.text
    body = ambiguous.json()
    assert body["code"] == "ambiguous-unit" and ambiguous.headers["content-type"].startswith("application/problem+json")
    assert {(c["id"], c["jurisdiction"]["code"]) for c in body["candidates"]} == {
        (u.id, u.jurisdiction.code) for u in sfj
    }
    assert "西吉县" in body["detail"] and "渠县" in body["detail"]

    xiji_tasks = client.get("/api/v1/units/县司法局/tasks", params={"jurisdiction": XIJI, "limit": 500}).json()["items"]
    assert xiji_tasks and {t["plan"] for t in xiji_tasks} == {SEED_SLUG}
    qu_tasks = client.get("/api/v1/units/渠县:司法局/tasks", params={"limit": 500}).json()["items"]
    assert {t["plan"] for t in qu_tasks} == {QU_SLUG}
    # The same text, so each county's 县司法局 has the same codes, in its own plan only.
    assert sorted(t["code"] for t in qu_tasks) == sorted(t["code"] for t in xiji_tasks)
    by_name = client.get("/api/v1/units/县司法局", params={"jurisdiction": "渠县"}).json()
    assert by_name["jurisdiction"] == {"code": QU, "name": "渠县"} and by_name["id"] == sfj[1].id
    assert client.get(f"/api/v1/units/{sfj[0].id}").json()["jurisdiction"]["code"] == XIJI  # ids stay unambiguous

    # In a plan's own list the plan is the context: 司法局 on 西吉县's plan is 西吉县's (no guess involved).
    listed = client.get(f"/api/v1/plans/{SEED_SLUG}/tasks", params={"unit": "司法局", "limit": 500})
    assert listed.status_code == 200 and len(listed.json()["items"]) == len(xiji_tasks)
    assert {t["matched_via"]["unit"]["jurisdiction"]["code"] for t in listed.json()["items"]} == {XIJI}
    other = client.get(f"/api/v1/plans/{SEED_SLUG}/tasks", params={"unit": f"{QU}:司法局"})
    assert other.status_code == 200 and other.json()["items"] == []  # 渠县's unit has no task in 西吉县's plan
    scoped = client.get(f"/api/v1/plans/{QU_SLUG}/tasks", params={"unit": "司法局", "jurisdiction": QU, "limit": 500})
    assert scoped.status_code == 200 and len(scoped.json()["items"]) == len(qu_tasks)
    for link in scoped.json()["items"][0]["responsibilities"]:
        assert link["unit"]["jurisdiction"]["code"] == QU  # 渠县's plan links only 渠县's units


def test_unit_keys_never_cross(client: TestClient, two_counties: Session) -> None:
    xiji = make_key(two_counties, unit=f"{XIJI}:县司法局")
    qu = make_key(two_counties, unit=f"{QU}:县司法局")
    for key, own, other, own_name, other_name in (
        (xiji, SEED_SLUG, QU_SLUG, "西吉县", "渠县"),
        (qu, QU_SLUG, SEED_SLUG, "渠县", "西吉县"),
    ):
        refused = report(client, other, "2.3.3", key)
        assert refused.status_code == 403, refused.text
        problem = refused.json()
        assert problem["code"] == "outside-jurisdiction"
        assert own_name in problem["detail"] and other_name in problem["detail"]
        assert problem["boundary"]["target_jurisdiction"] == other_name
        assert report(client, own, "2.3.3", key).status_code == 201
    batch = client.post(
        f"/api/v1/plans/{QU_SLUG}/progress:batch",
        json={"items": [{"task": "2.3.3", **REPORT}]},
        headers={"Authorization": xiji},
    )
    assert batch.json()["results"][0]["problem"]["code"] == "outside-jurisdiction"


def test_county_admins_manage_only_their_own(client: TestClient, two_counties: Session) -> None:
    db = two_counties
    xiji_admin = {"Authorization": make_key(db, admin=True, jurisdiction=XIJI)}
    qu_admin = {"Authorization": make_key(db, admin=True, jurisdiction=QU)}
    platform = {"Authorization": make_key(db, admin=True, jurisdiction=None)}

    # A unit named without a qualifier means the admin's own.
    made = client.post("/api/v1/admin/keys", json={"unit": "司法局"}, headers=qu_admin)
    assert made.status_code == 201 and made.json()["unit"]["jurisdiction"]["code"] == QU
    made = client.post("/api/v1/admin/keys", json={"unit": "司法局"}, headers=xiji_admin)
    assert made.status_code == 201 and made.json()["unit"]["jurisdiction"]["code"] == XIJI
    xiji_prefix = made.json()["prefix"]

    def key_places(headers: dict[str, str]) -> set[str | None]:
        items = client.get("/api/v1/admin/keys", headers=headers).json()["items"]
        return {k["jurisdiction"]["code"] if k["jurisdiction"] else None for k in items}

    assert key_places(xiji_admin) == {XIJI}
    assert key_places(qu_admin) == {QU}
    assert key_places(platform) == {XIJI, QU, None}

    crossing = [
        client.post("/api/v1/admin/keys", json={"unit": f"{XIJI}:司法局"}, headers=qu_admin),
        client.post("/api/v1/admin/keys", json={"admin": True, "name": "x", "jurisdiction": XIJI}, headers=qu_admin),
        client.delete(f"/api/v1/admin/keys/{xiji_prefix}", headers=qu_admin),
        client.post(f"/api/v1/admin/units/{XIJI}:县司法局/aliases", json={"alias": "西吉司法"}, headers=qu_admin),
        client.post(
            "/api/v1/admin/units", json={"name": "某镇", "kind": "other", "jurisdiction": XIJI}, headers=qu_admin
        ),
        client.get("/api/v1/admin/audit", params={"jurisdiction": XIJI}, headers=qu_admin),
    ]
    for response in crossing:
        assert response.status_code == 403, response.text
        assert response.json()["code"] == "outside-jurisdiction" and "渠县" in response.json()["detail"]
    # An admin key a county admin issues is that county's, never platform-wide; the platform's may revoke anything.
    issued = client.post("/api/v1/admin/keys", json={"admin": True, "name": "渠县依法治县办2"}, headers=qu_admin)
    assert issued.status_code == 201 and issued.json()["jurisdiction"] == {"code": QU, "name": "渠县"}
    assert client.delete(f"/api/v1/admin/keys/{xiji_prefix}", headers=platform).status_code == 200

    added = client.post("/api/v1/admin/units", json={"name": "某镇", "kind": "other"}, headers=qu_admin)
    assert added.status_code == 201 and added.json()["jurisdiction"]["code"] == QU

    qu_audit = client.get("/api/v1/admin/audit", params={"limit": 1000}, headers=qu_admin).json()["items"]
    assert qu_audit and all(e["plan"] in (None, QU_SLUG) for e in qu_audit)
    assert all((e["unit"] or {"jurisdiction": {"code": QU}})["jurisdiction"]["code"] == QU for e in qu_audit)
    xiji_audit = client.get("/api/v1/admin/audit", params={"limit": 1000}, headers=xiji_admin).json()["items"]
    assert xiji_audit and all(e["plan"] in (None, SEED_SLUG) for e in xiji_audit)
    everything = client.get("/api/v1/admin/audit", params={"limit": 1000}, headers=platform).json()["items"]
    assert {e["plan"] for e in everything} >= {SEED_SLUG, QU_SLUG}
    seqs = {e["seq"] for e in everything}
    assert seqs == {e["seq"] for e in qu_audit} | {e["seq"] for e in xiji_audit}  # the platform sees both
    assert not {e["seq"] for e in qu_audit} & {e["seq"] for e in xiji_audit}


def test_lists_and_feed_filter_by_jurisdiction(client: TestClient, two_counties: Session) -> None:
    def slugs(**params: str) -> list[str]:
        response = client.get("/api/v1/plans", params=params)
        assert response.status_code == 200, response.text
        return [p["slug"] for p in response.json()["items"]]

    assert sorted(slugs()) == sorted([SEED_SLUG, QU_SLUG])
    assert slugs(jurisdiction=QU) == [QU_SLUG]
    assert slugs(jurisdiction="固原市") == [SEED_SLUG]  # a prefecture covers its counties
    assert slugs(jurisdiction="四川省") == [QU_SLUG]
    assert slugs(jurisdiction="640423") == []  # 隆德县: a real county this platform holds nothing of
    bad = client.get("/api/v1/plans", params={"jurisdiction": "火星县"})
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "query.jurisdiction"
    assert client.get("/api/v1/plans", params={"jurisdicton": QU}).json()["code"] == "unknown-parameter"

    units = client.get("/api/v1/units", params={"jurisdiction": QU}).json()["items"]
    assert units and {u["jurisdiction"]["code"] for u in units} == {QU}
    everyone = client.get("/api/v1/units").json()["items"]
    assert len(everyone) == 2 * len(units)

    key = make_key(two_counties, unit=f"{QU}:县司法局")
    assert report(client, QU_SLUG, "2.3.3", key).status_code == 201
    feed = client.get("/api/v1/changes", params={"jurisdiction": QU, "limit": 1000}).json()["items"]
    assert {e["plan"] for e in feed} == {QU_SLUG} and "report.created" in {e["type"] for e in feed}
    xiji_feed = client.get("/api/v1/changes", params={"jurisdiction": XIJI, "limit": 1000}).json()["items"]
    assert xiji_feed and QU_SLUG not in {e["plan"] for e in xiji_feed}

    tasks = client.get("/api/v1/units/渠县:县司法局/tasks", params={"jurisdiction": XIJI})
    assert tasks.status_code == 200 and tasks.json()["items"] == []  # 渠县's unit has no task in 西吉县's plans


def test_tree_counts_plans_units_and_tasks_below_each_node(client: TestClient, two_counties: Session) -> None:
    db = two_counties
    tree = client.get("/api/v1/jurisdictions").json()["items"]
    by_code = {}

    def walk(nodes: list[dict[str, Any]]) -> None:
        for node in nodes:
            by_code[node["code"]] = node
            walk(node["children"])

    walk(tree)
    assert {n["code"] for n in tree} == {"640000", "510000"}
    assert by_code["640400"]["parent"] == "640000" and by_code[XIJI]["parent"] == "640400"
    assert by_code["511700"]["name"] == "达州市" and by_code[QU]["level"] == "county"
    xiji_tasks, qu_tasks = len(plan_tasks(db, SEED_SLUG)), len(plan_tasks(db, QU_SLUG))
    xiji_units = len(
        db.exec(
            select(Unit.id).where(
                Unit.jurisdiction_id == db.exec(select(Plan.jurisdiction_id).where(Plan.slug == SEED_SLUG)).one()
            )
        ).all()
    )
    assert by_code[XIJI]["counts"] == {"plans": 1, "units": xiji_units, "tasks": xiji_tasks}
    assert by_code["640000"]["counts"] == by_code[XIJI]["counts"]  # nothing stored at the upper levels
    assert by_code["510000"]["counts"]["tasks"] == qu_tasks
    one = client.get("/api/v1/jurisdictions/渠县").json()
    assert one["code"] == QU and one["counts"]["plans"] == 1
    assert client.get("/api/v1/jurisdictions/640423").status_code == 404  # national, but nothing here


def test_townships_are_added_under_the_admins_own_county(client: TestClient, two_counties: Session) -> None:
    xiji_admin = {"Authorization": make_key(two_counties, admin=True, jurisdiction=XIJI)}
    town = {"code": "640422100", "name": "吉强镇", "level": "township", "parent": XIJI}
    created = client.post("/api/v1/admin/jurisdictions", json=town, headers=xiji_admin)
    assert created.status_code == 201, created.text
    assert created.json()["parent"] == XIJI
    assert client.post("/api/v1/admin/jurisdictions", json=town, headers=xiji_admin).status_code == 409
    other = {"code": "511725100", "name": "渠江街道", "level": "township", "parent": QU}
    refused = client.post("/api/v1/admin/jurisdictions", json=other, headers=xiji_admin)
    assert refused.status_code == 403 and refused.json()["code"] == "outside-jurisdiction"
    wrong = {"code": "511725101", "name": "某镇", "level": "township", "parent": XIJI}
    assert client.post("/api/v1/admin/jurisdictions", json=wrong, headers=xiji_admin).status_code == 400
    # The township is inside 西吉县's subtree: its units are the county admin's to manage.
    unit = client.post(
        "/api/v1/admin/units",
        json={"name": "吉强镇政府", "kind": "other", "jurisdiction": "640422100"},
        headers=xiji_admin,
    )
    assert unit.status_code == 201 and unit.json()["jurisdiction"]["code"] == "640422100"
    assert any(c["code"] == "640422100" for c in client.get(f"/api/v1/jurisdictions/{XIJI}").json()["children"])
    # Townships are the natural members of the county's 各乡镇; their keys report on the county's plan
    # through it (the county is above the township), never on another county's.
    member = client.post("/api/v1/admin/units/各乡镇/members", json={"member": "吉强镇政府"}, headers=xiji_admin)
    assert member.status_code == 201, member.text
    town_key = make_key(two_counties, unit="吉强镇政府")
    contribution = report(client, SEED_SLUG, "2.1.1", town_key)  # 各乡镇 cooperates on 2.1.1
    assert contribution.status_code == 201 and contribution.json()["kind"] == "contribution"
    assert report(client, QU_SLUG, "2.1.1", town_key).json()["code"] == "outside-jurisdiction"


def test_stats_over_a_jurisdiction_agree_with_each_plans_stats(client: TestClient, two_counties: Session) -> None:
    key = make_key(two_counties, unit=f"{QU}:县司法局")
    assert report(client, QU_SLUG, "2.3.3", key).status_code == 201  # 渠县's plan now differs from 西吉县's
    for day in (county_today().isoformat(), "2024-01-01"):  # the county's today (not the host's), and a past day
        as_of = {"as_of": day}
        per_plan = {s: client.get(f"/api/v1/plans/{s}/stats", params=as_of).json() for s in (SEED_SLUG, QU_SLUG)}
        for code, slug in ((XIJI, SEED_SLUG), ("固原市", SEED_SLUG), ("四川省", QU_SLUG)):
            stats = client.get(f"/api/v1/jurisdictions/{code}/stats", params=as_of).json()
            expected = per_plan[slug]
            assert (stats["plans"], stats["tasks"], stats["overdue"]) == (1, expected["tasks"], expected["overdue"])
            assert stats["by_status"] == expected["by_status"] and stats["by_plan"][0]["plan"] == slug
        # The report exists today; on 2024-01-01 it did not, so both plans stood alike then.
        differ = per_plan[QU_SLUG]["by_status"] != per_plan[SEED_SLUG]["by_status"]
        assert differ == (day != "2024-01-01")
    both = client.get("/api/v1/jurisdictions/640000/stats", params=as_of).json()
    assert both["plans"] == 1  # 宁夏 holds only 西吉县's plan
    assert client.get("/api/v1/jurisdictions/火星县/stats").status_code == 404


def test_the_supervision_cycle_stays_within_each_county(client: TestClient, two_counties: Session) -> None:
    """Schedules, reviews and excusals are administered by the plan's own county (or the platform);
    duties and to-do lists resolve unit names in the plan's (or the named) jurisdiction."""
    db = two_counties
    xiji_admin = {"Authorization": make_key(db, admin=True, jurisdiction=XIJI)}
    qu_admin = {"Authorization": make_key(db, admin=True, jurisdiction=QU)}
    platform = {"Authorization": make_key(db, admin=True, jurisdiction=None)}
    schedule = {"cadence": "quarterly", "deadline_days": 10, "cooperating_units_report": False, "review_required": True}
    for admin, allowed, refused in ((xiji_admin, SEED_SLUG, QU_SLUG), (qu_admin, QU_SLUG, SEED_SLUG)):
        assert client.put(f"/api/v1/plans/{allowed}/schedule", json=schedule, headers=admin).status_code == 200
        crossing = client.put(f"/api/v1/plans/{refused}/schedule", json=schedule, headers=admin)
        assert crossing.status_code == 403 and crossing.json()["code"] == "outside-jurisdiction", crossing.text
    assert client.put(f"/api/v1/plans/{QU_SLUG}/schedule", json=schedule, headers=platform).status_code == 200

    qu_key = make_key(db, unit=f"{QU}:县司法局")
    sent = client.post(
        f"/api/v1/plans/{QU_SLUG}/tasks/2.3.3/progress",
        json={**REPORT, "period": "2023-Q4"},
        headers={"Authorization": qu_key},
    )
    assert sent.status_code == 201 and sent.json()["review"]["state"] == "pending", sent.text
    review = {"decision": "accept"}
    wrong = client.post(f"/api/v1/progress/{sent.json()['id']}/review", json=review, headers=xiji_admin)
    assert wrong.status_code == 403 and wrong.json()["code"] == "outside-jurisdiction"
    assert client.post(f"/api/v1/progress/{sent.json()['id']}/review", json=review, headers=qu_admin).status_code == 200

    excuse = {"task": "2.1.1", "unit": "宣传部", "period": "2023-Q4", "reason": "机构改革"}
    assert client.post(f"/api/v1/plans/{QU_SLUG}/excusals", json=excuse, headers=xiji_admin).status_code == 403
    excused = client.post(f"/api/v1/plans/{QU_SLUG}/excusals", json=excuse, headers=qu_admin)
    assert excused.status_code == 201, excused.text  # 宣传部 on 渠县's plan is 渠县's, no ambiguity
    assert excused.json()["unit"]["jurisdiction"]["code"] == QU

    # Duties: `unit=` is read in the plan's context; a bare name across counties must be qualified.
    duties = client.get(f"/api/v1/plans/{QU_SLUG}/duties", params={"unit": "司法局", "period": "2023-Q4"})
    assert duties.status_code == 200, duties.text
    states = {(d["task"], d["state"]) for d in duties.json()["items"]}
    assert ("2.3.3", "late") in states and {d["unit"]["jurisdiction"]["code"] for d in duties.json()["items"]} == {QU}
    assert client.get("/api/v1/units/县司法局/duties").json()["code"] == "ambiguous-unit"
    todo = client.get("/api/v1/units/县司法局/duties", params={"jurisdiction": QU, "period": "2023-Q4"}).json()
    assert todo["items"] and {d["plan"] for d in todo["items"]} == {QU_SLUG}
    assert "2.3.3" not in {d["task"] for d in todo["items"]}  # reported and accepted: no longer owed
