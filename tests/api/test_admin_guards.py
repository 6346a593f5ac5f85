"""Administration that would lock the county out or make a unit unreachable is refused (issue #10):
keys with no right, the last admin key, unit names that could never be addressed. Both engines."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from app.errors import KeyWithoutRight
from app.models import ApiKey
from app.services.keys import create_key
from tests.factories import make_key

KEYS = "/api/v1/admin/keys"


def prefix_of(authorization: str) -> str:
    return authorization.removeprefix("Bearer pa_").split("_", 1)[0]


def test_a_key_with_neither_unit_nor_admin_right_is_refused(client: TestClient, db: Session) -> None:
    admin = {"Authorization": make_key(db, admin=True)}
    before = len(db.exec(select(ApiKey.id)).all())
    for body in ({}, {"admin": False}, {"name": "只读", "admin": False}):
        response = client.post(KEYS, json=body, headers=admin)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
    with pytest.raises(KeyWithoutRight):  # the service itself, which `plan-api keys create` also uses
        create_key(session=db, name="只读", unit=None, is_admin=False)
    assert len(db.exec(select(ApiKey.id)).all()) == before


def _active_admins(db: Session) -> list[ApiKey]:
    return list(db.exec(select(ApiKey).where(col(ApiKey.is_admin), col(ApiKey.revoked_at).is_(None))).all())


def test_the_last_admin_key_of_a_jurisdiction_cannot_be_revoked_over_the_api(client: TestClient, db: Session) -> None:
    for key in _active_admins(db):  # start from a county without admin keys (the seed may hold some)
        db.delete(key)
    db.flush()
    first = make_key(db, admin=True)
    alone = client.delete(f"{KEYS}/{prefix_of(first)}", headers={"Authorization": first})
    assert alone.status_code == 409, alone.text
    assert alone.json()["code"] == "last-admin-key" and "最后一把" in alone.json()["detail"]
    assert alone.headers["content-type"] == "application/problem+json"

    successor = make_key(db, admin=True)  # issue the successor first, then the old key may go
    handed_over = client.delete(f"{KEYS}/{prefix_of(first)}", headers={"Authorization": successor})
    assert handed_over.status_code == 200, handed_over.text
    again = client.delete(f"{KEYS}/{prefix_of(successor)}", headers={"Authorization": successor})
    assert again.status_code == 409
    assert [k.prefix for k in _active_admins(db)] == [prefix_of(successor)]


def test_the_last_platform_admin_key_is_kept_even_beside_county_keys(client: TestClient, db: Session) -> None:
    platform = make_key(db, admin=True, jurisdiction=None)
    county = make_key(db, admin=True)  # an admin key, but of 西吉县, not of the platform
    refused = client.delete(f"{KEYS}/{prefix_of(platform)}", headers={"Authorization": platform})
    assert refused.status_code == 409, refused.text
    assert client.get("/api/v1/admin/keys", headers={"Authorization": county}).status_code == 200


def test_a_unit_named_with_digits_only_is_addressed_as_name(client: TestClient, db: Session) -> None:
    admin = {"Authorization": make_key(db, admin=True)}
    created = client.post("/api/v1/admin/units", json={"name": "12", "kind": "other"}, headers=admin)
    assert created.status_code == 201, created.text
    unit_id = created.json()["id"]
    assert unit_id != 12
    by_name = client.get("/api/v1/units/name:12")
    assert by_name.status_code == 200 and by_name.json()["id"] == unit_id
    qualified = client.get("/api/v1/units/name:640422:12")  # with its county, as any name may be
    assert qualified.status_code == 200 and qualified.json()["id"] == unit_id
    assert client.get(f"/api/v1/units/{unit_id}").json()["name"] == "12"
    bare = client.get("/api/v1/units/12")  # a bare number stays an id
    assert bare.status_code == 404 or bare.json()["id"] == 12
    tasks = client.get("/api/v1/plans/xiji-fzsh-2021-2025/tasks", params={"unit": "name:12"})
    assert tasks.status_code == 200 and tasks.json()["items"] == []


def test_unit_names_and_aliases_with_a_colon_are_refused(client: TestClient, db: Session) -> None:
    admin = {"Authorization": make_key(db, admin=True)}
    for body, field in (
        ({"name": "640422:新镇", "kind": "other"}, "body.name"),
        ({"name": "新镇", "kind": "other", "aliases": ["新：镇"]}, "body.aliases.0"),
    ):
        response = client.post("/api/v1/admin/units", json=body, headers=admin)
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["field"] == field
    alias = client.post("/api/v1/admin/units/县司法局/aliases", json={"alias": "a:b"}, headers=admin)
    assert alias.status_code == 422 and alias.json()["errors"][0]["field"] == "body.alias"
