"""What an integrator reading /docs relies on: every operation summarised, every parameter described,
errors documented as problem+json, and reads closed when the county asks for it."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlmodel import Session

from app.api.deps import current_settings
from app.core.config import Settings
from app.main import create_app
from tests.factories import make_key


def test_every_operation_and_parameter_is_documented() -> None:
    spec = create_app().openapi()
    operations = [(path, op) for path, ops in spec["paths"].items() for op in ops.values()]
    assert len(operations) >= 20
    for path, op in operations:
        assert op["summary"] and not op["summary"].istitle(), path  # from the docstring, not the name
        assert op.get("tags"), path
        for param in op.get("parameters", []):
            assert param.get("description"), (path, param["name"])
        for code, response in op["responses"].items():
            if code.startswith("4"):
                assert list(response["content"]) == ["application/problem+json"], (path, code)
    tasks = spec["paths"]["/api/v1/plans/{plan}/tasks"]["get"]
    unit = next(p for p in tasks["parameters"] if p["name"] == "unit")
    assert "县司法局" in str(unit)  # examples come from the real plan


def test_reads_can_require_a_key(db: Session) -> None:
    app = create_app()
    from app.db import get_session, get_write_session

    app.dependency_overrides[get_session] = lambda: db
    app.dependency_overrides[get_write_session] = lambda: db
    app.dependency_overrides[current_settings] = lambda: Settings(require_key_for_reads=True)
    client = TestClient(app)
    response = client.get("/api/v1/plans")
    assert response.status_code == 401 and response.json()["code"] == "unauthenticated"
    key = make_key(db, unit="司法局")
    assert client.get("/api/v1/plans", headers={"Authorization": key}).status_code == 200
    assert client.get("/healthz").status_code == 200  # probes stay open


def test_cors_is_off_by_default_and_configurable(db: Session) -> None:
    from app.db import get_session

    origin = "http://dubanxitong.xiji.gov.cn"
    closed = create_app()
    closed.dependency_overrides[get_session] = lambda: db
    assert (
        "access-control-allow-origin" not in TestClient(closed).get("/api/v1/plans", headers={"Origin": origin}).headers
    )
    opened = create_app(Settings(cors_origins=[origin]))
    opened.dependency_overrides[get_session] = lambda: db
    client = TestClient(opened)
    response = client.get("/api/v1/plans", headers={"Origin": origin})
    assert response.headers["access-control-allow-origin"] == origin
    assert "ETag" in response.headers["access-control-expose-headers"]
    preflight = client.options(
        "/api/v1/plans/xiji-fzsh-2021-2025/progress:batch",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Authorization",
        },
    )
    assert preflight.status_code == 200


def test_the_contract_generates_clean_clients() -> None:
    """What client generators name things after: ASCII title and tags, readable unique operation ids,
    and a bearer scheme instead of an `authorization` parameter on every call."""
    spec = create_app().openapi()
    assert spec["info"]["title"].isascii()
    declared = {tag["name"] for tag in spec["tags"]}
    assert all(name.isascii() and name.isidentifier() for name in declared)
    operations = [op for ops in spec["paths"].values() for op in ops.values()]
    ids = [op["operationId"] for op in operations]
    assert len(ids) == len(set(ids))
    assert all(i.isascii() and i.isidentifier() and "api_v1" not in i for i in ids), ids
    assert {"list_tasks", "get_task", "submit_progress", "submit_batch"} <= set(ids)
    assert {tag for op in operations for tag in op["tags"]} <= declared
    assert spec["components"]["securitySchemes"]["apiKey"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "pa_<prefix>_<secret>",
        "description": "单位密钥或依法治县办管理密钥,由依法治县办签发 / a unit's or the admin office's API key",
    }
    submit = spec["paths"]["/api/v1/plans/{plan}/tasks/{code}/progress"]["post"]
    assert submit["security"] == [{"apiKey": []}]
    assert "authorization" not in {p["name"].lower() for op in operations for p in op.get("parameters", [])}


def test_batches_are_typed_and_every_list_has_the_list_contract() -> None:
    """Generated clients get typed batch items and results (not bare dicts), one class per schema name,
    multi-value `role=`, and `limit`, `cursor`, `count` on every list."""
    spec = create_app().openapi()
    schemas = spec["components"]["schemas"]
    assert not [name for name in schemas if "__" in name]  # two classes of one name: a generator drops one
    batch = schemas["BatchIn"]["properties"]["items"]
    assert batch["items"] == {"$ref": "#/components/schemas/BatchItem"}
    item = schemas["BatchItem"]
    assert {"task", "status", "percent", "summary", "period"} <= set(item["required"])
    assert "idempotency_key" in item["properties"]
    result = schemas["BatchResult"]["properties"]
    assert set(result["outcome"]["enum"]) == {
        "created", "replayed", "would_create", "would_replay", "error", "rolled_back"
    }  # fmt: skip
    assert {"$ref": "#/components/schemas/Problem"} in result["problem"]["anyOf"]
    assert schemas["ReviewBatchIn"]["properties"]["items"]["items"] == {"$ref": "#/components/schemas/ReviewItem"}
    batch_op = spec["paths"]["/api/v1/plans/{plan}/progress:batch"]["post"]
    assert "dry_run" in {p["name"] for p in batch_op["parameters"]}
    for path in ("/api/v1/plans/{plan}/tasks", "/api/v1/units/{unit_id}/tasks"):
        role = next(p for p in spec["paths"][path]["get"]["parameters"] if p["name"] == "role")
        assert role["schema"]["anyOf"][0]["type"] == "array" and "lead,responsible" in role["description"]
    lists = [
        (path, ops["get"])
        for path, ops in spec["paths"].items()
        if "get" in ops and ("Page_" in str(ops["get"]["responses"]["200"]) or path.endswith("/compliance"))
    ]
    assert len(lists) >= 12
    for path, op in lists:
        names = {p["name"] for p in op.get("parameters", [])}
        if path.endswith(("/changes", "/audit", "/deliveries")):
            continue  # a feed or log: resumes with since=
        assert {"limit", "cursor", "count"} <= names, path
