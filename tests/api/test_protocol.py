"""HEAD, security headers and forwarded addresses, on every kind of response."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.conftest import fresh_database_url
from tests.factories import run_plan_api, start_server

PLAN = "/api/v1/plans/xiji-fzsh-2021-2025"


@pytest.mark.parametrize("url", [PLAN, f"{PLAN}/tasks?limit=3", f"{PLAN}/tasks?format=csv", "/api/v1/units/县司法局"])
def test_head_answers_as_get_without_a_body(client: TestClient, url: str) -> None:
    get = client.get(url)
    head = client.head(url)
    assert head.status_code == get.status_code == 200
    assert head.content == b""
    for name in ("etag", "content-type", "content-length"):
        assert head.headers[name] == get.headers[name]
    assert client.head(url, headers={"If-None-Match": get.headers["etag"]}).status_code == 304


def test_data_responses_carry_security_headers(client: TestClient) -> None:
    for response in (client.get(f"{PLAN}/tasks?limit=1"), client.get(f"{PLAN}/tasks?bogus=1")):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    docs = client.get("/docs")
    assert docs.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in docs.headers  # the docs page runs its own scripts


@pytest.fixture
def database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    yield from fresh_database_url(backend, tmp_path)


def test_a_forged_forwarded_address_is_not_recorded(database_url: str, tmp_path: Path) -> None:
    server = start_server(database_url, tmp_path / "server")
    try:
        admin = run_plan_api(
            "keys", "create", "--admin", "--name", "依法治县办", database_url=database_url, cwd=tmp_path
        )
        assert admin.returncode == 0, admin.stderr
        auth = {"Authorization": f"Bearer {admin.stdout.strip().splitlines()[-1]}"}
        with httpx.Client(base_url=server.base_url, trust_env=False, timeout=30) as http:
            created = http.post(
                "/api/v1/plans/xiji-fzsh-2021-2025/tasks/2.3.3/progress",
                headers={**auth, "X-Forwarded-For": "6.6.6.6"},
                json={"status": "in_progress", "percent": 10, "summary": "核查", "period": "2023-Q4"},
            )
            assert created.status_code == 201, created.text
            audit = http.get("/api/v1/admin/audit", headers=auth).json()["items"]
        addresses = {entry["remote_addr"] for entry in audit if entry["type"] == "report.created"}
        assert addresses == {"127.0.0.1"}
    finally:
        server.stop()


def test_an_overlong_query_string_is_a_414_problem(client: TestClient) -> None:
    response = client.get("/api/v1/plans/xiji-fzsh-2021-2025/tasks", params={"q": "法" * 4000})  # 36 KB encoded
    assert response.status_code == 414, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "uri-too-long"
    assert client.get("/api/v1/plans/xiji-fzsh-2021-2025/tasks", params={"q": "民法典"}).status_code == 200


def test_oversized_headers_are_a_431_problem(client: TestClient) -> None:
    response = client.get("/api/v1/plans", headers={"X-Padding": "x" * 20_000})
    assert response.status_code == 431, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "headers-too-large"
