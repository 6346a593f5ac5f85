"""One list contract on every list endpoint (`app/api/lists.py`): `limit`, `cursor` → `next_cursor`,
`count=true` → `total`; walking the pages gives exactly the unpaged list, each item once."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from tests.factories import SEED_SLUG, make_key

PLAN = f"/api/v1/plans/{SEED_SLUG}"
LISTS = [
    "/api/v1/plans",
    f"{PLAN}/sections",
    f"{PLAN}/tasks",
    "/api/v1/units",
    "/api/v1/units/县司法局/tasks",
    "/api/v1/jurisdictions",
    f"{PLAN}/duties",
    f"{PLAN}/compliance",
    "/api/v1/units/县司法局/duties",
    f"{PLAN}/excusals",
    f"{PLAN}/tasks/2.3.3/progress",
    "/api/v1/units/县司法局/progress",
    f"{PLAN}/reviews",
    "/api/v1/admin/keys",
]
NARROWER = {"duties": {"period": "2024-Q1"}, "compliance": {"period": "2024-Q1"}}  # lists under 500 items


def walk(
    client: TestClient, url: str, headers: dict[str, str], limit: int, narrower: dict[str, str]
) -> tuple[list[Any], set[int | None]]:
    items: list[Any] = []
    totals: set[int | None] = set()
    params: dict[str, Any] = {**narrower, "limit": limit, "count": "true"}
    for _ in range(1000):
        response = client.get(url, params=params, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["items"]) <= limit
        items += body["items"]
        totals.add(body["total"])
        if body["next_cursor"] is None:
            return items, totals
        params = {**params, "cursor": body["next_cursor"]}
    raise AssertionError("the pages never ended")


@pytest.mark.parametrize("url", LISTS)
def test_every_list_pages_and_counts_alike(client: TestClient, db: Session, url: str) -> None:
    headers = {"Authorization": make_key(db, admin=True)}
    justice = {"Authorization": make_key(db, unit="司法局")}
    for percent in (10, 20):  # two versions of one report: history lists are not empty
        body = {"status": "in_progress", "percent": percent, "summary": "开展普法", "period": "2024-Q1"}
        assert client.post(f"{PLAN}/tasks/2.3.3/progress", json=body, headers=justice).status_code == 201
    narrower = NARROWER.get(url.rsplit("/", 1)[-1], {})
    if url.endswith("/units/县司法局/duties"):
        narrower = {"as_of": "2024-06-30"}
    whole = client.get(url, params={**narrower, "limit": 500}, headers=headers).json()
    assert "total" not in whole or whole["total"] is None  # only when asked for
    everything = whole["items"]
    assert whole["next_cursor"] is None
    paged, totals = walk(client, url, headers, max(1, len(everything) // 3), narrower)
    assert paged == everything
    assert totals == {len(everything)}
    bad = client.get(url, params={"cursor": "not-a-cursor"}, headers=headers)
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "query.cursor"
