"""The routers' one-way structure: a route hands its write to the write protocol
(`app/api/writes.py`, through `app.api.deps.Writing`) and never commits itself; an admin read uses a
read session."""

from __future__ import annotations

import ast
from pathlib import Path

from fastapi.testclient import TestClient
from sqlmodel import Session

import app.routers
from app.db import get_session, get_write_session
from app.main import create_app
from tests.factories import SEED_SLUG, make_key

ROUTERS = Path(app.routers.__file__).parent


def test_no_route_body_commits() -> None:
    found = []
    for path in sorted(ROUTERS.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in {"commit", "rollback"}
            ):
                found.append(f"{path.name}:{node.lineno}")
    assert found == [], f"routes commit in their bodies: {found}"


def test_admin_reads_of_webhooks_and_the_review_queue_never_open_a_write_session(db: Session) -> None:
    """Reads must not queue behind SQLite's writer lock, which only the write session takes."""
    application = create_app()
    application.dependency_overrides[get_session] = lambda: db

    def no_writes() -> Session:
        raise AssertionError("an admin read opened a write session")

    application.dependency_overrides[get_write_session] = no_writes
    client = TestClient(application)
    admin = make_key(db, admin=True)
    unit_key = make_key(db, unit="县司法局")
    urls = ("/api/v1/admin/webhooks", f"/api/v1/plans/{SEED_SLUG}/reviews")
    for url in urls:
        assert client.get(url, headers={"Authorization": admin}).status_code == 200, url
        refused = client.get(url, headers={"Authorization": unit_key})
        assert refused.status_code == 403 and refused.json()["code"] == "admin-only"
    missing = client.get("/api/v1/admin/webhooks/999", headers={"Authorization": admin})
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("application/problem+json")
