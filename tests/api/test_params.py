"""Crafted parameters are 4xx problems, never 500s, on both engines (found by fuzzing, issue #10)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

PLAN = "/api/v1/plans/xiji-fzsh-2021-2025"


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/changes?since=%C2%B2",  # '²' passes str.isdigit()
        "/api/v1/changes?since=99999999999999999999",
        f"{PLAN}/tasks/2.3.3/progress?cursor=%D9%A3",  # Arabic-Indic 3
        f"{PLAN}/tasks/2.3.3/progress?cursor=99999999999999999999",
        "/api/v1/changes?since=2147483648",  # past PostgreSQL's integer column: was a 500 there
        "/api/v1/units/县司法局/progress?cursor=2147483648",  # found by tests/test_contract.py
    ],
)
def test_non_ascii_or_huge_counters_are_400(client: TestClient, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["field"] in {"query.since", "query.cursor"}


@pytest.mark.parametrize(
    ("url", "field"),
    [
        (f"{PLAN}/tasks?q=%00", "query.q"),
        (f"{PLAN}/tasks?unit=%E5%8F%B8%00", "query.unit"),
        ("/api/v1/units/%E5%8F%B8%E6%B3%95%E5%B1%80%00", "path.unit_id"),
        (f"{PLAN}/tasks/2.3%003", "path.code"),
        (f"{PLAN}/tasks?q=a%0Ab", "query.q"),
    ],
)
def test_control_characters_in_parameters_are_refused(client: TestClient, url: str, field: str) -> None:
    response = client.get(url)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["errors"] == [{"field": field, "message": "不能含控制字符", "type": "control_character"}]


@pytest.mark.parametrize("ref", ["99999999999999999999", "2147483648", "²"])
def test_unit_ids_out_of_range_are_404(client: TestClient, ref: str) -> None:
    response = client.get(f"/api/v1/units/{ref}")
    assert response.status_code == 404, response.text


def test_report_ids_out_of_range_are_422_with_the_path(client: TestClient) -> None:
    response = client.get("/api/v1/progress/2147483648")
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "path.report_id"
    assert client.get("/api/v1/progress/2147483647").status_code == 404


def test_a_legitimate_since_still_works(client: TestClient) -> None:
    response = client.get("/api/v1/changes?since=0&limit=1")
    assert response.status_code == 200
    assert response.json()["items"][0]["type"] == "plan.imported"
