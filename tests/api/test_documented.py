"""Answers match the OpenAPI document they are served with (issue #10's contract drift), checked with a
JSON Schema validator against /openapi.json itself, on both engines; and the public change feed keeps
key metadata to admins."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from jsonschema_rs import Draft202012Validator
from sqlmodel import Session

from tests.factories import make_key

PLAN = "/api/v1/plans/xiji-fzsh-2021-2025"
REPORT = {"status": "in_progress", "percent": 60, "summary": "开展宪法进校园活动 42 场", "period": "2022-H2"}


def pointer(*parts: str) -> str:
    return "#/" + "/".join(quote(p.replace("~", "~0").replace("/", "~1"), safe="~") for p in parts)


def documented(spec: dict[str, Any], path: str, method: str, status: str, media: str) -> Draft202012Validator:
    """A validator of the schema /openapi.json documents for that answer (refs resolved in the document)."""
    ref = pointer("paths", path, method, "responses", status, "content", media, "schema")
    return Draft202012Validator({**spec, "$ref": ref})


def test_fields_answers_validate_against_the_documented_schema(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    page = client.get(f"{PLAN}/tasks", params={"fields": "code,title", "limit": 3}).json()
    assert page["items"] and set(page["items"][0]) == {"code", "title"}
    documented(spec, "/api/v1/plans/{plan}/tasks", "get", "200", "application/json").validate(page)
    # The drift this replaces: the partial items are not TaskOut, and a client built on TaskOut alone crashed.
    whole_only = Draft202012Validator({**spec, "$ref": "#/components/schemas/Page_TaskOut_"})
    assert not whole_only.is_valid(page)
    unit_page = client.get("/api/v1/units/县司法局/tasks", params={"fields": "code,status"}).json()
    documented(spec, "/api/v1/units/{unit_id}/tasks", "get", "200", "application/json").validate(unit_page)
    full = client.get(f"{PLAN}/tasks", params={"limit": 2}).json()
    whole_only.validate(full)


def test_an_atomic_batchs_422_is_the_documented_problem(client: TestClient, db: Session) -> None:
    key = make_key(db, unit="司法局")
    items = [{"task": "2.3.3", **REPORT}, {"task": "9.9.9", **REPORT}]
    response = client.post(f"{PLAN}/progress:batch?atomic=true", json={"items": items}, headers={"Authorization": key})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "batch-rejected" and body["status"] == 422 and body["type"] == "/problems/batch-rejected"
    assert [r["outcome"] for r in body["results"]] == ["rolled_back", "error"]
    spec = client.get("/openapi.json").json()
    documented(spec, "/api/v1/plans/{plan}/progress:batch", "post", "422", "application/problem+json").validate(body)


def test_every_operation_lists_the_statuses_it_can_answer(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    for path, operations in spec["paths"].items():
        if not path.startswith("/api/"):
            continue
        for method, op in operations.items():
            codes = set(op["responses"])
            assert {"401", "429", "503"} <= codes, (method, path, codes)
            if method in ("post", "put", "delete"):
                assert {"409", "413"} <= codes, (method, path, codes)
            for code, response in op["responses"].items():
                if code[0] in "45":
                    assert list(response["content"]) == ["application/problem+json"], (method, path, code)
    admin = spec["paths"]["/api/v1/admin/units"]["post"]["responses"]
    assert "409" in admin and "409" in spec["paths"]["/api/v1/admin/units/{unit_id}/aliases"]["post"]["responses"]
    assert "412" in spec["paths"]["/api/v1/plans/{plan}/tasks/{code}/progress"]["post"]["responses"]
    # Reads are open unless REQUIRE_KEY_FOR_READS: the key is optional there, required on writes.
    assert {} in spec["paths"]["/api/v1/plans"]["get"]["security"]
    assert {} not in spec["paths"]["/api/v1/admin/keys"]["post"]["security"]


def test_created_resources_link_to_what_comes_next(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    operation_ids = {op["operationId"] for ops in spec["paths"].values() for op in ops.values()}
    links = spec["paths"]["/api/v1/plans/{plan}/tasks/{code}/progress"]["post"]["responses"]["201"]["links"]
    assert links["GetReport"] == {"operationId": "get_report", "parameters": {"report_id": "$response.body#/id"}}
    for ops in spec["paths"].values():
        for op in ops.values():
            for response in op["responses"].values():
                for link in response.get("links", {}).values():
                    assert link["operationId"] in operation_ids


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("OPTIONS", "/api/v1/admin/keys", {"GET", "HEAD", "POST"}),
        ("PUT", f"{PLAN}/tasks", {"GET", "HEAD"}),
        ("DELETE", f"{PLAN}/schedule", {"GET", "HEAD", "PUT"}),
    ],
)
def test_405_lists_every_method_the_path_serves(client: TestClient, method: str, path: str, allowed: set[str]) -> None:
    response = client.request(method, path)
    assert response.status_code == 405
    assert response.headers["content-type"] == "application/problem+json"
    assert {m.strip() for m in response.headers["allow"].split(",")} == allowed


def test_the_public_change_feed_shows_no_key_prefixes_or_admin_names(client: TestClient, db: Session) -> None:
    admin = make_key(db, admin=True)
    created = client.post(
        "/api/v1/admin/keys", json={"admin": True, "name": "县委政法委值班"}, headers={"Authorization": admin}
    ).json()
    unit_key = client.post("/api/v1/admin/keys", json={"unit": "司法局"}, headers={"Authorization": admin}).json()
    secret_bits = [created["prefix"], unit_key["prefix"], admin.split("_")[1], "县委政法委值班", "依法治县办"]

    public = client.get("/api/v1/changes", params={"since": 0, "limit": 1000})
    assert public.status_code == 200
    events = [e for e in public.json()["items"] if e["type"].startswith("key.")]
    assert len(events) == 2
    for bit in secret_bits:
        assert bit not in public.text, bit
    assert {e["actor"] for e in events} == {"管理员 / admin"}

    as_admin = client.get("/api/v1/changes", params={"since": 0, "limit": 1000}, headers={"Authorization": admin})
    for bit in (created["prefix"], unit_key["prefix"], "县委政法委值班"):
        assert bit in as_admin.text, bit
    as_unit = client.get(
        "/api/v1/changes", params={"since": 0, "limit": 1000}, headers={"Authorization": unit_key["key"]}
    )
    assert created["prefix"] not in as_unit.text


def test_every_problem_code_is_documented(client: TestClient) -> None:
    import re
    from pathlib import Path

    from app.errors import PROBLEM_CODES, ProblemError

    def subclasses(cls: type) -> list[type]:
        return [c for sub in cls.__subclasses__() for c in (sub, *subclasses(sub))]

    raised = {cls.code for cls in (ProblemError, *subclasses(ProblemError))}
    literal = re.compile(r'code="([a-z-]+)"|"code": "([a-z-]+)"|^\s+\("([a-z]+-[a-z-]+)",', re.M)
    rendered = {m for path in Path("app").rglob("*.py") for hit in literal.findall(path.read_text()) for m in hit if m}
    assert raised | rendered <= set(PROBLEM_CODES), (raised | rendered) - set(PROBLEM_CODES)
    described = client.get("/openapi.json").json()["components"]["schemas"]["Problem"]["properties"]["code"]
    for code in PROBLEM_CODES:
        assert f"`{code}`" in described["description"], code


def test_public_report_and_excusal_reads_show_no_key_prefixes(client: TestClient, db: Session) -> None:
    unit_key, admin = make_key(db, unit="司法局"), make_key(db, admin=True)
    unit_prefix, admin_prefix = unit_key.split("_")[1], admin.split("_")[1]
    report = client.post(f"{PLAN}/tasks/2.3.3/progress", json=REPORT, headers={"Authorization": unit_key}).json()
    excusal = {"task": "2.3.3", "unit": "司法局", "period": "2023-Q4", "reason": "机构改革"}
    assert client.post(f"{PLAN}/excusals", json=excusal, headers={"Authorization": admin}).status_code == 201
    public = [
        client.get(f"/api/v1/progress/{report['id']}"),
        client.get(f"{PLAN}/tasks/2.3.3/progress"),
        client.get("/api/v1/units/县司法局/progress"),
        client.get(f"{PLAN}/excusals"),
    ]
    for response in public:
        assert response.status_code == 200, response.text
        for bit in (unit_prefix, admin_prefix, "依法治县办"):
            assert bit not in response.text, (bit, response.request.url)
    assert public[0].json()["submitted_by"] == "县司法局"
    assert public[3].json()["items"][0]["excused_by"] == "管理员 / admin"
    as_admin = {"Authorization": admin}
    assert unit_prefix in client.get(f"/api/v1/progress/{report['id']}", headers=as_admin).json()["submitted_by"]
    assert admin_prefix in client.get(f"{PLAN}/excusals", headers=as_admin).json()["items"][0]["excused_by"]
    # The submitter's own answer (201, and its replays) still names its key.
    assert unit_prefix in report["submitted_by"]
